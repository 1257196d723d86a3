"""Models by hub id (``"NX-AI/TiRex"``) from a Hugging Face cache the tests build, offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rexforge
from rexforge.cli import main
from rexforge.errors import InputError
from rexforge.io.hub import is_hub_id
from tests.conftest import make_context
from tests.hub_cache import add_to_cache, use_offline_cache

pytest.importorskip("huggingface_hub")


@pytest.fixture
def offline_hub(tmp_path, monkeypatch, tiny_ckpt) -> Path:
    cache = tmp_path / "hub"
    add_to_cache(cache, "NX-AI/TiRex", {"model.ckpt": tiny_ckpt})
    use_offline_cache(monkeypatch, cache)
    return cache


def test_hub_id_loads_the_cached_checkpoint(offline_hub, tiny_ckpt):
    from_hub = rexforge.load_model("NX-AI/TiRex")
    local = rexforge.load_model(tiny_ckpt)
    context = make_context([40, 100], seed=3)
    q_hub, _ = from_hub.forecast(context, prediction_length=16)
    q_local, _ = local.forecast(context, prediction_length=16)
    assert torch.equal(q_hub, q_local)
    assert "models--NX-AI--TiRex" in from_hub.source


def test_hub_rexforge_folder(offline_hub, tmp_path, tiny_ckpt):
    folder = rexforge.load_model(tiny_ckpt).save(tmp_path / "folder")
    add_to_cache(
        offline_hub,
        "me/tiny-folder",
        {name: folder / name for name in ("config.json", "model.safetensors")},
    )
    model = rexforge.load_model("me/tiny-folder")
    assert model.num_parameters() == rexforge.load_model(tiny_ckpt).num_parameters()


def test_not_cached_offline_is_one_error_naming_the_id(offline_hub):
    with pytest.raises(InputError, match="'NX-AI/Missing' is not in the Hugging Face cache"):
        rexforge.load_model("NX-AI/Missing")


def test_cli_model_by_hub_id(offline_hub, tmp_path, capsys):
    data = tmp_path / "d.csv"
    values = make_context([50], seed=1)[0]
    data.write_text("step,y\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    out = tmp_path / "f.csv"
    args = ["--model", "NX-AI/TiRex", "--data", str(data), "--time-column", "step"]
    assert main(["forecast", *args, "--horizon", "8", "--output", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 1 + 8
    assert main(["info", "NX-AI/Missing"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: model 'NX-AI/Missing'")


def test_not_cached_in_a_fresh_process_with_hf_hub_offline(tmp_path):
    # The environment variables alone (read when huggingface_hub is imported) must suffice.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(rexforge.__file__).parents[1]), env.get("PYTHONPATH", "")]
    )
    result = subprocess.run(
        [sys.executable, "-m", "rexforge.cli", "info", "NX-AI/TiRex"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "error: model 'NX-AI/TiRex' is not in the Hugging Face cache and HF_HUB_OFFLINE is "
        "set: download it once online (or unset HF_HUB_OFFLINE)"
    ]


def test_what_counts_as_a_hub_id(tmp_path, monkeypatch):
    assert is_hub_id("NX-AI/TiRex") and is_hub_id("me/model.v2")
    assert not is_hub_id("starter") and not is_hub_id("/abs/path") and not is_hub_id("a/b/c")
    assert not is_hub_id("./x") and not is_hub_id("../x")
    (tmp_path / "owner").mkdir()
    (tmp_path / "owner" / "name").mkdir()
    monkeypatch.chdir(tmp_path)
    assert not is_hub_id("owner/name")  # an existing local path wins


def test_evaluate_model_by_hub_id(offline_hub, tmp_path, capsys):
    data = tmp_path / "d.csv"
    values = make_context([60], seed=2)[0]
    data.write_text(
        "item_id,timestamp,target\n" + "".join(f"a,{i},{v}\n" for i, v in enumerate(values))
    )
    args = ["evaluate", "--model", "NX-AI/TiRex", "--data", str(data)]
    args += ["--horizon", "8", "--windows", "1", "--baselines", "naive", "--no-plots"]
    assert main([*args, "--output-dir", str(tmp_path / "report")]) == 0, capsys.readouterr().err
    assert "NX-AI/TiRex" in (tmp_path / "report" / "metrics.csv").read_text()


def test_tirex2_hub_id_loads_the_cached_official_folder(offline_hub, tmp_path):
    # NXAI's TiRex-2 repository holds config.json + model.safetensors; a repository may keep
    # a legacy model.ckpt beside them, which must not win over them (here it is not even a
    # checkpoint, so reading it would fail).
    from tests.io.test_tirex2_folder import random_forecaster, series

    local = random_forecaster(seed=2)
    folder = local.save(tmp_path / "tirex2")
    legacy = tmp_path / "legacy.ckpt"
    legacy.write_bytes(b"not a checkpoint")
    files = {name: folder / name for name in ("config.json", "model.safetensors")}
    add_to_cache(offline_hub, "NX-AI/TiRex-2", {**files, "model.ckpt": legacy})
    from_hub = rexforge.load_model("NX-AI/TiRex-2")
    assert "models--NX-AI--TiRex-2" in from_hub.source
    want = local.forecast(series(), prediction_length=8)
    got = from_hub.forecast(series(), prediction_length=8)
    assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_online_order_folder_files_first_then_model_ckpt(monkeypatch, tmp_path, tiny_ckpt):
    """Online (simulated): a repository without config.json + model.safetensors falls back to
    its model.ckpt; one with them never asks for model.ckpt."""
    import huggingface_hub
    from huggingface_hub import errors

    from rexforge.io.hub import hub_model_path
    from tests.io.test_tirex2_folder import random_forecaster

    folder = random_forecaster().save(tmp_path / "tirex2")
    repos = {
        "NX-AI/TiRex": {"model.ckpt": tiny_ckpt},
        "NX-AI/TiRex-2": {n: folder / n for n in ("config.json", "model.safetensors")},
    }
    asked = []

    def fake_download(repo_id, filename, **kwargs):
        asked.append((repo_id, filename))
        if filename not in repos[repo_id]:
            raise errors.EntryNotFoundError(f"{filename} not in {repo_id}")
        return str(repos[repo_id][filename])

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    assert hub_model_path("NX-AI/TiRex") == tiny_ckpt
    assert hub_model_path("NX-AI/TiRex-2") == folder
    assert ("NX-AI/TiRex", "model.ckpt") in asked
    assert ("NX-AI/TiRex-2", "model.ckpt") not in asked
    repos["me/empty"] = {}
    with pytest.raises(InputError, match="holds no model.ckpt and no config.json"):
        hub_model_path("me/empty")
