"""The official-numerics recurrence: the official cell's bits, and close to the emulation."""

import pytest
import torch

from rexforge.kernels import get_kernel
from rexforge.kernels.official import slstm_official
from rexforge.kernels.reference import slstm_torch_ref
from tests.kernels.test_parity import random_inputs


@pytest.mark.parametrize("shape", [(3, 48, 4, 32), (2, 20, 4, 128), (1, 5, 1, 8)])
def test_official_kernel_equals_official_cell_bitwise(shape):
    cell = pytest.importorskip("tirex.models.slstm.cell", reason="tirex-ts is in the dev extra")
    B, S, NH, DH = shape
    wx, R, b = random_inputs(B, S, NH, DH, seed=7)
    # The official cell's layout: x [S, B, 4*NH*DH] gate-major in bf16, bias (gate, NH, DH).
    x_off = wx.permute(1, 0, 2, 3, 4).to(torch.bfloat16).reshape(S, B, -1)
    b_off = b.reshape(NH, 4, DH).permute(1, 0, 2).reshape(-1)
    state = torch.zeros(4, B, NH * DH, dtype=torch.bfloat16)
    out, final = cell.sLSTMCellTorch.slstm_forward(x_off, state, R.to(torch.bfloat16), b_off)
    h, final_ours = slstm_official(wx, None, R, b)
    assert h.shape == (B, S, NH, DH) and h.dtype == torch.float32
    assert torch.equal(out.float().reshape(S, B, NH, DH).permute(1, 0, 2, 3), h)
    assert torch.equal(final.float(), final_ours)


def test_official_kernel_carries_state_and_stays_near_the_emulation():
    wx, R, b = random_inputs(2, 24, 2, 16, seed=3)
    h, state = slstm_official(wx, None, R, b)
    h1, s1 = slstm_official(wx[:, :10], None, R, b)
    h2, s2 = slstm_official(wx[:, 10:], s1, R, b)
    assert torch.equal(torch.cat((h1, h2), 1), h) and torch.equal(s2, state)
    # The emulation differs by at most a few bf16 rounding flips (values here are O(1)).
    h_emul, _ = slstm_torch_ref(wx, None, R, b, "bf16")
    assert (h - h_emul).abs().max() < 2e-2


def test_registered_kernels_refuse_official_numerics():
    wx, R, b = random_inputs(1, 2, 1, 4)
    for name in ("torch_ref", "cpu_fused"):
        with pytest.raises(ValueError, match="slstm_official"):
            get_kernel(name)(wx, None, R, b, "official")
    with pytest.raises(ValueError, match="official"):
        slstm_official(wx, None, R, b, "bf16")
