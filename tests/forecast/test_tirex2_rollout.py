"""TiRex-2 horizons past the model's cap (future_len; 8 steps for the tiny config, 320 for the
released one): cut with a warning by default, as the reference does, or rolled out with the
median fed back as context (``rollout="median"``) or along paths (``"paths"``)."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
import torch

from rexforge.errors import InputError
from rexforge.forecast.mixture import mixture_quantiles
from rexforge.forecast.tirex2_inputs import TimeseriesType
from rexforge.forecast.tirex2_rollout import extended
from tests.io.test_tirex2_folder import random_forecaster, series

CAP = 8  # TINY.future_len


@pytest.fixture(scope="module")
def model():
    return random_forecaster(seed=1)


def test_default_cuts_at_the_cap_with_a_warning(model, caplog):
    with caplog.at_level(logging.WARNING):
        forecasts = model.forecast(series(), prediction_length=CAP + 5)
    assert [f.shape[-1] for f in forecasts] == [CAP, CAP]
    assert "exceeds the model's horizon 8" in caplog.text


def test_median_rollout_continues_from_the_fed_back_median(model):
    items = series()
    first = model.forecast(items, prediction_length=CAP)
    rolled = model.forecast(items, prediction_length=2 * CAP + 3, rollout="median")
    assert [tuple(f.shape) for f in rolled] == [(2, 9, 19), (1, 9, 19)]
    for got, want in zip(rolled, first):
        assert torch.equal(got[..., :CAP], want)  # the first window is the capped forecast
    # The second window is the forecast of the context extended by the first median.
    fed = [torch.cat([s, f[:, 4]], dim=-1) for s, f in zip(items, first)]
    second = model.forecast(fed, prediction_length=CAP)
    for got, want in zip(rolled, second):
        torch.testing.assert_close(got[..., CAP : 2 * CAP], want, rtol=0, atol=1e-6)


def test_rollout_with_covariates(model):
    gen = torch.Generator().manual_seed(7)
    target = torch.randn(1, 30, generator=gen).cumsum(-1)
    past = torch.randn(2, 30, generator=gen)
    horizon = CAP + 4
    future = torch.randn(1, 30 + horizon, generator=gen)
    [forecast] = model.forecast(
        [target], horizon, past_covariates=[past], future_covariates=[future], rollout="median"
    )
    assert forecast.shape == (1, 9, horizon) and torch.isfinite(forecast).all()
    # Known-future covariates must reach the end of the whole horizon, not just the cap.
    with pytest.raises(InputError, match="plus the horizon 12"):
        model.forecast([target], horizon, future_covariates=[future[:, :-1]], rollout="median")


def test_extended_pads_past_covariates_and_keeps_future_ones():
    item = TimeseriesType(torch.zeros(1, 5), torch.ones(2, 5), torch.ones(1, 9))
    longer = extended(item, torch.full((1, 3), 2.0))
    assert longer.target.tolist() == [[0, 0, 0, 0, 0, 2, 2, 2]]
    assert longer.past_covariates.shape == (2, 8) and longer.past_covariates[:, 5:].isnan().all()
    assert longer.future_covariates is item.future_covariates


def test_unknown_rollout_is_one_error(model):
    with pytest.raises(InputError, match="rollout must be one of cut, median"):
        model.forecast(series(), prediction_length=4, rollout="exact")


def test_forecast_df_rolls_out(model):
    frame = pd.DataFrame(
        {"item_id": "a", "timestamp": pd.date_range("2024-01-01", periods=30, freq="D")}
    )
    frame["target"] = torch.randn(30, generator=torch.Generator().manual_seed(3)).numpy()
    out = model.forecast_df(frame, CAP * 2, rollout="median")
    assert len(out) == 2 * CAP and out["timestamp"].iloc[-1] == pd.Timestamp("2024-02-15")


def test_paths_rollout_mixes_the_forecasts_from_every_quantile_curve(model):
    items = series()  # a 2-variate and a 1-variate target
    first = model.forecast(items, prediction_length=CAP)
    rolled = model.forecast(items, prediction_length=2 * CAP + 3, rollout="paths")
    assert [tuple(f.shape) for f in rolled] == [(2, 9, 19), (1, 9, 19)]
    for got, want in zip(rolled, first):
        assert torch.equal(got[..., :CAP], want)
    # Window 2: the mixture of the forecasts from the context extended by each of window 1's
    # 9 quantile curves (one per path; which path takes which level does not matter here).
    levels = model.quantiles
    for item, got, once in zip(items, rolled, first):
        fed = [torch.cat([item, once[:, level]], dim=-1) for level in range(9)]
        per_path = torch.stack(model.forecast(fed, prediction_length=CAP))  # [9, V, Q, CAP]
        want = mixture_quantiles(per_path.transpose(0, 1), levels)
        torch.testing.assert_close(got[..., CAP : 2 * CAP], want, rtol=0, atol=1e-5)
    # A series' forecast does not depend on the rest of its batch.
    alone = model.forecast(items[1:], prediction_length=2 * CAP + 3, rollout="paths")
    torch.testing.assert_close(alone[0], rolled[1], rtol=0, atol=1e-5)
