"""Evaluation: metrics, rolling-origin backtests, baselines, competition data sets and reports.

``backtest(forecaster, series, horizon, windows=...)`` scores anything with the forecaster
interface (rexforge models of every family and the registered baselines alike);
``backtest_covariates`` does the same for items with several targets and covariates;
``rexforge evaluate`` is their command line (``rexforge.eval.command``).
"""

import importlib

# name -> submodule; imported on first use, so that ``rexforge evaluate --help`` (which
# imports ``rexforge.eval.command``) loads no pandas or torch.
_EXPORTS = {
    "BacktestResult": "backtest",
    "backtest": "backtest",
    "backtest_covariates": "covariates",
    "CovariateItem": "covariates",
    "get_baseline": "baselines",
    "list_baselines": "baselines",
    "register_baseline": "baselines",
    "CompetitionData": "datasets",
    "list_datasets": "datasets",
    "load_dataset": "datasets",
    "METRICS": "metrics",
    "get_seasonality": "metrics",
}

__all__ = [
    "BacktestResult",
    "CompetitionData",
    "METRICS",
    "backtest",
    "backtest_covariates",
    "CovariateItem",
    "get_baseline",
    "get_seasonality",
    "list_baselines",
    "list_datasets",
    "load_dataset",
    "register_baseline",
]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"rexforge.eval.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'rexforge.eval' has no attribute {name!r}")
