"""Untrusted checkpoints through ``rexforge info PATH`` and ``rexforge forecast --model PATH``.

Loading never runs code (torch ``weights_only=True``, safetensors), and a file that is not a
TiRex checkpoint, is cut short, is corrupt, or whose weights do not fit its config is refused
with one line and exit status 2. (Atomic writes of the training checkpoints are proved in
``test_interrupted_training.py``; of exports, in ``tests/io/test_checkpoint.py``.)
"""

import json
import os
import pickle
import re
import subprocess
import sys

import pandas as pd
import pytest
import torch

from rexforge.cli import main
from rexforge.config import TiRexConfig
from rexforge.io.checkpoint import read_checkpoint, save_checkpoint


class RunsCode:
    """Unpickling this would call ``open(marker, "w")``: it must never happen."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_torch_file(path, marker):
    torch.save({"hyper_parameters": {}, "state_dict": {"w": RunsCode(marker)}}, path)


def evil_raw_pickle(path, marker):
    path.write_bytes(pickle.dumps({"state_dict": RunsCode(marker)}))


def truncated(path, good):
    data = good.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def other_network_without_model_config(path, good):
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    torch.save(
        {"hyper_parameters": {"lr": 0.1, "hidden": [64, 64]}, "state_dict": net.state_dict()}, path
    )


def other_network_with_tirex_config(path, good):
    # A valid TiRex config, but the weights of some other network.
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    hyper = TiRexConfig.from_name("tirex-test").to_hyper_parameters()
    torch.save({"hyper_parameters": hyper, "state_dict": net.state_dict()}, path)


def config_of_another_size(path, good):
    payload = torch.load(good, weights_only=True)
    payload["hyper_parameters"]["model_config"]["block_kwargs"]["embedding_dim"] = 32
    torch.save(payload, path)


def missing_block(path, good):
    payload = torch.load(good, weights_only=True)
    payload["hyper_parameters"]["model_config"]["block_kwargs"]["num_blocks"] = 3
    torch.save(payload, path)


def not_a_dict(path, good):
    torch.save([torch.zeros(3)], path)


CASES = {
    "pickle with code (torch file)": (
        evil_torch_file,
        r"was refused: it contains objects other than tensors .*could run code",
    ),
    "pickle with code (raw pickle)": (
        evil_raw_pickle,
        r"was refused: it contains objects other than tensors|not a readable checkpoint",
    ),
    "truncated": (truncated, r"not a readable checkpoint \(truncated or not a torch file\)"),
    "other network": (other_network_without_model_config, r"hyper_parameters lack 'model_config'"),
    "other network, TiRex config": (
        other_network_with_tirex_config,
        r"weights do not match the config: missing \d+ key\(s\) .*unexpected 4 key\(s\) e\.g\. 0\.bias",
    ),
    "config of another size": (
        config_of_another_size,
        r"weights do not match the config: \d+ shape mismatch\(es\)",
    ),
    "config with more blocks": (
        missing_block,
        r"weights do not match the config: missing .*blocks\.2\.",
    ),
    "not a dict": (
        not_a_dict,
        r"not a TiRex checkpoint: expected 'hyper_parameters' and 'state_dict'",
    ),
}


@pytest.fixture
def data_csv(tmp_path):
    path = tmp_path / "data.csv"
    t = pd.date_range("2024-01-01", periods=40, freq="D")
    pd.DataFrame({"item_id": "a", "timestamp": t, "target": range(40)}).to_csv(path, index=False)
    return path


def run_cli(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err.strip(), captured.out


@pytest.mark.parametrize("case", list(CASES))
def test_bad_checkpoint_refused_by_info_and_forecast(tmp_path, tiny_ckpt, data_csv, capsys, case):
    make, pattern = CASES[case]
    path, marker = tmp_path / "model.ckpt", tmp_path / "code-ran"
    make(path, marker if "code" in case else tiny_ckpt)
    output = tmp_path / "forecast.csv"
    for argv in (
        ["info", str(path)],
        ["forecast", "--model", str(path), "--data", str(data_csv), "--horizon", "3",
         "--output", str(output)],
    ):  # fmt: skip
        code, err, out = run_cli(argv, capsys)
        assert code == 2, (argv[0], err, out)
        assert err.startswith("error: ") and len(err.splitlines()) == 1, err
        assert str(path) in err and re.search(pattern, err), err
    assert not marker.exists(), "loading the checkpoint ran code from it"
    assert not output.exists()


def test_corrupt_folder_and_edited_config_refused(tmp_path, tiny_ckpt, capsys):
    folder = save_checkpoint(tmp_path / "folder", read_checkpoint(tiny_ckpt))
    weights = folder / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-5] ^= 0x01
    weights.write_bytes(bytes(blob))
    code, err, _ = run_cli(["info", str(folder)], capsys)
    assert code == 2 and re.search(r"does not match its recorded sha256", err), err

    folder = save_checkpoint(tmp_path / "edited", read_checkpoint(tiny_ckpt))
    document = json.loads((folder / "config.json").read_text())
    document["model"]["block_kwargs"]["num_heads"] = 4  # heads change the recurrent shapes
    (folder / "config.json").write_text(json.dumps(document))
    code, err, _ = run_cli(["info", str(folder)], capsys)
    assert code == 2 and "weights do not match the config" in err, err


def test_real_process_refuses_code_without_traceback(tmp_path):
    path, marker = tmp_path / "model.ckpt", tmp_path / "code-ran"
    evil_torch_file(path, marker)
    proc = subprocess.run(
        [sys.executable, "-m", "rexforge.cli", "info", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "was refused" in proc.stderr
    assert not marker.exists()


def test_checkpoint_writes_are_atomic_and_checksummed(tmp_path, tiny_ckpt, monkeypatch):
    """Both export formats: a failing write keeps the old file and leaves no temporary file;
    the checksum each format records is checked on every read."""
    from rexforge.errors import CheckpointError

    ckpt = read_checkpoint(tiny_ckpt)
    official = save_checkpoint(tmp_path / "model.ckpt", ckpt)
    assert torch.load(official, weights_only=True)["rexforge"]["state_dict_sha256"]
    folder = save_checkpoint(tmp_path / "folder", ckpt)
    assert json.loads((folder / "config.json").read_text())["weights_sha256"]
    before = official.read_bytes()

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(CheckpointError, match=r"could not write .*model\.ckpt: No space left"):
        save_checkpoint(official, ckpt)
    assert official.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    # Files get the mode a plain open() gives (not mkstemp's private 0600).
    umask = os.umask(0)
    os.umask(umask)
    assert official.stat().st_mode & 0o777 == 0o666 & ~umask
