"""Kernels of numerics="fast": the native cell and the linear kernels against plain torch,
and the plan that picks among them."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from rexforge.kernels import get_kernel, list_kernels
from rexforge.kernels.fast import FastPlan, FastProjections, choose_fast_plan
from rexforge.kernels.linear import quantize_int8_per_row
from rexforge.kernels.reference import slstm_torch_ref
from tests.kernels.test_parity import random_inputs

needs_native = pytest.mark.skipif(
    "cpu_native" not in list_kernels(available_only=True), reason="no C compiler"
)


@needs_native
@pytest.mark.parametrize("shape", [(1, 1, 1, 4), (2, 9, 2, 8), (3, 20, 4, 16), (1, 5, 4, 128)])
def test_native_cell_matches_reference_from_a_state(shape):
    B, S, NH, DH = shape
    wx, R, b = random_inputs(B, S, NH, DH, seed=4)
    wx = wx * 3.0  # saturating gates (|pre-activations| up to ~15) exercise the stable forms
    kernel = get_kernel("cpu_native")
    h, state = kernel(wx, None, R, b, "fp32")
    h_ref, state_ref = slstm_torch_ref(wx, None, R, b, "fp32")
    torch.testing.assert_close(h, h_ref, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(state, state_ref, atol=1e-5, rtol=1e-5)
    # Continuing from a carried state equals the reference continuing from it.
    h2, state2 = kernel(wx, state, R, b, "fp32")
    h2_ref, state2_ref = slstm_torch_ref(wx, state_ref, R, b, "fp32")
    torch.testing.assert_close(h2, h2_ref, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(state2, state2_ref, atol=1e-5, rtol=1e-5)


@needs_native
def test_native_kernel_runs_the_fused_kernel_for_bf16():
    wx, R, b = random_inputs(2, 7, 2, 8, seed=1)
    got = get_kernel("cpu_native")(wx, None, R, b, "bf16")
    expected = get_kernel("cpu_fused")(wx, None, R, b, "bf16")
    assert all(torch.equal(g, e) for g, e in zip(got, expected))


def _rows_and_weight(rows, k=64, n=48, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(rows, k, generator=gen), torch.randn(n, k, generator=gen) / k**0.5


@pytest.mark.parametrize("name", list_kernels(available_only=True, kind="linear"))
@pytest.mark.parametrize("rows", [1, 5, 64])
def test_linear_kernel_matches_torch(name, rows):
    x, w = _rows_and_weight(rows)
    bias = torch.linspace(-1, 1, w.shape[0])
    y = get_kernel(name, kind="linear")(x.reshape(1, rows, -1), w, bias)
    ref = F.linear(x, w, bias).reshape(1, rows, -1)
    assert y.shape == ref.shape and y.dtype == torch.float32
    # Bounds from the operand rounding: bf16 keeps 8 significant bits (relative 2^-9 per
    # operand and on the result); int8 adds half a quantisation step per weight.
    bf16_bound = 3 * 2**-9 * (x.abs() @ w.abs().T) + 2**-9 * ref.abs().reshape(rows, -1)
    if name == "fp32":
        torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
    elif name == "bf16":
        assert ((y.reshape(rows, -1) - ref.reshape(rows, -1)).abs() <= bf16_bound + 1e-6).all()
    elif name == "int8x2_weight":
        q1, s1 = quantize_int8_per_row(w)
        _, s2 = quantize_int8_per_row(w - q1.float() * s1[:, None])
        # half a second-level step per weight, plus fp16 rounding (2^-11) of the activations,
        # the scales and the results
        bound = 0.5 * x.abs().sum(dim=1, keepdim=True) * s2 + 4 * 2**-11 * (x.abs() @ w.abs().T)
        assert ((y.reshape(rows, -1) - ref.reshape(rows, -1)).abs() <= bound + 1e-6).all()
        assert (y - ref).abs().max() > 0
    else:
        _, scale = quantize_int8_per_row(w)
        int8_bound = 0.5 * x.abs().sum(dim=1, keepdim=True) * scale
        # the bf16-rounded scales add 2^-9 relative on top
        bound = int8_bound + bf16_bound * 2
        assert ((y.reshape(rows, -1) - ref.reshape(rows, -1)).abs() <= bound + 1e-6).all()
        assert (y - ref).abs().max() > 0  # it really is quantised


def test_int8_quantisation_round_trips_within_half_a_step():
    _, w = _rows_and_weight(1, k=33, n=7, seed=3)
    w[2] = 0.0  # a zero row must not divide by zero
    q, scale = quantize_int8_per_row(w)
    assert q.dtype == torch.int8 and scale.shape == (7,) and scale[2] == 1.0
    assert ((q.float() * scale[:, None] - w).abs() <= scale[:, None] / 2 + 1e-7).all()
    assert q.abs().amax(dim=1)[[0, 1, 3]].eq(127).all()


def test_plan_picks_kernels_by_rows_and_describes_itself():
    plan = FastPlan("cpu_fused", gemm="fp32", gemv="int8_weight", gemv_max_rows=8)
    assert [plan.linear_for(r) for r in (1, 8, 9)] == ["int8_weight"] * 2 + ["fp32"]
    assert (
        plan.describe()
        == "recurrence cpu_fused (fp32); projections int8_weight up to 8 rows, fp32 above"
    )
    assert FastPlan("cpu_native", "bf16", "bf16", 0).describe().endswith("projections bf16")


def test_chosen_plan_names_registered_kernels():
    plan = choose_fast_plan()
    assert plan.slstm_kernel in list_kernels(available_only=True)
    linear = list_kernels(available_only=True, kind="linear")
    assert plan.gemm in linear and plan.gemv in linear and plan.notes
    assert plan is choose_fast_plan()  # measured once per process


def test_projections_prepare_once_and_again_after_an_update():
    layer = nn.Linear(16, 8)
    project = FastProjections(FastPlan("cpu_fused", "fp32", "int8_weight", 4))
    x = torch.randn(2, 16)
    with torch.no_grad():
        first = project(x, layer)
        assert len(project._packed) == 1
        assert torch.equal(project(x, layer), first)
        layer.weight.mul_(2.0)  # in-place update: a new version
        torch.testing.assert_close(
            project(x, layer) - layer.bias, 2 * (first - layer.bias), atol=2e-2, rtol=2e-2
        )
        # More rows than the plan's GEMV limit: the GEMM kernel, here plain fp32.
        many = torch.randn(5, 16)
        torch.testing.assert_close(project(many, layer), layer(many))


def test_info_reports_the_fast_plan(tiny_ckpt, capsys):
    import json

    from rexforge.cli import main

    assert main(["info", str(tiny_ckpt)]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("fast "))
    assert choose_fast_plan().describe() in line
    assert main(["info", str(tiny_ckpt), "--json"]) == 0
    assert (
        json.loads(capsys.readouterr().out)["fast_numerics"]["plan"]
        == choose_fast_plan().describe()
    )


def test_fused_gate_projections_equal_the_per_gate_ones():
    from rexforge.config import TiRexConfig
    from rexforge.model.slstm import SLSTMLayer

    layer = SLSTMLayer(TiRexConfig.from_name("tirex-test").block_kwargs)
    for name in layer.GATE_SLOT_MODULES:
        torch.nn.init.normal_(getattr(layer, name).weight)
    x = torch.randn(3, 5, layer.fgate.num_heads * layer.fgate.weight.shape[1])
    torch.testing.assert_close(
        layer.gate_inputs_fused(x), layer.gate_inputs(x), atol=1e-5, rtol=1e-5
    )


@needs_native
def test_loading_the_native_cell_keeps_subnormal_numbers():
    """A library linked with -ffast-math may switch the whole process to flush-to-zero."""
    from rexforge.kernels.native_cpu import _library

    _library()
    tiny = torch.tensor([1e-39], dtype=torch.float32)  # subnormal in float32
    assert (tiny / 4).item() > 0 and (tiny * tiny.new_ones(1)).item() == tiny.item()
