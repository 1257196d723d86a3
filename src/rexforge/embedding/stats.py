"""Summary statistics of raw series that the augmented embedding appends (the official
``data_augmentation=True`` features), computed as the official package computes them.

Each series is cut into about ``STAT_PATCHES`` equal pieces (plus a shorter last piece when
the length does not divide); every piece gives its mean, std, max and min. The features are
then standardised over the batch (each feature across series), then within each row.
"""

from __future__ import annotations

import torch

STAT_PATCHES = 8
EPS = 1e-8


def nan_std(x: torch.Tensor, dim: int, keepdim: bool = False) -> torch.Tensor:
    """Population std over the non-NaN values along ``dim``."""
    centred = x - x.nanmean(dim=dim, keepdim=True)
    return centred.square().nanmean(dim=dim, keepdim=keepdim).sqrt()


def nan_max(x: torch.Tensor, dim: int) -> torch.Tensor:
    # NaN (and +-inf) become the dtype's extremes, as officially: an all-NaN piece gives the
    # smallest float rather than NaN.
    return x.nan_to_num(torch.finfo(x.dtype).min).amax(dim=dim)


def nan_min(x: torch.Tensor, dim: int) -> torch.Tensor:
    return x.nan_to_num(torch.finfo(x.dtype).max).amin(dim=dim)


def piece_statistics(data: torch.Tensor) -> torch.Tensor:
    """data [B, V, T] -> [B, V * n * 4]: (mean, std, max, min) of each of the n pieces of each
    variate, laid out variate-major, then piece, then statistic."""
    B, V, T = data.shape
    size = max(1, T // STAT_PATCHES)
    full = T // size
    pieces = data[..., : full * size].reshape(B, V, full, size)
    stats = [
        pieces.nanmean(dim=-1),
        nan_std(pieces, dim=-1),
        nan_max(pieces, dim=-1),
        nan_min(pieces, dim=-1),
    ]  # each [B, V, full]
    if T % size:
        # The short last piece uses the plain (NaN-propagating, unbiased-std) reductions.
        rest = data[..., full * size :]
        extra = [rest.mean(-1), rest.std(-1), rest.amax(-1), rest.amin(-1)]
        stats = [torch.cat((s, e.unsqueeze(-1)), dim=-1) for s, e in zip(stats, extra)]
    return torch.stack(stats, dim=-1).flatten(start_dim=1)


def standardise_statistics(features: torch.Tensor) -> torch.Tensor:
    """features [B, D]: each column to zero mean / unit std over the batch (NaN -> 0), then
    each row to zero mean / unit (sample) std."""
    columns = (features - features.nanmean(dim=0, keepdim=True)) / (
        nan_std(features, dim=0, keepdim=True) + EPS
    )
    columns = torch.nan_to_num(columns, nan=0.0)
    row_mean = columns.nanmean(dim=-1, keepdim=True)
    return (columns - row_mean) / (columns.std(dim=-1, keepdim=True) + EPS)
