import copy

import numpy as np
import torch

from rexforge.config import TiRexConfig
from rexforge.forecast.api import TiRexForecaster
from rexforge.model.tirex import TiRexModel
from rexforge.train.lora import inject_lora, lora_state_dict, merge_lora


def _adapted():
    model = TiRexModel(TiRexConfig.from_name("tirex-test"), kernel="torch_ref", numerics="fp32")
    model.reset_parameters(seed=0)
    base_keys = set(model.state_dict())
    names = inject_lora(model, rank=2, alpha=4.0, seed=0)
    # Non-zero B so the adapters change the output (B starts at zero).
    with torch.no_grad():
        for k, v in model.named_parameters():
            if k.endswith("lora_B"):
                v.normal_(0, 0.1, generator=torch.Generator().manual_seed(len(k)))
    return model, base_keys, names


def test_adapters_sit_beside_unrenamed_base_weights():
    model, base_keys, names = _adapted()
    assert len(names) == 2 * (4 + 3)  # 2 blocks x (4 gates + 3 ffn projections)
    keys = set(model.state_dict())
    assert base_keys <= keys
    adapter = lora_state_dict(model)
    assert set(adapter) == keys - base_keys
    assert all(k.endswith((".lora_A", ".lora_B")) for k in adapter)


def test_fresh_adapter_is_identity():
    model = TiRexModel(TiRexConfig.from_name("tirex-test"), kernel="torch_ref", numerics="fp32")
    tokens = torch.randn(2, 5, 64)
    before = model(tokens).quantiles
    inject_lora(model, rank=2)
    assert torch.equal(model(tokens).quantiles, before)


def test_merged_model_forecasts_like_the_adapter_model():
    model, base_keys, _ = _adapted()
    merged = merge_lora(copy.deepcopy(model))
    assert set(merged.state_dict()) == base_keys
    assert not lora_state_dict(merged)
    rng = np.random.default_rng(0)
    series = [np.sin(np.arange(200) / 7) + 0.1 * rng.standard_normal(200) for _ in range(3)]
    q_adapter, _ = TiRexForecaster(model).forecast(series, 64, output_type="numpy")
    q_merged, _ = TiRexForecaster(merged).forecast(series, 64, output_type="numpy")
    q_base, _ = TiRexForecaster(merge_lora(_strip(model))).forecast(series, 64, output_type="numpy")
    np.testing.assert_allclose(q_merged, q_adapter, rtol=1e-4, atol=1e-5)
    assert np.abs(q_base - q_adapter).max() > 1e-3  # the adapters do matter


def _strip(model):
    out = copy.deepcopy(model)
    for module in out.modules():
        if hasattr(module, "lora_B"):
            module.lora_B.data.zero_()
    return out
