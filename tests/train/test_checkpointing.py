"""Checkpoint averaging: the pure function and the export script on a real tiny run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rexforge.errors import CheckpointError
from rexforge.io.checkpoint import read_checkpoint
from rexforge.train.checkpointing import average_state_dicts, read_training_checkpoint
from rexforge.train.loop import fit

ROOT = Path(__file__).resolve().parents[2]


def test_average_state_dicts_is_the_elementwise_mean():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor([3])}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor([3])}
    c = {"w": torch.tensor([5.0, 1.0]), "n": torch.tensor([3])}
    out = average_state_dicts([a, b, c])
    assert out["w"].tolist() == [3.0, 3.0] and out["w"].dtype == torch.float32
    assert out["n"].tolist() == [3]
    with pytest.raises(CheckpointError, match="different parameters"):
        average_state_dicts([a, {"w": a["w"]}])
    with pytest.raises(CheckpointError, match="shape of w"):
        average_state_dicts([a, {"w": torch.zeros(3), "n": a["n"]}])
    with pytest.raises(CheckpointError, match="non-float tensor n"):
        average_state_dicts([a, {"w": a["w"], "n": torch.tensor([4])}])


def test_export_script_averages_training_checkpoints(tmp_path):
    t = np.arange(200)
    series = [np.sin(t / (4 + i)) + 0.01 * t for i in range(3)]
    fit(
        "tirex-test",
        series,
        output_dir=tmp_path / "run",
        mode="scratch",
        validation=False,
        keep_checkpoints=-1,
        max_steps=3,
        checkpoint_every_n_steps=1,
        prediction_length=32,
        context_length=96,
        batch_size=4,
        lr=1e-2,
        warmup_steps=1,
    )
    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("step-*.ckpt"))
    assert len(ckpts) == 3
    out = tmp_path / "avg"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rexforge.cli",
            "export",
            *map(str, ckpts),
            "--output",
            str(out),
            "--selected-by",
            "test",
        ],
        check=True,
        capture_output=True,
    )
    exported = read_checkpoint(out)
    states = [read_training_checkpoint(p)["state_dict"] for p in ckpts]
    key = "out_norm.weight"
    expected = torch.stack([s["model." + key] for s in states]).double().mean(0).float()
    torch.testing.assert_close(exported.state_dict[key], expected, rtol=0, atol=1e-7)
    assert not torch.equal(expected, states[-1]["model." + key])  # the steps did differ
    assert exported.metadata["steps"] == 3
    assert exported.metadata["selected_checkpoint"].startswith("average of step-000001.ckpt")
    assert read_checkpoint(out / "model.ckpt").state_dict.keys() == exported.state_dict.keys()
    # Bad input: one error line, exit status 2, nothing written.
    (tmp_path / "broken.ckpt").write_bytes(b"not a checkpoint")
    for bad in (tmp_path / "missing.ckpt", tmp_path / "broken.ckpt"):
        failed = subprocess.run(
            [
                sys.executable,
                "-m",
                "rexforge.cli",
                "export",
                str(bad),
                "--output",
                str(tmp_path / "bad"),
            ],
            capture_output=True,
            text=True,
        )
        assert failed.returncode == 2, failed.stderr
        assert failed.stderr.startswith("error: ") and failed.stderr.count("\n") == 1
        assert not (tmp_path / "bad").exists()
