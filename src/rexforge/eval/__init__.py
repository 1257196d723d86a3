"""Evaluation: metrics, rolling-origin backtests, baselines, competition data sets and reports.

``backtest(forecaster, series, horizon, windows=...)`` scores anything with the forecaster
interface (rexforge models and the registered baselines alike); ``rexforge evaluate`` is its
command line (``rexforge.eval.command``).
"""

from rexforge.eval.backtest import BacktestResult, backtest
from rexforge.eval.baselines import get_baseline, list_baselines, register_baseline
from rexforge.eval.datasets import CompetitionData, list_datasets, load_dataset
from rexforge.eval.metrics import METRICS, get_seasonality

__all__ = [
    "BacktestResult",
    "CompetitionData",
    "METRICS",
    "backtest",
    "get_baseline",
    "get_seasonality",
    "list_baselines",
    "list_datasets",
    "load_dataset",
    "register_baseline",
]
