"""Metrics: hand-computed tiny cases, and cross-checks against utilsforecast and gluonts."""

import numpy as np
import pandas as pd
import pytest

from rexforge.eval import metrics as M

LEVELS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def _random_case(seed=0, n=7, h=5, q=LEVELS):
    rng = np.random.default_rng(seed)
    y = rng.gamma(2.0, 10.0, size=(n, h))
    base = y + rng.normal(0, 5, size=(n, h))
    spread = rng.uniform(0.5, 8.0, size=(n, h, 1))
    z = np.array([-1.2816, -0.8416, -0.5244, -0.2533, 0.0, 0.2533, 0.5244, 0.8416, 1.2816])
    quantiles = base[..., None] + spread * z[: len(q)]
    mean = base + rng.normal(0, 1, size=(n, h))
    history = rng.gamma(2.0, 10.0, size=(n, 30))
    return y, quantiles, mean, history


# --- hand-computed -----------------------------------------------------------------------------


def test_pinball_and_wql_by_hand():
    y = np.array([[10.0, 20.0]])
    # levels 0.1 / 0.5 / 0.9, forecasts 8 / 12 / 16 at both steps
    q = np.array([[[8.0, 12.0, 16.0], [8.0, 12.0, 16.0]]])
    levels = [0.1, 0.5, 0.9]
    pin = M.quantile_loss(y, q, levels)
    # y=10: q0.1 f=8 -> 0.1*2=0.2; q0.5 f=12 -> 0.5*2=1.0; q0.9 f=16 -> 0.1*6=0.6
    # y=20: 0.1*12=1.2; 0.5*8=4.0; 0.9*4=3.6
    np.testing.assert_allclose(pin[0], [[0.2, 1.0, 0.6], [1.2, 4.0, 3.6]])
    per, agg = M.evaluate_forecasts(y, q, q[..., 1], levels, scale=np.array([2.0]))
    wql = np.mean([2 * (0.2 + 1.2) / 30, 2 * (1.0 + 4.0) / 30, 2 * (0.6 + 3.6) / 30])
    assert agg["wql"] == pytest.approx(wql, abs=1e-12)
    assert agg["crps"] == pytest.approx(2 * (0.2 + 1.0 + 0.6 + 1.2 + 4.0 + 3.6) / 3 / 2, abs=1e-12)
    # median is q0.5 = 12: errors 2 and 8
    assert agg["mae"] == pytest.approx(5.0)
    assert agg["mase"] == pytest.approx(2.5)
    assert agg["smape"] == pytest.approx((200 * 2 / 22 + 200 * 8 / 32) / 2)
    assert agg["coverage_80"] == pytest.approx(0.5)  # 10 inside [8, 16], 20 outside
    assert agg["width_80"] == pytest.approx(8.0)
    assert agg["width_80_scaled"] == pytest.approx(4.0)
    assert agg["rmse"] == pytest.approx(np.sqrt((4 + 64) / 2))


def test_smape_zero_over_zero_is_zero():
    np.testing.assert_allclose(M.smape_terms(np.array([0.0, 1.0]), np.array([0.0, 0.0])), [0, 200])


def test_nan_targets_are_ignored():
    y, q, mean, _ = _random_case(1, n=3, h=4)
    y_nan = y.copy()
    y_nan[0, 1] = np.nan
    y_nan[2, :] = np.nan  # a forecast with no observation at all
    scale = np.ones(3)
    per, agg = M.evaluate_forecasts(y_nan, q, mean, LEVELS, scale)
    keep = ~np.isnan(y_nan)
    med = q[..., 4]
    assert agg["mae"] == pytest.approx(np.abs(y - med)[keep].mean())
    assert agg["rmse"] == pytest.approx(np.sqrt(np.square(y - mean)[keep].mean()))
    assert np.isnan(per["mase"][2]) and np.isfinite(per["mase"][:2]).all()
    # the series with no targets does not enter the mean over series
    assert agg["mase"] == pytest.approx(per["mase"][:2].mean())


def test_nan_forecast_at_observed_point_is_not_hidden():
    y, q, mean, _ = _random_case(2, n=2, h=3)
    q[0, 0, :] = np.nan
    per, _ = M.evaluate_forecasts(y, q, mean, LEVELS, np.ones(2))
    assert np.isnan(per["wql"][0]) and np.isnan(per["mae"][0]) and np.isnan(per["coverage_80"][0])
    assert np.isfinite(per["wql"][1])


def test_seasonal_scale_by_hand_and_fallback():
    x = np.array([1.0, 2.0, 4.0, 7.0, 11.0])
    assert M.seasonal_scale(x, 1) == pytest.approx(np.mean([1, 2, 3, 4]))
    assert M.seasonal_scale(x, 2) == pytest.approx(np.mean([3, 5, 7]))
    assert M.seasonal_scale(x, 5) == pytest.approx(2.5)  # too short for season 5: period 1
    assert M.seasonal_scale(np.array([1.0, np.nan, 3.0, 6.0]), 1) == pytest.approx(3.0)
    assert np.isnan(M.seasonal_scale(np.array([5.0]), 1))


@pytest.mark.parametrize(
    "freq,season",
    [
        ("h", 24),
        ("H", 24),
        ("D", 7),
        ("W", 52),
        ("W-SUN", 52),
        ("MS", 12),
        ("M", 12),
        ("ME", 12),
        ("QS", 4),
        ("Q", 4),
        ("QE-DEC", 4),
        ("Y", 1),
        ("A", 1),
        ("YS", 1),
        ("30min", 48),
        ("15min", 96),
        ("2h", 12),
        ("T", 1440),
        ("B", 5),
        ("2D", 1),
        (None, 1),
        ("bogus", 1),
    ],
)
def test_get_seasonality(freq, season):
    assert M.get_seasonality(freq) == season


def test_geometric_mean_relative():
    values = np.array([[2.0, 1.0], [8.0, 1.0], [np.nan, 1.0]])
    baseline = np.array([1.0, 2.0, 1.0])
    np.testing.assert_allclose(
        M.geometric_mean_relative(values, baseline), [np.sqrt(8.0), 0.5 ** (1 / 3)]
    )


# --- against utilsforecast ---------------------------------------------------------------------


def test_against_utilsforecast():
    losses = pytest.importorskip("utilsforecast.losses")
    y, q, mean, history = _random_case(3, n=6, h=5)
    season = 3
    n, h = y.shape
    ids = np.repeat([f"s{i}" for i in range(n)], h)
    df = pd.DataFrame({"unique_id": ids, "ds": np.tile(np.arange(30, 30 + h), n), "y": y.ravel()})
    df["model"] = q[..., 4].ravel()
    df["mean"] = mean.ravel()
    qcols = []
    for j in range(len(LEVELS)):
        df[f"q{j}"] = q[..., j].ravel()
        qcols.append(f"q{j}")
    df["model-lo-80"] = q[..., 0].ravel()
    df["model-hi-80"] = q[..., 8].ravel()
    train = pd.DataFrame(
        {
            "unique_id": np.repeat(df["unique_id"].unique(), 30),
            "ds": np.tile(np.arange(30), n),
            "y": history.ravel(),
        }
    )
    scale = np.array([M.seasonal_scale(x, season) for x in history])
    per, _ = M.evaluate_forecasts(y, q, mean, LEVELS, scale)

    def col(frame, name="model"):
        return frame.sort_values("unique_id")[name].to_numpy()

    np.testing.assert_allclose(per["mae"], col(losses.mae(df, ["model"])), rtol=1e-6)
    np.testing.assert_allclose(per["rmse"], col(losses.rmse(df, ["mean"]), "mean"), rtol=1e-6)
    np.testing.assert_allclose(per["smape"], 200 * col(losses.smape(df, ["model"])), rtol=1e-6)
    np.testing.assert_allclose(
        per["mase"], col(losses.mase(df, ["model"], season, train)), rtol=1e-6
    )
    lv = np.array(LEVELS)
    mq = col(losses.mqloss(df, {"model": qcols}, lv))
    np.testing.assert_allclose(per["crps"], 2 * mq, rtol=1e-6)
    crps = col(losses.scaled_crps(df, {"model": qcols}, lv))
    np.testing.assert_allclose(per["wql"], crps, rtol=1e-6)
    cov = col(losses.coverage(df, ["model"], 80))
    np.testing.assert_allclose(per["coverage_80"], cov, rtol=1e-6)


# --- against gluonts (optional: gluonts needs pandas < 3) ---------------------------------------


def test_against_gluonts():
    pytest.importorskip("gluonts")
    from gluonts.ev import metrics as gm
    from gluonts.ev.ts_stats import seasonal_error

    y, q, mean, history = _random_case(4, n=8, h=6)
    season = 4
    seasonal = np.stack([seasonal_error(x, season) for x in history])  # [N, 1]
    scale = np.array([M.seasonal_scale(x, season) for x in history])
    np.testing.assert_allclose(scale, seasonal[:, 0], rtol=1e-9)
    data = {"label": y, "mean": mean, "seasonal_error": seasonal}
    for j, lv in enumerate(LEVELS):
        data[str(lv)] = q[..., j]
    _, agg = M.evaluate_forecasts(y, q, mean, LEVELS, scale)

    def value(metric):
        return float(np.asarray(metric(axis=None).update(data).get()))

    assert agg["wql"] == pytest.approx(value(gm.MeanWeightedSumQuantileLoss(LEVELS)), rel=1e-6)
    assert agg["mase"] == pytest.approx(value(gm.MASE()), rel=1e-6)
    assert agg["smape"] == pytest.approx(100 * value(gm.SMAPE()), rel=1e-6)
    assert agg["mae"] == pytest.approx(value(gm.MAE(forecast_type="0.5")), rel=1e-6)
    assert agg["rmse"] == pytest.approx(value(gm.RMSE()), rel=1e-6)
    cov = value(gm.Coverage(0.9)) - value(gm.Coverage(0.1))
    assert agg["coverage_80"] == pytest.approx(cov, rel=1e-6)


def test_weekly_season_is_52_only_where_the_history_holds_two_years():
    assert M.get_seasonality("W-SUN", history=104) == 52
    assert M.get_seasonality("W-SUN", history=103) == 1  # the M4 convention for short ones
    assert M.get_seasonality("2W", history=500) == 26
    assert M.get_seasonality("MS", history=10) == 12  # other frequencies: unchanged


def test_backtest_of_weekly_series_uses_season_52_when_they_are_long_enough():
    from rexforge.data.series import TimeSeries
    from rexforge.eval.backtest import backtest
    from rexforge.eval.baselines import get_baseline

    def weekly(n):
        stamps = pd.date_range("2015-01-04", periods=n, freq="W-SUN")
        return [
            TimeSeries(f"s{i}", np.sin(np.arange(n) / 8.3) + i, stamps, "W-SUN") for i in (0, 1)
        ]

    long, short = weekly(160), weekly(80)
    assert backtest(get_baseline("naive"), long, 8).season == 52
    assert backtest(get_baseline("naive"), short, 8).season == 1
