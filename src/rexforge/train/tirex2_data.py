"""TiRex-2's training windows and held-out tails, over items with several variates.

A training window of an item (``VariateSeries``, rows: targets, past covariates, known-future
covariates) ending at ``end`` (the first forecast step) is laid out as the forecaster lays out
a forecast (``TiRex2Forecaster._group_rows``), so that training sees what forecasting feeds:

    inputs [V, C + F]   C = context steps (left-padded with NaN), F = the model's future_len
        targets            x[end-C : end]  | NaN * F
        past covariates    x[end-C : end]  | NaN * F
        future covariates  x[end-C : end]  | x[end : end+H], then NaN
    truth  [V_t, H]     the targets' next H steps (NaN past the item's end)

With the model's ``tta_diff`` on, a target row that trends over the item's past (the
forecaster's own test, ``tirex2_post.trending_rows``) is given, and learnt, as first
differences, as the forecaster will feed it. Covariates are never targets: the loss sees only
``truth``.

The held-out tail (``HoldoutItems``) is forecast by the family's forecaster itself, from each
item's whole past, so the guard judges exactly the forecasts the exported model makes.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from rexforge.data.multivariate import VariateSeries
from rexforge.data.sampler import WindowDataset, WindowSampler
from rexforge.data.series import TimeSeries
from rexforge.data.transforms import left_pad
from rexforge.errors import InputError
from rexforge.eval.metrics import seasonal_scale


def as_items(train_series: Sequence) -> list[VariateSeries]:
    """``VariateSeries``, ``TimeSeries``, 1-D arrays (one target), 2-D arrays ([targets, T])
    or ``TimeseriesType``-like objects (``target``, ``past_covariates``, ``future_covariates``;
    future covariates longer than the target are cut to it) -> ``VariateSeries``."""
    if len(train_series) == 0:
        raise InputError("no training series given")
    items = []
    for i, s in enumerate(train_series):
        if isinstance(s, VariateSeries):
            items.append(s)
        elif isinstance(s, TimeSeries):
            items.append(VariateSeries(s.item_id, s.target[None, :], meta=dict(s.meta)))
        elif all(hasattr(s, a) for a in ("target", "past_covariates", "future_covariates")):
            target = _numpy(s.target)
            future = s.future_covariates
            T = target.shape[-1]
            future = None if future is None else _numpy(future)[..., :T]
            past = None if s.past_covariates is None else _numpy(s.past_covariates)
            items.append(VariateSeries(f"#{i}", target, past, future))
        else:
            items.append(VariateSeries(f"#{i}", np.asarray(s, dtype=np.float64)))
    return items


def _numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)


def observed_steps(item: VariateSeries) -> np.ndarray:
    """[T]: 0 where some target is observed, NaN where none is (what windows are drawn on)."""
    return np.where(np.isnan(item.target).all(axis=0), np.nan, 0.0)


@dataclass(frozen=True)
class WindowLayout:
    context: int  # C
    horizon: int  # H, the steps the loss scores (<= future_len)
    future_len: int  # F, the model's forecast window
    difference_trends: bool  # the model's tta_diff


def training_window(item: VariateSeries, end: int, layout: WindowLayout) -> dict:
    """The window of ``item`` whose first forecast step is ``end`` (see the module doc):
    ``{"inputs": float32 [V, C + F], "truth": float32 [V_t, H], "num_targets": V_t}``."""
    from rexforge.forecast.tirex2_post import trending_rows

    C, H, F = layout.context, layout.horizon, layout.future_len
    rows = item.rows()  # [V, T]
    V, T = rows.shape
    nt, nf = item.num_targets, item.future_covariates.shape[0]
    start = max(0, end - C)
    context = rows[:, start:end]
    truth = np.full((nt, H), np.nan)
    ahead = rows[:nt, end : end + H]
    truth[:, : ahead.shape[1]] = ahead
    if layout.difference_trends:
        flags = trending_rows(torch.from_numpy(item.target[:, :end]))
        for r in np.flatnonzero(flags):
            context[r], truth[r] = _differenced(item.target[r], start, end, H)
    inputs = np.full((V, C + F), np.nan)
    inputs[:, :C] = np.stack([left_pad(row, C) for row in context])
    if nf:
        known = rows[V - nf :, end : end + H]
        inputs[V - nf :, C : C + known.shape[1]] = known
    return {
        "inputs": torch.from_numpy(inputs.astype(np.float32)),
        "truth": torch.from_numpy(truth.astype(np.float32)),
        "num_targets": nt,
    }


def _differenced(row: np.ndarray, start: int, end: int, H: int) -> tuple[np.ndarray, np.ndarray]:
    """(context, truth) of one target row as first differences, as the forecaster differences
    an item's whole past (its first step is 0) before cutting it to the context."""
    segment = row[max(0, start - 1) : end + H]
    steps = np.diff(segment, prepend=segment[:1])
    if start == 0:
        steps[0] = 0.0
    else:
        steps = steps[1:]
    context, ahead = steps[: end - start], steps[end - start :]
    truth = np.full(H, np.nan)
    truth[: len(ahead)] = ahead
    return context, truth


def collate_windows(samples: list[dict]) -> dict:
    """Windows of different variate counts -> one batch of rows: ``inputs`` [BV, C + F],
    ``truth`` [BT, H], ``group_ids`` [BV] (the window of each row), ``target_mask`` [BV]."""
    counts = [s["inputs"].shape[0] for s in samples]
    return {
        "inputs": torch.cat([s["inputs"] for s in samples]),
        "truth": torch.cat([s["truth"] for s in samples]),
        "group_ids": torch.cat([torch.full((n,), i) for i, n in enumerate(counts)]),
        "target_mask": torch.cat(
            [torch.arange(n) < s["num_targets"] for n, s in zip(counts, samples)]
        ),
    }


class ItemWindowDataset(WindowDataset):
    """The endless stream of training windows: indices drawn as ``WindowDataset`` draws them
    from a ``WindowSampler`` over each item's ``observed_steps``, windows cut from the items."""

    def __init__(self, sampler: WindowSampler, items: list[VariateSeries], layout, **kwargs):
        super().__init__(sampler, **kwargs)
        self.items = items
        self.layout = layout

    def sample(self, i: int) -> dict:
        index, end = self.sampler.locate(self.window_index(i))
        return training_window(self.items[index], end, self.layout)


class HoldoutItems(Dataset):
    """The held-out tail: item i gives ``windows[i]`` forecasts whose truths tile its last
    ``windows[i] * H`` steps, oldest first. Each is ``{"series": TimeseriesType (the whole
    past; known-future covariates H steps further), "truth": [V_t, H], "scale": [V_t] MASE
    scales, "norm": [V_t] the context's std (the validation loss' unit)}``."""

    def __init__(self, items: list[VariateSeries], horizon: int, context: int, windows):
        from rexforge.forecast.tirex2_inputs import TimeseriesType

        self.entries = []
        for item, count in zip(items, windows):
            T = len(item)
            for k in range(int(count), 0, -1):
                origin = T - k * horizon
                past = item.slice(0, origin)
                future = item.future_covariates[:, : origin + horizon]
                series = TimeseriesType(
                    torch.from_numpy(past.target).float(),
                    _tensor_or_none(past.past_covariates),
                    _tensor_or_none(future),
                )
                truth = item.target[:, origin : origin + horizon]
                self.entries.append(
                    {
                        "series": series,
                        "truth": torch.from_numpy(truth).float(),
                        "scale": torch.tensor([seasonal_scale(r, 1) for r in past.target]),
                        "norm": torch.from_numpy(_context_std(past.target[:, -context:])),
                    }
                )

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> dict:
        return self.entries[i]


def _tensor_or_none(rows: np.ndarray) -> torch.Tensor | None:
    return torch.from_numpy(rows).float() if rows.shape[0] else None


def _context_std(rows: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row
        std = np.nanstd(rows, axis=-1)
    return np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)


def collate_holdout(entries: list[dict]) -> dict:
    return {
        "series": [e["series"] for e in entries],
        "truth": torch.cat([e["truth"] for e in entries]),  # [N, H]
        "scale": torch.cat([e["scale"] for e in entries]),  # [N]
        "norm": torch.cat([e["norm"] for e in entries]),  # [N]
    }
