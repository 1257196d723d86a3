"""Forecasting along several paths, for any family: which quantile curve each path feeds back
at each further step, and the quantiles of the mixture of the paths' forecasts.

A forecast past what one pass of a model covers (TiRex: one patch; TiRex-2: its ``future_len``)
is conditioned on what is fed back for the steps before. Feeding back the median (one path)
gives bands that leave out the earlier steps' uncertainty. Rolling out Q paths, one per
quantile level, and mixing their forecasts keeps it: see ``rexforge.forecast.engine``'s and
``rexforge.forecast.tirex2_rollout``'s ``"paths"`` rollouts.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from rexforge.errors import InputError

# Fixed, so that a series' forecast never depends on the run or on the rest of its batch.
PATH_LEVELS_SEED = 0


def path_levels(Q: int) -> Iterator[torch.Tensor]:
    """One draw per further step: path j feeds back its level ``draw[j]`` (an index among Q).
    Every series' Q paths take the Q levels between them (a stratified draw), in an order that
    changes from step to step so that each path's levels mix; the same for every series."""
    generator = torch.Generator().manual_seed(PATH_LEVELS_SEED)
    while True:
        yield torch.randperm(Q, generator=generator)


def check_paths_levels(levels: list[float]) -> None:
    """Raise ``InputError`` unless a model with these quantile levels can roll out along paths:
    the paths draw the levels as equally likely, so they must be k / (Q + 1), k = 1..Q (TiRex's
    0.1..0.9)."""
    Q = len(levels)
    if any(abs(level - (k + 1) / (Q + 1)) >= 1e-6 for k, level in enumerate(levels)):
        raise InputError(
            "rollout 'paths' needs quantile levels k / (Q + 1), k = 1..Q (as 0.1, ..., 0.9); "
            f"this model's are {list(levels)}"
        )


def mixture_quantiles(per_path: torch.Tensor, levels: list[float]) -> torch.Tensor:
    """Quantiles at ``levels`` of an equal-weight mixture of forecasts [B, paths, Q, P] whose
    quantiles are at ``levels`` (ascending in (0, 1)). Returns [B, Q, P].

    Each path's CDF runs linearly between its quantiles, with the mass below the lowest level
    on the lowest quantile and the mass above the highest on the highest: so the mixture of
    identical forecasts is that forecast, and of certain (point) forecasts their empirical
    distribution. The mixture's CDF is then linear between the pooled quantiles, with jumps at
    them, and inverting it is exact.
    """
    B, paths, Q, P = per_path.shape
    tau = torch.tensor(levels, dtype=per_path.dtype, device=per_path.device)
    by_step = per_path.permute(0, 3, 1, 2).contiguous()  # [B, P, paths, Q]
    knots = by_step.reshape(B, P, paths * Q).sort(dim=-1).values  # [B, P, n]
    cdf = torch.stack([_path_cdf(by_step[:, :, i].contiguous(), knots, tau) for i in range(paths)])
    at, below = (c.contiguous() for c in cdf.mean(dim=0).unbind(-1))  # CDF at, just below knots
    target = tau.expand(B, P, Q).contiguous()
    j = torch.searchsorted(at, target).clamp(max=paths * Q - 1)  # first knot reaching tau
    previous = (j - 1).clamp(min=0)
    x_j, x_prev = knots.gather(-1, j), knots.gather(-1, previous)
    at_prev, below_j = at.gather(-1, previous), below.gather(-1, j)
    # Between the knots the CDF climbs linearly from at_prev to below_j; a level it skips over
    # (below_j < tau) falls on the jump at x_j.
    rise = (below_j - at_prev).clamp(min=1e-12)
    between = x_prev + (x_j - x_prev) * ((target - at_prev) / rise).clamp(0, 1)
    inside = (j > 0) & (below_j >= target)
    return torch.where(inside, between, x_j).transpose(1, 2)  # [B, Q, P]


def _path_cdf(quantiles: torch.Tensor, x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """One path's CDF at x and just below x: quantiles [B, P, Q], x [B, P, n] -> [B, P, n, 2]."""
    Q = quantiles.shape[-1]
    values = []
    for right in (True, False):
        count = torch.searchsorted(quantiles, x, right=right)  # quantiles <= x (or < x)
        low = (count - 1).clamp(0, Q - 1)
        high = count.clamp(max=Q - 1)
        q_low, q_high = quantiles.gather(-1, low), quantiles.gather(-1, high)
        share = ((x - q_low) / (q_high - q_low).clamp(min=1e-30)).clamp(0, 1)
        inner = tau[low] + (tau[high] - tau[low]) * share
        values.append(torch.where(count == 0, 0.0, torch.where(count == Q, 1.0, inner)))
    return torch.stack(values, dim=-1)
