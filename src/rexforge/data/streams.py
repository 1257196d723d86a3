"""A deterministic, resumable stream of training samples for ``torch`` data loaders.

Sample ``i`` of a stream is a pure function of ``(seed, epoch, rank, i)``: it does not depend on
the number of data-loader workers. With ``W`` workers and batch size ``B``, worker ``w`` makes
the global batches ``w, w + W, w + 2W, ...``; the ``DataLoader`` (``batch_size=B``, in-order
delivery, its default) hands batches out round-robin, so the training loop sees batches
``0, 1, 2, ...`` whatever ``W`` is. Resuming is then a single number: how many samples of the
epoch were already consumed (``load_state_dict({"epoch": e, "drawn": n})``).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from rexforge.errors import InputError

logger = logging.getLogger(__name__)


def stream_rng(seed: int, epoch: int, rank: int, counter: int) -> np.random.Generator:
    """An independent generator for one (seed, epoch, rank, counter) key.

    ``SeedSequence`` hashes the whole key, so neighbouring keys give unrelated streams (unlike
    ``seed + rank``, where rank 1 of seed 0 would replay rank 0 of seed 1).
    """
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, rank, counter]))


class ResumableStream(IterableDataset):
    """Base class: subclasses define ``sample(i)``; this class splits work and tracks position.

    Args:
        seed: base seed (a non-negative int).
        batch_size: the ``DataLoader``'s batch size; workers split the stream in whole batches.
        samples_per_epoch: samples per epoch on this rank, or None for an endless stream.
        rank: the distributed rank; each rank gets its own stream.
    """

    def __init__(
        self,
        *,
        seed: int,
        batch_size: int = 1,
        samples_per_epoch: int | None = None,
        rank: int = 0,
    ):
        super().__init__()
        for name, value, low in (
            ("seed", seed, 0),
            ("batch_size", batch_size, 1),
            ("rank", rank, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
        if samples_per_epoch is not None and samples_per_epoch < 1:
            raise InputError(f"samples_per_epoch must be >= 1 or None, got {samples_per_epoch!r}")
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.samples_per_epoch = samples_per_epoch
        self.rank = int(rank)
        self.epoch = 0
        self.drawn = 0

    def sample(self, i: int) -> Any:
        """Sample ``i`` of the current ``(seed, epoch, rank)`` stream."""
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its first sample (call before each epoch, like DistributedSampler)."""
        self.epoch = int(epoch)
        self.drawn = 0

    def state_dict(self) -> dict[str, int]:
        """Position to resume from. ``drawn`` counts only when iterating without workers; with
        workers the training loop knows better (batches consumed x batch size) and passes that
        to ``load_state_dict``."""
        return {"seed": self.seed, "epoch": self.epoch, "drawn": self.drawn}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue epoch ``state["epoch"]`` after its first ``state["drawn"]`` samples."""
        if "seed" in state and int(state["seed"]) != self.seed:
            raise InputError(
                f"cannot resume: the saved stream used seed {state['seed']}, this one {self.seed}"
            )
        drawn = int(state.get("drawn", 0))
        if drawn < 0:
            raise InputError(f"cannot resume: drawn must be >= 0, got {drawn}")
        self.epoch = int(state.get("epoch", 0))
        self.drawn = drawn

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        end = self.samples_per_epoch
        if workers == 1:
            indices = itertools.count(self.drawn) if end is None else range(self.drawn, end)
        else:
            if self.drawn % self.batch_size:
                raise InputError(
                    f"cannot resume {workers} workers at sample {self.drawn}: not a multiple of "
                    f"batch_size {self.batch_size}"
                )
            indices = self._worker_indices(self.drawn // self.batch_size + worker, workers, end)
        for i in indices:
            if info is None:
                # Only the main process's copy is the one state_dict() reads.
                self.drawn = i + 1
            yield self.sample(i)
        if info is None:
            # A finished pass starts the epoch over, as it does with workers (whose progress the
            # main copy never sees); call set_epoch for the next epoch's samples.
            self.drawn = 0

    def _worker_indices(self, first_batch: int, step: int, end: int | None) -> Iterator[int]:
        for batch in itertools.count(first_batch, step):
            start = batch * self.batch_size
            stop = start + self.batch_size
            if end is not None:
                if start >= end:
                    return
                stop = min(stop, end)
            yield from range(start, stop)
