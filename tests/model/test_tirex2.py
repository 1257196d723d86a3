"""TiRex-2: presets and config round trips, the official state-dict layout, and forward parity
with the reference package ``tirex2`` 0.4.0 (skipped where it is not installed).

The reference runs on CPU with its pure-PyTorch kernels (FlashRNN's "vanilla" sLSTM loop and
mlstm_kernels' "chunkwise--native_autograd" mLSTM, both fp32), which is what it picks itself
for ``device="cpu"``; no compiled or CUDA kernel is involved on either side.
"""

from __future__ import annotations

import json

import pytest
import torch

from rexforge.config_tirex2 import PRESETS, TiRex2Config
from rexforge.errors import CheckpointError, ConfigError
from rexforge.families.tirex2 import tirex2_checkpoint_filter
from rexforge.model.tirex2 import TiRex2Model, count_parameters
from rexforge.registry import create_model, family_of, get_family

# Measured on the reference (tirex2 0.4.0, the 12-block config on the meta device); its README
# gives "38.4M parameters in univariate mode and an additional 44.1M for multivariate".
OFFICIAL_PARAMETERS = 82_501_744
OFFICIAL_UNIVARIATE_PARAMETERS = 38_449_264


def multivariate_only(name: str) -> bool:
    # Weights a series with a single variate never uses: the attention variate mixers, and the
    # projections that combine a covariate's forward and backward passes.
    return ".variate_mixer." in name or ".combination." in name


# -- config and presets ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_round_trips_and_builds_on_meta(name):
    config = TiRex2Config.from_name(name)
    assert TiRex2Config.from_dict(json.loads(config.to_json())) == config
    assert TiRex2Config.from_official(config.to_official()) == config
    assert family_of(config.to_official()).name == "tirex2"
    with torch.device("meta"):
        model = create_model(name)
    assert isinstance(model, TiRex2Model) and len(model.stack) == config.num_blocks


def test_official_size_has_the_reference_parameter_count():
    with torch.device("meta"):
        model = create_model("tirex2-82m")
    assert count_parameters(model) == OFFICIAL_PARAMETERS
    univariate = sum(p.numel() for n, p in model.named_parameters() if not multivariate_only(n))
    assert univariate == OFFICIAL_UNIVARIATE_PARAMETERS
    assert get_family("tirex2").presets["tirex2-82m"]() == TiRex2Config()


def test_feed_forward_width_uses_the_official_rounding():
    assert TiRex2Config().ffn_dim == 1408  # 512 * 2.6667 = 1365.3
    # 48 * 2.6667 = 128.0016: the official floor((x + 63) / 64) * 64 gives 128, ceil gives 192.
    assert TiRex2Config.from_name("tirex2-test", embedding_dim=48).ffn_dim == 128


def test_config_errors_name_every_problem():
    with pytest.raises(ConfigError, match="unknown TiRex-2 config key"):
        TiRex2Config.from_dict({"embedding_size": 3})
    with pytest.raises(ConfigError) as info:
        TiRex2Config(num_blocks=3, time_mixers=["mlstm", "gru"], num_heads=5)
    message = str(info.value)
    assert "2 entries, not 3" in message and "'gru'" in message and "num_heads=5" in message
    doc = TiRex2Config.from_name("tirex2-test").to_official()
    doc["stack_config"]["recipe"][0] = "nope"
    with pytest.raises(ConfigError, match="unknown template 'nope'"):
        TiRex2Config.from_official(doc)
    with pytest.raises(ConfigError, match="missing key"):
        TiRex2Config.from_official({"stack_config": {}})


# -- the official state-dict layout ----------------------------------------------------------------
def test_aliases_match_the_official_layout():
    model = TiRex2Model(TiRex2Config.from_name("tirex2-test"))
    keys = set(model.state_dict())
    assert "stack.0.time_mixer.fwd_cell.q.weight" in keys
    assert "stack.0.time_mixer.rev_cell.q.weight" in keys
    assert "stack.1.time_mixer.rev_cell.recurrent_kernel" in keys
    block = model.stack[1].time_mixer
    assert block.rev_cell is block.fwd_cell  # one cell, two names
    assert block.fwd_cell.recurrent_kernel is block.fwd_cell._recurrent_kernel_


def test_filter_restores_the_names_a_safetensors_file_leaves_out():
    model = TiRex2Model(TiRex2Config.from_name("tirex2-test"))
    full = model.state_dict()
    stored = {
        k: v
        for k, v in full.items()
        if ".rev_cell." not in k and not k.endswith(".recurrent_kernel")
    }
    filtered = tirex2_checkpoint_filter(stored, model.config)
    assert set(filtered) == set(full) and len(stored) < len(full)
    assert ".rev_cell." not in "".join(stored)  # the filter is pure
    create_model(model.config, state_dict={"state_dict": stored})  # strict load
    conflicting = dict(stored)
    key = "stack.0.time_mixer.rev_cell.q.weight"
    conflicting[key] = full[key] + 1.0
    with pytest.raises(CheckpointError, match="different values"):
        tirex2_checkpoint_filter(conflicting, model.config)


# -- parity with the reference package --------------------------------------------------------------
PARITY_CONFIGS = {
    # E = 32: the mLSTM scale 1/sqrt(4) is a power of two (exact); 70 steps = 18 patches.
    "test": TiRex2Config.from_name("tirex2-test", dropout=0.0),
    # E = 48 (scale 1/sqrt(6), inexact), both cells twice, 290 steps = 73 patches: two mLSTM chunks.
    "wide": TiRex2Config.from_name(
        "tirex2-test",
        dropout=0.0,
        embedding_dim=48,
        num_blocks=4,
        time_mixers=["mlstm", "slstm", "slstm", "mlstm"],
    ),
}


def reference_model(config: TiRex2Config, seed: int = 0):
    """The reference network for ``config`` on CPU, with noise on every weight so that none
    keeps its symmetric initial value (zero recurrent kernels, unit norm gains)."""
    tirex2 = pytest.importorskip("tirex2.model.tirex2")
    torch.manual_seed(seed)
    model = tirex2.TiRex2(**{**config.to_official(), "device": "cpu"}).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():  # shared tensors appear once
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return model


def example_batch(length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Two multivariate series and two univariate ones, as rows of variates:
    series 1 = target, future-known covariate, past-only covariate; series 2 = two targets and
    a covariate; series 3 and 4 alone (one of them binary). NaNs in a few places."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(8, length, generator=gen).cumsum(dim=-1) * 3.0 + 10.0
    x[0, :7] = torch.nan  # a late start
    x[1, 30:33] = torch.nan  # a gap
    x[2, -8:] = torch.nan  # past-only covariate: unknown over the last future_len steps
    x[6] = (torch.rand(length, generator=gen) > 0.5).float()  # binary series: not scaled
    groups = torch.tensor([1.0, 1, 1, 2, 2, 2, 3, 4])
    targets = torch.tensor([True, False, False, True, True, False, True, True])
    return {"x": x, "group_vector": groups, "target_mask": targets}


def assert_parity(ours: torch.Tensor, reference: torch.Tensor) -> None:
    # Relative to the output's scale: elementwise ratios near zero crossings say nothing.
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-4 * reference.abs().max().item())


@pytest.mark.parametrize("name, length", [("test", 70), ("wide", 290)])
def test_forward_equals_the_reference(name, length):
    config = PARITY_CONFIGS[name]
    reference = reference_model(config)
    ours = create_model(config, state_dict=reference.state_dict()).eval()  # strict
    assert list(ours.state_dict()) == list(reference.state_dict())
    batch = example_batch(length)
    with torch.no_grad():
        expected = reference(dict(batch))  # [BV, Q, N * P]
        got = ours(batch["x"], batch["group_vector"], batch["target_mask"])
        assert_parity(got, expected)
        # Univariate series alone (every variate mixer skips them).
        solo = {k: v[6:] for k, v in batch.items()}
        assert_parity(ours(solo["x"], solo["group_vector"], solo["target_mask"]), reference(solo))


def test_safetensors_style_weights_load_through_the_family_filter():
    reference = reference_model(PARITY_CONFIGS["test"])
    state = reference.state_dict()
    stored = {k: v for k, v in state.items() if ".rev_cell." not in k and "._recurrent" not in k}
    ours = create_model(PARITY_CONFIGS["test"], state_dict=stored).eval()
    for key, value in state.items():
        assert torch.equal(ours.state_dict()[key], value), key


def test_official_size_matches_the_reference_layout_on_meta(monkeypatch):
    tirex2 = pytest.importorskip("tirex2.model.tirex2")
    # The reference moves itself to its device at the end of __init__, which meta tensors
    # cannot do; on the meta device that move has nothing to do anyway.
    monkeypatch.setattr(tirex2.TiRex2, "to", lambda self, *args, **kwargs: self)
    with torch.device("meta"):
        reference = tirex2.TiRex2(**{**TiRex2Config().to_official(), "device": "cpu"})
        ours = create_model("tirex2-82m")
    assert count_parameters(reference) == count_parameters(ours) == OFFICIAL_PARAMETERS
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }


# -- fast kernels ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name, length", [("test", 70), ("wide", 290)])
def test_fast_kernels_match_the_reference_kernels(name, length):
    """The whole network with the fast CPU kernels (numerics="fast"; the sLSTM's C cell where a
    C compiler is) against the same weights on the plain torch references: within 1e-5 of the
    output's size. Needs no reference package. "wide" runs 73 patches: two mLSTM chunks, one
    of them short."""
    from rexforge.kernels.tirex2 import recurrence_kernels

    config = PARITY_CONFIGS[name]
    reference = TiRex2Model(config, slstm_kernel="torch_ref", mlstm_kernel="torch_ref").eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in reference.parameters():  # no weight keeps its symmetric initial value
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    slstm, mlstm = recurrence_kernels("auto", "fast")
    fast = TiRex2Model(config, slstm_kernel=slstm, mlstm_kernel=mlstm).eval()
    fast.load_state_dict(reference.state_dict())
    assert fast.kernels["mlstm"] is not reference.kernels["mlstm"]
    batch = example_batch(length)
    with torch.no_grad():
        expected = reference(batch["x"], batch["group_vector"], batch["target_mask"])
        got = fast(batch["x"], batch["group_vector"], batch["target_mask"])
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


def test_auto_kernels_are_the_references_and_fast_numerics_picks_the_fast_ones():
    """Drop-in by default: "auto" runs the references (tirex-2's numbers); numerics="fast"
    takes the fast CPU kernels; a kernel of one recurrence sets that one only."""
    from rexforge.errors import ConfigError
    from rexforge.kernels.registry import get_kernel, kernel_name
    from rexforge.kernels.tirex2 import recurrence_kernels

    default = TiRex2Model(PARITY_CONFIGS["test"])
    assert {k: kernel_name(f) for k, f in default.kernels.items()} == {
        "slstm": "torch_ref",
        "mlstm": "torch_ref",
    }
    slstm, mlstm = recurrence_kernels("auto", "fast")
    assert mlstm == "cpu_batched" and slstm in ("cpu_native", "auto")
    assert recurrence_kernels("cpu_batched", None) == ("auto", "cpu_batched")
    assert recurrence_kernels("torch_ref", "fast") == ("torch_ref", "torch_ref")
    with pytest.raises(ConfigError, match="unknown TiRex-2 kernel 'nope'"):
        recurrence_kernels("nope", None)
    assert get_kernel("auto", kind="tirex2_mlstm") is get_kernel("torch_ref", kind="tirex2_mlstm")
