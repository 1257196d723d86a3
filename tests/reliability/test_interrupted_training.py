"""Interrupted training: SIGKILL at random points, Ctrl-C, a non-finite loss, a full disk.

Every run is tirex-test on the CPU with ``train_script.OPTIONS`` (8 steps, a checkpoint after
every step, one torch thread). The training stream is one endless epoch, so every checkpoint
here is taken mid-epoch: the sampler's position (micro-batches drawn) is part of it, and a
resumed run must draw exactly the batches an unbroken run draws.
"""

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("lightning")

from rexforge.data.sources import load_series  # noqa: E402
from rexforge.errors import CheckpointError, InputError  # noqa: E402
from rexforge.io.checkpoint import read_checkpoint  # noqa: E402
from rexforge.train.checkpointing import read_training_checkpoint  # noqa: E402
from rexforge.train.loop import fit  # noqa: E402
from tests.reliability.train_script import OPTIONS  # noqa: E402

SCRIPT = Path(__file__).with_name("train_script.py")


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    t = np.arange(220)
    frames = [
        pd.DataFrame(
            {
                "item_id": f"s{i}",
                "timestamp": t,
                "target": np.sin(t / (5 + i)) + 0.02 * t + 0.1 * rng.standard_normal(len(t)),
            }
        )
        for i in range(3)
    ]
    path = tmp_path_factory.mktemp("data") / "train.csv"
    pd.concat(frames).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_csv):
    """The run that was never interrupted: its folder and final weights."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("reference")
        run = fit("tirex-test", load_series(data_csv), output_dir=out, resume=None, **OPTIONS)
    finally:
        torch.set_num_threads(before)
    return run.run_dir, read_checkpoint(run.final_dir).state_dict


def launch(
    args: list[str], log: Path, delay: float, val_delay: float = 0, group: bool = False
) -> subprocess.Popen:
    """Start ``train_script.py args``; ``group``: in its own process group, so that a signal can
    reach it and every process it starts, as a terminal's Ctrl-C does."""
    env = dict(os.environ, REXFORGE_TEST_STEP_DELAY=str(delay))
    if val_delay:
        env["REXFORGE_TEST_VAL_DELAY"] = str(val_delay)
    with open(log, "w") as handle:  # a file, not a pipe: a full pipe would block the child
        return subprocess.Popen(
            [sys.executable, str(SCRIPT), *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=group,
        )


def pretrain_args(data: Path, out: Path, *extra: str) -> list[str]:
    """``train_script.py cli`` arguments of a tirex-test pretraining run of 8 steps with a
    checkpoint after each (the shape of ``OPTIONS``), plus ``extra``."""
    args = ["cli", "pretrain", "--preset", "tirex-test", "--data", str(data)]
    args += ["--output-dir", str(out), "--horizon", "32", "--context-length", "96"]
    args += ["--batch-size", "4", "--max-steps", "8", "--checkpoint-every-n-steps", "1"]
    return args + list(extra)


def interrupted_at(proc: subprocess.Popen, log: Path) -> tuple[int, str]:
    """Wait for ``proc``; check it exited 130 with the one-line "interrupted" error and no
    traceback; return the step and checkpoint path the line names."""
    proc.wait(timeout=60)
    output = log.read_text()
    assert proc.returncode == 130, output[-3000:]
    assert "Traceback" not in output
    match = re.fullmatch(
        r"error: training interrupted at step (\d+); saved (.*last\.ckpt); "
        r"run the same command again to resume",
        output.strip().splitlines()[-1],
    )
    assert match, output[-3000:]
    return int(match.group(1)), match.group(2)


def wait_for(awaited: Path | str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Wait until the file ``awaited`` exists (a Path) or the run's log holds ``awaited`` (a
    str), failing if the run ends first or ``timeout`` s pass."""
    if isinstance(awaited, Path):
        done, what = awaited.exists, awaited.name
    else:
        done, what = (lambda: awaited in log.read_text()), repr(awaited)
    deadline = time.monotonic() + timeout
    while not done():
        assert proc.poll() is None, f"run ended before {what}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.02)


def assert_same_weights(actual: dict, expected: dict, note: str = "") -> None:
    assert actual.keys() == expected.keys()
    differing = [k for k in expected if not torch.equal(actual[k], expected[k])]
    assert not differing, f"{note} weights differ from the unbroken run: {differing[:5]}"


@pytest.mark.slow
def test_sigkill_at_random_points_resumes_to_identical_weights(
    tmp_path, data_csv, reference, one_thread
):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    note = f"(random seed {seed})"
    out, log = tmp_path / "run", tmp_path / "log.txt"
    first = rng.randint(1, 3)
    for after_step in (first, rng.randint(first + 1, 6)):
        proc = launch(["fit", str(data_csv), str(out)], log, delay=0.25)
        wait_for(out / "checkpoints" / f"step-{after_step:06d}.ckpt", proc, log)
        time.sleep(rng.uniform(0, 0.3))  # anywhere in the next step, its checkpoint writes included
        proc.kill()
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, f"{note} the run ended before the kill"
    assert not (out / "final").exists()
    resumed_from = read_training_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"]
    assert resumed_from >= first, note

    run = fit("tirex-test", load_series(data_csv), output_dir=out, resume="auto", **OPTIONS)
    assert read_checkpoint(run.final_dir).metadata["steps"] == OPTIONS["max_steps"]
    assert_same_weights(read_checkpoint(run.final_dir).state_dict, reference[1], note)


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_exits_130_and_resumes_exactly(
    tmp_path, data_csv, reference, one_thread
):
    out, log = tmp_path / "run", tmp_path / "log.txt"
    args = pretrain_args(data_csv, out, "--lr", "3e-3", "--warmup-steps", "1", "--seed", "0")
    args += ["--no-validation"]
    proc = launch(args, log, delay=0.3)
    wait_for(out / "checkpoints" / "step-000002.ckpt", proc, log)
    proc.send_signal(signal.SIGINT)
    step, saved = interrupted_at(proc, log)
    assert 2 <= step < OPTIONS["max_steps"]
    assert read_training_checkpoint(saved)["global_step"] == step
    assert not (out / "final").exists()

    run = fit("tirex-test", load_series(data_csv), output_dir=out, resume="auto", **OPTIONS)
    assert_same_weights(read_checkpoint(run.final_dir).state_dict, reference[1])


def twelve_series(path: Path) -> Path:
    """12 series of 220 steps: 3 validation batches of 4."""
    rng = np.random.default_rng(1)
    t = np.arange(220)
    frames = [
        pd.DataFrame({"item_id": f"s{i}", "timestamp": t, "target": np.sin(t / (4 + i)) + 0.02 * t})
        for i in range(12)
    ]
    frames = [f.assign(target=f.target + 0.1 * rng.standard_normal(len(t))) for f in frames]
    pd.concat(frames).to_csv(path, index=False)
    return path


def test_ctrl_c_during_validation_saves_at_once_and_resumes_exactly(tmp_path, one_thread):
    # 12 series: 3 validation batches of 4, each slowed to 1.5 s; Ctrl-C during the first one
    # must save and exit without running the other two, and the resumed run must end with the
    # weights of an unbroken run with the same validation settings.
    data = twelve_series(tmp_path / "twelve.csv")
    options = dict(OPTIONS, validation=True, val_every_n_steps=2)
    unbroken = fit("tirex-test", load_series(data), output_dir=tmp_path / "ref", **options)

    out, log = tmp_path / "run", tmp_path / "log.txt"
    args = pretrain_args(data, out, "--lr", "3e-3", "--warmup-steps", "1", "--seed", "0")
    args += ["--val-every-n-steps", "2", "--keep-checkpoints", "-1"]
    proc = launch(args, log, delay=0.0, val_delay=1.5)
    wait_for("validation batch 0", proc, log)
    proc.send_signal(signal.SIGINT)
    step, saved = interrupted_at(proc, log)
    assert "validation batch 1" not in log.read_text()  # left during the first batch
    assert step == 2  # the first validation comes after step 2
    assert read_training_checkpoint(saved)["global_step"] == 2

    run = fit("tirex-test", load_series(data), output_dir=out, resume="auto", **options)
    assert_same_weights(
        read_checkpoint(run.final_dir).state_dict, read_checkpoint(unbroken.final_dir).state_dict
    )


@pytest.mark.slow
def test_ctrl_c_reaching_every_ddp_process_saves_once_and_resumes(tmp_path):
    # A terminal's Ctrl-C reaches both processes of a 2-process DDP run (gloo, CPU), here in the
    # middle of a validation: the run must stop within seconds (no rank left waiting in a
    # collective), say so once, and leave a last.ckpt that the same command resumes to the end.
    data = twelve_series(tmp_path / "twelve.csv")
    out, log = tmp_path / "ddp", tmp_path / "log.txt"
    args = pretrain_args(data, out, "--val-every-n-steps", "2", "--devices", "2")
    args += ["--strategy", "ddp"]
    proc = launch(args, log, delay=0.0, val_delay=1.5, group=True)
    wait_for("validation batch 0", proc, log, timeout=120)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"DDP run hung after Ctrl-C:\n{log.read_text()[-3000:]}") from None
    output = log.read_text()
    assert proc.returncode == 130, output[-3000:]
    assert "Traceback" not in output
    said = re.findall(r"error: training interrupted at step (\d+); saved (\S+last\.ckpt);", output)
    assert said == [("2", str(out / "checkpoints" / "last.ckpt"))], output[-3000:]
    assert read_training_checkpoint(out / "checkpoints" / "last.ckpt")["global_step"] == 2

    again = launch(args, tmp_path / "log2.txt", delay=0.0)
    assert again.wait(timeout=180) == 0, (tmp_path / "log2.txt").read_text()[-3000:]
    assert read_checkpoint(out / "final").metadata["steps"] == 8


@pytest.mark.slow
def test_second_ctrl_c_aborts_at_once_and_keeps_the_last_checkpoint(tmp_path, data_csv):
    out, log = tmp_path / "run", tmp_path / "log.txt"
    args = pretrain_args(data_csv, out, "--no-validation")
    proc = launch(args, log, delay=1.0)  # long steps: both signals land in the same one
    wait_for(out / "checkpoints" / "step-000001.ckpt", proc, log)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    output = log.read_text()
    assert proc.returncode == 130, output[-3000:]
    assert "Traceback" not in output
    last = out / "checkpoints" / "last.ckpt"
    assert output.strip().splitlines()[-1] == (
        f"error: training aborted; {last} holds the last saved step"
    )
    assert read_training_checkpoint(last)["global_step"] >= 1


def test_nonfinite_loss_names_step_and_batch_and_keeps_the_last_good_checkpoint(
    tmp_path, data_csv, monkeypatch
):
    import rexforge.train.objective as objective  # TiRex's loss, looked up on the first step

    real, calls = objective.tokens_loss, {"n": 0}

    def diverging(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss + float("inf") if calls["n"] == 5 else loss  # the 5th batch: index 4

    monkeypatch.setattr(objective, "tokens_loss", diverging)
    out = tmp_path / "nan"
    with pytest.raises(InputError) as info:
        fit("tirex-test", load_series(data_csv), output_dir=out, **OPTIONS)
    message = str(info.value)
    assert "non-finite at step 4 (batch 4 of the training stream)" in message
    assert f"the last good checkpoint is {out / 'checkpoints' / 'last.ckpt'}" in message
    # last.ckpt is saved after the skipped update (which Lightning still counts as a step):
    # it holds the weights from before the bad batch, and a resume continues after that batch.
    last = read_training_checkpoint(out / "checkpoints" / "last.ckpt")
    good = read_training_checkpoint(out / "checkpoints" / "step-000004.ckpt")
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())
    assert_same_weights(last["state_dict"], good["state_dict"])
    assert last["rexforge"]["micro_step"] == 5
    assert not (out / "final").exists()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name open files")
def test_disk_full_while_saving_keeps_the_previous_checkpoint(tmp_path, data_csv, monkeypatch):
    real_fsync, saves = os.fsync, {"last": 0}

    def fsync(fd):
        # The third write of last.ckpt (after step 3) finds the disk full.
        if ".last.ckpt." in os.readlink(f"/proc/self/fd/{fd}"):
            saves["last"] += 1
            if saves["last"] == 3:
                raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    out = tmp_path / "full"
    with pytest.raises(CheckpointError, match=r"could not write .*last\.ckpt: No space left"):
        fit("tirex-test", load_series(data_csv), output_dir=out, **OPTIONS)
    checkpoints = out / "checkpoints"
    assert read_training_checkpoint(checkpoints / "last.ckpt")["global_step"] == 2
    assert not [p.name for p in checkpoints.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.setattr(os, "fsync", real_fsync)
    # Space again: the run resumes from the intact step-2 checkpoint.
    run = fit("tirex-test", load_series(data_csv), output_dir=out, resume="auto", **OPTIONS)
    assert read_checkpoint(run.final_dir).metadata["steps"] == OPTIONS["max_steps"]


def test_resume_refuses_a_corrupt_or_truncated_checkpoint(tmp_path, data_csv, reference):
    out = tmp_path / "copy"
    shutil.copytree(reference[0], out)
    last = out / "checkpoints" / "last.ckpt"
    payload = torch.load(last, weights_only=True)
    assert payload["rexforge"]["training_state_dict_sha256"]  # written by AtomicCheckpointIO
    payload["state_dict"]["model.out_norm.weight"][0] += 1.0  # a flipped bit, say
    torch.save(payload, last)
    with pytest.raises(CheckpointError, match="cannot resume: .*recorded checksum"):
        fit("tirex-test", load_series(data_csv), output_dir=out, resume="auto", **OPTIONS)
    data = (reference[0] / "checkpoints" / "last.ckpt").read_bytes()
    last.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cannot resume: .*truncated"):
        fit("tirex-test", load_series(data_csv), output_dir=out, resume="auto", **OPTIONS)
    # a model file is not a training checkpoint
    official = out / "final" / "model.ckpt"
    with pytest.raises(CheckpointError, match="not a rexforge training checkpoint"):
        fit("tirex-test", load_series(data_csv), output_dir=out, resume=official, **OPTIONS)
