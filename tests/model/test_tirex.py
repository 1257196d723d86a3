"""The network's pieces against tirex-ts's modules, and the official quirks pinned."""

import pytest
import torch

from rexforge.config import TiRexConfig
from rexforge.model.slstm import MultiHeadGroupNorm, RMSNorm
from rexforge.model.tirex import TiRexModel
from rexforge.model.tokenizer import masked_tokens, standard_scale, tokenize


def test_scaling_rules():
    x = torch.tensor(
        [
            [1.0, 2.0, 3.0, float("nan")],
            [4.0, 4.0, 4.0, 4.0],
            [float("nan")] * 4,
            [-2.0, -2.0, float("nan"), -2.0],
        ]
    )
    s = standard_scale(x)
    torch.testing.assert_close(s.loc[:, 0], torch.tensor([2.0, 4.0, 0.0, -2.0]))
    # population std; constant -> |mean| + 1e-5; all-NaN -> 1
    torch.testing.assert_close(s.scale[:, 0], torch.tensor([(2 / 3) ** 0.5, 4.00001, 1.0, 2.00001]))


def test_scaling_survives_values_whose_squares_overflow_float32():
    # 1e20**2 = 1e40 > float32's 3.4e38: the variance used to be inf, the forecast garbage.
    x = torch.tensor([[1e20, 3e20, float("nan")], [1.0, 3.0, 2.0], [3e36, -3e36, 3e36]])
    s = standard_scale(x)
    torch.testing.assert_close(s.loc[:, 0], torch.tensor([2e20, 2.0, 1e36]))
    torch.testing.assert_close(s.scale[:, 0], torch.tensor([1e20, (2 / 3) ** 0.5, 8**0.5 * 1e36]))
    # A row that does not overflow keeps its float32 statistics bit for bit.
    plain = standard_scale(x[1:2])
    assert torch.equal(s.loc[1], plain.loc[0]) and torch.equal(s.scale[1], plain.scale[0])


def test_scaling_survives_values_whose_squares_underflow_float32():
    # Deviations of 1e-25 square to 1e-50, below float32's smallest number: the variance was 0,
    # the row read as constant and got scale 1e-5, 1e20 times its spread.
    base = torch.tensor([1.0, 3.0, 2.0, float("nan")])
    x = torch.stack([base * 1e-25, base, base * 1e-40, torch.full((4,), 1e-25)])
    s = standard_scale(x)
    torch.testing.assert_close(s.loc[:3, 0], torch.tensor([2e-25, 2.0, 2e-40]), rtol=1e-3, atol=0)
    spread = (2 / 3) ** 0.5
    torch.testing.assert_close(
        s.scale[:3, 0], torch.tensor([spread * 1e-25, spread, spread * 1e-40]), rtol=1e-3, atol=0
    )
    # A truly constant tiny row keeps the official constant rule, the others their float32 bits.
    assert s.scale[3, 0].item() == pytest.approx(1e-5, rel=1e-6)
    plain = standard_scale(x[1:2])
    assert torch.equal(s.loc[1], plain.loc[0]) and torch.equal(s.scale[1], plain.scale[0])


def test_tokens_hold_values_then_mask():
    x = torch.tensor([[float("nan"), 1.0, 3.0, float("nan")]])
    tokens, _ = tokenize(x, patch_size=2)
    assert tokens.shape == (1, 2, 4)
    torch.testing.assert_close(tokens[0, :, 2:], torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    torch.testing.assert_close(tokens[0, :, :2], torch.tensor([[0.0, -1.0], [1.0, 0.0]]))


def test_rmsnorm_eps_is_official_1e6_and_group_norm_uses_one_plus_weight():
    norm = RMSNorm(4)
    assert norm.eps == 1e-6
    x = torch.full((1, 4), 1e-4)
    # With eps 1e-5 this would be ~0.03; with 1e-6 it is ~0.1.
    assert abs(norm(x)[0, 0].item() - 1e-4 / (1e-8 + 1e-6) ** 0.5) < 1e-6
    gn = MultiHeadGroupNorm(4, 2)
    h = torch.randn(2, 3, 2, 2)
    base = gn(h)
    with torch.no_grad():
        gn.weight.fill_(1.0)
    torch.testing.assert_close(gn(h), 2 * base)


def test_block_equals_official_block_in_fp32():
    """Our block (fp32 numerics) equals tirex-ts's block with its cell run in fp32."""
    block_mod = pytest.importorskip(
        "tirex.models.slstm.block", reason="tirex-ts is in the dev extra"
    )
    cell_mod = pytest.importorskip("tirex.models.slstm.cell")
    config = TiRexConfig.from_name("tirex-test")
    model = TiRexModel(config, kernel="torch_ref", numerics="fp32")
    model.reset_parameters(seed=1)
    ours = model.blocks[0]
    off_cfg = cell_mod.sLSTMBlockConfig(embedding_dim=16, num_heads=2)
    theirs = block_mod.sLSTMBlock(off_cfg, backend="torch")
    theirs.load_state_dict(ours.state_dict())
    cell = theirs.slstm_layer.slstm_cell

    def fp32_impl(inp, state):  # the official cell's math without its bf16 casts
        bias = cell._bias_.reshape(2, 4, 8).permute(1, 0, 2).reshape(-1)
        return cell._impl_forward_torch(
            inp.view(inp.shape[0], inp.shape[1], -1), state, cell._recurrent_kernel_, bias
        )

    cell._impl_torch = fp32_impl
    x = torch.randn(3, 9, 16)
    with torch.no_grad():
        got, _ = ours(x, None, model.kernel, "fp32")
        want = theirs(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_crossed_gate_slots():
    """The module named ``fgate`` feeds the cell's input-gate slot (slot 0), ``igate`` the
    forget slot: with a huge negative input-gate pre-activation nothing is written."""
    config = TiRexConfig.from_name("tirex-test")
    model = TiRexModel(config, kernel="torch_ref", numerics="fp32")
    layer = model.blocks[0].slstm_layer
    x = torch.ones(1, 1, 16)
    wx = layer.gate_inputs(x)
    with torch.no_grad():
        layer.fgate.weight.fill_(0.5)
    torch.testing.assert_close(layer.gate_inputs(x)[:, :, 0], torch.full_like(wx[:, :, 0], 0.5 * 8))
    torch.testing.assert_close(layer.gate_inputs(x)[:, :, 1], wx[:, :, 1])


def test_head_on_last_positions_only_equals_full_head():
    model = TiRexModel(TiRexConfig.from_name("tirex-test"), kernel="torch_ref")
    tokens = torch.randn(2, 5, 64)
    full = model(tokens).quantiles
    last = model(tokens, last_n=2).quantiles
    assert full.shape == (2, 5, 9, 32) and last.shape == (2, 2, 9, 32)
    torch.testing.assert_close(last, full[:, -2:])


@pytest.mark.parametrize("numerics", ["bf16", "fp32"])
def test_masked_prefix_states_are_the_states_of_a_forward_over_masked_tokens(numerics):
    model = TiRexModel(TiRexConfig.from_name("tirex-test"), kernel="torch_ref", numerics=numerics)
    model.reset_parameters(seed=0)
    K, P, like = 6, model.config.input_patch_size, torch.empty(0)
    states = model.masked_prefix_states(K)
    assert len(states) == K + 1 and states[0] is None
    assert all(len(s) == len(model.blocks) and s[0].shape == (4, 1, 16) for s in states[1:])
    # After all K tokens: the same bits as one forward pass over K masked tokens.
    full = model(masked_tokens(1, K, P, like), last_n=1).states
    assert all(torch.equal(a, b) for a, b in zip(full, states[K]))
    # Continuing from the state after k masked tokens = running all K tokens from zeros.
    rest = model(masked_tokens(1, K - 2, P, like), states=states[2], last_n=1).states
    torch.testing.assert_close(rest, full, rtol=1e-5, atol=1e-6)
