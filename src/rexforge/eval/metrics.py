"""Forecast accuracy metrics as pure numpy functions (gluonts ``ev`` style).

Three layers, each a plain function of arrays:

1. **Per-point statistics** (``absolute_error``, ``quantile_loss``, ``smape_terms``, ...): one value
   per forecast point, NaN where the target is NaN.
2. **Per-series sums** (``series_statistics``): each statistic summed over the horizon of one
   forecast (one row = one series in one backtest window), NaN points skipped.
3. **Metrics** (``series_metrics`` per row, ``aggregate_metrics`` per dataset): ratios of those
   sums, so a dataset-level WQL is ``sum(pinball) / sum(|y|)`` over every point, not a mean of
   per-series ratios.

Shapes: ``N`` forecasts (series x windows), horizon ``H``, ``Q`` quantile levels.

Point forecasts: absolute-error metrics (MAE, MASE, sMAPE) use the median (the ``0.5`` quantile
when the forecaster predicts it, else the mean), as gluonts' ``MASE``/``sMAPE`` do; RMSE uses the
mean. Baselines that predict one value use it for every column, so the choice does not matter there.

Metric definitions (dataset level):

- ``mase``: mean over forecasts of ``MAE / scale``, where ``scale`` is the in-sample mean absolute
  seasonal difference of the history before the forecast's cutoff (``seasonal_scale``).
- ``smape``: M-competition sMAPE, ``200 * |y - f| / (|y| + |f|)``, averaged over the horizon of each
  forecast, then over forecasts (how the M3 results were published). 0/0 counts as 0.
- ``wql``: weighted quantile loss as GIFT-Eval and Chronos report it: for each level ``q``,
  ``2 * sum(pinball_q) / sum(|y|)`` over all points, averaged over levels.
- ``crps``: CRPS approximated from the quantiles, ``2 * mean_q pinball_q`` averaged over points, in
  the units of the target. CRPS equals ``2 * integral_0^1 pinball_q dq``; the mean over equally
  spaced levels (0.1..0.9) is a Riemann sum of that integral that leaves out the tails beyond the
  outermost levels, so it slightly underestimates the true CRPS. ``wql`` is the same sum divided
  by ``sum(|y|)`` (the "scaled CRPS").
- ``mae``, ``rmse``: over all points (``rmse = sqrt(mean squared error)``).
- ``coverage_80``: fraction of points with ``q0.1 <= y <= q0.9`` (ideal 0.8).
- ``width_80``: mean ``q0.9 - q0.1``; ``width_80_scaled``: per forecast the mean width divided by
  the MASE scale, averaged over forecasts (comparable across series like MASE).

NaN targets are ignored everywhere: they add nothing to any sum or count.
"""

from __future__ import annotations

import logging

import numpy as np

from rexforge.data.time_grid import frequency_offset

log = logging.getLogger(__name__)

METRICS: tuple[str, ...] = (
    "mase",
    "smape",
    "wql",
    "crps",
    "mae",
    "rmse",
    "coverage_80",
    "width_80",
    "width_80_scaled",
)
"""Metric names produced by ``series_metrics`` and ``aggregate_metrics``, in report order."""

# Seasonal period of one cycle, per pandas rule code (the offset's name without its anchor:
# "W-SUN" -> "W", "QE-DEC" -> "QE"; ``frequency_offset`` reads old spellings such as "H", "M" or
# "A" into the same offsets). Cf. gluonts ``get_seasonality``; we use a weekly cycle for daily
# data, as most benchmarks do for seasonal naive, where gluonts uses 1, and a yearly cycle of
# 52 weeks for weekly data where the history holds two of them (the M4 convention, and
# gluonts', is 1; ``get_seasonality(..., history=)``).
SEASONALITIES: dict[str, int] = {
    "s": 3600,  # seconds: hourly cycle
    "min": 1440,  # minutes: daily cycle
    "h": 24,
    "bh": 24,  # business hours
    "D": 7,
    "C": 7,  # custom business days
    "B": 5,
    "W": 52,
    **dict.fromkeys(("ME", "MS", "BME", "BMS", "SME", "SMS"), 12),
    **dict.fromkeys(("QE", "QS", "BQE", "BQS"), 4),
    **dict.fromkeys(("YE", "YS", "BYE", "BYS"), 1),
}
# Frequencies whose cycle is used only where the history holds this many of them (52 weeks: few
# weekly series cover two years, and a seasonal naive forecast needs one whole year).
MIN_SEASONS_IN_HISTORY: dict[str, int] = {"W": 2}


def get_seasonality(freq: str | None, default: int = 1, history: int | None = None) -> int:
    """Seasonal period for a pandas frequency string (``"h"`` -> 24, ``"30min"`` -> 48, ``"MS"`` -> 12,
    ``"W"`` -> 52).

    A multiple divides the base period (``"2h"`` -> 12); when it does not divide evenly, or the
    frequency is unknown or None, ``default`` is returned. ``history`` (a typical series
    length): weekly data gets 52 only when that holds two years (``MIN_SEASONS_IN_HISTORY``),
    else 1.
    """
    season, rule = _seasonality(freq, default)
    seasons_needed = MIN_SEASONS_IN_HISTORY.get(rule)
    if seasons_needed and history is not None and history < seasons_needed * season:
        return 1
    return season


def _seasonality(freq: str | None, default: int) -> tuple[int, str | None]:
    """(seasonal period, rule code or None) of ``get_seasonality``."""
    offset = frequency_offset(freq)
    if offset is None:
        return default, None
    rule = offset.name.split("-")[0]
    period = SEASONALITIES.get(rule)
    if period is None or offset.n < 1:
        return default, None
    season, remainder = divmod(period, offset.n)
    return (season, rule) if remainder == 0 else (default, None)


# --- per-point statistics -----------------------------------------------------------------


def absolute_error(y: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """``|y - f|``, shape of ``y`` ([N, H]); NaN where ``y`` is NaN."""
    return np.abs(np.asarray(y, dtype=np.float64) - forecast)


def squared_error(y: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """``(y - f)^2``, shape of ``y`` ([N, H])."""
    return np.square(np.asarray(y, dtype=np.float64) - forecast)


def quantile_loss(y: np.ndarray, quantiles: np.ndarray, levels) -> np.ndarray:
    """Pinball loss per point and level.

    ``y`` [N, H], ``quantiles`` [N, H, Q] forecasts at ``levels`` (Q floats in (0, 1)).
    Returns [N, H, Q]: ``max(q * (y - f), (q - 1) * (y - f))`` (no factor 2).
    """
    levels = np.asarray(levels, dtype=np.float64)
    diff = np.asarray(y, dtype=np.float64)[..., None] - quantiles  # [N, H, Q]
    return np.maximum(levels * diff, (levels - 1.0) * diff)


def smape_terms(y: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """M-competition sMAPE per point, ``200 * |y - f| / (|y| + |f|)`` in percent; 0 where both are 0."""
    y = np.asarray(y, dtype=np.float64)
    num = 200.0 * np.abs(y - forecast)
    den = np.abs(y) + np.abs(forecast)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return np.where(np.isnan(y) | np.isnan(forecast), np.nan, out)


def interval_coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """1.0 where ``lower <= y <= upper``, else 0.0; NaN where any input is NaN. Shape of ``y``."""
    y = np.asarray(y, dtype=np.float64)
    inside = ((y >= lower) & (y <= upper)).astype(np.float64)
    return np.where(np.isnan(y) | np.isnan(lower) | np.isnan(upper), np.nan, inside)


def interval_width(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """``upper - lower``; NaN where ``y`` is NaN (so missing targets don't count). Shape of ``y``."""
    y = np.asarray(y, dtype=np.float64)
    return np.where(np.isnan(y), np.nan, upper - lower)


# --- seasonal scale ---------------------------------------------------------------------------


def seasonal_scale(history: np.ndarray, season: int = 1) -> float:
    """MASE scale: mean ``|y[t] - y[t - season]|`` over the history ([T]), NaN pairs skipped.

    Falls back to ``season = 1`` when the history has no full season plus one point
    (``T <= season``). Returns NaN when no pair of observed values exists.
    """
    x = np.asarray(history, dtype=np.float64).reshape(-1)
    season = int(season)
    if season < 1:
        season = 1
    if len(x) <= season:
        season = 1
    if len(x) <= season:
        return float("nan")
    diffs = np.abs(x[season:] - x[:-season])
    diffs = diffs[~np.isnan(diffs)]
    return float(diffs.mean()) if diffs.size else float("nan")


# --- per-series sums and metrics -------------------------------------------------------------


def _level_index(levels: np.ndarray, level: float) -> int | None:
    hits = np.flatnonzero(np.isclose(levels, level, atol=1e-9))
    return int(hits[0]) if hits.size else None


def point_forecast(quantiles: np.ndarray, mean: np.ndarray, levels) -> np.ndarray:
    """The median forecast [N, H]: the 0.5 quantile when predicted, else ``mean``."""
    i = _level_index(np.asarray(levels, dtype=np.float64), 0.5)
    return np.asarray(mean, dtype=np.float64) if i is None else quantiles[..., i]


def _masked_sum(x: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Sum over the horizon (axis 1) of the points with an observed target.

    A NaN *forecast* at an observed point stays NaN, so a broken forecaster can't hide.
    """
    if x.ndim == 3:
        observed = observed[..., None]
    return np.sum(np.where(observed, x, 0.0), axis=1)


def series_statistics(
    y: np.ndarray, quantiles: np.ndarray, mean: np.ndarray, levels
) -> dict[str, np.ndarray]:
    """Sum each per-point statistic over the horizon of every forecast.

    ``y`` [N, H] targets (NaN = missing), ``quantiles`` [N, H, Q] at ``levels``, ``mean`` [N, H].
    Returns a dict of [N] arrays: ``count`` (observed points), ``abs_error``, ``sq_error``,
    ``abs_target``, ``smape``, ``coverage_80``, ``width_80`` (NaN when the levels lack 0.1 or 0.9)
    and ``pinball`` [N, Q] (sum of pinball loss per level).
    """
    y = np.asarray(y, dtype=np.float64)
    quantiles = np.asarray(quantiles, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    levels = np.asarray(levels, dtype=np.float64)
    observed = ~np.isnan(y)
    median = point_forecast(quantiles, mean, levels)
    stats = {
        "count": observed.sum(axis=-1).astype(np.float64),
        "abs_error": _masked_sum(absolute_error(y, median), observed),
        "sq_error": _masked_sum(squared_error(y, mean), observed),
        "abs_target": _masked_sum(np.abs(y), observed),
        "smape": _masked_sum(smape_terms(y, median), observed),
        "pinball": _masked_sum(quantile_loss(y, quantiles, levels), observed),
    }
    lo, hi = _level_index(levels, 0.1), _level_index(levels, 0.9)
    if lo is None or hi is None:
        stats["coverage_80"] = np.full(len(y), np.nan)
        stats["width_80"] = np.full(len(y), np.nan)
    else:
        lower, upper = quantiles[..., lo], quantiles[..., hi]
        stats["coverage_80"] = _masked_sum(interval_coverage(y, lower, upper), observed)
        stats["width_80"] = _masked_sum(interval_width(y, lower, upper), observed)
    return stats


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def series_metrics(stats: dict[str, np.ndarray], scale: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric in ``METRICS`` per forecast ([N] arrays) from ``series_statistics`` sums.

    ``scale`` [N] is the MASE scale of each forecast's history (``seasonal_scale``). A forecast
    with no observed target, or a zero/NaN scale for the scaled metrics, gets NaN.
    """
    n = stats["count"]
    scale = np.asarray(scale, dtype=np.float64)
    mae = _div(stats["abs_error"], n)
    width = _div(stats["width_80"], n)
    return {
        "mase": _div(mae, scale),
        "smape": _div(stats["smape"], n),
        "wql": _div(2.0 * stats["pinball"].mean(axis=-1), stats["abs_target"]),
        "crps": _div(2.0 * stats["pinball"].mean(axis=-1), n),
        "mae": mae,
        "rmse": np.sqrt(_div(stats["sq_error"], n)),
        "coverage_80": _div(stats["coverage_80"], n),
        "width_80": width,
        "width_80_scaled": _div(width, scale),
    }


def _finite_mean(values: np.ndarray, name: str) -> float:
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    if not ok.any():
        return float("nan")
    if not ok.all():
        log.debug(
            "%s: %d of %d forecasts without a finite value skipped", name, (~ok).sum(), ok.size
        )
    return float(values[ok].mean())


def aggregate_metrics(stats: dict[str, np.ndarray], scale: np.ndarray) -> dict[str, float]:
    """Dataset-level value of every metric in ``METRICS`` from ``series_statistics`` sums.

    Sums are pooled over forecasts before dividing (``wql``, ``crps``, ``mae``, ``rmse``,
    ``coverage_80``, ``width_80``). ``mase``, ``smape`` and ``width_80_scaled`` are per-forecast
    values averaged over forecasts (forecasts whose value is NaN, e.g. a constant history for MASE,
    are skipped).
    """
    n = float(np.sum(stats["count"]))
    per_series = series_metrics(stats, scale)
    pinball = stats["pinball"].sum(axis=0)  # [Q]
    abs_target = float(np.sum(stats["abs_target"]))
    return {
        "mase": _finite_mean(per_series["mase"], "mase"),
        "smape": _finite_mean(per_series["smape"], "smape"),
        "wql": float(_div(2.0 * pinball.mean(), abs_target)),
        "crps": float(_div(2.0 * pinball.mean(), n)),
        "mae": float(_div(np.sum(stats["abs_error"]), n)),
        "rmse": float(np.sqrt(_div(np.sum(stats["sq_error"]), n))),
        "coverage_80": float(_div(np.sum(stats["coverage_80"]), n)),
        "width_80": float(_div(np.sum(stats["width_80"]), n)),
        "width_80_scaled": _finite_mean(per_series["width_80_scaled"], "width_80_scaled"),
    }


def evaluate_forecasts(
    y: np.ndarray,
    quantiles: np.ndarray,
    mean: np.ndarray,
    levels,
    scale: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-forecast and dataset-level metrics in one call.

    ``y`` [N, H], ``quantiles`` [N, H, Q], ``mean`` [N, H], ``scale`` [N] (MASE scales; NaN when
    None, which leaves the scaled metrics NaN). Returns ``(per_forecast, aggregate)``.
    """
    y = np.asarray(y, dtype=np.float64)
    if scale is None:
        scale = np.full(len(y), np.nan)
    stats = series_statistics(y, quantiles, mean, levels)
    return series_metrics(stats, scale), aggregate_metrics(stats, scale)


def geometric_mean_relative(values: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Geometric mean over datasets of ``value / baseline`` (GIFT-Eval / Chronos aggregate).

    ``values`` [D, M] (D datasets, M models or metrics), ``baseline`` [D] (e.g. seasonal naive's
    value on each dataset). Datasets where a ratio is not finite and positive are skipped for that
    column. Returns [M].
    """
    values = np.asarray(values, dtype=np.float64)
    baseline = np.asarray(baseline, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = values / baseline[:, None]
    ok = np.isfinite(ratio) & (ratio > 0)
    logs = np.where(ok, np.log(np.where(ok, ratio, 1.0)), 0.0)
    counts = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.exp(logs.sum(axis=0) / np.maximum(counts, 1)), np.nan)
