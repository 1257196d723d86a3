"""What a training run prints: a progress line, Lightning's lines once and without noise."""

import io
import logging
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch

from rexforge.train.progress import ProgressLine, quiet_lightning, show_progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_on_in_a_terminal_and_off_in_ci_or_redirected_output(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert show_progress(None, Terminal()) is True
    assert show_progress(None, io.StringIO()) is False  # redirected to a file or a pipe
    assert show_progress(True, io.StringIO()) is True and show_progress(False, Terminal()) is False
    monkeypatch.setenv("CI", "true")
    assert show_progress(None, Terminal()) is False


def test_progress_line_shows_steps_loss_val_metric_and_eta(monkeypatch):
    now = {"t": 100.0}
    # Through the class's own module: another test may have re-imported rexforge.train since.
    clock = sys.modules[ProgressLine.__module__].time
    monkeypatch.setattr(clock, "monotonic", lambda: now["t"])
    out = Terminal()
    bar = ProgressLine(out)
    trainer = SimpleNamespace(
        global_step=0,
        max_steps=1000,
        is_global_zero=True,
        sanity_checking=False,
        callback_metrics={"train_loss": torch.tensor(0.15312), "val_wql": torch.tensor(0.0211)},
    )
    bar.on_train_start(trainer, None)  # t = 100
    trainer.global_step, now["t"] = 20, 110.0
    bar.on_train_batch_end(trainer, None, None, None, 0)  # 0.5 s/step, 980 steps to go
    assert (
        out.getvalue() == "\rstep 20/1000 | loss 0.1531 | val_wql 0.0211 | 0.50 s/step | ETA 8:10"
    )
    bar.on_train_end(trainer, None)  # same text: not drawn again, the line is ended
    assert out.getvalue().endswith("ETA 8:10\n")


def test_lightning_lines_print_once_without_advert_or_false_warnings():
    root = logging.getLogger()
    lightning = logging.getLogger("lightning.pytorch")
    before = (list(lightning.handlers), lightning.propagate)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    root.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with quiet_lightning():
                assert not lightning.handlers and lightning.propagate  # once, via the root logger
                logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU: no")
                warnings.warn(
                    "Experiment logs directory runs/x/ exists and is not empty.", stacklevel=1
                )
                warnings.warn("a real warning", stacklevel=1)
    finally:
        root.removeHandler(handler)
    assert [str(w.message) for w in caught] == ["a real warning"]
    assert not [r for r in records if "GPU" in r.getMessage()]
    assert (list(lightning.handlers), lightning.propagate) == before  # put back afterwards


def test_finetune_output_is_a_short_header_progress_and_no_repeated_lines(tmp_path, tiny_ckpt):
    root = Path(__file__).resolve().parents[2]
    data = tmp_path / "d.csv"
    from .test_command import FAST, write_csv

    write_csv(data)
    command = [sys.executable, "-m", "rexforge.cli", "finetune", "--model", str(tiny_ckpt)]
    command += ["--data", str(data), "--target", "close", "--output-dir", str(tmp_path / "run")]
    command += [*FAST, "--progress-bar"]
    env = {"PYTHONPATH": str(root / "src"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out, err = done.stdout.splitlines(), done.stderr.splitlines()
    assert len(out) == 4 and out[0].startswith("finetune ") and out[3].startswith("done: ")
    assert out[2].startswith("report: ")
    assert "step 2/2 | loss " in done.stderr and "ETA" in done.stderr
    assert len(err) == len(set(err)), done.stderr  # no line twice
    for noise in ("litlogger", "Tip", "exists and is not empty", "deprecated", "GPU available"):
        assert noise not in done.stderr, noise
