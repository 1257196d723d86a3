"""TiRex-2's recurrence kernels: the registry keeps them apart from TiRex's, the plain torch
references equal the kernels TiRex-2 itself runs on CPU (FlashRNN's vanilla sLSTM,
mlstm_kernels' native chunkwise mLSTM), fp32, and the fast CPU kernels equal the references.

Error bounds for the fast kernels are stated against float64 runs of the reference: each fast
kernel must be as close to the exact result as the fp32 reference is, up to a small factor."""

from __future__ import annotations

import pytest
import torch

from rexforge.kernels import get_kernel, list_kernels
from rexforge.kernels.tirex2 import mlstm_chunkwise_torch_ref, slstm_tirex2_torch_ref
from rexforge.kernels.tirex2_mlstm_cpu import mlstm_chunkwise_cpu
from rexforge.kernels.tirex2_slstm_cpu import slstm_tirex2_native_cpu

needs_native = pytest.mark.skipif(
    "cpu_native" not in list_kernels(available_only=True, kind="tirex2_slstm"),
    reason="no C compiler",
)


def test_kinds_are_separate():
    assert get_kernel("torch_ref", kind="tirex2_slstm") is slstm_tirex2_torch_ref
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


# -- fast CPU kernels against the references ----------------------------------------------------
def test_auto_keeps_the_references_and_lists_the_fast_kernels():
    """ "auto" is the reference (tirex-2's numbers); the fast ones are registered below it."""
    for kind in ("tirex2_mlstm", "tirex2_slstm"):
        assert get_kernel("auto", kind=kind) is get_kernel("torch_ref", kind=kind)
    assert get_kernel("cpu_batched", kind="tirex2_mlstm") is mlstm_chunkwise_cpu
    assert "cpu_native" in list_kernels(kind="tirex2_slstm")


def error_bound(got, reference, exact) -> None:
    """got within 2x the fp32 reference's own distance from the float64 result, plus 1e-6 of
    the output's size (fp32 rounding of a result that the reference happens to hit exactly)."""
    scale = exact.abs().max().item()
    own = (reference.double() - exact).abs().max().item()
    assert (got.double() - exact).abs().max().item() <= 2 * own + 1e-6 * scale


@pytest.mark.parametrize("length", [5, 64, 74, 150, 200])
@pytest.mark.parametrize("chunk_size", [64, 16])
@pytest.mark.parametrize("gates", ["typical", "large"])
def test_fast_mlstm_equals_the_reference(length, chunk_size, gates):
    q, k, v, i, f = mlstm_inputs(S=length, seed=length)
    if gates == "large":  # gate pre-activations at the model's soft cap (+-15) and beyond
        i, f = i * 10.0, f * 10.0
    got = mlstm_chunkwise_cpu(q, k, v, i, f, chunk_size=chunk_size, eps=1e-6)
    expected = mlstm_chunkwise_torch_ref(q, k, v, i, f, chunk_size=chunk_size, eps=1e-6)
    exact = mlstm_chunkwise_torch_ref(
        *(t.double() for t in (q, k, v, i, f)), chunk_size=chunk_size, eps=1e-6
    )
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())
    error_bound(got, expected, exact)


def test_fast_mlstm_takes_the_models_strided_head_views_and_backpropagates():
    # The model passes q, k, v as [B, S, NH, D] tensors viewed as [B, NH, S, D].
    q, k, v, i, f = mlstm_inputs(S=90)
    q, k, v = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in (q, k, v))
    leaves = [t.clone().requires_grad_() for t in (q, k, v, i, f)]
    twins = [t.clone().requires_grad_() for t in (q, k, v, i, f)]
    weights = torch.randn(2, 2, 90, 8, generator=torch.Generator().manual_seed(1))
    (mlstm_chunkwise_cpu(*leaves) * weights).sum().backward()
    (mlstm_chunkwise_torch_ref(*twins) * weights).sum().backward()
    for got, expected in zip(leaves, twins):
        torch.testing.assert_close(got.grad, expected.grad, rtol=1e-4, atol=1e-5)


@needs_native
@pytest.mark.parametrize("scale", [1.0, 5.0, 30.0])
def test_native_slstm_equals_the_reference(scale):
    # scale 30: pre-activations up to ~200, far past the saturation of every gate.
    wx, R, b = slstm_inputs(S=40)
    wx = wx * scale
    with torch.no_grad():
        got = slstm_tirex2_native_cpu(wx, R, b)
        expected = slstm_tirex2_torch_ref(wx, R, b)
        exact = slstm_tirex2_torch_ref(wx.double(), R.double(), b.double())
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    error_bound(got, expected, exact)


@needs_native
def test_native_slstm_edge_cases():
    # Forget gate shut and open, input gate shut after the first step, zero recurrent kernel:
    # the floor of n at 1 and the fresh-step stabiliser decide the result.
    wx, R, b = slstm_inputs(S=30)
    wx[:, 1:, 0] = -30.0
    wx[:, :10, 1] = 60.0
    wx[:, 10:, 1] = -60.0
    for recurrent in (R, torch.zeros_like(R)):
        with torch.no_grad():
            got = slstm_tirex2_native_cpu(wx, recurrent, b)
            expected = slstm_tirex2_torch_ref(wx, recurrent, b)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@needs_native
def test_native_slstm_runs_the_reference_for_gradients_and_other_dtypes():
    wx, R, b = slstm_inputs(S=6)
    R.requires_grad_()
    slstm_tirex2_native_cpu(wx, R, b).sum().backward()
    assert R.grad is not None and torch.isfinite(R.grad).all()
    got = slstm_tirex2_native_cpu(wx.double(), R.detach().double(), b.double())
    assert got.dtype == torch.float64
