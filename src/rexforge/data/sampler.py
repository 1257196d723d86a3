"""Random training windows (context, future) for a patch model, drawn uniformly over all windows.

A *window* of a series ``x`` (float [T], NaN = missing) is identified by ``end``, the first
future step: ``future = x[end : end + prediction_length]`` must lie inside the series, and
``context = x[max(0, end - context_length) : end]`` is left-padded with NaN to
``context_length`` when it starts before the series does. A window is valid when its context
holds at least ``min_context`` observed values and its future at least ``min_future``.
With ``partial_future`` a future may also run past the series' end (right-padded with NaN,
which the loss ignores), so a series shorter than ``prediction_length`` still gives windows:
short yearly/quarterly series are exactly what zero-shot benchmarks such as M3 are made of.

Drawing a uniform index over *all* valid windows makes a series' share proportional to its
window count: a 10,000-step series gives ~100x the windows of a 100-step one, instead of the
same weight (one-per-series sampling would overfit the short series). ``series_weight_power``
moves between the two: a series is drawn with probability proportional to its window count
raised to that power (1 = uniform over windows, 0.5 = square root, 0 = uniform over series),
then one of its windows uniformly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from rexforge.data.series import TimeSeries
from rexforge.data.streams import ResumableStream, stream_rng
from rexforge.data.transforms import left_pad
from rexforge.errors import InputError

# Window indices are drawn in blocks from one generator per block: random access to sample i
# (needed for worker splitting and resume) costs one generator per _BLOCK samples, not per sample.
_BLOCK = 1024


class WindowSampler:
    """All valid (context, future) windows of a list of 1-D series, indexable and samplable.

    Args:
        series: 1-D float arrays ``[T_i]`` (NaN = missing) or ``TimeSeries``. Pass the *train*
            parts of a ``train_val_split``; no window's future ever leaves the array it comes from.
        context_length: C, length of every (left-padded) context.
        prediction_length: H, length of every future.
        min_context: fewest observed context values a window needs (1..C).
        min_future: fewest observed future values a window needs (0..H); windows whose whole
            future is missing teach nothing.
        seed: seeds ``draw`` (the torch stream ``WindowDataset`` has its own seeding).
        partial_future: let futures run past the end of a series (NaN-padded); a window then
            needs ``max(min_future, 1)`` observed future values.
        series_weight_power: p in [0, 1]; series drawn with probability ~ windows**p (1: every
            window equally likely, the default; 0.5 gives short series more weight).

    Windows are numbered ``0 .. num_windows - 1`` series by series, in increasing ``end``.
    """

    def __init__(
        self,
        series: Sequence[np.ndarray],
        context_length: int,
        prediction_length: int,
        *,
        min_context: int = 1,
        min_future: int = 1,
        seed: int | None = None,
        partial_future: bool = False,
        series_weight_power: float = 1.0,
    ):
        if context_length < 1 or prediction_length < 1:
            raise InputError(
                f"context_length and prediction_length must be >= 1, got "
                f"{context_length} and {prediction_length}"
            )
        if not 1 <= min_context <= context_length:
            raise InputError(f"min_context must be in [1, {context_length}], got {min_context}")
        if not 0 <= min_future <= prediction_length:
            raise InputError(f"min_future must be in [0, {prediction_length}], got {min_future}")
        if not 0.0 <= series_weight_power <= 1.0:
            raise InputError(f"series_weight_power must be in [0, 1], got {series_weight_power}")
        self.series = [
            np.asarray(s.target if isinstance(s, TimeSeries) else s, dtype=np.float64).reshape(-1)
            for s in series
        ]
        self.rng = np.random.default_rng(seed)
        self.context_length = context_length
        self.prediction_length = prediction_length
        self.min_context = min_context
        self.min_future = max(min_future, 1) if partial_future else min_future
        self.partial_future = partial_future
        # Steps a window's future must keep inside the series: all H, or min_future when partial.
        self._future_inside = self.min_future if partial_future else prediction_length
        # Per series either a contiguous range of ends (no NaN: the common, memory-free case)
        # or an explicit array of valid ends (series with NaNs).
        self._first_end = np.zeros(len(self.series), dtype=np.int64)
        self._explicit: dict[int, np.ndarray] = {}
        counts = np.zeros(len(self.series), dtype=np.int64)
        for i, x in enumerate(self.series):
            if np.isnan(x).any():
                ends = self._valid_ends(x)
                self._explicit[i] = ends
                counts[i] = len(ends)
            else:
                # The context has min(end, C) >= min_context observed values iff end >= min_context.
                first = min_context
                self._first_end[i] = first
                counts[i] = max(0, len(x) - self._future_inside - first + 1)
        self.window_counts = counts
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        self.num_windows = int(self._offsets[-1])
        if self.num_windows == 0:
            raise InputError(
                f"no training windows: every series needs at least min_context={min_context} "
                f"+ prediction_length={prediction_length} steps ({len(self.series)} series given)"
            )
        self.series_weight_power = series_weight_power
        self._series_probs = None  # None: uniform over windows
        if series_weight_power != 1.0:
            # 0 ** 0 == 1: series without windows must stay at weight 0 explicitly.
            weights = np.where(counts > 0, counts.astype(np.float64) ** series_weight_power, 0.0)
            self._series_probs = weights / weights.sum()

    def _valid_ends(self, x: np.ndarray) -> np.ndarray:
        """Ends whose context and future hold enough observed values (vectorised over ends)."""
        observed = np.concatenate([[0], np.cumsum(~np.isnan(x))])
        ends = np.arange(1, len(x) - self._future_inside + 1)
        in_context = observed[ends] - observed[np.maximum(0, ends - self.context_length)]
        in_future = observed[np.minimum(ends + self.prediction_length, len(x))] - observed[ends]
        return ends[(in_context >= self.min_context) & (in_future >= self.min_future)]

    def locate(self, index: int) -> tuple[int, int]:
        """Window ``index`` -> ``(series_idx, end)``."""
        if not 0 <= index < self.num_windows:
            raise IndexError(f"window {index} out of range [0, {self.num_windows})")
        s = int(np.searchsorted(self._offsets, index, side="right") - 1)
        local = index - int(self._offsets[s])
        if s in self._explicit:
            return s, int(self._explicit[s][local])
        return s, int(self._first_end[s]) + local

    def window(self, series_idx: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """``(context float64 [C] left-padded with NaN, future float64 [H])`` ending at ``end``
        (the future right-padded with NaN past the series' end, ``partial_future`` only)."""
        x = self.series[series_idx]
        context = left_pad(x[max(0, end - self.context_length) : end], self.context_length)
        future = np.full(self.prediction_length, np.nan)
        part = x[end : end + self.prediction_length]
        future[: len(part)] = part
        return context, future

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.window(*self.locate(index))

    def __len__(self) -> int:
        return self.num_windows

    def sample_indices(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` window indices drawn with replacement: int64 ``[size]``; uniform over all
        windows, or series-weighted (``series_weight_power`` < 1)."""
        if self._series_probs is None:
            return rng.integers(0, self.num_windows, size=size)
        series = rng.choice(len(self.series), size=size, p=self._series_probs)
        within = (rng.random(size) * self.window_counts[series]).astype(np.int64)
        return self._offsets[series] + np.minimum(within, self.window_counts[series] - 1)

    def draw(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``size`` random windows from ``self.rng``: ``(contexts [size, C], futures [size, H])``."""
        pairs = [self[int(i)] for i in self.sample_indices(self.rng, size)]
        contexts = np.stack([c for c, _ in pairs]) if pairs else np.empty((0, self.context_length))
        futures = (
            np.stack([f for _, f in pairs]) if pairs else np.empty((0, self.prediction_length))
        )
        return contexts, futures


class WindowDataset(ResumableStream):
    """Endless (or ``samples_per_epoch``-long) stream of random windows of a ``WindowSampler``.

    Yields ``{"context": float32 [C], "future": float32 [H]}`` tensors (NaN = missing/padding).
    Deterministic in ``(seed, epoch, rank, sample index)``, independent of worker count, and
    resumable mid-epoch; see ``ResumableStream``.
    """

    def __init__(
        self,
        sampler: WindowSampler,
        *,
        seed: int,
        batch_size: int = 1,
        samples_per_epoch: int | None = None,
        rank: int = 0,
    ):
        super().__init__(
            seed=seed, batch_size=batch_size, samples_per_epoch=samples_per_epoch, rank=rank
        )
        self.sampler = sampler
        self._block_key: tuple[int, int, int] | None = None
        self._block: np.ndarray | None = None

    def window_index(self, i: int) -> int:
        """The window index of sample ``i`` in the current epoch."""
        key = (self.epoch, self.rank, i // _BLOCK)
        if key != self._block_key:
            rng = stream_rng(self.seed, *key)
            self._block = self.sampler.sample_indices(rng, _BLOCK)
            self._block_key = key
        return int(self._block[i % _BLOCK])

    def sample(self, i: int) -> dict[str, torch.Tensor]:
        context, future = self.sampler[self.window_index(i)]
        return {
            "context": torch.from_numpy(context.astype(np.float32)),
            "future": torch.from_numpy(future.astype(np.float32)),
        }
