import numpy as np
import pytest
import torch

from rexforge.config import TiRexConfig
from rexforge.errors import ConfigError
from rexforge.model.tirex import TiRexModel
from rexforge.train.modes import apply_mode
from rexforge.train.objective import MaskingConfig, window_loss

CASES = {
    "scratch": {},
    "full": {},
    "freeze-blocks": {"mode": "freeze", "freeze_blocks": 1},
    "head-only": {"mode": "freeze", "head_only": True},
    "lora": {"lora_rank": 2},
}


def _expected_trainable(case: str, name: str) -> bool:
    if case in ("scratch", "full"):
        return True
    if case == "freeze-blocks":
        return not name.startswith(("input_patch_embedding.", "blocks.0."))
    if case == "head-only":
        return name.startswith(("out_norm.", "output_patch_embedding."))
    return name.endswith((".lora_A", ".lora_B"))


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(96)
    x = np.sin(t / 5 + rng.uniform(0, 6, (4, 1))) + 0.1 * rng.standard_normal((4, 96))
    x = torch.tensor(x, dtype=torch.float32)
    return x[:, :64], x[:, 64:]


@pytest.mark.parametrize("case", list(CASES))
def test_mode_trains_exactly_its_parameters(case):
    kwargs = dict(CASES[case])
    mode = kwargs.pop("mode", case)
    model = TiRexModel(TiRexConfig.from_name("tirex-test"), kernel="torch_ref", numerics="fp32")
    model.reset_parameters(seed=1)
    apply_mode(model, mode, seed=0, **kwargs)
    before = {k: v.clone() for k, v in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    context, future = _batch()
    for step in range(3):
        gen = torch.Generator().manual_seed(step)
        loss = window_loss(model, context, future, masking=MaskingConfig(), generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for name, p in model.named_parameters():
        expected = _expected_trainable(case, name)
        assert p.requires_grad == expected, name
        if expected:
            assert not torch.equal(p, before[name]), f"{name} did not train"
        else:
            assert torch.equal(p, before[name]), f"{name} changed although frozen"


def test_bad_mode_and_freeze_count_are_config_errors():
    model = TiRexModel(TiRexConfig.from_name("tirex-test"), kernel="torch_ref", numerics="fp32")
    with pytest.raises(ConfigError, match="mode"):
        apply_mode(model, "half")
    with pytest.raises(ConfigError, match="freeze_blocks"):
        apply_mode(model, "freeze", freeze_blocks=5)
