"""TiRex-2's forecast-time transforms around the network, as the reference (tirex2 0.4.0)
applies them: pure functions of tensors, no model, no I/O.

    target [V, T] --trending_rows--> which rows to difference
                  --difference_rows--> rows the network sees
    network quantiles [V, Q, H] --widen_raw_band / integrate_differenced--> forecasts

A target row that rises or falls steadily (a z-scored straight-line fit that is both steep
and good) is fed to the network as first differences; its forecast is integrated back from
the last observed level. Every other row keeps its levels, and its quantile band is widened
with the horizon. Covariates are never differenced.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class PostProcessSettings:
    """The reference's fixed constants (its checkpoints only switch differencing on/off)."""

    trend_min_r2: float = 0.87  # straight-line fit quality a trend needs
    trend_threshold: float = 1.5  # |slope of the z-scored row| * row length a trend needs
    diff_band_exponent: float = 0.51
    diff_band_scale: float = 1.68
    raw_band_exponent: float = 0.52
    raw_band_scale: float = 0.90
    min_trend_points: int = 4  # rows with fewer observed values never count as trending


SETTINGS = PostProcessSettings()


def trending_rows(target: torch.Tensor, settings: PostProcessSettings = SETTINGS) -> list[bool]:
    """Per row of ``target`` [V, T] (NaN = missing): whether it is a steady trend.

    Each row's observed values are z-scored (sample std) and fitted by a least-squares line
    over their time positions; a row trends when |slope| * T reaches ``trend_threshold`` and
    the fit's R^2 reaches ``trend_min_r2``. Done in float64 on the CPU: the decision is a
    threshold, and it must not flip on rounding.
    """
    rows = target.detach().cpu().to(torch.float64).numpy()
    return [_is_trending(row, settings) for row in rows]


def _is_trending(row: np.ndarray, settings: PostProcessSettings) -> bool:
    observed = ~np.isnan(row)
    if observed.sum() < settings.min_trend_points:
        return False
    positions = np.flatnonzero(observed).astype(np.float64)
    values = row[observed]
    std = values.std(ddof=1)
    if std < 1e-12:  # a flat row has no trend (and no z-score)
        return False
    z = (values - values.mean()) / std
    centred = positions - positions.mean()
    slope = float((centred * (z - z.mean())).sum() / (centred * centred).sum())
    intercept = z.mean() - slope * positions.mean()
    residual = float(((z - (slope * positions + intercept)) ** 2).sum())
    total = float(((z - z.mean()) ** 2).sum())
    r2 = 1.0 - residual / total if total > 1e-12 else 0.0
    return abs(slope) * row.shape[0] >= settings.trend_threshold and r2 >= settings.trend_min_r2


def last_observed(target: torch.Tensor) -> torch.Tensor:
    """target [V, T] -> [V]: each row's last non-NaN value, 0 for a row without any."""
    observed = ~torch.isnan(target)
    positions = torch.arange(target.shape[-1], device=target.device).expand_as(target)
    last = torch.where(observed, positions, -1).amax(dim=-1)  # [V], -1 = nothing observed
    values = target.gather(-1, last.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    return torch.where(last >= 0, values, torch.zeros_like(values))


def difference_rows(target: torch.Tensor, rows: list[bool]) -> torch.Tensor:
    """target [V, T] with the flagged rows replaced by first differences (x[t] - x[t-1]).

    A differenced row starts with 0 (even where its first value is missing), as the reference
    network was trained; a difference next to a NaN is NaN."""
    if not any(rows):
        return target
    steps = torch.diff(target, dim=-1, prepend=target[..., :1])  # column 0: x0 - x0
    steps[..., 0] = 0.0
    flagged = torch.tensor(rows, device=target.device).unsqueeze(-1)  # [V, 1]
    return torch.where(flagged, steps, target)


def _horizon_factor(horizon: int, exponent: float, like: torch.Tensor) -> torch.Tensor:
    """[H]: t^(exponent - 1/2) for t = 1..H (a sqrt-t band grows as t^exponent overall)."""
    steps = torch.arange(1, horizon + 1, device=like.device, dtype=like.dtype)
    return steps ** (exponent - 0.5)


def widen_raw_band(
    quantiles: torch.Tensor, settings: PostProcessSettings = SETTINGS
) -> torch.Tensor:
    """quantiles [V, Q, H] of level rows -> the same with each quantile's distance from the
    median (index Q // 2) scaled by sqrt(raw_band_scale) * t^(raw_band_exponent - 1/2)."""
    median = quantiles[:, quantiles.shape[1] // 2 :][:, :1]  # [V, 1, H]
    factor = _horizon_factor(quantiles.shape[-1], settings.raw_band_exponent, quantiles)
    return median + settings.raw_band_scale**0.5 * factor * (quantiles - median)


def integrate_differenced(
    steps: torch.Tensor, start: torch.Tensor, settings: PostProcessSettings = SETTINGS
) -> torch.Tensor:
    """Quantiles of next-step changes [V, Q, H] -> level quantiles [V, Q, H] from ``start`` [V].

    The median path is the running sum of the median changes. A quantile's band is the root
    of the running sum of its squared distances from the median change (independent steps),
    carrying the sign of its total distance, scaled by sqrt(diff_band_scale) *
    t^(diff_band_exponent - 1/2).
    """
    median = steps[:, steps.shape[1] // 2 :][:, :1]  # [V, 1, H]
    offset = steps - median  # [V, Q, H]
    side = offset.sum(dim=-1, keepdim=True).sign()  # [V, Q, 1]: below or above the median
    spread = torch.cumsum(offset * offset, dim=-1).sqrt()
    factor = _horizon_factor(steps.shape[-1], settings.diff_band_exponent, steps)
    band = settings.diff_band_scale**0.5 * side * spread * factor
    return torch.cumsum(median, dim=-1) + band + start[:, None, None]


def target_forecasts(
    quantiles: torch.Tensor,
    differenced: list[bool],
    start: torch.Tensor,
    settings: PostProcessSettings = SETTINGS,
) -> torch.Tensor:
    """The network's quantiles [V, Q, H] for one series' targets -> level forecasts [V, Q, H]:
    differenced rows integrated from ``start`` [V], the others' bands widened."""
    flagged = torch.tensor(differenced, dtype=torch.bool, device=quantiles.device)
    out = quantiles.clone()
    if (~flagged).any():
        out[~flagged] = widen_raw_band(quantiles[~flagged], settings)
    if flagged.any():
        out[flagged] = integrate_differenced(quantiles[flagged], start[flagged], settings)
    return out


def complement_order(levels: list[float], tolerance: float = 1e-6) -> list[int] | None:
    """For each level q the index of level 1 - q (the sign flip's mirror), or None where a
    level has no mirror within ``tolerance`` (the set is not symmetric)."""
    order = []
    for q in levels:
        distances = [abs(other - (1.0 - q)) for other in levels]
        best = int(np.argmin(distances))
        if distances[best] > tolerance:
            return None
        order.append(best)
    return order
