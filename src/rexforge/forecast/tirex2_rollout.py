"""TiRex-2 forecasts past the model's horizon cap (``future_len``, 320 steps for the released
checkpoint), by feeding the median back as context.

The network forecasts one ``future_len`` window per pass and the reference cuts longer horizons.
``median_rollout`` forecasts the first window, appends the targets' median forecast to their
context (past-only covariates get NaN there: they are unknown ahead; known-future covariates
already cover the whole horizon), and forecasts the next window from that, until the horizon is
reached. Later windows are conditioned on one path, the median, so their quantile bands leave
out the uncertainty of the earlier windows: they are too narrow, and more so the further out
(``benchmarks/tirex2_rollout.py`` measures the accuracy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rexforge.forecast.tirex2_inputs import TimeseriesType

ROLLOUTS = ("cut", "median")


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


def extended(item: TimeseriesType, median: torch.Tensor) -> TimeseriesType:
    """``item`` with ``median`` [V_t, steps] appended to its target and NaN to its past-only
    covariates; its known-future covariates (which span the whole horizon) stay as they are."""
    steps = median.shape[-1]
    target = torch.cat([item.target, median.to(item.target.dtype)], dim=-1)
    past = item.past_covariates
    if past is not None:
        past = F.pad(past, (0, steps), value=torch.nan)
    return TimeseriesType(target, past, item.future_covariates)
