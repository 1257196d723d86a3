"""The model-family registry: a second family plugs in without touching TiRex, and TiRex
itself (presets, checkpoints, load_model, ``rexforge info``) goes through it unchanged."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
import torch.nn as nn

import rexforge
from rexforge.cli import main
from rexforge.config import TiRexConfig, list_presets
from rexforge.errors import CheckpointError, ConfigError
from rexforge.forecast.api import TiRexForecaster, load_model
from rexforge.model.tirex import TiRexModel
from rexforge.registry import (
    ModelFamily,
    create_model,
    family_of,
    get_family,
    list_families,
    list_models,
    register_family,
    resolve_config,
    unregister_family,
)
from tests.conftest import random_state_dict


# -- a toy second family, defined entirely here ----------------------------------------------
@dataclass
class ToyConfig:
    width: int = 4


class ToyNet(nn.Module):
    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = config
        self.proj = nn.Linear(config.width, 1)


class ToyForecaster:
    pass


def _toy_filter(state_dict, config):
    # The toy's "official" files prefix every key with "net.".
    return {k.removeprefix("net."): v for k, v in state_dict.items()}


def _toy_family(name="toy", presets=None) -> ModelFamily:
    return ModelFamily(
        name=name,
        config_class=ToyConfig,
        presets=presets or {"toy-small": lambda: ToyConfig(2), "toy-large": lambda: ToyConfig(8)},
        build=ToyNet,
        checkpoint_filter=_toy_filter,
        detect=lambda raw: isinstance(raw, dict) and "toy_width" in raw,
        forecaster=ToyForecaster,
    )


@pytest.fixture
def toy():
    family = register_family(_toy_family())
    yield family
    unregister_family(family.name)


def test_toy_family_builds_and_is_recognised(toy):
    assert list_families() == ["tirex", "tirex2", "toy"]
    assert list_models()[-2:] == ["toy-small", "toy-large"]
    assert rexforge.list_presets() == list_models()
    small = create_model("toy-small")
    assert isinstance(small, ToyNet) and small.config.width == 2
    assert create_model(ToyConfig(width=5)).proj.in_features == 5
    assert create_model("toy").config == ToyConfig()  # a family name: its default config
    assert family_of(ToyConfig()) is toy
    assert family_of({"toy_width": 3}) is toy
    assert toy.forecaster_class is ToyForecaster


def test_toy_weights_go_through_its_filter(toy):
    weights = {"net.proj.weight": torch.ones(1, 2), "net.proj.bias": torch.full((1,), 3.0)}
    model = create_model("toy-small", state_dict=weights)
    assert torch.equal(model.proj.bias, torch.full((1,), 3.0))
    assert set(weights) == {"net.proj.weight", "net.proj.bias"}  # the filter is pure
    with pytest.raises(CheckpointError, match="missing 1 key"):
        create_model("toy-small", state_dict={"net.proj.weight": torch.ones(1, 2)})


def test_toy_leaves_tirex_recognition_alone(toy, tiny_ckpt):
    payload = torch.load(tiny_ckpt, weights_only=True)
    assert family_of(payload).name == "tirex"
    assert family_of(TiRexConfig.from_name("tirex-test")).name == "tirex"


def test_duplicate_family_is_refused(toy):
    with pytest.raises(ConfigError, match="'toy' is already registered"):
        register_family(_toy_family())
    with pytest.raises(ConfigError, match="'tirex-1m' \\(family 'tirex'\\)"):
        register_family(_toy_family("toy2", {"tirex-1m": ToyConfig}))
    assert list_families() == ["tirex", "tirex2", "toy"]


def test_unknown_names_list_the_known_ones():
    with pytest.raises(
        ConfigError, match="'nope' is not a known model family; known: tirex, tirex2"
    ):
        get_family("nope")
    with pytest.raises(ConfigError) as info:
        create_model("tirex-2b")
    message = str(info.value)
    assert "'tirex-2b' is not a known model preset or family" in message
    assert all(name in message for name in list_presets()) and "families: tirex" in message
    with pytest.raises(ConfigError, match="known families: tirex"):
        family_of({"something": "else"})
    with pytest.raises(ConfigError, match="known families: tirex"):
        family_of(ToyConfig())  # not registered outside the fixture


@pytest.mark.parametrize("name", list_presets())
def test_tirex_presets_match_from_name(name):
    family, config = resolve_config(name)
    assert family.name == "tirex" and config == TiRexConfig.from_name(name)
    # Shapes only: the meta device allocates nothing, so tirex-35m costs no memory.
    with torch.device("meta"):
        built = create_model(name, kernel="torch_ref")
        reference = TiRexModel(TiRexConfig.from_name(name), kernel="torch_ref")
    assert isinstance(built, TiRexModel)
    assert {k: v.shape for k, v in built.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }


def test_tirex_filter_reads_the_official_layout(tiny_ckpt):
    payload = torch.load(tiny_ckpt, weights_only=True)
    assert any(k.startswith("block_stack.") for k in payload["state_dict"])
    model = create_model("tirex-test", state_dict=payload, kernel="torch_ref")
    forecaster = load_model(tiny_ckpt, kernel="torch_ref")
    for key, value in forecaster.model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)


def test_tirex_detects_its_files_and_configs(tmp_path):
    config = TiRexConfig.from_name("tirex-test")
    forecaster = TiRexForecaster(TiRexModel(config, kernel="torch_ref"))
    forecaster.model.load_state_dict(random_state_dict(config, seed=1))
    forecaster.save(tmp_path / "folder")
    document = json.loads((tmp_path / "folder" / "config.json").read_text())
    for raw in (document, config.to_dict(), config.to_hyper_parameters()):
        assert family_of(raw).name == "tirex"


def test_load_model_returns_the_tirex_forecaster(tiny_ckpt):
    forecaster = load_model(tiny_ckpt, kernel="torch_ref")
    assert type(forecaster) is TiRexForecaster
    assert forecaster.config == TiRexConfig.from_name("tirex-test")


def test_info_names_the_family(tiny_ckpt, capsys):
    assert main(["info", str(tiny_ckpt), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["family"] == "tirex"
    assert main(["info", str(tiny_ckpt)]) == 0
    out = capsys.readouterr().out
    assert "family       tirex" in out and "architecture 2 sLSTM blocks" in out
