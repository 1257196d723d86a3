"""What a training run shows while it runs: one progress line, and Lightning kept quiet.

* ``ProgressLine``: ``step 120/1000 | loss 0.153 | val_wql 0.0210 | 0.81 s/step | ETA 11:52``,
  rewritten in place in a terminal; shown by default only there (``show_progress``), not in
  CI logs or redirected output, where a line per redraw would bury everything else.
* ``quiet_lightning``: while training, Lightning's messages go once through the
  application's logging (Lightning adds handlers of its own, so a program that configured
  logging got every line twice), without its hardware lines, its logger advert, the
  CSVLogger warning that a run folder "exists and is not empty" (it always holds config.yaml;
  ``fit`` keeps the rows of earlier segments itself) and a deprecation warning from inside
  Lightning. ``-v`` (root logger at DEBUG) shows the Lightning lines again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings

from lightning.pytorch.callbacks import Callback

# Lightning's loggers that carry handlers of their own.
_LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")
# Where rank_zero_info writes: "GPU available", "TPU available", the LitLogger tip,
# "`Trainer.fit` stopped", "Restoring states from ..." (fit says what it resumes itself).
_LIGHTNING_INFO_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
)
_IGNORED_WARNINGS = (
    r"Experiment logs directory .* exists and is not empty",
    r".*isinstance\(treespec, LeafSpec\)",
)


def show_progress(requested: bool | None, stream=None) -> bool:
    """``requested`` True/False wins; None (the default) = only in an interactive terminal
    outside CI."""
    if requested is not None:
        return bool(requested)
    stream = stream or sys.stderr
    interactive = hasattr(stream, "isatty") and stream.isatty()
    return interactive and not os.environ.get("CI") and os.environ.get("TERM") != "dumb"


@contextlib.contextmanager
def quiet_lightning(resuming: bool = False):
    """See the module docstring. ``resuming``: the checkpoint folder holding checkpoints is
    expected then, not worth ModelCheckpoint's warning."""
    root = logging.getLogger()
    saved = [(name, logging.getLogger(name)) for name in _LIGHTNING_LOGGERS]
    state = [(lg, list(lg.handlers), lg.propagate) for _, lg in saved]
    info_loggers = [logging.getLogger(name) for name in _LIGHTNING_INFO_LOGGERS]
    levels = [lg.level for lg in info_loggers]
    if root.handlers:  # the application prints log records: let Lightning's go there only
        for lg, _, _ in state:
            lg.handlers.clear()
            lg.propagate = True
    if root.getEffectiveLevel() > logging.DEBUG:
        for lg in info_loggers:
            lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in _IGNORED_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            if resuming:
                warnings.filterwarnings("ignore", message=r"Checkpoint directory .* not empty")
            yield
    finally:
        for lg, handlers, propagate in state:
            lg.handlers[:] = handlers
            lg.propagate = propagate
        for lg, level in zip(info_loggers, levels):
            lg.setLevel(level)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressLine(Callback):
    """Steps, training loss, the latest validation metric, time per step and ETA.

    In a terminal (``interactive``) the line is redrawn in place at most every
    ``min_interval`` seconds; otherwise a line is printed after each validation and at most
    every ``log_interval`` seconds. Only the global-rank-zero process draws.
    """

    def __init__(self, stream=None, interactive: bool | None = None, min_interval=0.5):
        self.stream = stream or sys.stderr
        if interactive is None:
            interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interactive = interactive
        self.min_interval = min_interval if interactive else 30.0
        self._start = self._last_draw = 0.0
        self._first_step = 0
        self._width = 0
        self._last_text = ""

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.monotonic()
        self._first_step = int(trainer.global_step)

    def line(self, trainer) -> str:
        step, total = int(trainer.global_step), int(trainer.max_steps)
        parts = [f"step {step}/{total}"]
        metrics = trainer.callback_metrics
        if "train_loss" in metrics:
            parts.append(f"loss {float(metrics['train_loss']):.4g}")
        for name in ("val_wql", "val_loss"):
            if name in metrics:
                parts.append(f"{name} {float(metrics[name]):.4g}")
                break
        done = step - self._first_step
        if done > 0:
            per_step = (time.monotonic() - self._start) / done
            parts.append(f"{per_step:.2f} s/step" if per_step < 10 else f"{per_step:.0f} s/step")
            parts.append(f"ETA {_clock(per_step * max(0, total - step))}")
        return " | ".join(parts)

    def _draw(self, trainer, force: bool = False) -> None:
        now = time.monotonic()
        if not trainer.is_global_zero or (not force and now - self._last_draw < self.min_interval):
            return
        text = self.line(trainer)
        if text == self._last_text:  # e.g. the end of training right after a validation
            return
        self._last_draw, self._last_text = now, text
        if self.interactive:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._draw(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._draw(trainer, force=True)

    def on_train_end(self, trainer, pl_module) -> None:
        self._draw(trainer, force=True)
        if self.interactive and trainer.is_global_zero:
            self.stream.write("\n")
            self.stream.flush()
