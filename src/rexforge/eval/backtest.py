"""Rolling-origin backtests of any forecaster, leak-free by construction.

For window ``w`` (0-based, oldest first) of a series of length ``T`` the cutoff is::

    cutoff = T - horizon - (windows - 1 - w) * stride

The forecaster receives a fresh copy of ``target[:cutoff]`` (or its last ``context_length``
points), never a view: a view keeps the whole array reachable through ``.base``. The forecast is
scored against ``target[cutoff : cutoff + horizon]``, and MASE is scaled by ``target[:cutoff]``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rexforge.data.series import TimeSeries
from rexforge.errors import InputError, collect_problems
from rexforge.eval import metrics as M
from rexforge.forecast.frames import quantile_column

log = logging.getLogger(__name__)


def model_name(forecaster) -> str:
    """A display name: the forecaster's ``name`` attribute, else its class name."""
    name = getattr(forecaster, "name", None)
    return str(name) if name else type(forecaster).__name__


@dataclass
class BacktestResult:
    """What ``backtest`` returns.

    ``forecasts``: tidy, one row per (item_id, window, step) with columns ``item_id, window, cutoff,
    step, y, mean, 0.1, ..., 0.9`` (``step`` is 1-based; ``cutoff`` is the number of context
    points before the window). ``per_series``: one row per (item_id, window) with every metric in
    ``metrics.METRICS``. ``metrics``: dataset-level values (see ``rexforge.eval.metrics``).
    The raw arrays are kept for further analysis: ``y`` [N, H], ``quantile_forecasts`` [N, H, Q],
    ``mean`` [N, H], ``scale`` [N] with N = series x windows, in the row order of ``per_series``.
    """

    name: str
    horizon: int
    windows: int
    stride: int
    season: int
    quantile_levels: list[float]
    forecasts: pd.DataFrame
    per_series: pd.DataFrame
    metrics: dict[str, float]
    y: np.ndarray = field(repr=False)
    quantile_forecasts: np.ndarray = field(repr=False)
    mean: np.ndarray = field(repr=False)
    scale: np.ndarray = field(repr=False)

    def error_by_step(self) -> pd.DataFrame:
        """Dataset-level metrics for each horizon step separately (rows: step 1..H)."""
        rows = []
        for h in range(self.horizon):
            _, agg = M.evaluate_forecasts(
                self.y[:, h : h + 1],
                self.quantile_forecasts[:, h : h + 1],
                self.mean[:, h : h + 1],
                self.quantile_levels,
                self.scale,
            )
            rows.append({"step": h + 1, **agg})
        return pd.DataFrame(rows)


def _check_arguments(series, horizon, windows, stride, context_length) -> list[str]:
    problems = []
    if not isinstance(horizon, (int, np.integer)) or horizon < 1:
        problems.append(f"horizon must be a positive integer, got {horizon!r}")
    if not isinstance(windows, (int, np.integer)) or windows < 1:
        problems.append(f"windows must be a positive integer, got {windows!r}")
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        problems.append(f"stride must be a positive integer, got {stride!r}")
    if context_length is not None and (
        not isinstance(context_length, (int, np.integer)) or context_length < 1
    ):
        problems.append(f"context_length must be a positive integer, got {context_length!r}")
    if not series:
        problems.append("no series to evaluate")
    bad = [type(s).__name__ for s in series if not isinstance(s, TimeSeries)]
    if bad:
        problems.append(f"series must be TimeSeries objects, got {bad[0]}")
    return problems


def dominant_freq(series: Sequence[TimeSeries]) -> str | None:
    """The most common ``freq`` among ``series`` (None when none has one)."""
    freqs = Counter(s.freq for s in series if s.freq)
    return freqs.most_common(1)[0][0] if freqs else None


def typical_length(series: Sequence) -> int | None:
    """The median series length (None for no series): what "the history allows" a season."""
    lengths = [len(s) for s in series]
    return int(np.median(lengths)) if lengths else None


def _as_array(value, name: str, what: str) -> np.ndarray:
    try:
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"forecaster {name} returned {what} that is not numeric: {exc}") from None


def backtest(
    forecaster,
    series: Sequence[TimeSeries],
    horizon: int,
    windows: int = 1,
    stride: int | None = None,
    context_length: int | None = None,
    *,
    season: int | None = None,
    batch_size: int = 256,
    name: str | None = None,
) -> BacktestResult:
    """Rolling-origin backtest of ``forecaster`` on ``series``.

    ``forecaster`` has ``forecast(context: list[np.ndarray], prediction_length, output_type="numpy",
    batch_size=...) -> (quantiles [B, H, Q], mean [B, H])`` and a ``quantiles`` attribute (the Q
    levels), or is a loaded model of any family (``rexforge.eval.forecasters``). It is called
    once per window with the contexts of every series. With covariates: ``backtest_covariates``
    (``rexforge.eval.covariates``).
    ``stride`` defaults to ``horizon`` (adjacent, non-overlapping windows). ``context_length``
    truncates each context to its last points (MASE still uses the whole history). ``season``
    (the MASE period) defaults to ``get_seasonality`` of the series' most common frequency, else 1
    (weekly: 52 where the median series holds two years, else 1).

    Raises ``InputError`` for a non-positive horizon/windows/stride, or when the windows don't fit
    the shortest series (every window needs at least one context point).
    """
    from rexforge.eval.forecasters import backtest_view

    series = list(series)
    forecaster = backtest_view(forecaster)  # a model of any family: its predict_quantiles
    stride = horizon if stride is None else stride
    collect_problems(
        _check_arguments(series, horizon, windows, stride, context_length), InputError, "backtest"
    )
    horizon, windows, stride = int(horizon), int(windows), int(stride)
    _check_windows_fit(series, horizon, windows, stride)
    name = name or model_name(forecaster)
    levels = _quantile_levels(forecaster, name)
    season = _mase_season(series, season)
    arrays = _WindowArrays.empty(len(series), windows, horizon, len(levels))
    for w in range(windows):
        contexts = _fill_window(arrays, series, w, stride, context_length, season)
        log.debug("%s: window %d/%d, %d series", name, w + 1, windows, len(series))
        arrays.quantiles[:, w], arrays.mean[:, w] = _forecast_window(
            forecaster, contexts, horizon, len(levels), batch_size, name
        )
    return _backtest_result(name, series, arrays, levels, stride, season)


def _check_windows_fit(series: list[TimeSeries], horizon: int, windows: int, stride: int) -> None:
    """Raise ``InputError`` unless every window leaves the shortest series a context point."""
    span = horizon + (windows - 1) * stride  # points after the first cutoff
    shortest = min(series, key=len)
    if len(shortest) <= span:
        raise InputError(
            f"horizon {horizon} with {windows} window(s) of stride {stride} needs series longer "
            f"than {span} points; shortest series {shortest.item_id!r} has {len(shortest)}"
        )


def _quantile_levels(forecaster, name: str) -> list[float]:
    """The forecaster's ``quantiles`` attribute as floats (``InputError`` when it has none)."""
    levels = getattr(forecaster, "quantiles", None)
    if levels is None:
        raise InputError(f"forecaster {name} has no 'quantiles' attribute (its quantile levels)")
    return [float(q) for q in levels]


def _mase_season(series: list[TimeSeries], season: int | None) -> int:
    """The MASE period: ``season`` if given, else the seasonality of the dominant frequency
    (see ``backtest``); at least 1."""
    if season is None:
        season = M.get_seasonality(dominant_freq(series), default=1, history=typical_length(series))
    return max(int(season), 1)


@dataclass
class _WindowArrays:
    """Every window's data, indexed [series, window, ...]: ``y`` [S, W, H] (the actuals),
    ``quantiles`` [S, W, H, Q], ``mean`` [S, W, H], ``scale`` [S, W] (the MASE scale of each
    history) and ``cutoffs`` [S, W] (context points before each window)."""

    y: np.ndarray
    quantiles: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    cutoffs: np.ndarray

    @classmethod
    def empty(cls, S: int, W: int, H: int, Q: int) -> _WindowArrays:
        """Uninitialised arrays for S series, W windows, horizon H and Q quantile levels."""
        return cls(
            y=np.empty((S, W, H)),
            quantiles=np.empty((S, W, H, Q)),
            mean=np.empty((S, W, H)),
            scale=np.empty((S, W)),
            cutoffs=np.empty((S, W), dtype=np.int64),
        )


def _fill_window(
    arrays: _WindowArrays,
    series: list[TimeSeries],
    w: int,
    stride: int,
    context_length: int | None,
    season: int,
) -> list[np.ndarray]:
    """Fill window ``w`` of ``arrays.y``, ``.scale`` and ``.cutoffs`` for every series; return
    the S contexts to forecast from, each a fresh copy of (the tail of) ``target[:cutoff]``."""
    _, W, horizon = arrays.y.shape
    contexts = []
    for i, s in enumerate(series):
        cutoff = len(s) - horizon - (W - 1 - w) * stride
        start = 0 if context_length is None else max(0, cutoff - context_length)
        contexts.append(s.target[start:cutoff].copy())  # a copy: no path to the future
        arrays.y[i, w] = s.target[cutoff : cutoff + horizon]
        arrays.scale[i, w] = M.seasonal_scale(s.target[:cutoff], season)
        arrays.cutoffs[i, w] = cutoff
    return contexts


def _forecast_window(
    forecaster, contexts: list[np.ndarray], horizon: int, n_levels: int, batch_size: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Forecast one window's S ``contexts``; return (quantiles [S, H, Q], mean [S, H]) as float64,
    raising ``InputError`` when the forecaster returns anything else."""
    S, H, Q = len(contexts), horizon, n_levels
    out_q, out_mean = forecaster.forecast(
        contexts, prediction_length=horizon, output_type="numpy", batch_size=batch_size
    )
    out_q = _as_array(out_q, name, "quantiles")
    out_mean = _as_array(out_mean, name, "a mean")
    if out_q.shape != (S, H, Q) or out_mean.shape != (S, H):
        raise InputError(
            f"forecaster {name} returned quantiles {tuple(out_q.shape)} and mean "
            f"{tuple(out_mean.shape)} for {S} series, horizon {H} and {Q} levels; "
            f"expected ({S}, {H}, {Q}) and ({S}, {H})"
        )
    return out_q, out_mean


def _backtest_result(
    name: str,
    series: list[TimeSeries],
    arrays: _WindowArrays,
    levels: list[float],
    stride: int,
    season: int,
) -> BacktestResult:
    """Score the filled ``arrays`` and lay them out as a ``BacktestResult``: the [S, W, ...]
    arrays are flattened to N = S * W rows, series-major."""
    S, W, H, Q = arrays.quantiles.shape
    N = S * W
    y2, q2 = arrays.y.reshape(N, H), arrays.quantiles.reshape(N, H, Q)
    m2, sc = arrays.mean.reshape(N, H), arrays.scale.reshape(N)
    per_forecast, aggregate = M.evaluate_forecasts(y2, q2, m2, levels, sc)

    item_ids = np.repeat(np.array([s.item_id for s in series], dtype=object), W)  # [N]
    window_idx = np.tile(np.arange(W), S)  # [N]
    cutoffs = arrays.cutoffs.reshape(N)  # [N]
    per_series = pd.DataFrame({"item_id": item_ids, "window": window_idx, "cutoff": cutoffs})
    for metric in M.METRICS:
        per_series[metric] = per_forecast[metric]

    return BacktestResult(
        name=name,
        horizon=H,
        windows=W,
        stride=stride,
        season=season,
        quantile_levels=levels,
        forecasts=_forecasts_frame(item_ids, window_idx, cutoffs, y2, m2, q2, levels),
        per_series=per_series,
        metrics=aggregate,
        y=y2,
        quantile_forecasts=q2,
        mean=m2,
        scale=sc,
    )


def _forecasts_frame(
    item_ids: np.ndarray,
    window_idx: np.ndarray,
    cutoffs: np.ndarray,
    y: np.ndarray,
    mean: np.ndarray,
    quantiles: np.ndarray,
    levels: list[float],
) -> pd.DataFrame:
    """The tidy ``BacktestResult.forecasts``: the N forecasts' ``item_ids``, ``window_idx`` and
    ``cutoffs`` (each [N]) repeated over the H steps, beside ``y`` [N, H], ``mean`` [N, H] and
    ``quantiles`` [N, H, Q] flattened to N * H rows, one column per quantile level."""
    N, H = y.shape
    forecasts = pd.DataFrame(
        {
            "item_id": np.repeat(item_ids, H),
            "window": np.repeat(window_idx, H),
            "cutoff": np.repeat(cutoffs, H),
            "step": np.tile(np.arange(1, H + 1), N),
            "y": y.reshape(-1),
            "mean": mean.reshape(-1),
        }
    )
    for j, level in enumerate(levels):
        forecasts[quantile_column(level)] = quantiles[:, :, j].reshape(-1)
    return forecasts
