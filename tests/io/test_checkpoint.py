import json
import pickle

import pytest
import torch

from rexforge import NXAI_NOTICE, load_model
from rexforge.config import TiRexConfig
from rexforge.errors import CheckpointError
from rexforge.io.checkpoint import read_checkpoint, save_checkpoint, write_folder, write_official
from rexforge.io.official import from_official, to_official
from tests.conftest import make_context, write_official_checkpoint


def test_remap_is_pure_and_invertible(tiny_ckpt):
    raw = torch.load(tiny_ckpt, weights_only=True)["state_dict"]
    assert any(k.startswith("block_stack.blocks.0.") for k in raw)
    ours = from_official(raw)
    assert not any(k.startswith("block_stack.") for k in ours)
    back = to_official(ours)
    assert set(back) == set(raw)
    assert all(torch.equal(back[k], raw[k]) for k in raw)
    assert from_official(to_official(ours, prefix=False)) == ours


def test_keys_without_prefix_load_too(tmp_path, tiny_ckpt):
    path = write_official_checkpoint(
        tmp_path / "np.ckpt", TiRexConfig.from_name("tirex-test"), prefix=False
    )
    a = load_model(path).forecast(make_context([50]))[0]
    b = load_model(tiny_ckpt).forecast(make_context([50]))[0]
    torch.testing.assert_close(a, b)


def test_official_round_trip_is_bit_identical_and_keeps_notice(tmp_path, tiny_ckpt):
    ckpt = read_checkpoint(tiny_ckpt)
    assert ckpt.metadata["derived_from_nxai_weights"] is True
    out = write_official(tmp_path / "again.ckpt", ckpt)
    raw_in = torch.load(tiny_ckpt, weights_only=True)
    raw_out = torch.load(out, weights_only=True)
    assert raw_out["hyper_parameters"] == raw_in["hyper_parameters"]
    assert set(raw_out["state_dict"]) == set(raw_in["state_dict"])
    assert all(torch.equal(raw_out["state_dict"][k], v) for k, v in raw_in["state_dict"].items())
    assert raw_out["rexforge"]["notice"] == NXAI_NOTICE


def test_rexforge_official_file_loads_in_tirex_with_same_forecasts(
    tmp_path, tiny_ckpt, monkeypatch
):
    tirex = pytest.importorskip("tirex", reason="tirex-ts is in the dev extra")
    model = load_model(tiny_ckpt)
    (tmp_path / "x" / "TiRex").mkdir(parents=True)
    model.save(tmp_path / "x" / "TiRex" / "model.ckpt")
    monkeypatch.chdir(tmp_path)  # tirex.load_model reads the model name from the path
    theirs = tirex.load_model("x/TiRex/model.ckpt", device="cpu", backend="torch")
    context = make_context([10, 200, 600], seed=4, nan_gap_in=1)
    q_theirs, _ = theirs.forecast(context, prediction_length=64)
    q_ours, _ = model.forecast(context, prediction_length=64)
    torch.testing.assert_close(q_ours, q_theirs, atol=1e-4, rtol=1e-4)


def test_safetensors_folder_round_trip(tmp_path, tiny_ckpt):
    model = load_model(tiny_ckpt)
    folder = model.save(tmp_path / "folder")
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "NOTICE"}
    doc = json.loads((folder / "config.json").read_text())
    assert doc["metadata"]["notice"] == NXAI_NOTICE
    context = make_context([40, 300], seed=2)
    torch.testing.assert_close(load_model(folder).forecast(context)[0], model.forecast(context)[0])
    # a .safetensors path with config.json beside it works too
    torch.testing.assert_close(
        load_model(folder / "model.safetensors").forecast(context)[0], model.forecast(context)[0]
    )


def test_checksum_detects_corruption(tmp_path, tiny_ckpt):
    folder = save_checkpoint(tmp_path / "f", read_checkpoint(tiny_ckpt))
    blob = bytearray((folder / "model.safetensors").read_bytes())
    blob[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="sha256"):
        read_checkpoint(folder)
    # official-layout file written by rexforge: tensor checksum in its metadata
    path = write_official(tmp_path / "m.ckpt", read_checkpoint(tiny_ckpt))
    payload = torch.load(path, weights_only=True)
    next(iter(payload["state_dict"].values())).add_(1.0)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="checksum"):
        read_checkpoint(path)


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b""), "not a readable checkpoint"),
        (lambda p: p.write_text("hello"), "not a readable checkpoint"),
        (lambda p: torch.save({"weights": torch.zeros(2)}, p), "not a TiRex checkpoint"),
        (lambda p: torch.save([1, 2, 3], p), "not a TiRex checkpoint"),
        (lambda p: p.write_bytes(pickle.dumps({"state_dict": Evil()})), "refused|not a readable"),
        (lambda p: torch.save({"state_dict": Evil(), "hyper_parameters": {}}, p), "refused"),
    ],
)
def test_bad_files_get_one_clear_error(tmp_path, make, message):
    path = tmp_path / "bad.ckpt"
    make(path)
    with pytest.raises(CheckpointError, match=message) as info:
        read_checkpoint(path)
    assert "\n" not in str(info.value)


def test_truncated_checkpoint(tmp_path, tiny_ckpt):
    data = tiny_ckpt.read_bytes()
    path = tmp_path / "cut.ckpt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(path)


def test_mismatched_config_and_weights_name_the_keys(tmp_path):
    config = TiRexConfig.from_name("tirex-test")
    path = write_official_checkpoint(tmp_path / "a.ckpt", config)
    payload = torch.load(path, weights_only=True)
    payload["hyper_parameters"]["model_config"]["block_kwargs"]["num_blocks"] = 3
    payload["state_dict"]["input_patch_embedding.hidden_layer.weight"] = torch.zeros(5, 5)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"missing .*blocks\.2\..*shape mismatch"):
        load_model(path)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "nope.ckpt")
    with pytest.raises(CheckpointError, match="no config.json"):
        read_checkpoint(tmp_path)


def test_write_is_atomic_when_the_disk_fails(tmp_path, tiny_ckpt, monkeypatch):
    ckpt = read_checkpoint(tiny_ckpt)
    folder = write_folder(tmp_path / "f", ckpt)
    before = (folder / "model.safetensors").read_bytes()
    import os

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(CheckpointError, match="No space left"):
        write_folder(folder, ckpt)
    assert (folder / "model.safetensors").read_bytes() == before
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def test_exports_store_the_training_context_once(tmp_path, tiny_ckpt, caplog):
    ckpt = read_checkpoint(tiny_ckpt)  # train_ctx_len 256
    trained_on = dict(ckpt.metadata, train_config={"mode": "full", "context_length": 256})
    ckpt.metadata = trained_on
    for written in (write_folder(tmp_path / "f", ckpt), write_official(tmp_path / "o.ckpt", ckpt)):
        meta = read_checkpoint(written).metadata
        assert meta["train_config"] == {"mode": "full"}  # train_ctx_len holds it
    # An older export that trained on 96 but pads to 256 keeps both lengths, and warns.
    ckpt.metadata = dict(trained_on, train_config={"mode": "full", "context_length": 96})
    caplog.clear()
    assert read_checkpoint(write_folder(tmp_path / "old", ckpt)).metadata["train_config"] == {
        "mode": "full",
        "context_length": 96,
    }
    assert "trained on 96-step contexts but pads/cuts to train_ctx_len 256" in caplog.text
