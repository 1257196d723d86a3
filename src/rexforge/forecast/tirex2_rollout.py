"""TiRex-2 forecasts past the model's horizon cap (``future_len``, 320 steps for the released
checkpoint), by feeding forecasts back as context: the median, or one quantile curve per path.

The network forecasts one ``future_len`` window per pass and the reference cuts longer horizons.
``median_rollout`` forecasts the first window, appends the targets' median forecast to their
context (past-only covariates get NaN there: they are unknown ahead; known-future covariates
already cover the whole horizon), and forecasts the next window from that, until the horizon is
reached. Later windows are conditioned on one path, the median, so their quantile bands leave
out the uncertainty of the earlier windows: they are too narrow, and more so the further out
(``benchmarks/tirex2_rollout.py`` measures the accuracy). ``paths_rollout`` runs Q paths per
series instead, each feeding back one of its own quantile curves (``rexforge.forecast.mixture``
picks which), and returns the quantiles of the mixture of the paths' forecasts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rexforge.forecast.mixture import mixture_quantiles, path_levels
from rexforge.forecast.tirex2_inputs import TimeseriesType

# The rollouts that forecast past future_len; "cut" (the reference's) stops there.
PAST_CAP = ("median", "paths")
ROLLOUTS = ("cut", *PAST_CAP)


def median_rollout(
    predict, series: list[TimeseriesType], horizon: int, cap: int, median_index: int
) -> list[torch.Tensor]:
    """One [V_t, Q, horizon] forecast per item of ``series``.

    predict: ``predict(series, steps) -> [[V_t, Q, steps], ...]`` for steps <= ``cap`` (a
        forecaster's ``predict`` with its options bound).
    median_index: the position of the 0.5 level among the quantiles.
    """
    pieces: list[list[torch.Tensor]] = [[] for _ in series]
    done = 0
    while done < horizon:
        steps = min(cap, horizon - done)
        forecasts = predict(series, steps)
        for collected, forecast in zip(pieces, forecasts):
            collected.append(forecast)
        done += steps
        if done < horizon:
            series = [
                extended(item, forecast[:, median_index])
                for item, forecast in zip(series, forecasts)
            ]
    return [torch.cat(collected, dim=-1) for collected in pieces]


def paths_rollout(
    predict, series: list[TimeseriesType], horizon: int, cap: int, levels: list[float]
) -> list[torch.Tensor]:
    """One [V_t, Q, horizon] forecast per item of ``series``, rolled out along Q paths per item
    past the first window (``predict`` as for ``median_rollout``; ``levels`` the quantile
    levels, k / (Q + 1)). Each predict call takes ``len(series)`` paths at a time."""
    B, Q = len(series), len(levels)
    steps = min(cap, horizon)
    first = predict(series, steps)  # B x [V_t, Q, steps]
    pieces = [[forecast] for forecast in first]
    paths = [[item] * Q for item in series]
    last = [forecast.expand(Q, *forecast.shape) for forecast in first]  # B x [paths, V_t, Q, s]
    draws = path_levels(Q)
    done = steps
    while done < horizon:
        order = next(draws).tolist()
        paths = [
            [extended(path, own[j][:, order[j]]) for j, path in enumerate(item_paths)]
            for item_paths, own in zip(paths, last)
        ]
        steps = min(cap, horizon - done)
        flat = [path for item_paths in paths for path in item_paths]
        forecasts = [f for i in range(0, len(flat), B) for f in predict(flat[i : i + B], steps)]
        last = [torch.stack(forecasts[b * Q : (b + 1) * Q]) for b in range(B)]
        for collected, own in zip(pieces, last):
            # [paths, V_t, Q, steps] -> per variate [V_t, paths, Q, steps] -> [V_t, Q, steps]
            collected.append(mixture_quantiles(own.transpose(0, 1), levels))
        done += steps
    return [torch.cat(collected, dim=-1) for collected in pieces]


def extended(item: TimeseriesType, median: torch.Tensor) -> TimeseriesType:
    """``item`` with ``median`` [V_t, steps] appended to its target and NaN to its past-only
    covariates; its known-future covariates (which span the whole horizon) stay as they are."""
    steps = median.shape[-1]
    target = torch.cat([item.target, median.to(item.target.dtype)], dim=-1)
    past = item.past_covariates
    if past is not None:
        past = F.pad(past, (0, steps), value=torch.nan)
    return TimeseriesType(target, past, item.future_covariates)
