"""Every registered kernel against the torch reference, and the reference against tirex-ts."""

import pytest
import torch

from rexforge.kernels import get_kernel, list_kernels
from rexforge.kernels.reference import slstm_torch_ref


def random_inputs(B, S, NH, DH, seed=0, requires_grad=False):
    gen = torch.Generator().manual_seed(seed)
    wx = torch.randn(B, S, 4, NH, DH, generator=gen)
    R = torch.randn(NH, DH, 4 * DH, generator=gen) * DH**-0.5
    b = torch.randn(NH * 4 * DH, generator=gen) * 0.5
    tensors = [wx, R, b]
    if requires_grad:
        for t in tensors:
            t.requires_grad_(True)
    return tensors


# Kernels cheap to call at any shape; cpu_compiled compiles per shape and has its own test.
EAGER_KERNELS = [k for k in list_kernels(available_only=True) if k != "cpu_compiled"]


@pytest.mark.parametrize("name", EAGER_KERNELS)
@pytest.mark.parametrize("numerics,atol", [("fp32", 1e-5), ("bf16", 2e-2)])
@pytest.mark.parametrize("shape", [(1, 1, 1, 4), (3, 17, 2, 8), (5, 40, 4, 16)])
def test_kernel_matches_reference(name, numerics, atol, shape):
    kernel = get_kernel(name)
    wx, R, b = random_inputs(*shape, requires_grad=True)
    h, state = kernel(wx, None, R, b, numerics)
    h_ref, state_ref = slstm_torch_ref(wx, None, R, b, numerics)
    # bf16: a differently ordered fp32 sum can round to the neighbouring bf16 value.
    torch.testing.assert_close(h, h_ref, atol=atol, rtol=0)
    torch.testing.assert_close(state, state_ref, atol=atol * 10, rtol=atol)
    if numerics == "fp32":
        weights = torch.randn(h.shape, generator=torch.Generator().manual_seed(0))
        grads = torch.autograd.grad((h * weights).sum(), (wx, R, b))
        wx2, R2, b2 = (t.detach().clone().requires_grad_(True) for t in (wx, R, b))
        h2, _ = slstm_torch_ref(wx2, None, R2, b2, numerics)
        ref_grads = torch.autograd.grad((h2 * weights).sum(), (wx2, R2, b2))
        for got, ref in zip(grads, ref_grads):
            torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


def test_state_carry_equals_one_pass():
    wx, R, b = random_inputs(2, 12, 2, 8, seed=3)
    h, state = slstm_torch_ref(wx, None, R, b, "fp32")
    h1, s1 = slstm_torch_ref(wx[:, :5], None, R, b, "fp32")
    h2, s2 = slstm_torch_ref(wx[:, 5:], s1, R, b, "fp32")
    torch.testing.assert_close(torch.cat((h1, h2), 1), h)
    torch.testing.assert_close(s2, state)


def test_reference_equals_official_cell_bitwise():
    """Our fp32 emulation of the bf16 rounding reproduces tirex-ts's bf16 cell exactly."""
    cell = pytest.importorskip("tirex.models.slstm.cell", reason="tirex-ts is in the dev extra")
    B, S, NH, DH = 3, 48, 4, 32
    wx, R, b = random_inputs(B, S, NH, DH, seed=7)
    # Official layout: x [S, B, 4*NH*DH] gate-major in bf16; bias permuted to (gate, NH, DH).
    x_off = wx.permute(1, 0, 2, 3, 4).reshape(S, B, -1).to(torch.bfloat16)
    b_off = b.reshape(NH, 4, DH).permute(1, 0, 2).reshape(-1)
    state = torch.zeros(4, B, NH * DH, dtype=torch.bfloat16)
    out, final = cell.sLSTMCellTorch.slstm_forward(x_off, state, R.to(torch.bfloat16), b_off)
    h, final_ours = slstm_torch_ref(wx, None, R, b, "bf16")
    assert torch.equal(out.float().reshape(S, B, NH, DH).permute(1, 0, 2, 3), h)
    assert torch.equal(final.float(), final_ours)


def test_unknown_kernel_and_numerics():
    from rexforge.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown sLSTM kernel"):
        get_kernel("cuda_magic")
    wx, R, b = random_inputs(1, 2, 1, 4)
    with pytest.raises(ValueError, match="numerics"):
        slstm_torch_ref(wx, None, R, b, "fp16")


def test_bf16_rounding_is_round_to_nearest_even_in_place():
    import numpy as np

    from rexforge.kernels.common import round_bf16, round_bf16_

    gen = torch.Generator().manual_seed(0)
    scales = 10.0 ** torch.randint(-30, 30, (100_000,), generator=gen)
    x = torch.cat(
        [
            torch.randn(100_000, generator=gen) * scales,
            torch.tensor([0.0, -0.0, 1.0, 3.0e38, -3.0e38, 1e-40]),
            # exact ties between two bf16 values: 1 + 2^-8 rounds down (even), 1 + 3*2^-8 up
            torch.tensor([1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8, -(1.0 + 2.0**-8)]),
        ]
    )
    # Oracle on the IEEE bit pattern: add 0x7FFF plus the lowest kept bit, drop 16 bits.
    bits = x.numpy().view(np.uint32).astype(np.uint64)
    expected = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    expected = torch.from_numpy(expected.view(np.float32))
    assert torch.equal(round_bf16(x), expected)
    assert expected[-3:].tolist() == [1.0, 1.0 + 4 * 2.0**-8, -1.0]
    y = x.clone()
    assert round_bf16_(y) is y and torch.equal(y, expected)


@pytest.mark.parametrize("name", list_kernels(available_only=True))
def test_kernels_are_bitwise_equal_to_reference_in_bf16(name):
    # (cpu_compiled runs cpu_fused for bf16 numerics: no compilation here)
    """bf16 numerics amplify last-bit differences, so fast kernels must not reorder the
    arithmetic of the reference at all."""
    wx, R, b = random_inputs(6, 30, 4, 32, seed=11)
    h, state = get_kernel(name)(wx, None, R, b, "bf16")
    h_ref, state_ref = slstm_torch_ref(wx, None, R, b, "bf16")
    assert torch.equal(h, h_ref) and torch.equal(state, state_ref)


@pytest.mark.skipif("cpu_compiled" not in list_kernels(available_only=True), reason="no C++")
def test_compiled_kernel_values_gradients_and_state_carry():
    """One small shape (each new shape compiles, ~10-20 s): values and gradients against the
    reference, from zero state and from a carried state."""
    kernel = get_kernel("cpu_compiled")
    wx, R, b = random_inputs(2, 3, 2, 4, seed=5, requires_grad=True)
    weights = torch.randn(2, 3, 2, 4, generator=torch.Generator().manual_seed(0))
    earlier = random_inputs(2, 2, 2, 4, seed=6)[0]
    _, state0 = slstm_torch_ref(earlier, None, R.detach(), b.detach(), "fp32")  # [4, B, NH*DH]
    for state in (None, state0):
        h, final = kernel(wx, state, R, b, "fp32")
        h_ref, final_ref = slstm_torch_ref(wx, state, R, b, "fp32")
        torch.testing.assert_close(h, h_ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(final, final_ref, atol=1e-5, rtol=1e-5)
        grads = torch.autograd.grad((h * weights).sum(), (wx, R, b))
        ref_grads = torch.autograd.grad((h_ref * weights).sum(), (wx, R, b))
        for got, ref in zip(grads, ref_grads):
            torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    assert not torch.equal(h, kernel(wx, None, R, b, "fp32")[0])  # the carried state mattered
