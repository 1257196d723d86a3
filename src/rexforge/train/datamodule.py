"""Training and validation windows as a ``LightningDataModule`` whose position is checkpointed.

Training: an endless ``WindowDataset`` (random windows, weighted by each series' window count).
In a distributed run of W processes every rank draws the same *global* batch of
``batch_size * W`` windows and trains on its own ``batch_size`` rows of it (``rank_rows``), so
W processes train on exactly the windows one process with batch ``batch_size * W`` would (the
rows cost little to draw next to the forward pass of one's own). The stream's position is a
pure function of the number of micro-batches trained (``micro_step * global batch``), which
the checkpoint stores, so resuming from ``last.ckpt`` continues with exactly the next batch an
unbroken run would have drawn.

Validation: the last ``prediction_length`` steps of every series, forecast from the
``context_length`` steps before them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from rexforge.data.sampler import WindowDataset, WindowSampler
from rexforge.data.transforms import left_pad
from rexforge.eval.metrics import seasonal_scale


class HoldoutWindows(Dataset):
    """Validation windows: ``{"context": [C], "future": [Hp], "mase_scale": []}`` where the future
    is H steps NaN-padded to Hp (whole patches). Series i gives ``windows[i]`` windows (default
    1) whose futures tile its last ``windows[i] * H`` steps, one horizon apart."""

    def __init__(
        self,
        series: Sequence[np.ndarray],
        context_length: int,
        horizon: int,
        padded: int,
        windows: Sequence[int] | None = None,
    ):
        self.items = []
        for i, x in enumerate(series):
            x = np.asarray(x, dtype=np.float64)
            count = 1 if windows is None else int(windows[i])
            for k in range(count, 0, -1):  # origins len - k*H, oldest first
                end = len(x) - (k - 1) * horizon
                history, target = x[: end - horizon], x[end - horizon : end]
                self.items.append(_window(history, target, context_length, padded))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.items[i]


def _window(history: np.ndarray, target: np.ndarray, context_length: int, padded: int) -> dict:
    future = np.full(padded, np.nan)
    future[: len(target)] = target
    return {
        "context": torch.from_numpy(left_pad(history, context_length).astype(np.float32)),
        "future": torch.from_numpy(future.astype(np.float32)),
        "mase_scale": torch.tensor(seasonal_scale(history, 1), dtype=torch.float64),
    }


class WindowDataModule(L.LightningDataModule):
    def __init__(
        self,
        sampler: WindowSampler,
        val_windows: HoldoutWindows | None,
        *,
        batch_size: int,
        seed: int,
        num_workers: int = 0,
        make_stream: Callable | None = None,
        collate: Callable | None = None,
        val_collate: Callable | None = None,
    ):
        """make_stream: ``(*, seed, batch_size) -> IterableDataset`` (default: a
        ``WindowDataset`` of ``sampler``); collate / val_collate: the loaders' collate
        functions (a family whose batches are not tensors of one shape has its own)."""
        super().__init__()
        self.sampler = sampler
        self.make_stream = make_stream
        self.collate = collate
        self.val_collate = val_collate
        self.val_windows = val_windows
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self._resume_micro_step = 0

    def train_dataloader(self) -> DataLoader:
        world = self.trainer.world_size if self.trainer is not None else 1
        batch = self.batch_size * world  # the global batch, which every rank draws
        if self.make_stream is None:
            stream = WindowDataset(self.sampler, seed=self.seed, batch_size=batch)
        else:
            stream = self.make_stream(seed=self.seed, batch_size=batch)
        stream.load_state_dict({"epoch": 0, "drawn": self._resume_micro_step * batch})
        return DataLoader(
            stream, batch_size=batch, num_workers=self.num_workers, collate_fn=self.collate
        )

    def val_dataloader(self):
        if self.val_windows is None:
            return []
        return DataLoader(
            self.val_windows,
            batch_size=self.batch_size,
            shuffle=False,
            collate_fn=self.val_collate,
        )

    def state_dict(self) -> dict:
        module = self.trainer.lightning_module if self.trainer is not None else None
        return {"micro_step": getattr(module, "micro_step", 0)}

    def load_state_dict(self, state: dict) -> None:
        self._resume_micro_step = int(state.get("micro_step", 0))


def rank_rows(global_batch: int, rank: int, world_size: int) -> slice:
    """The rows of a global batch of ``global_batch`` windows that ``rank`` of ``world_size``
    trains on: contiguous, ``global_batch // world_size`` each."""
    if global_batch % world_size:
        raise ValueError(f"a global batch of {global_batch} does not split over {world_size} ranks")
    share = global_batch // world_size
    return slice(rank * share, (rank + 1) * share)
