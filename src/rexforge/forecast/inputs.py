"""Turn what users pass to ``forecast`` into a list of 1-D float32 tensors, or say why not."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch

from rexforge.errors import InputError


def _as_1d(sample, index: int) -> torch.Tensor:
    if isinstance(sample, torch.Tensor):
        tensor = sample.detach()
    else:
        if np.iscomplexobj(sample):
            raise InputError(f"series {index} holds complex numbers; pass real values")
        try:
            array = np.array(sample, dtype=np.float64)  # a copy: inputs may be read-only
        except (TypeError, ValueError):
            raise InputError(f"series {index} holds non-numeric values") from None
        tensor = torch.from_numpy(array)
    if tensor.dim() > 1:
        tensor = tensor.squeeze()
    if tensor.dim() != 1:
        raise InputError(f"series {index} must be one-dimensional, got shape {tuple(tensor.shape)}")
    if tensor.is_complex() or not (
        tensor.is_floating_point() or tensor.dtype in (torch.int32, torch.int64, torch.int16)
    ):
        raise InputError(f"series {index} has unsupported dtype {tensor.dtype}")
    if tensor.numel() == 0:
        raise InputError(f"series {index} is empty")
    tensor = tensor.float().cpu()
    if torch.isinf(tensor).any():
        raise InputError(
            f"series {index} contains +-inf; replace it with NaN (missing) or a finite value"
        )
    return tensor


def iter_series(context) -> Iterator[torch.Tensor]:
    """Yield the series of ``context`` as 1-D float32 CPU tensors.

    Accepts a 1-D or 2-D tensor or array (rows = series) or an iterable of 1-D
    tensors/arrays/lists of possibly different lengths. NaN marks missing values.
    """
    if isinstance(context, (torch.Tensor, np.ndarray)):
        ndim = context.ndim
        if ndim == 1:
            yield _as_1d(context, 0)
            return
        if ndim != 2:
            raise InputError(f"context must be 1-D or 2-D, got {ndim} dimensions")
        if context.shape[1] == 0:
            raise InputError("context has zero time steps")
        for i in range(context.shape[0]):
            yield _as_1d(context[i], i)
        return
    if isinstance(context, (str, bytes)) or not isinstance(context, Iterable):
        raise InputError(
            f"context of type {type(context).__name__} is not supported: pass a tensor, an array "
            "or a list of 1-D series"
        )
    count = 0
    for i, sample in enumerate(context):
        count += 1
        yield _as_1d(sample, i)
    if count == 0:
        raise InputError("context holds no series")


def left_pad_batch(series: list[torch.Tensor]) -> torch.Tensor:
    """Stack 1-D series into [B, T_max], left-padding the shorter ones with NaN."""
    length = max(s.shape[0] for s in series)
    out = torch.full((len(series), length), float("nan"), dtype=torch.float32)
    for i, s in enumerate(series):
        out[i, length - s.shape[0] :] = s
    return out
