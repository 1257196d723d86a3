"""TiRex-2 models written back in the official layout (config.json + model.safetensors): what
tirex-2 0.4.0 loads and forecasts the same with (skipped without it), what rexforge reads
back bit for bit, and ``rexforge export`` of a TiRex-2 model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import rexforge
from rexforge.cli import main
from rexforge.errors import CheckpointError
from rexforge.forecast.tirex2_api import TiRex2Forecaster
from rexforge.io.tirex2_folder import official_tensors
from rexforge.registry import create_model
from tests.forecast.tirex2_reference import TINY, reference_network, save_official_folder


def random_forecaster(seed: int = 0) -> TiRex2Forecaster:
    """A tiny TiRex-2 whose every weight carries noise (no symmetric initial values)."""
    torch.manual_seed(seed)
    model = create_model(TINY)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape))
    return TiRex2Forecaster(model)


def series(seed: int = 0) -> list[torch.Tensor]:
    """Two items: a bivariate target, and a univariate one with a gap."""
    gen = torch.Generator().manual_seed(seed)
    second = torch.randn(1, 25, generator=gen).cumsum(-1)
    second[0, 5:9] = torch.nan
    return [torch.randn(2, 40, generator=gen).cumsum(-1) + 3.0, second]


def test_saved_folder_reads_back_bit_for_bit(tmp_path):
    model = random_forecaster()
    folder = model.save(tmp_path / "tirex2")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    # config.json is the official document alone (tirex-2 passes every key to its network).
    assert json.loads((folder / "config.json").read_text()) == TINY.to_official()
    stored = load_file(str(folder / "model.safetensors"))
    assert not [k for k in stored if ".rev_cell." in k or ".recurrent_kernel" in k]
    loaded = rexforge.load_model(folder)
    assert isinstance(loaded, TiRex2Forecaster) and loaded.config == TINY
    for key, value in model.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    assert loaded.metadata["derived_from_nxai_weights"] is False
    assert "Apache License 2.0" in loaded.metadata["notice"]
    want = model.forecast(series(), prediction_length=8)
    got = loaded.forecast(series(), prediction_length=8)
    assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_nxai_derived_weights_get_a_notice_and_keep_the_flag(tmp_path):
    model = random_forecaster()
    model.metadata["derived_from_nxai_weights"] = True
    folder = model.save(tmp_path / "derived")
    assert "TiRex-2" in (folder / "NOTICE").read_text()
    assert rexforge.load_model(folder).metadata["derived_from_nxai_weights"] is True


def test_changed_weights_fail_their_checksum(tmp_path):
    from safetensors.torch import save_file

    folder = random_forecaster().save(tmp_path / "m")
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as handle:
        header = handle.metadata()
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["stack_out_norm.weight"] = tensors["stack_out_norm.weight"] + 1.0
    save_file(tensors, str(folder / "model.safetensors"), metadata=header)
    with pytest.raises(CheckpointError, match="do not match their recorded checksum"):
        rexforge.load_model(folder)


def test_single_file_paths_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="saved as a folder"):
        random_forecaster().save(tmp_path / "model.ckpt")


def test_official_tensors_keep_one_name_per_shared_tensor():
    state = create_model(TINY).state_dict()
    kept = official_tensors(state)
    # The mLSTM block's rev_cell (10 tensors), the sLSTM block's (8) and its kernel alias (1).
    assert len(state) - len(kept) == 19
    assert "stack.1.time_mixer.fwd_cell._recurrent_kernel_" in kept
    incomplete = {k: v for k, v in state.items() if ".fwd_cell." not in k}
    with pytest.raises(CheckpointError, match="but not"):
        official_tensors(incomplete)


# -- the reference reads what we write ---------------------------------------------------------
def test_tirex2_loads_our_folder_and_forecasts_the_same(tmp_path):
    tirex2 = pytest.importorskip("tirex2")
    ours = random_forecaster(seed=3)
    folder = ours.save(tmp_path / "ours")
    reference = tirex2.load_model(str(folder), device="cpu")
    items = [
        tirex2.TimeseriesType(target=s, past_covariates=None, future_covariates=None)
        for s in series(seed=4)
    ]
    want = reference.forecast(items, prediction_length=8)
    got = ours.forecast(items, prediction_length=8)
    for a, b in zip(got, want):
        scale = b.abs().max().item()
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale)


def test_official_folder_round_trips_through_rexforge(tmp_path):
    pytest.importorskip("tirex2")
    original = save_official_folder(reference_network(seed=5), TINY, tmp_path / "official")
    loaded = rexforge.load_model(original)
    assert loaded.metadata["derived_from_nxai_weights"] is True  # no rexforge metadata
    copy = loaded.save(tmp_path / "copy")
    assert (copy / "NOTICE").is_file()
    before = load_file(str(original / "model.safetensors"))
    after = load_file(str(copy / "model.safetensors"))
    assert sorted(before) == sorted(after)
    assert all(torch.equal(before[k], after[k]) for k in before)


# -- rexforge export ---------------------------------------------------------------------------
def test_export_writes_the_official_folder(tmp_path, capsys):
    source = random_forecaster(seed=6).save(tmp_path / "source")
    out = tmp_path / "exported"
    assert main(["export", str(source), "--output", str(out)]) == 0, capsys.readouterr().err
    assert json.loads((out / "config.json").read_text()) == TINY.to_official()
    assert not (out / "model.ckpt").exists()
    out2 = tmp_path / "official"
    assert main(["export", str(source), "--format", "official", "--output", str(out2)]) == 0
    a, b = load_file(str(out / "model.safetensors")), load_file(str(out2 / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--output", "m.ckpt"], "saved as a folder"),
        (["--output", "m.onnx"], "ONNX export supports TiRex models only"),
    ],
)
def test_export_formats_tirex2_has_not_are_one_line(tmp_path, capsys, monkeypatch, extra, message):
    pytest.importorskip("onnx")
    source = random_forecaster().save(tmp_path / "source")
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(source), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_info_counts_each_shared_tensor_once(tmp_path, capsys):
    model = random_forecaster()
    folder = model.save(tmp_path / "m")
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"parameters   {model.num_parameters():,}" in out
    assert "family       tirex2" in out and "rollout" not in out


def test_info_names_the_family_and_what_fast_numerics_picks(tmp_path, capsys):
    import json

    from rexforge.cli import main

    random_forecaster().save(tmp_path / "m")
    assert main(["info", str(tmp_path / "m"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["family"] == "tirex2"
    assert "mLSTM cpu_batched" in info["fast_numerics"]["plan"]
