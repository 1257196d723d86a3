"""Accuracy guard for numerics="fast" on a tiny random model: each of its kernel plans stays
within a stated distance of the exact fp32 forecasts. Every plan is forced here, so the bounds
hold on any CPU, whatever ``choose_fast_plan`` would pick on it."""

import numpy as np
import pytest

from rexforge import load_model
from rexforge.eval.metrics import evaluate_forecasts, seasonal_scale
from rexforge.kernels import list_kernels
from rexforge.kernels.fast import FastPlan, FastProjections
from tests.conftest import make_context, tolerance_scale

RECURRENCE = "cpu_native" if "cpu_native" in list_kernels(available_only=True) else "cpu_fused"
HORIZON = 64

# (plan, bound on max |q_fast - q_fp32| / series std). For scale: the bf16 emulation of the
# official rounding is ~1e-2 std from fp32 on this model; bf16 projections add about as much,
# one-level int8 weights (every projection, at every row count) about three times that, two
# int8 levels (what the plan picks for GEMVs) ~1.5e-3.
PLANS = [
    (FastPlan(RECURRENCE, "fp32", "fp32", 0), 1e-5),
    (FastPlan(RECURRENCE, "bf16", "bf16", 0), 0.03),
    (FastPlan(RECURRENCE, "fp32", "int8_weight", 10**9), 0.08),
    (FastPlan(RECURRENCE, "fp32", "int8x2_weight", 10**9), 5e-3),
    (FastPlan(RECURRENCE, "bf16", "int8x2_weight", 4), 0.03),
]


def _forecast(model, series):
    return model.forecast(series, prediction_length=HORIZON, output_type="numpy")


def _wql_mase(series, quantiles, mean, levels):
    history = [s[:-HORIZON] for s in series]
    y = np.stack([s[-HORIZON:] for s in series])
    scale = np.array([seasonal_scale(h, 1) for h in history])
    return evaluate_forecasts(y, quantiles, mean, levels, scale)[1]


@pytest.mark.parametrize("plan,bound", PLANS, ids=[p.describe() for p, _ in PLANS])
def test_fast_forecasts_stay_within_bound_of_exact(tiny_ckpt, plan, bound):
    series = make_context([104, 300, 700, 2100, 160, 192], seed=5, nan_gap_in=2)
    context = [s[:-HORIZON] for s in series]
    exact = load_model(tiny_ckpt, numerics="fp32")
    fast = load_model(tiny_ckpt, numerics="fast")
    fast.model.projections = FastProjections(plan)
    fast.model.set_kernel(plan.slstm_kernel)
    q_exact, m_exact = _forecast(exact, context)
    q_fast, m_fast = _forecast(fast, context)
    dev = np.abs(q_fast - q_exact).max(axis=(1, 2)) / tolerance_scale(context)
    assert dev.max() <= bound
    if bound > 1e-5:
        assert dev.max() > 1e-6  # the plan's kernels really ran
    levels = exact.quantiles
    exact_metrics = _wql_mase(series, q_exact, m_exact, levels)
    fast_metrics = _wql_mase(series, q_fast, m_fast, levels)
    for name in ("wql", "mase"):
        assert abs(fast_metrics[name] / exact_metrics[name] - 1) < 0.005


def test_fast_model_uses_the_plan_and_an_fp32_recurrence(tiny_ckpt):
    model = load_model(tiny_ckpt, numerics="fast").model
    assert model.numerics == "fast" and model.kernel_numerics == "fp32"
    assert model.kernel_name == model.projections.plan.slstm_kernel
    assert load_model(tiny_ckpt).model.projections is None
