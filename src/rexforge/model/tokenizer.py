"""Per-series scaling and patching: series [B, T] -> tokens [B, N, 2 * P].

Pure functions, no state. A token holds the P scaled values of one patch, with NaN replaced
by 0, followed by P mask values (1 = observed, 0 = missing), as the official model reads them.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

# Added to |mean| when a series is constant, so that it scales to ~±1 instead of dividing by 0.
CONSTANT_SERIES_EPS = 1e-5


class Scale(NamedTuple):
    loc: torch.Tensor  # [B, 1]
    scale: torch.Tensor  # [B, 1]


def standard_scale(x: torch.Tensor) -> Scale:
    """Mean and population std over the non-NaN values of each row of ``x`` [B, T].

    The official rules: a constant row gets scale |mean| + 1e-5; an all-NaN row gets
    loc 0 and scale 1.
    """
    loc = torch.nan_to_num(torch.nanmean(x, dim=-1, keepdim=True), nan=0.0)
    var = torch.nanmean((x - loc).square(), dim=-1, keepdim=True)
    scale = var.sqrt()
    # float32 squares leave its range both ways: |deviations| above ~1e19 square past 3.4e38
    # (inf), below ~1e-19 under its smallest normal number 1.2e-38 (precision lost, or 0, which
    # would read as a constant series and scale by 1e-5 instead of the data's own spread).
    # Such rows, and only those (elsewhere the float32 numerics are the official ones), get
    # their statistics in float64; their mean and std themselves fit float32 again.
    overflow = torch.isinf(var) | torch.isinf(loc)  # [B, 1]
    underflow = var < torch.finfo(x.dtype).tiny  # [B, 1]; NaN (all-NaN rows) compares False
    if (overflow | underflow).any():
        x64 = x.double()
        loc64 = torch.nan_to_num(torch.nanmean(x64, dim=-1, keepdim=True), nan=0.0)
        std64 = torch.nanmean((x64 - loc64).square(), dim=-1, keepdim=True).sqrt()
        # A truly constant row keeps the official constant rule (std 0 below).
        redo = overflow | (underflow & (std64 > 0))
        loc = torch.where(redo, loc64.to(x.dtype), loc)
        scale = torch.where(redo, std64.to(x.dtype), scale)
    scale = torch.nan_to_num(scale, nan=1.0)
    scale = torch.where(scale == 0, loc.abs() + CONSTANT_SERIES_EPS, scale)
    return Scale(loc, scale)


def tokenize(x: torch.Tensor, patch_size: int) -> tuple[torch.Tensor, Scale]:
    """Scale and patch ``x`` [B, T] (T a multiple of ``patch_size``) into tokens [B, N, 2P]."""
    B, T = x.shape
    if T % patch_size:
        raise ValueError(f"length {T} is not a multiple of the patch size {patch_size}")
    x = x.float()
    scale = standard_scale(x)
    scaled = ((x - scale.loc) / scale.scale).reshape(B, T // patch_size, patch_size)
    return patch_tokens(scaled), scale


def patch_tokens(patches: torch.Tensor) -> torch.Tensor:
    """Scaled patches [B, N, P] (NaN = missing) -> tokens [B, N, 2P]: the values with NaN
    replaced by 0, followed by the observed mask."""
    observed = ~torch.isnan(patches)
    return torch.cat((torch.nan_to_num(patches, nan=0.0), observed.to(patches.dtype)), dim=-1)


def masked_tokens(batch: int, count: int, patch_size: int, like: torch.Tensor) -> torch.Tensor:
    """``count`` fully masked tokens per row (what an all-NaN patch becomes): [B, count, 2P]."""
    return torch.zeros(batch, count, 2 * patch_size, dtype=torch.float32, device=like.device)


def unscale(y: torch.Tensor, scale: Scale) -> torch.Tensor:
    """Map model outputs [B, ...] from the scaled space back to the data's units."""
    shape = (y.shape[0],) + (1,) * (y.dim() - 1)
    return y * scale.scale.reshape(shape) + scale.loc.reshape(shape)
