"""How training checkpoints are written and read, and when an interrupted run writes one.

* ``AtomicCheckpointIO``: Lightning's ``.ckpt`` files written through ``atomic_write_bytes``
  (temporary file beside the target, fsync, rename) with a sha256 of the weights inside,
  read back with ``weights_only=True`` and the checksum verified (both by
  ``rexforge.io.training_checkpoint``, which knows the file's layout). Lightning's own writer
  stages the file in the system temp folder and *moves* it: across file systems that is a
  copy onto the target, which a kill or a full disk can leave half-written, and nothing is
  fsynced.
* ``InterruptCheckpoint``: Ctrl-C (SIGINT) lets the current optimizer step finish, saves
  ``last.ckpt`` and stops the run, so ``resume="auto"`` continues exactly where it stopped.
  A second Ctrl-C aborts at once (the previous ``last.ckpt`` stays).
"""

from __future__ import annotations

import io
import logging
import signal
import threading
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback

from rexforge.errors import CheckpointError, secondary_process
from rexforge.io.atomic import atomic_write_bytes
from rexforge.io.training_checkpoint import read_training_checkpoint, with_training_checksum

logger = logging.getLogger(__name__)


def average_state_dicts(state_dicts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Uniform average of several state dicts with the same keys and shapes (checkpoint
    averaging: the mean of the last few checkpoints of a run is usually smoother than any one).
    Floating tensors are averaged in float64 and cast back; other tensors must be equal."""
    if not state_dicts:
        raise ValueError("no state dicts to average")
    first = state_dicts[0]
    for other in state_dicts[1:]:
        if other.keys() != first.keys():
            raise CheckpointError("checkpoints to average hold different parameters")
    averaged = {}
    for key, value in first.items():
        tensors = [sd[key] for sd in state_dicts]
        if any(t.shape != value.shape for t in tensors):
            raise CheckpointError(f"checkpoints to average disagree on the shape of {key}")
        if value.is_floating_point():
            mean = torch.stack([t.double() for t in tensors]).mean(dim=0)
            averaged[key] = mean.to(value.dtype)
        elif all(torch.equal(t, value) for t in tensors):
            averaged[key] = value
        else:
            raise CheckpointError(f"checkpoints to average differ in non-float tensor {key}")
    return averaged


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` with atomic, checksummed writes and code-free reads."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO.save_checkpoint takes no storage_options")
        buffer = io.BytesIO()
        torch.save(with_training_checksum(checkpoint), buffer)
        atomic_write_bytes(path, buffer.getvalue())

    def load_checkpoint(self, path, map_location: Any = None, weights_only: bool | None = None):
        # Always onto the CPU and always weights-only: Lightning moves the restored states
        # to the model's device itself.
        return read_training_checkpoint(path)


class InterruptCheckpoint(Callback):
    """On the first SIGINT, save ``path`` after the current optimizer step and stop training.

    ``saved_step`` is the global step of that checkpoint (None when no interrupt happened).
    The handler is installed only in the main thread (signals cannot be caught elsewhere) and
    only while training runs; the previous handler is restored afterwards.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.requested = False
        self.saved_step: int | None = None
        self._previous = None
        self._installed = False

    def on_train_start(self, trainer, pl_module) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._request)
            self._installed = True

    def _request(self, signum, frame) -> None:
        self.requested = True
        # A second Ctrl-C is an immediate KeyboardInterrupt.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if not secondary_process():  # every DDP process gets the Ctrl-C; one says so
            logger.warning(
                "interrupted: saving a checkpoint after the current step (Ctrl-C again to abort)"
            )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.requested or self.saved_step is not None:
            return
        # Only at an optimizer-step boundary: accumulated gradients are not checkpointed.
        if getattr(pl_module, "micro_step", 0) % trainer.accumulate_grad_batches:
            return
        trainer.save_checkpoint(self.path, weights_only=False)
        self.saved_step = int(trainer.global_step)
        trainer.should_stop = True

    def on_validation_batch_start(
        self, trainer, pl_module, batch, batch_idx, dataloader_idx: int = 0
    ) -> None:
        # A Ctrl-C during validation (which can take minutes on many series) must not wait for
        # the rest of it: the weights are those of the last finished optimizer step, so save
        # now and leave; the validation is not part of the checkpointed training state.
        from lightning.pytorch.trainer.states import TrainerFn

        if not self.requested or self.saved_step is not None:
            return
        if trainer.state.fn != TrainerFn.FITTING:  # trainer.validate(): nothing to save
            return
        trainer.save_checkpoint(self.path, weights_only=False)
        self.saved_step = int(trainer.global_step)
        raise KeyboardInterrupt  # Lightning shuts down; fit() reports the saved step

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self.restore()

    def restore(self) -> None:
        """Put back the SIGINT handler that was there before training (also after Lightning's
        own KeyboardInterrupt shutdown, which leaves SIGINT ignored)."""
        if self._installed:
            signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)
            self._installed = False
