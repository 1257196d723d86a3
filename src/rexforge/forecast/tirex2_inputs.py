"""Turn what users pass to ``TiRex2Forecaster.forecast`` into ``TimeseriesType`` items (float32
tensors on the CPU), or say in one line why not.

Accepted, as the reference ``tirex2`` takes them: a list of ``TimeseriesType`` (ours or the
reference's: anything with ``target``, ``past_covariates`` and ``future_covariates``), or plain
arrays: a 1-D array (one series), a 2-D array (each row its own univariate series) or a list
of 1-D series / 2-D ``[variates, T]`` multivariate targets, with the covariates given as lists
parallel to it (or one array when there is one series).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from rexforge.errors import InputError


@dataclass
class TimeseriesType:
    """One series to forecast: targets and optional covariates, each [variates, steps].

    target: [V_t, T] (a univariate series has V_t = 1). past_covariates: [V_p, T], known up to
    now only. future_covariates: [V_f, >= T + H], known over the horizon too (later steps are
    ignored). Field names as in the reference, so its objects work here unchanged.
    """

    target: torch.Tensor
    past_covariates: torch.Tensor | None = None
    future_covariates: torch.Tensor | None = None


def as_rows(sample, what: str) -> torch.Tensor:
    """``sample`` (array, tensor or list; 1-D or 2-D) -> a float32 CPU tensor [V, T]."""
    if isinstance(sample, torch.Tensor):
        tensor = sample.detach().cpu()
    else:
        if np.iscomplexobj(sample):
            raise InputError(f"{what} holds complex numbers; pass real values")
        try:
            tensor = torch.from_numpy(np.array(sample, dtype=np.float64))  # a copy
        except (TypeError, ValueError):
            raise InputError(f"{what} holds non-numeric values") from None
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise InputError(f"{what} has unsupported dtype {tensor.dtype}")
    if tensor.dim() == 1:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 2:
        raise InputError(f"{what} must be 1-D [T] or 2-D [variates, T], got {tuple(tensor.shape)}")
    if tensor.shape[0] == 0 or tensor.shape[1] == 0:
        raise InputError(f"{what} is empty (shape {tuple(tensor.shape)})")
    tensor = tensor.float()
    if torch.isinf(tensor).any():
        raise InputError(f"{what} contains +-inf; replace it with NaN (missing) or a finite value")
    return tensor


def _split_targets(context) -> list:
    """The per-series targets of ``context``: a 2-D array's rows, or a list's items."""
    if _is_series_object(context):
        return [context]
    if isinstance(context, (torch.Tensor, np.ndarray)):
        if context.ndim == 1:
            return [context]
        if context.ndim != 2:
            raise InputError(
                f"an array context must be 1-D or 2-D (rows = series), got {context.ndim} "
                "dimensions; pass a list of [variates, T] arrays for multivariate targets"
            )
        return list(context)
    if isinstance(context, (str, bytes, dict)) or not isinstance(context, Iterable):
        raise InputError(
            f"context of type {type(context).__name__} is not supported: pass TimeseriesType "
            "items, an array or a list of series"
        )
    return list(context)


def _parallel(covariates, count: int, name: str) -> list:
    """``covariates`` as one entry (or None) per series."""
    if covariates is None:
        return [None] * count
    if isinstance(covariates, (list, tuple)):
        if len(covariates) != count:
            raise InputError(f"{name} has {len(covariates)} entries for {count} series")
        return list(covariates)
    if count != 1:
        raise InputError(f"pass {name} as a list with one entry per series ({count} series)")
    return [covariates]


def _is_series_object(item) -> bool:
    return all(hasattr(item, name) for name in ("target", "past_covariates", "future_covariates"))


def build_series(context, past_covariates=None, future_covariates=None) -> list[TimeseriesType]:
    """Every series of ``context`` as a checked ``TimeseriesType`` (see the module doc)."""
    targets = _split_targets(context)
    if not targets:
        raise InputError("context holds no series")
    if any(_is_series_object(item) for item in targets):
        if past_covariates is not None or future_covariates is not None:
            raise InputError("TimeseriesType items carry their own covariates; pass none beside")
        if not all(_is_series_object(item) for item in targets):
            raise InputError("context mixes TimeseriesType items with plain arrays")
        triples = [(t.target, t.past_covariates, t.future_covariates) for t in targets]
    else:
        past = _parallel(past_covariates, len(targets), "past_covariates")
        future = _parallel(future_covariates, len(targets), "future_covariates")
        triples = list(zip(targets, past, future))
    return [_checked(i, *triple) for i, triple in enumerate(triples)]


def _checked(index: int, target, past, future) -> TimeseriesType:
    target = as_rows(target, f"series {index}")
    steps = target.shape[-1]
    if past is not None:
        past = as_rows(past, f"past_covariates of series {index}")
        if past.shape[-1] != steps:
            raise InputError(
                f"past_covariates of series {index} have {past.shape[-1]} steps, the target "
                f"{steps}; they must be equally long"
            )
    if future is not None:
        future = as_rows(future, f"future_covariates of series {index}")
    return TimeseriesType(target, past, future)
