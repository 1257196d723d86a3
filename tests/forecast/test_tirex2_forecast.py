"""TiRex2Forecaster: forecasts equal to the reference ``tirex2`` 0.4.0 ``ForecastModel.forecast``
on the same random weights (skipped where it is not installed), loading an official folder
through ``rexforge.load_model``, and one-line ``InputError``s for unusable input.

The tiny config forecasts at most future_len = 8 steps, two output patches of 4.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

import rexforge
from rexforge import load_model
from rexforge.config_tirex2 import TiRex2Config
from rexforge.errors import CheckpointError, InputError
from rexforge.forecast.tirex2_api import TimeseriesType, TiRex2Forecaster
from rexforge.forecast.tirex2_post import difference_rows, last_observed, trending_rows
from rexforge.registry import create_model, get_family
from tests.forecast.tirex2_reference import TINY, reference_network, save_official_folder

HORIZON = TINY.future_len  # 8 steps: two output patches


@pytest.fixture(scope="module")
def pair():
    """(reference ForecastModel, our forecaster) holding the same random weights."""
    forecast_api = pytest.importorskip("tirex2.api_adapter")
    network = reference_network()
    ours = TiRex2Forecaster(create_model(TINY, state_dict=network.state_dict()))
    return forecast_api.ForecastModel(network), ours


def walks(variates: int, steps: int, seed: int) -> torch.Tensor:
    """[variates, steps] random walks around 5."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(variates, steps, generator=gen).cumsum(-1) * 2.0 + 5.0


def trend(steps: int, seed: int) -> torch.Tensor:
    """[steps]: a steady rise with a little noise, which the post-processor differences."""
    gen = torch.Generator().manual_seed(seed)
    return torch.arange(steps) * 0.5 + 0.1 * torch.randn(steps, generator=gen)


def reference_series(target, past=None, future=None):
    from tirex2 import TimeseriesType as ReferenceSeries

    return ReferenceSeries(target=target, past_covariates=past, future_covariates=future)


def assert_same_forecasts(ours: list, reference: list) -> float:
    """Equal up to float32 noise relative to each forecast's scale; returns the largest
    relative difference."""
    assert [tuple(f.shape) for f in ours] == [tuple(f.shape) for f in reference]
    worst = 0.0
    for got, want in zip(ours, reference):
        got, want = torch.as_tensor(got), torch.as_tensor(want)
        scale = want.abs().max().item()
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * scale)
        worst = max(worst, (got - want).abs().max().item() / scale)
    return worst


# -- parity with the reference -----------------------------------------------------------------
def test_univariate_arrays_equal_the_reference(pair):
    reference, ours = pair
    series = [walks(1, steps, seed)[0].numpy() for seed, steps in enumerate((5, 20, 31, 90))]
    series[1][3:7] = np.nan  # a gap
    series[2][:10] = np.nan  # a late start
    series.append(trend(40, seed=9).numpy())  # differenced
    want = reference.forecast([reference_series(torch.tensor(s)[None]) for s in series], HORIZON)
    assert_same_forecasts(ours.forecast(series, HORIZON), want)
    # A 2-D array: each row its own univariate series.
    rows = np.stack([walks(1, 24, seed)[0].numpy() for seed in range(3)])
    want = reference.forecast([reference_series(torch.tensor(r)[None]) for r in rows], HORIZON)
    assert_same_forecasts(ours.forecast(rows, HORIZON), want)


def test_multivariate_targets_and_covariates_equal_the_reference(pair):
    reference, ours = pair
    both = walks(2, 50, seed=1)
    both[1, :12] = float("nan")
    mixed = torch.stack([walks(1, 30, seed=2)[0], trend(30, seed=3)])  # one row differenced
    past, future = walks(1, 50, seed=4), walks(2, 50 + HORIZON + 3, seed=5)  # 3 extra steps
    future[0, 20:25] = float("nan")
    want = reference.forecast(
        [reference_series(both, past, future), reference_series(mixed, None, walks(1, 38, 6))],
        HORIZON,
    )
    got = ours.forecast(
        [both, mixed],
        HORIZON,
        past_covariates=[past, None],
        future_covariates=[future, walks(1, 38, 6)],
    )
    assert_same_forecasts(got, want)


@pytest.mark.parametrize(
    "options",
    [{"tta_sign_flip": True}, {"tta_diff": False}, {"pad_context": False, "batch_size": 2}],
)
@pytest.mark.parametrize("horizon", [3, HORIZON])
def test_forecast_options_equal_the_reference(pair, options, horizon):
    reference, ours = pair
    items = [
        reference_series(walks(1, 12, seed=1)),
        reference_series(torch.stack([trend(45, 2), walks(1, 45, 3)[0]]), walks(1, 45, 4)),
        reference_series(walks(1, 70, seed=5), None, walks(1, 70 + horizon, 6)),
    ]
    want = reference.forecast(items, horizon, **options)
    # The reference's own TimeseriesType items work unchanged.
    assert_same_forecasts(ours.forecast(items, horizon, **options), want)


def test_a_horizon_beyond_future_len_is_cut_as_the_reference_cuts_it(pair, caplog):
    reference, ours = pair
    items = [TimeseriesType(walks(1, 25, seed=1)), TimeseriesType(trend(33, 2)[None])]
    want = reference.forecast(items, 3 * HORIZON)
    with caplog.at_level(logging.WARNING, logger="rexforge.forecast.tirex2_api"):
        got = ours.forecast(items, 3 * HORIZON)
    assert "exceeds the model's horizon" in caplog.text
    assert got[0].shape == (1, TINY.num_quantiles, HORIZON)
    assert_same_forecasts(got, want)


def test_load_model_reads_an_official_folder(tmp_path):
    tirex2 = pytest.importorskip("tirex2")
    folder = save_official_folder(reference_network(seed=3), TINY, tmp_path / "tirex2")
    reference = tirex2.load_model(str(folder), device="cpu")  # the layout is the official one
    ours = load_model(folder)
    assert type(ours) is TiRex2Forecaster and ours.config == TINY
    items = [TimeseriesType(walks(2, 40, seed=1), walks(1, 40, 2), walks(1, 48, 3))]
    want = reference.forecast(items, HORIZON, output_type="numpy")
    got = ours.forecast(items, HORIZON, output_type="numpy")
    assert isinstance(got[0], np.ndarray)
    assert_same_forecasts(got, want)


def test_a_folder_with_weights_of_another_size_is_refused(tmp_path):
    pytest.importorskip("tirex2")
    folder = save_official_folder(reference_network(), TINY, tmp_path / "tirex2")
    wider = TiRex2Config.from_name("tirex2-test", embedding_dim=48)
    (folder / "config.json").write_text(json.dumps(wider.to_official()))
    with pytest.raises(CheckpointError, match="weights do not match") as info:
        load_model(folder)
    assert "\n" not in str(info.value)


# -- without the reference --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def forecaster():
    torch.manual_seed(0)
    return TiRex2Forecaster(create_model(TINY))


def test_family_forecaster_and_output_forms(forecaster):
    assert get_family("tirex2").forecaster_class is TiRex2Forecaster is rexforge.TiRex2Forecaster
    series = [walks(1, 20, seed)[0].numpy() for seed in range(3)]
    forecasts = forecaster.forecast(series, 5)
    assert [tuple(f.shape) for f in forecasts] == [(1, 9, 5)] * 3
    batches = list(forecaster.forecast(series, 5, batch_size=2, yield_per_batch=True))
    assert [len(b) for b in batches] == [2, 1]
    torch.testing.assert_close(torch.cat([f for b in batches for f in b]), torch.cat(forecasts))
    quantiles, mean = forecaster.predict_quantiles(series, 5)
    assert quantiles.shape == (3, 5, 9) and mean.shape == (3, 5)
    torch.testing.assert_close(mean, quantiles[..., 4])
    all_missing = forecaster.forecast([np.full(10, np.nan)], 4)[0]
    assert torch.isfinite(all_missing).all()


def test_post_processing_helpers():
    rows = torch.tensor([[1.0, 2.0, float("nan")], [float("nan")] * 3])
    torch.testing.assert_close(last_observed(rows), torch.tensor([2.0, 0.0]))
    diffed = difference_rows(
        torch.tensor([[float("nan"), 1.0, 3.0], [1.0, 2.0, 4.0]]), [True, False]
    )
    torch.testing.assert_close(
        diffed, torch.tensor([[0.0, float("nan"), 2.0], [1.0, 2.0, 4.0]]), equal_nan=True
    )
    line = torch.stack([torch.arange(20.0), torch.ones(20), torch.arange(20.0) % 2])
    assert trending_rows(line) == [True, False, False]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda f: f.forecast(np.zeros((2, 3, 10)), 4), "1-D or 2-D"),
        (lambda f: f.forecast("abc", 4), "not supported"),
        (lambda f: f.forecast([np.array([1.0, np.inf])], 4), "inf"),
        (lambda f: f.forecast([np.array([])], 4), "empty"),
        (lambda f: f.forecast([["a", "b"]], 4), "non-numeric"),
        (lambda f: f.forecast(np.ones(10), 0), "must be > 0"),
        (lambda f: f.forecast(np.ones(10), 4, output_type="gluonts"), "output_type"),
        (lambda f: f.forecast(np.ones(10), 4, past_covariates=np.ones(9)), "equally long"),
        (lambda f: f.forecast(np.ones(10), 4, future_covariates=np.ones(12)), "plus the horizon"),
        (lambda f: f.forecast([np.ones(5)] * 2, 4, past_covariates=[None]), "1 entries for 2"),
        (lambda f: f.forecast(np.ones(10), 4, batch_size=0), "batch_size"),
    ],
)
def test_bad_input_gives_a_one_line_input_error(forecaster, call, message):
    with pytest.raises(InputError, match=message) as info:
        call(forecaster)
    assert "\n" not in str(info.value)


def test_the_forecast_command_reads_a_tirex2_folder(tmp_path, capsys):
    # The CLI forecasts each series of a long table as one TiRex-2 target; TiRex-only options
    # and horizons past the model's output are one-line errors.
    from rexforge.cli import main

    pytest.importorskip("tirex2")  # save_official_folder names the shared tensors as it does
    torch.manual_seed(0)
    network = create_model(TINY)
    for p in network.parameters():
        p.data.normal_(0, 0.2)
    folder = save_official_folder(network, TINY, tmp_path / "tirex2")
    t = np.arange(40)
    rows = [f"s{i},{k},{np.sin(k / 3) + i}" for i in (0, 1) for k in t]
    data = tmp_path / "data.csv"
    data.write_text("item_id,timestamp,target\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out.csv"
    args = ["forecast", "--model", str(folder), "--data", str(data), "--horizon", "8"]
    assert main([*args, "--output", str(out)]) == 0
    import pandas as pd

    frame = pd.read_csv(out)
    series = [np.sin(t / 3) + 0.0, np.sin(t / 3) + 1.0]
    quantiles, mean = load_model(folder).predict_quantiles(series, 8)
    assert list(frame["timestamp"][:8]) == list(range(40, 48))
    np.testing.assert_allclose(frame["mean"], mean.reshape(-1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(frame["0.9"], quantiles[..., -1].reshape(-1), rtol=1e-5, atol=1e-6)
    capsys.readouterr()
    assert main([*args, "--horizon", "9", "--output", str(out)]) == 2
    assert main([*args, "--rollout", "exact", "--output", str(out)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == [
        "error: this TiRex-2 model forecasts at most 8 steps, got --horizon 9; add --rollout "
        "median or paths to forecast further",
        "error: --rollout exact/stateful and --resample-strategy apply to TiRex models, not "
        "TiRex-2 (which has --rollout median or paths)",
    ]
    # Past the cap with the median fed back: the first 8 steps are the capped forecast.
    assert main([*args, "--horizon", "12", "--rollout", "median", "--output", str(out)]) == 0
    rolled = pd.read_csv(out)
    assert len(rolled) == 2 * 12
    np.testing.assert_allclose(
        rolled["mean"].to_numpy().reshape(2, 12)[:, :8], mean.numpy(), rtol=1e-5, atol=1e-6
    )
