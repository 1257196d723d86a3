"""The one interface the backtests call, for baselines and models of every family.

A backtest calls ``forecast(contexts, prediction_length, output_type="numpy", batch_size=...)
-> (quantiles [B, H, Q], mean [B, H])``. Baselines have it. A loaded model (any registered
family's forecaster) is seen through ``ModelView``, which calls its ``predict_quantiles``:
every family's forecaster has that verb with that result (TiRex-2's own ``forecast`` returns
the official per-series list instead), so evaluation never asks which family a model is.
Forecasters whose ``forecast`` takes ``past_covariates`` / ``future_covariates`` can be given
covariates (``takes_covariates``; ``rexforge.eval.covariates``).
"""

from __future__ import annotations

import inspect

import numpy as np

from rexforge.errors import InputError


class ModelView:
    """A model's forecaster with the backtest interface (see the module doc)."""

    def __init__(self, model, name: str | None = None):
        self.model = model
        self.name = name or type(model).__name__
        self.quantiles = list(model.quantiles)

    def forecast(self, contexts, prediction_length: int, output_type="numpy", batch_size=256):
        quantiles, mean = self.model.predict_quantiles(
            contexts, prediction_length, batch_size=batch_size
        )
        quantiles, mean = _numpy(quantiles), _numpy(mean)
        check_horizon_reached(self.name, quantiles.shape[1], prediction_length)
        return quantiles, mean


def backtest_view(forecaster):
    """``forecaster`` as the backtests call it: a model (anything with ``predict_quantiles``
    and a ``model`` network) through ``ModelView``, anything else as it is."""
    if isinstance(forecaster, ModelView):
        return forecaster
    if hasattr(forecaster, "predict_quantiles") and hasattr(forecaster, "model"):
        return ModelView(forecaster, getattr(forecaster, "name", None))
    return forecaster


def takes_covariates(forecaster) -> bool:
    """Whether ``forecaster`` (or the model behind a ``ModelView``) forecasts with covariates:
    its ``forecast`` takes ``past_covariates`` and ``future_covariates``."""
    model = forecaster.model if isinstance(forecaster, ModelView) else forecaster
    try:
        parameters = inspect.signature(model.forecast).parameters
    except (AttributeError, TypeError, ValueError):
        return False
    return "past_covariates" in parameters and "future_covariates" in parameters


def check_horizon_reached(name: str, steps: int, horizon: int) -> None:
    """A model that forecasts fewer steps than asked (TiRex-2 cuts at its cap) is one error."""
    if steps < horizon:
        raise InputError(
            f"model {name} forecasts at most {steps} steps, fewer than the horizon {horizon}; "
            f"evaluate it with --horizon <= {steps}"
        )


def _numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float64)
