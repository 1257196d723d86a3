"""TiRex-2's input and output transforms: pure functions of tensors, no state.

    series [BV, T] --scale_series--> scaled [BV, T] --patch_series--> patches [BV, N, P]
    quantile patches [BV, Q, N, P] --unpatch + unscale_quantiles--> [BV, Q, N * P]

Each row is one variate (targets and covariates of every series in the batch, flattened).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

# sinh overflows fp32 past ~89; the official inverse clamps its argument to +-20 first.
SINH_CLAMP = 20.0


class SeriesScale(NamedTuple):
    loc: torch.Tensor  # [BV, 1]
    scale: torch.Tensor  # [BV, 1]
    is_binary: torch.Tensor | None  # [BV, 1] bool, rows left unscaled (None: detection off)


def scale_series(
    x: torch.Tensor, eps: float, use_arcsinh: bool, binaryaware: bool
) -> tuple[torch.Tensor, SeriesScale]:
    """Standardise each row of ``x`` [BV, T] by its non-NaN mean and population std.

    All-NaN rows get loc 0 and scale 1; scales are floored at ``eps``. ``binaryaware``: rows
    holding only 0, 1 and NaN stay as they are. ``use_arcsinh``: the other rows are then
    squashed by arcsinh (large excursions compress, small values stay nearly linear).
    NaN stays NaN. Returns the scaled series [BV, T] and what ``unscale_quantiles`` needs.
    """
    loc = torch.nan_to_num(torch.nanmean(x, dim=-1, keepdim=True), nan=0.0)
    scale = torch.nanmean((x - loc) ** 2, dim=-1, keepdim=True).sqrt()
    scale = torch.nan_to_num(scale, nan=1.0).clamp_min(eps)
    is_binary = None
    if binaryaware:
        is_binary = ((x == 0.0) | (x == 1.0) | torch.isnan(x)).all(dim=-1, keepdim=True)
        loc = torch.where(is_binary, torch.zeros_like(loc), loc)
        scale = torch.where(is_binary, torch.ones_like(scale), scale)
    scaled = (x - loc) / scale
    if use_arcsinh:
        squashed = torch.arcsinh(scaled)
        scaled = squashed if is_binary is None else torch.where(is_binary, scaled, squashed)
    return scaled, SeriesScale(loc, scale, is_binary)


def unscale_quantiles(y: torch.Tensor, scale: SeriesScale, use_arcsinh: bool) -> torch.Tensor:
    """Inverse of ``scale_series`` for model outputs ``y`` [BV, Q, T'] -> data units."""
    if use_arcsinh:
        unsquashed = torch.sinh(torch.clamp(y, -SINH_CLAMP, SINH_CLAMP))
        if scale.is_binary is None:
            y = unsquashed
        else:
            y = torch.where(scale.is_binary[:, None], y, unsquashed)  # [BV, 1, 1] broadcast
    return y * scale.scale[:, None] + scale.loc[:, None]


def patch_series(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``x`` [BV, T] -> patches [BV, N, P], N = ceil(T / P), left-padded with NaN so that the
    last patch ends at the last value."""
    pad = -x.shape[-1] % patch_size
    if pad:
        x = F.pad(x, (pad, 0), value=torch.nan)
    return x.unfold(dimension=-1, size=patch_size, step=patch_size)


def patch_tokens(patches: torch.Tensor) -> torch.Tensor:
    """Patches [BV, N, P] (NaN = missing) -> tokens [BV, N, 2P]: values with NaN as 0, then
    the observed mask (1 = observed)."""
    observed = (~torch.isnan(patches)).to(patches.dtype)
    return torch.cat((torch.nan_to_num(patches, nan=0.0), observed), dim=-1)
