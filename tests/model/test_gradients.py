"""Backward through every sLSTM block stays finite with large gate pre-activations.

Full fine-tuning of the official weights is refused elsewhere (Darts' TiRex wrapper) because
backpropagating through the early blocks gives NaN gradients. The cause, reproduced here with
random tirex-35m weights whose gate projections, recurrent kernels and biases are scaled up
(30x puts the pre-activations in the hundreds, as in trained models' extreme units): on the
first step the forget-gate exponent overflows, and a clamp-after-exp backward multiplies a zero
gradient by inf.
"""

import pytest
import torch

from rexforge.config import TiRexConfig
from rexforge.model.tirex import TiRexModel
from tests.conftest import random_state_dict

GATE_KEYS = ("gate.weight", "_recurrent_kernel_", "_bias_")


@pytest.fixture(scope="module")
def scaled_35m_states():
    config = TiRexConfig.from_name("tirex-35m")
    base = random_state_dict(config, seed=0)
    scaled = {
        scale: {k: v * scale if k.endswith(GATE_KEYS) else v for k, v in base.items()}
        for scale in (1.0, 30.0)
    }
    return config, scaled


def tokens_with_padding(batch=3, patches=12, seed=0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.cat(
        (torch.randn(batch, patches, 32, generator=gen) * 3, torch.ones(batch, patches, 32)), -1
    )
    tokens[:, :4] = 0.0  # leading masked (padding) tokens, as short series have
    return tokens


@pytest.mark.parametrize("kernel", ["torch_ref", "cpu_fused"])
@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16-autocast"])
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_gradients_are_finite_in_every_block(scaled_35m_states, kernel, autocast, scale):
    config, states = scaled_35m_states
    model = TiRexModel(config, kernel=kernel, numerics="fp32")
    model.load_state_dict(states[scale])
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = model(tokens_with_padding()).quantiles.float().square().mean()
    loss.backward()
    assert torch.isfinite(loss)
    for name, param in model.named_parameters():
        assert torch.isfinite(param.grad).all(), name
    for i, block in enumerate(model.blocks):
        norm = block.slstm_layer.slstm_cell._recurrent_kernel_.grad.norm()
        assert 0 < norm < 1e6, (i, float(norm))
