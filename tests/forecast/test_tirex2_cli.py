"""``rexforge forecast`` with several targets and covariates for TiRex-2 models
(``rexforge.forecast.tirex2_cli``): the forecast_df result, the per-variate plot, and one-line
errors for bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import rexforge
from rexforge.cli import main
from tests.io.test_tirex2_folder import random_forecaster

STEPS, HORIZON = 30, 6


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return random_forecaster(seed=21).save(tmp_path_factory.mktemp("m") / "tirex2")


def tables(tmp_path, future_rows: int = HORIZON):
    """data.csv (two items: targets x, y; past covariate promo; known-future covariate
    calendar) and future.csv (calendar over the next ``future_rows`` days)."""
    rng = np.random.default_rng(0)
    history, future = [], []
    for item in ("a", "b"):
        times = pd.date_range("2024-01-01", periods=STEPS + future_rows, freq="D")
        calendar = np.sin(np.arange(STEPS + future_rows) / 2.0)
        history.append(
            pd.DataFrame(
                {
                    "item_id": item,
                    "timestamp": times[:STEPS],
                    "x": rng.normal(size=STEPS).cumsum(),
                    "y": rng.normal(size=STEPS).cumsum(),
                    "promo": rng.normal(size=STEPS),
                    "calendar": calendar[:STEPS],
                }
            )
        )
        future.append(
            pd.DataFrame(
                {"item_id": item, "timestamp": times[STEPS:], "calendar": calendar[STEPS:]}
            )
        )
    df, future_df = pd.concat(history), pd.concat(future)
    df.to_csv(tmp_path / "data.csv", index=False)
    future_df.to_csv(tmp_path / "future.csv", index=False)
    return df, future_df


def command(folder, tmp_path, *extra):
    return [
        "forecast",
        "--model",
        str(folder),
        "--data",
        str(tmp_path / "data.csv"),
        "--horizon",
        str(HORIZON),
        "--output",
        str(tmp_path / "out.csv"),
        *extra,
    ]


COVARIATES = ("--target", "x,y", "--past-covariates", "promo", "--future-covariates", "calendar")


def test_targets_and_covariates_equal_forecast_df(folder, tmp_path, capsys):
    df, future_df = tables(tmp_path)
    args = command(folder, tmp_path, *COVARIATES, "--future-data", str(tmp_path / "future.csv"))
    assert main(args) == 0, capsys.readouterr().err
    got = pd.read_csv(tmp_path / "out.csv")
    want = rexforge.load_model(folder).forecast_df(
        df,
        HORIZON,
        target=["x", "y"],
        past_covariates=["promo"],
        future_covariates=["calendar"],
        future_df=future_df,
    )
    assert list(got.columns) == list(want.columns)
    assert len(got) == 2 * 2 * HORIZON  # items x targets x steps
    np.testing.assert_allclose(got["0.9"], want["0.9"], rtol=1e-5, atol=1e-6)
    assert list(got["target"][: HORIZON + 1]) == ["x"] * HORIZON + ["y"]


def test_covariate_lists_read_the_same_space_or_comma_separated(folder, tmp_path, capsys):
    tables(tmp_path)
    future = ("--future-covariates", "calendar", "--future-data", str(tmp_path / "future.csv"))
    outputs = []
    for past in (["promo,calendar"], ["promo", "calendar"]):  # calendar as a past input too
        args = command(folder, tmp_path, "--target", "x,y", "--past-covariates", *past, *future)
        assert main(args) == 0, capsys.readouterr().err
        outputs.append(pd.read_csv(tmp_path / "out.csv"))
    pd.testing.assert_frame_equal(outputs[0], outputs[1])


def test_plot_has_one_panel_per_variate(folder, tmp_path, monkeypatch):
    tables(tmp_path)
    import rexforge.forecast.plot as plot

    drawn = {}

    def capture(series, forecast, path, **kwargs):
        drawn["panels"] = [s.item_id for s in series]
        drawn["rows"] = [len(forecast[forecast["item_id"] == s.item_id]) for s in series]
        drawn["history"] = [len(s) for s in series]
        return path

    monkeypatch.setattr(plot, "fan_chart", capture)
    args = command(folder, tmp_path, *COVARIATES, "--future-data", str(tmp_path / "future.csv"))
    assert main([*args, "--plot", str(tmp_path / "fan.png")]) == 0
    assert drawn == {
        "panels": ["a/x", "a/y", "b/x", "b/y"],
        "rows": [HORIZON] * 4,
        "history": [STEPS] * 4,
    }


def test_plot_file_is_written(folder, tmp_path):
    pytest.importorskip("matplotlib")
    tables(tmp_path)
    args = command(folder, tmp_path, "--target", "x,y", "--plot", str(tmp_path / "fan.png"))
    assert main(args) == 0
    assert (tmp_path / "fan.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("extra", "future_rows", "message"),
    [
        (COVARIATES, HORIZON, "need their values over the forecast steps: give them in"),
        ((*COVARIATES, "--future-data", "{future}"), HORIZON - 2, "future_df has no row for"),
        (("--target", "x,nope"), HORIZON, "nope"),
        (("--target", "x", "--past-covariates", "label"), HORIZON, "not numeric"),
        (("--target", "x", "--future-data", "{future}"), HORIZON, None),  # calendar inferred
        (("--target", "x,y", "--horizon", "9"), HORIZON, "add --rollout median"),
        (("--target", "x,y", "--stream"), HORIZON, "--stream cannot be combined"),
        (("--target", "x,y", "--gaps", "interpolate"), HORIZON, "--gaps interpolate cannot"),
        (("--target", "x,y", "--resample-strategy", "frequency"), HORIZON, "--resample-strategy"),
    ],
)
def test_bad_input_is_one_line(folder, tmp_path, capsys, extra, future_rows, message):
    df, _ = tables(tmp_path, future_rows)
    df.assign(label="text").to_csv(tmp_path / "data.csv", index=False)
    extra = [e.replace("{future}", str(tmp_path / "future.csv")) for e in extra]
    status = main(command(folder, tmp_path, *extra))
    err = capsys.readouterr().err.strip().splitlines()
    if message is None:
        assert status == 0, err
        return
    assert status == 2 and len(err) == 1 and message in err[0], err


def test_tirex_models_take_no_covariates(tmp_path, capsys, tiny_ckpt):
    tables(tmp_path)
    assert main(command(tiny_ckpt, tmp_path, "--target", "x", "--past-covariates", "promo")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "need a model that takes covariates (TiRex-2)" in err[0], err


def test_plot_forecast_df_from_python(folder, tmp_path, monkeypatch):
    import rexforge.forecast.plot as plot
    from rexforge.forecast.tirex2_plot import plot_forecast_df

    df, _ = tables(tmp_path)
    shuffled = df.sample(frac=1.0, random_state=0)  # rows in any order
    forecast = rexforge.load_model(folder).forecast_df(df, HORIZON, target=["x", "y"])
    drawn = {}

    def capture(series, chart, path, max_series):
        drawn["series"], drawn["max"] = series, max_series
        return path

    monkeypatch.setattr(plot, "fan_chart", capture)
    plot_forecast_df(shuffled, forecast, tmp_path / "f.png", target=["x", "y"], max_panels=3)
    assert [s.item_id for s in drawn["series"]] == ["a/x", "a/y", "b/x", "b/y"]
    assert drawn["max"] == 3
    first = drawn["series"][0]
    np.testing.assert_allclose(first.target, df[df["item_id"] == "a"]["x"].to_numpy())
    assert first.timestamps.is_monotonic_increasing
