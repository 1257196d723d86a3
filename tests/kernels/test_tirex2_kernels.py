"""TiRex-2's recurrence kernels: the registry keeps them apart from TiRex's, and the plain
torch references equal the kernels TiRex-2 itself runs on CPU (FlashRNN's vanilla sLSTM,
mlstm_kernels' native chunkwise mLSTM), fp32."""

from __future__ import annotations

import pytest
import torch

from rexforge.kernels import get_kernel, list_kernels
from rexforge.kernels.tirex2 import mlstm_chunkwise_torch_ref, slstm_tirex2_torch_ref


def test_kinds_are_separate():
    assert get_kernel("auto", kind="tirex2_slstm") is slstm_tirex2_torch_ref
    assert get_kernel("torch_ref", kind="tirex2_mlstm") is mlstm_chunkwise_torch_ref
    assert slstm_tirex2_torch_ref is not get_kernel("torch_ref")  # TiRex's default kind
    assert mlstm_chunkwise_torch_ref not in [get_kernel(name) for name in list_kernels()]


def slstm_inputs(B=3, S=20, NH=2, DH=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    wx = torch.randn(B, S, 4, NH, DH, generator=gen) * 2.0
    R = torch.randn(NH, DH, 4, DH, generator=gen) * 0.5
    b = torch.randn(NH, 4, DH, generator=gen)
    return wx, R, b


def test_slstm_equals_flashrnn_vanilla():
    flashrnn = pytest.importorskip("flashrnn")
    wx, R, b = slstm_inputs()
    B, S, G, NH, DH = wx.shape
    config = flashrnn.FlashRNNConfig(
        hidden_dim=NH * DH, num_heads=NH, head_dim=DH, backend="vanilla", function="slstm",
        recurrent_shape="HPGD", bias_shape="HGD", dtype="float32",
    )  # fmt: skip
    states, _ = flashrnn.flashrnn(Wx=wx, R=R, b=b, config=config)
    expected = states[0]  # state 0 is the hidden output y: [B, S, NH, DH]
    torch.testing.assert_close(slstm_tirex2_torch_ref(wx, R, b), expected, rtol=1e-6, atol=1e-6)


def test_slstm_normaliser_is_floored_at_one():
    # With the input gate shut and the forget gate open, TiRex's cell would let n decay
    # towards 0 and h = c / n stay large; TiRex-2's floor makes h shrink with c.
    wx, R, b = slstm_inputs(S=30)
    wx[:, 1:, 0] = -30.0  # input-gate slot: shut after the first step
    wx[:, :, 1] = 30.0  # forget-gate slot: open
    h = slstm_tirex2_torch_ref(wx, torch.zeros_like(R), b)
    assert h.abs().max() <= 1.0 and torch.isfinite(h).all()


def mlstm_inputs(B=2, NH=2, S=150, DQK=6, DV=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(B, NH, S, DQK, generator=gen) for _ in range(2))
    v = torch.randn(B, NH, S, DV, generator=gen)
    i = torch.randn(B, NH, S, generator=gen) * 3.0
    f = torch.randn(B, NH, S, generator=gen) * 3.0 + 2.0
    return q, k, v, i, f


@pytest.mark.parametrize("length", [150, 128, 5])
def test_mlstm_equals_mlstm_kernels_native_chunkwise(length):
    native = pytest.importorskip("mlstm_kernels.torch.chunkwise.native.fw")
    q, k, v, i, f = mlstm_inputs(S=length)
    pad = -length % 64  # the official kernel needs whole chunks; padding comes last (causal)
    padded = [torch.nn.functional.pad(t, (0, 0, 0, pad)) for t in (q, k, v)]
    padded += [torch.nn.functional.pad(t, (0, pad)) for t in (i, f)]
    expected = native.mlstm_chunkwise(*padded, chunk_size=64, eps=1e-6)[:, :, :length]
    got = mlstm_chunkwise_torch_ref(q, k, v, i, f, chunk_size=64, eps=1e-6)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_mlstm_chunk_size_changes_only_the_eps_term():
    # In float64: with eps 0 the chunking only regroups the same sums, but where q.n nearly
    # cancels, fp32 regrouping alone moves the result by ~1e-3.
    q, k, v, i, f = (t.double() for t in mlstm_inputs())
    whole = mlstm_chunkwise_torch_ref(q, k, v, i, f, chunk_size=150, eps=0.0)
    chunked = mlstm_chunkwise_torch_ref(q, k, v, i, f, chunk_size=16, eps=0.0)
    torch.testing.assert_close(chunked, whole, rtol=1e-10, atol=1e-10)
