"""Evaluating TiRex-2 models: plain backtests like TiRex's, and covariate-aware rolling
backtests in which a window's known-future covariates reach the model and its target never
does (``rexforge.eval.covariates``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rexforge.cli import main
from rexforge.errors import InputError
from rexforge.eval.backtest import backtest
from rexforge.eval.baselines import get_baseline
from rexforge.eval.covariates import CovariateItem, backtest_covariates, items_from_frame
from rexforge.eval.forecasters import ModelView, takes_covariates
from tests.io.test_tirex2_folder import random_forecaster

HORIZON = 4


@pytest.fixture(scope="module")
def model():
    return random_forecaster(seed=11)


def make_items(count: int = 3, steps: int = 40, seed: int = 0) -> list[CovariateItem]:
    """Items with two targets, one past-only and one known-future covariate."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(count):
        walk = rng.normal(size=(2, steps)).cumsum(1) + 5
        items.append(
            CovariateItem(
                f"s{i}",
                ["x", "y"],
                walk,
                past=rng.normal(size=(1, steps)),
                future=np.sin(np.arange(steps) / 3.0)[None] * (i + 1),
            )
        )
    return items


class Spy:
    """A forecaster that takes covariates and records what it was given."""

    quantiles = [0.1, 0.5, 0.9]

    def __init__(self):
        self.seen = []

    def forecast(
        self,
        timeseries,
        prediction_length,
        *,
        past_covariates=None,
        future_covariates=None,
        output_type="numpy",
        batch_size=8,
    ):
        self.seen.append(timeseries)
        return [
            np.repeat(np.nanmean(item.target.numpy(), axis=1)[:, None, None], 3, 1).repeat(
                prediction_length, 2
            )
            for item in timeseries
        ]


def test_tirex2_backtests_like_tirex(model):
    """A TiRex-2 model goes through the same backtest as TiRex, via its predict_quantiles."""
    from rexforge.data.series import TimeSeries

    rng = np.random.default_rng(1)
    series = [TimeSeries(f"s{i}", rng.normal(size=30).cumsum()) for i in range(3)]
    result = backtest(model, series, HORIZON, windows=2)
    assert result.quantile_forecasts.shape == (6, HORIZON, 9)
    # Window 1 (the last) forecasts from all but the last HORIZON points.
    quantiles, mean = model.predict_quantiles([s.target[:-HORIZON] for s in series], HORIZON)
    np.testing.assert_allclose(result.quantile_forecasts[1::2], quantiles.numpy(), rtol=1e-6)
    np.testing.assert_allclose(result.mean[1::2], mean.numpy(), rtol=1e-6)
    assert np.isfinite(result.metrics["mase"]) and np.isfinite(result.metrics["wql"])


def test_windows_see_the_test_window_covariates_never_its_target():
    spy, items = Spy(), make_items()
    result = backtest_covariates(spy, items, HORIZON, windows=2, stride=3)
    assert result.y.shape == (12, HORIZON)  # 3 items x 2 targets x 2 windows
    for w, seen in enumerate(spy.seen):
        cutoff = 40 - HORIZON - (1 - w) * 3
        for item, given in zip(items, seen):
            assert given.target.shape == (2, cutoff)
            assert given.past_covariates.shape == (1, cutoff)
            assert given.future_covariates.shape == (1, cutoff + HORIZON)
            np.testing.assert_allclose(given.target.numpy(), item.targets[:, :cutoff], rtol=1e-6)
            np.testing.assert_allclose(
                given.future_covariates.numpy(), item.future[:, : cutoff + HORIZON], rtol=1e-6
            )
    assert list(result.per_series["item_id"][:4]) == ["s0/x", "s0/x", "s0/y", "s0/y"]


def test_tirex2_uses_future_covariates_and_never_the_test_target(model):
    items = make_items()
    base = backtest_covariates(model, items, HORIZON).quantile_forecasts
    # A different test-window target changes only the actuals, not the forecasts.
    leaked = make_items()
    for item in leaked:
        item.targets[:, -HORIZON:] = 1e6
        item.past[:, -HORIZON:] = -1e6
    result = backtest_covariates(model, leaked, HORIZON)
    np.testing.assert_array_equal(result.quantile_forecasts, base)
    assert result.y.max() == 1e6
    # Different known-future values in the test window do change them: they are used.
    shifted = make_items()
    for item in shifted:
        item.future[:, -HORIZON:] += 3.0
    assert not np.allclose(backtest_covariates(model, shifted, HORIZON).quantile_forecasts, base)


def test_forecasters_without_covariates_score_their_own_past(model):
    items = make_items()
    naive = get_baseline("naive")
    assert not takes_covariates(naive) and takes_covariates(ModelView(model))
    with_items = backtest_covariates(naive, items, HORIZON, windows=2)
    plain = backtest(naive, [s for i in items for s in i.target_series()], HORIZON, windows=2)
    assert with_items.metrics == plain.metrics


def test_horizon_past_the_cap_is_one_error(model):
    with pytest.raises(InputError, match="forecasts at most 8 steps, fewer than the horizon 12"):
        backtest_covariates(model, make_items(steps=60), 12)


def long_frame(steps: int = 40) -> pd.DataFrame:
    rows = []
    for item in make_items(steps=steps):
        times = pd.date_range("2024-01-01", periods=steps, freq="D")
        rows.append(
            pd.DataFrame(
                {
                    "item_id": item.item_id,
                    "timestamp": times,
                    "x": item.targets[0],
                    "y": item.targets[1],
                    "promo": item.past[0],
                    "calendar": item.future[0],
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_items_from_a_long_frame():
    frame = long_frame().drop(index=[5])  # a missing row is a NaN step
    items = items_from_frame(
        frame, target=["x", "y"], past_covariates=["promo"], future_covariates=["calendar"]
    )
    assert [i.item_id for i in items] == ["s0", "s1", "s2"]
    assert items[0].targets.shape == (2, 40) and np.isnan(items[0].targets[:, 5]).all()
    assert items[0].freq == "D" and items[0].timestamps[0] == pd.Timestamp("2024-01-01")
    with pytest.raises(InputError, match="both past and future"):
        items_from_frame(frame, target="x", past_covariates=["promo"], future_covariates=["promo"])


def test_cli_evaluates_tirex2_with_covariates(model, tmp_path, capsys):
    folder = model.save(tmp_path / "tirex2")
    data = tmp_path / "d.csv"
    long_frame().to_csv(data, index=False)
    out = tmp_path / "report"
    args = ["evaluate", "--model", str(folder), "--data", str(data), "--target", "x,y"]
    args += ["--past-covariates", "promo", "--future-covariates", "calendar", "--horizon", "4"]
    args += ["--windows", "2", "--baselines", "naive", "--no-plots", "--output-dir", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    table = pd.read_csv(out / "metrics.csv")
    assert len(table) == 2 and table.iloc[:, 0].astype(str).str.contains("tirex2").any()
    assert np.isfinite(table["mase"]).all()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--future-covariates", "nope"], "nope"),
        (["--past-covariates", "name"], "not numeric"),
    ],
)
def test_cli_bad_covariates_are_one_line(model, tmp_path, capsys, extra, message):
    folder = model.save(tmp_path / "tirex2")
    data = tmp_path / "d.csv"
    frame = long_frame()
    frame["name"] = "text"
    frame.to_csv(data, index=False)
    args = ["evaluate", "--model", str(folder), "--data", str(data), "--target", "x"]
    assert main([*args, "--horizon", "4", "--no-plots", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_torch_inputs_are_float32_copies():
    item = make_items(count=1)[0]
    given = item.window_input(10, HORIZON, context_length=6)
    assert given.target.dtype == torch.float32 and given.target.shape == (2, 6)
    assert given.future_covariates.shape == (1, 6 + HORIZON)
