"""Forecasts equal those of the official package (tirex-ts) on the same random weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rexforge import load_model
from tests.conftest import make_context, tolerance_scale

tirex_models = pytest.importorskip("tirex.models.tirex", reason="tirex-ts is in the dev extra")


def official(path):
    return tirex_models.TiRexZero.from_pretrained(str(path), backend="torch", device="cpu")


def relative_deviation(ours, ref, context) -> np.ndarray:
    """max |ours - ref| over steps and quantiles, per series, in units of the series' std."""
    diff = np.abs(np.asarray(ours) - np.asarray(ref)).max(axis=(1, 2))
    return diff / tolerance_scale(context)


# Short, partial-patch, multi-patch, > 2048 steps, NaN gap, constant, single step.
TINY_LENGTHS = [1, 5, 31, 33, 100, 257, 2100, 64, 700]


@pytest.mark.parametrize("horizon", [32, 96, 300])
def test_tiny_matches_official(tiny_ckpt, horizon):
    context = make_context(TINY_LENGTHS, seed=horizon, nan_gap_in=5, constant_in=7)
    ref_q, ref_m = official(tiny_ckpt).forecast(context, prediction_length=horizon)
    q, m = load_model(tiny_ckpt).forecast(context, prediction_length=horizon)
    assert q.shape == ref_q.shape == (len(context), horizon, 9)
    assert m.shape == (len(context), horizon)
    dev = relative_deviation(q, ref_q, context)
    assert dev.max() < 1e-3, dev
    assert torch.equal(m, q[..., 4])


def test_tiny_batch_size_and_order_do_not_change_results(tiny_ckpt):
    context = make_context(TINY_LENGTHS, seed=1, nan_gap_in=2)
    model = load_model(tiny_ckpt)
    q_all, _ = model.forecast(context, prediction_length=40)
    q_small, _ = model.forecast(context, prediction_length=40, batch_size=2)
    q_alone = torch.cat([model.forecast([c], prediction_length=40)[0] for c in context])
    # Different batch compositions change matrix shapes and thus the last float bits.
    scale = torch.tensor(tolerance_scale(context))[:, None, None]
    assert ((q_all - q_small).abs() / scale).max() < 1e-3
    assert ((q_all - q_alone).abs() / scale).max() < 1e-3


@pytest.mark.slow
def test_tirex_35m_matches_official(full_ckpt):
    """The official size: same parameter names and count, and forecasts close to tirex-ts.

    Tolerance: both run the recurrence with bf16 rounding, but the official bf16 matmul sums
    in an order we cannot reproduce exactly in fp32; about 1 in 10^5 recurrent products then
    rounds to the neighbouring bf16 value, and 12 blocks x 64 steps of sLSTM amplify such a
    flip. Depending on the weights and the batch, a series agrees to ~1e-6 of its std or
    deviates by up to ~2.5e-2 (the thread count changes the matmul blocking and with it which
    products flip); we require the median below 5e-3 and the maximum below 5e-2, and that the
    fp32 mode (the size of the official path's own bf16 noise, ~6e-2) is clearly further away:
    the reason the rounding is reproduced at all. benchmarks/parity.py records the spread.
    """
    off = official(full_ckpt)
    ours = load_model(full_ckpt)
    assert ours.num_parameters() == 35_291_200
    assert set(ours.model.state_dict()) == set(off.state_dict())
    context = make_context([7, 90, 300, 1000, 2500, 64], seed=3, nan_gap_in=2, constant_in=5)
    devs, devs_fp32 = [], []
    fp32 = load_model(full_ckpt, numerics="fp32")
    for horizon in (32, 96, 300):
        ref_q, _ = off.forecast(context, prediction_length=horizon)
        q, _ = ours.forecast(context, prediction_length=horizon)
        devs.append(relative_deviation(q, ref_q, context))
        if horizon == 32:
            q32, _ = fp32.forecast(context, prediction_length=horizon)
            devs_fp32.append(relative_deviation(q32, ref_q, context))
    devs = np.concatenate(devs)
    devs_fp32 = np.concatenate(devs_fp32)
    print(
        f"bf16 mode: median {np.median(devs):.2e} max {devs.max():.2e}; "
        f"fp32 mode: median {np.median(devs_fp32):.2e} max {devs_fp32.max():.2e}"
    )
    assert np.median(devs) < 5e-3, devs
    assert devs.max() < 5e-2, devs
    assert np.median(devs_fp32) > 5 * np.median(devs)


def test_accelerated_and_stateful_rollouts_match_the_official_accelerated_rollout(tiny_ckpt):
    """Official ``max_accelerated_rollout_steps`` feeds masked tokens after the context in one
    pass; our stateful rollout carries the states instead. Both agree with the official one
    for series that fit the window (no re-cut)."""
    context = make_context([3, 40, 150], seed=5, nan_gap_in=2)
    off = official(tiny_ckpt)
    ref_q, _ = off.forecast(context, prediction_length=96, max_accelerated_rollout_steps=3)
    model = load_model(tiny_ckpt)
    for kwargs in ({"max_accelerated_rollout_steps": 3}, {"rollout": "stateful"}):
        q, _ = model.forecast(context, prediction_length=96, **kwargs)
        assert relative_deviation(q, ref_q, context).max() < 1e-3, kwargs
    exact, _ = model.forecast(context, prediction_length=96)
    # ...and differ from the exact (rerun) rollout after the first patch.
    assert relative_deviation(exact[:, 32:], ref_q[:, 32:], context).max() > 1e-2
