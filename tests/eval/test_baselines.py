"""Baselines: known answers on tiny series, the registry, and the optional statsforecast ones."""

import sys

import numpy as np
import pytest

from rexforge.errors import ConfigError, InputError
from rexforge.eval.baselines import get_baseline, list_baselines, register_baseline


def test_naive_known_answer():
    f = get_baseline("naive")
    q, mean = f.forecast([np.array([1.0, 2.0, 3.0]), np.array([5.0, np.nan])], 2)
    np.testing.assert_array_equal(mean, [[3.0, 3.0], [5.0, 5.0]])
    assert q.shape == (2, 2, 9)
    np.testing.assert_array_equal(q, np.repeat(mean[:, :, None], 9, axis=2))


def test_seasonal_naive_known_answer():
    f = get_baseline("seasonal-naive", season=3)
    x = np.array([0.0, 1.0, 2.0, 10.0, 20.0, 30.0, 40.0])
    q, mean = f.forecast([x, np.array([7.0, 8.0])], 5)
    np.testing.assert_array_equal(mean[0], [20.0, 30.0, 40.0, 20.0, 30.0])
    np.testing.assert_array_equal(mean[1], [8.0] * 5)  # shorter than a season: naive
    assert (q[..., 0] == q[..., -1]).all()


def test_seasonal_naive_fills_nans_forward():
    f = get_baseline("seasonal_naive", season=2)
    _, mean = f.forecast([np.array([np.nan, 1.0, 2.0, np.nan])], 3)
    np.testing.assert_array_equal(mean[0], [2.0, 2.0, 2.0])
    _, mean = f.forecast([np.array([np.nan, np.nan])], 2)
    assert np.isnan(mean).all()


def test_registry():
    assert {"naive", "seasonal_naive", "auto_ets", "auto_theta"} <= set(list_baselines())
    with pytest.raises(InputError, match="unknown baseline 'nope'; known baselines: .*naive"):
        get_baseline("nope")

    class Constant:
        quantiles = [0.5]

        def __init__(self, value=1.0):
            self.value = value

    register_baseline("test-constant", Constant)
    try:
        assert get_baseline("TEST_constant", value=None).value == 1.0  # None keeps the default
        assert get_baseline("test_constant", value=3.0).value == 3.0
    finally:
        from rexforge.eval import baselines

        baselines._REGISTRY.pop("test_constant")


def test_statsforecast_missing_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "statsforecast", None)
    monkeypatch.setitem(sys.modules, "statsforecast.models", None)
    with pytest.raises(ConfigError, match="pip install statsforecast"):
        get_baseline("auto_ets", season=12)


@pytest.mark.parametrize("name", ["auto_ets", "auto_theta"])
def test_statsforecast_baselines(name, caplog):
    pytest.importorskip("statsforecast")
    rng = np.random.default_rng(0)
    t = np.arange(60)
    x = 50 + 0.5 * t + 5 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, 60)
    f = get_baseline(name, season=12)
    with caplog.at_level("WARNING"):
        q, mean = f.forecast([x], 6)
    assert "could not fit" not in caplog.text  # the model itself answered, no fallback
    assert q.shape == (1, 6, 9) and mean.shape == (1, 6)
    assert (np.diff(q, axis=-1) > 0).all()  # a real, sorted interval
    np.testing.assert_allclose(q[..., 4], mean)  # the 0.5 quantile is the point forecast
    assert np.abs(mean[0] - (50 + 0.5 * np.arange(60, 66))).max() < 12
    # the 80% interval is statsforecast's own
    from statsforecast.models import AutoETS, AutoTheta

    model = {"auto_ets": AutoETS, "auto_theta": AutoTheta}[name](season_length=12)
    ref = model.forecast(y=x, h=6, level=[80])
    np.testing.assert_allclose(q[0, :, 0], ref["lo-80"], rtol=1e-5)
    np.testing.assert_allclose(q[0, :, 8], ref["hi-80"], rtol=1e-5)


def test_statsforecast_unfittable_series_falls_back_with_warning(caplog):
    pytest.importorskip("statsforecast")
    f = get_baseline("auto_ets", season=12)
    with caplog.at_level("WARNING"):
        _, mean = f.forecast([np.array([1.0, 2.0, 3.0])], 4)  # statsforecast: "tiny datasets"
    assert "auto_ets could not fit 1 of 1 series" in caplog.text
    np.testing.assert_array_equal(mean[0], [3.0] * 4)
