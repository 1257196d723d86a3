"""Rolling-origin backtest: cutoffs, leak-freedom, tables and input errors."""

import numpy as np
import pytest

from rexforge.data.series import TimeSeries
from rexforge.errors import InputError
from rexforge.eval import metrics as M
from rexforge.eval.backtest import backtest
from rexforge.eval.baselines import NaiveForecaster

LEVELS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


class RecordingForecaster:
    """Forecasts the last value and records every context it receives."""

    quantiles = LEVELS

    def __init__(self):
        self.calls = []

    def forecast(self, context, prediction_length, output_type="numpy", batch_size=256):
        self.calls.append(([np.array(c) for c in context], prediction_length, batch_size))
        mean = np.array([[c[-1]] * prediction_length for c in context], dtype=float)
        return np.repeat(mean[:, :, None], len(self.quantiles), axis=2), mean


class CheatingForecaster:
    """Tries every way to reach past the end of its context: the array's base, and memory
    beyond its end. With copies it can only ever find its own values."""

    quantiles = LEVELS

    def forecast(self, context, prediction_length, output_type="numpy", batch_size=256):
        out = []
        for c in context:
            full = c.base if c.base is not None else c
            guess = full[len(c) : len(c) + prediction_length]
            if len(guess) < prediction_length:
                guess = np.full(prediction_length, c[-1])
            out.append(guess)
        mean = np.asarray(out, dtype=float)
        return np.repeat(mean[:, :, None], len(self.quantiles), axis=2), mean


def _series(lengths=(20, 25), offset=0.0):
    return [
        TimeSeries(f"s{i}", np.arange(n, dtype=float) + 100 * i + offset, None, "D")
        for i, n in enumerate(lengths)
    ]


def test_cutoffs_and_contexts_are_leak_free():
    series = _series((20, 25))
    f = RecordingForecaster()
    res = backtest(f, series, horizon=3, windows=3, stride=2, batch_size=7)
    assert len(f.calls) == 3  # one call per window, every series batched together
    for w, (contexts, h, bs) in enumerate(f.calls):
        assert h == 3 and bs == 7
        for s, ctx in zip(series, contexts):
            cutoff = len(s) - 3 - (3 - 1 - w) * 2
            np.testing.assert_array_equal(ctx, s.target[:cutoff])
            # nothing at or after the cutoff is in the context
            assert ctx.max() < s.target[cutoff]
    cut = res.per_series.set_index(["item_id", "window"])["cutoff"]
    assert cut[("s0", 0)] == 13 and cut[("s0", 2)] == 17 and cut[("s1", 2)] == 22
    # the targets scored are exactly the points after each cutoff
    fc = res.forecasts
    row = fc[(fc.item_id == "s1") & (fc.window == 1)]
    np.testing.assert_array_equal(row["y"], series[1].target[20:23])
    np.testing.assert_array_equal(row["step"], [1, 2, 3])


def test_cheating_forecaster_cannot_see_the_future():
    series = _series((30, 40))
    cheat = backtest(CheatingForecaster(), series, horizon=5, windows=2)
    honest = backtest(NaiveForecaster(), series, horizon=5, windows=2)
    np.testing.assert_array_equal(cheat.mean, honest.mean)
    assert cheat.metrics["mae"] > 0


def test_context_length_truncates_but_mase_uses_full_history():
    series = _series((40,))
    f = RecordingForecaster()
    res = backtest(f, series, horizon=4, context_length=10, season=1)
    assert len(f.calls[0][0][0]) == 10
    np.testing.assert_array_equal(f.calls[0][0][0], series[0].target[26:36])
    assert res.scale[0] == pytest.approx(M.seasonal_scale(series[0].target[:36], 1))


def test_tables_and_metrics():
    rng = np.random.default_rng(0)
    series = [TimeSeries(f"x{i}", rng.normal(10, 1, 50), None, "h") for i in range(3)]
    res = backtest(NaiveForecaster(), series, horizon=6, windows=2, stride=3)
    assert res.season == 24  # from the hourly frequency
    assert list(res.forecasts.columns) == [
        "item_id",
        "window",
        "cutoff",
        "step",
        "y",
        "mean",
        *[f"{q:g}" for q in LEVELS],
    ]
    assert len(res.forecasts) == 3 * 2 * 6 and len(res.per_series) == 3 * 2
    assert set(M.METRICS) <= set(res.per_series.columns)
    # dataset-level MAE is the mean absolute error over every forecast point
    err = np.abs(res.forecasts["y"] - res.forecasts["0.5"])
    assert res.metrics["mae"] == pytest.approx(err.mean())
    by_step = res.error_by_step()
    assert list(by_step["step"]) == list(range(1, 7))
    assert by_step["mae"].mean() == pytest.approx(res.metrics["mae"])


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"horizon": 0}, "horizon must be a positive integer"),
        ({"horizon": 3, "windows": 0}, "windows must be a positive integer"),
        ({"horizon": 3, "stride": 0}, "stride must be a positive integer"),
        ({"horizon": 20}, "shortest series 's0' has 20"),
        ({"horizon": 5, "windows": 4}, "shortest series 's0'"),
    ],
)
def test_bad_input_raises_input_error(kwargs, message):
    with pytest.raises(InputError, match=message):
        backtest(NaiveForecaster(), _series((20, 30)), **kwargs)


def test_wrong_forecaster_output_shape():
    class Broken:
        quantiles = [0.5]

        def forecast(self, context, prediction_length, output_type="numpy", batch_size=1):
            return np.zeros((len(context), prediction_length + 1, 1)), np.zeros((len(context), 1))

    with pytest.raises(InputError, match="forecaster Broken returned"):
        backtest(Broken(), _series((20,)), horizon=2)


def test_nan_targets_in_series():
    s = TimeSeries("a", np.array([1.0, 2.0, np.nan, 4.0, 5.0, np.nan, 7.0, 8.0]))
    res = backtest(NaiveForecaster(), [s], horizon=3)
    # context [1, 2, nan, 4, 5] -> naive 5; targets [nan, 7, 8] -> errors 2, 3
    assert res.metrics["mae"] == pytest.approx(2.5)
