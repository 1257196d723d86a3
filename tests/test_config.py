import json

import pytest
import yaml

from rexforge.config import PRESETS, TiRexConfig, list_presets
from rexforge.errors import ConfigError


@pytest.mark.parametrize("name", list_presets())
def test_presets_round_trip_json_and_yaml(name, tmp_path):
    config = TiRexConfig.from_name(name)
    assert TiRexConfig.from_dict(json.loads(config.to_json())) == config
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert TiRexConfig.from_file(path) == config
    assert TiRexConfig.from_hyper_parameters(config.to_hyper_parameters()) == config


def test_official_preset_values():
    c = TiRexConfig.from_name("tirex-35m")
    b = c.block_kwargs
    assert (b.embedding_dim, b.num_blocks, b.num_heads, b.head_dim) == (512, 12, 4, 128)
    assert b.ffn_dim == 1408  # 512 * 2.6667 = 1365.3 rounded up to a multiple of 64
    assert c.input_ff_dim == 2048 and c.train_ctx_len == 2048
    assert c.quantiles == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    hp = c.to_hyper_parameters()
    assert set(hp) == {"model_config", "train_ctx_len"}
    assert set(hp["model_config"]) == {
        "input_patch_size",
        "output_patch_size",
        "quantiles",
        "block_kwargs",
        "input_ff_dim",
    }
    # Official keys the official code ignores are carried verbatim.
    assert hp["model_config"]["block_kwargs"]["norm_eps"] == 1e-5


def test_official_parameter_count():
    torch = pytest.importorskip("torch")
    from rexforge.model.tirex import TiRexModel, count_parameters

    with torch.device("meta"):
        model = TiRexModel(TiRexConfig.from_name("tirex-35m"), kernel="torch_ref")
    assert count_parameters(model) == 35_291_200


def test_unknown_keys_and_names_raise():
    with pytest.raises(ConfigError, match="unknown TiRex config key"):
        TiRexConfig.from_dict({**TiRexConfig().to_dict(), "hidden": 3})
    with pytest.raises(ConfigError, match="not a known TiRex preset"):
        TiRexConfig.from_name("tirex-1b")
    with pytest.raises(ConfigError, match="multiple of num_heads"):
        TiRexConfig.from_name("tirex-test", block_kwargs={"embedding_dim": 15})
    with pytest.raises(ConfigError, match="must contain 0.5"):
        TiRexConfig(quantiles=[0.1, 0.9])


def test_foreign_block_keys_are_kept_not_dropped():
    data = TiRexConfig.from_name("tirex-test").to_dict()
    data["block_kwargs"]["slstm_at"] = [0, 1]
    config = TiRexConfig.from_dict(data)
    assert config.block_kwargs.extra["slstm_at"] == [0, 1]
    assert config.to_dict()["block_kwargs"]["slstm_at"] == [0, 1]


def test_config_imports_without_torch():
    import subprocess
    import sys

    code = "import sys, rexforge.config; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_preset_sizes_are_ordered():
    import torch

    from rexforge.model.tirex import TiRexModel, count_parameters

    sizes = []
    for name in PRESETS:
        with torch.device("meta"):
            sizes.append(
                count_parameters(TiRexModel(TiRexConfig.from_name(name), kernel="torch_ref"))
            )
    assert sizes == sorted(sizes, reverse=True)
