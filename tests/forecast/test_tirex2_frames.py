"""TiRex2Forecaster.forecast_df: long DataFrames in and out, forecasts equal to the reference
``tirex2`` 0.4.0 ``ForecastModel.forecast_df`` on the same random weights (skipped where it is
not installed), continued timestamps, and one-line ``InputError``s for unusable frames.

The tiny config forecasts at most future_len = 8 steps.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from rexforge.errors import InputError
from rexforge.forecast.tirex2_api import TimeseriesType, TiRex2Forecaster
from rexforge.registry import create_model
from tests.forecast.tirex2_reference import TINY, reference_network

HORIZON = TINY.future_len
QUANTILES = [f"0.{i}" for i in range(1, 10)]


@pytest.fixture(scope="module")
def ours() -> TiRex2Forecaster:
    """Our forecaster with the reference network's random weights (seed 0)."""
    torch.manual_seed(0)
    model = create_model(TINY).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape))
    return TiRex2Forecaster(model)


@pytest.fixture(scope="module")
def pair():
    """(reference ForecastModel, our forecaster) holding the same random weights."""
    forecast_api = pytest.importorskip("tirex2.api_adapter")
    network = reference_network()
    return (
        forecast_api.ForecastModel(network),
        TiRex2Forecaster(create_model(TINY, state_dict=network.state_dict())),
    )


def long_frame(lengths: dict, freq: str = "D", seed: int = 0, start="2024-01-01") -> pd.DataFrame:
    """Items of the given lengths: random-walk targets x and y, covariates p and f."""
    rng = np.random.default_rng(seed)
    parts = []
    for item, steps in lengths.items():
        parts.append(
            pd.DataFrame(
                {
                    "item_id": item,
                    "timestamp": pd.date_range(start, periods=steps, freq=freq),
                    "x": rng.normal(size=steps).cumsum() * 2 + 5,
                    "y": rng.normal(size=steps).cumsum() + 1,
                    "p": rng.normal(size=steps),
                    "f": np.sin(np.arange(steps) / 3.0),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def future_frame(df: pd.DataFrame, freq: str = "D", steps: int = HORIZON) -> pd.DataFrame:
    """The next ``steps`` timestamps of every item of ``df`` with a known covariate f."""
    parts = []
    for item, rows in df.groupby("item_id", sort=False):
        times = pd.date_range(rows["timestamp"].max(), periods=steps + 1, freq=freq)[1:]
        parts.append(
            pd.DataFrame({"item_id": item, "timestamp": times, "f": np.cos(np.arange(steps))})
        )
    return pd.concat(parts, ignore_index=True)


def reference_frame(reference, df: pd.DataFrame, horizon: int, **kwargs) -> pd.DataFrame:
    """The reference's ``forecast_df``, run eagerly: its ``torch.compile``d blocks otherwise
    spend seconds compiling on the first call (the numbers are the same)."""
    with torch._dynamo.config.patch(disable=True):
        return reference.forecast_df(df, horizon, **kwargs)


def assert_same_frames(ours: pd.DataFrame, reference: pd.DataFrame) -> float:
    """Same rows, timestamps and (up to float32 noise) values; returns the largest difference
    relative to the forecasts' scale."""
    assert len(ours) == len(reference)
    assert (ours["timestamp"].to_numpy() == reference["timestamp"].to_numpy()).all()
    if "item_id" in reference:
        assert list(ours["item_id"]) == list(reference["item_id"])
    if "target" in ours:
        assert list(ours["target"]) == list(reference["target"])
    got = ours[["mean", *QUANTILES]].to_numpy()
    want = reference[["prediction", *QUANTILES]].to_numpy()
    scale = np.abs(want).max()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale)
    return float(np.abs(got - want).max() / scale)


# -- parity with the reference -----------------------------------------------------------------
def test_univariate_frame_equals_the_reference(pair):
    reference, ours = pair
    df = long_frame({"a": 30, "b": 12, "c": 50}, freq="MS")[["item_id", "timestamp", "x"]]
    df.loc[[3, 4, 40], "x"] = np.nan
    kwargs = dict(id_column="item_id", timestamp_column="timestamp", target="x")
    got = ours.forecast_df(df, HORIZON, **kwargs)
    assert list(got.columns) == ["item_id", "timestamp", "mean", *QUANTILES]
    assert_same_frames(got, reference_frame(reference, df, HORIZON, **kwargs))
    # The same numbers as forecasting the arrays.
    arrays = [df.loc[df.item_id == i, "x"].to_numpy() for i in "abc"]
    want = np.concatenate([f[0].T for f in ours.forecast(arrays, HORIZON, output_type="numpy")])
    np.testing.assert_array_equal(got[QUANTILES].to_numpy(), want)


def test_targets_and_covariates_equal_the_reference(pair):
    reference, ours = pair
    df = long_frame({"a": 30, "b": 45})
    df.loc[5, "y"] = np.nan
    df.loc[7, "p"] = np.nan
    kwargs = dict(
        id_column="item_id",
        timestamp_column="timestamp",
        target=["x", "y"],
        past_covariates="p",
        future_covariates="f",
        future_df=future_frame(df),
    )
    got = ours.forecast_df(df, HORIZON, **kwargs)
    assert list(got.columns) == ["item_id", "timestamp", "target", "mean", *QUANTILES]
    assert list(got["target"][: 2 * HORIZON]) == ["x"] * HORIZON + ["y"] * HORIZON
    assert_same_frames(got, reference_frame(reference, df, HORIZON, **kwargs))


def test_one_series_without_ids_or_timestamps_equals_the_reference(pair):
    reference, ours = pair
    df = long_frame({"a": 40})[["x", "p"]]
    kwargs = dict(id_column=None, timestamp_column=None, target="x", past_covariates="p")
    got = ours.forecast_df(df, 5, **kwargs)
    assert list(got.columns) == ["timestamp", "mean", *QUANTILES]
    assert list(got["timestamp"]) == list(range(40, 45))
    assert_same_frames(got, reference_frame(reference, df, 5, **kwargs))


# -- choices of columns and timestamps ---------------------------------------------------------
def test_default_targets_and_known_covariates(ours):
    df = long_frame({"a": 30, "b": 20})
    explicit = ours.forecast_df(
        df,
        HORIZON,
        target=["x", "y"],
        past_covariates="p",
        future_covariates="f",
        future_df=future_frame(df),
    )
    # Targets: the numeric columns left; known covariates: what future_df shares with df.
    implicit = ours.forecast_df(df, HORIZON, past_covariates="p", future_df=future_frame(df))
    pd.testing.assert_frame_equal(implicit, explicit)
    changed = future_frame(df).assign(f=lambda frame: frame["f"] + 3.0)
    moved = ours.forecast_df(df, HORIZON, past_covariates="p", future_df=changed)
    assert not np.allclose(moved["mean"], explicit["mean"])  # the future values are used


def test_timestamps_are_continued_per_item(ours):
    df = long_frame({"a": 14, "b": 20}, freq="MS")[["item_id", "timestamp", "x"]]
    got = ours.forecast_df(df, 3)
    assert list(got["timestamp"][:3]) == list(pd.date_range("2025-03-01", periods=3, freq="MS"))
    assert list(got["timestamp"][3:]) == list(pd.date_range("2025-09-01", periods=3, freq="MS"))
    steps = df.assign(timestamp=np.r_[np.arange(14) * 2, np.arange(20) * 2 + 100])
    assert list(ours.forecast_df(steps, 2)["timestamp"]) == [28, 30, 140, 142]
    text = df.assign(timestamp=df["timestamp"].dt.strftime("%Y-%m-%d"))
    pd.testing.assert_frame_equal(ours.forecast_df(text, 3), got)


def test_unsorted_rows_and_missing_steps(ours):
    df = long_frame({"a": 20})[["item_id", "timestamp", "x"]]
    shuffled = df.sample(frac=1.0, random_state=1)
    pd.testing.assert_frame_equal(ours.forecast_df(shuffled, 4), ours.forecast_df(df, 4))
    # A missing row is a missing step (NaN), not a shorter series.
    with_gap = df.drop(index=[6, 7])
    values = df["x"].to_numpy().copy()
    values[[6, 7]] = np.nan
    [want] = ours.forecast([values], 4, output_type="numpy")
    np.testing.assert_array_equal(ours.forecast_df(with_gap, 4)[QUANTILES].to_numpy(), want[0].T)


def test_long_horizon_is_cut_to_future_len(ours, caplog):
    df = long_frame({"a": 20, "b": 20})[["item_id", "timestamp", "x"]]
    with caplog.at_level(logging.WARNING):
        got = ours.forecast_df(df, HORIZON + 4)
    assert len(got) == 2 * HORIZON
    assert "exceeds the model's horizon" in caplog.text


def test_series_items_are_timeseries_type(ours):
    from rexforge.forecast.tirex2_frames import frame_items, resolve_columns

    df = long_frame({"a": 10})
    columns = resolve_columns(df, future_frame(df), "item_id", "timestamp", "x", "p", "f")
    [item] = frame_items(df, future_frame(df), columns, 3)
    assert isinstance(item.series, TimeseriesType)
    assert item.series.future_covariates.shape == (1, 13)  # 10 past + 3 known ahead


# -- unusable input ----------------------------------------------------------------------------
def _bad_inputs():
    df = long_frame({"a": 20, "b": 20})
    future = future_frame(df)
    yield "missing target", df, dict(target="z"), "no target column 'z'"
    yield "missing id", df.drop(columns="item_id"), {}, "no id column 'item_id'"
    yield "no timestamp", df.drop(columns="timestamp"), {}, "no timestamp column"
    yield "without known", df, dict(future_covariates="p", future_df=future), "no future covariate"
    yield "no future_df", df, dict(future_covariates="f"), "pass future_df"
    unknown = pd.concat([future, future.assign(item_id="zz")])
    yield "unknown ids", df, dict(future_df=unknown), "item(s) ['zz']"
    yield "item absent", df, dict(future_df=future[future.item_id == "a"]), "no rows for item 'b'"
    short = future.drop(index=future.index[3])
    yield "missing step", df, dict(future_df=short), "no row for item 'a' at 2024-01-24"
    text = df.assign(x=df["x"].astype(str))
    yield "text target", text, dict(target="x"), "target column 'x' is not numeric"
    text_cov = df.assign(p="high")
    yield "text covariate", text_cov, dict(past_covariates="p"), "'p' is not numeric"
    bad_time = df.assign(timestamp=df["timestamp"].astype(str).where(df.index != 3, "soon"))
    yield "bad timestamp", bad_time, {}, "cannot read timestamp"
    twice = pd.concat([df, df.iloc[[0]]])
    yield "duplicate", twice, {}, "two rows for timestamp"
    yield "not a frame", df.to_dict(), {}, "needs a pandas DataFrame"
    yield "clash", df.rename(columns={"item_id": "mean"}), dict(id_column="mean"), "clash"
    yield "no ids", df.assign(item_id=None), {}, "missing item ids"


@pytest.mark.parametrize(
    "df, kwargs, message", [case[1:] for case in _bad_inputs()], ids=[c[0] for c in _bad_inputs()]
)
def test_bad_frames_raise_one_line(ours, df, kwargs, message):
    with pytest.raises(InputError) as caught:
        ours.forecast_df(df, HORIZON, **kwargs)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
