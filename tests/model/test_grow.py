"""Depth up-scaling: the grown model computes what the original did, and its copies can learn."""

import subprocess
import sys

import pytest
import torch

from rexforge.config import TiRexConfig
from rexforge.errors import ConfigError
from rexforge.model.grow import deepen
from rexforge.model.tirex import TiRexModel


def trained_looking(config: TiRexConfig) -> TiRexModel:
    """A tiny model whose group-norm gains and biases are not at their initial values."""
    torch.manual_seed(0)
    model = TiRexModel(config, kernel="torch_ref", numerics="fp32")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("group_norm.weight") or "bias" in name:
                p.normal_(0.0, 0.3)
    return model


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_deepened_model_computes_the_same_quantiles(factor):
    config = TiRexConfig.from_name("tirex-test")
    small = trained_looking(config)
    grown_config, grown_state = deepen(config, small.state_dict(), factor)
    assert grown_config.block_kwargs.num_blocks == factor * config.block_kwargs.num_blocks
    assert config.block_kwargs.num_blocks == 2  # the input config is not modified
    big = TiRexModel(grown_config, kernel="torch_ref", numerics="fp32")
    big.load_state_dict(grown_state)  # strict: every key of the deeper model is there
    block_params = sum(p.numel() for p in small.blocks.parameters())
    extra = sum(p.numel() for p in big.parameters()) - sum(p.numel() for p in small.parameters())
    assert extra == (factor - 1) * block_params
    tokens = torch.randn(3, 5, 2 * config.input_patch_size)
    expected = small(tokens).quantiles
    torch.testing.assert_close(big(tokens).quantiles, expected, rtol=1e-5, atol=1e-5)
    # Block 1 of the original is block `factor` of the grown model, weights unchanged.
    for name, value in small.blocks[1].state_dict().items():
        assert torch.equal(big.blocks[factor].state_dict()[name], value)


def test_copies_start_switched_off_but_learn():
    config = TiRexConfig.from_name("tirex-test")
    grown_config, grown_state = deepen(config, trained_looking(config).state_dict(), 2)
    big = TiRexModel(grown_config, kernel="torch_ref", numerics="fp32")
    big.load_state_dict(grown_state)
    copy = big.blocks[1]
    assert torch.all(copy.slstm_layer.group_norm.weight == -1.0)
    assert torch.all(copy.ffn.proj_down.weight == 0.0)
    big(torch.randn(4, 3, 2 * config.input_patch_size)).quantiles.square().mean().backward()
    # The two tensors that switch a copy on get gradients from the first step.
    assert copy.slstm_layer.group_norm.weight.grad.abs().sum() > 0
    assert copy.ffn.proj_down.weight.grad.abs().sum() > 0


def test_deepen_rejects_bad_factors_and_foreign_blocks():
    config = TiRexConfig.from_name("tirex-test")
    state = TiRexModel(config).state_dict()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="factor must be an integer >= 1"):
            deepen(config, state, bad)
    state["blocks.7.norm_ffn.weight"] = torch.ones(16)
    with pytest.raises(ConfigError, match="names block 7 of a 2-block model"):
        deepen(config, state, 2)


def test_grow_script_writes_a_model_that_forecasts_the_same(tmp_path):
    from rexforge import load_model
    from rexforge.io.checkpoint import Checkpoint, nxai_metadata, write_folder

    config = TiRexConfig.from_name("tirex-test")
    source = tmp_path / "small"
    write_folder(
        source, Checkpoint(config, trained_looking(config).state_dict(), nxai_metadata(False))
    )
    run = [sys.executable, "-m", "rexforge.cli", "grow", str(source), "--output"]
    run += [str(tmp_path / "big"), "--factor", "2"]
    subprocess.run(run, check=True, capture_output=True)
    small, big = load_model(source), load_model(tmp_path / "big" / "model.ckpt")
    assert big.config.block_kwargs.num_blocks == 4
    assert "grown_from" in load_model(tmp_path / "big").metadata
    context = torch.randn(3, 100)
    torch.testing.assert_close(big.forecast(context, 40)[0], small.forecast(context, 40)[0])
    # Bad input: one error line, exit status 2, nothing written.
    bad = subprocess.run(run[:6] + [str(tmp_path / "bad"), "--factor", "0"], capture_output=True)
    assert bad.returncode == 2
    assert bad.stderr.decode().strip().splitlines() == [
        "error: deepen: factor must be an integer >= 1, got 0"
    ]
    assert not (tmp_path / "bad").exists()
