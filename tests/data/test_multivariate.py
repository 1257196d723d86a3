"""VariateSeries from long tables (as the TiRex-2 forecaster reads them) and the synthetic
covariate-driven family: registered, deterministic, and with the effects its meta states."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from rexforge.data.mix import SYNTHETIC_FAMILIES, DataMix, build_training_series
from rexforge.data.multivariate import VariateSeries, read_variate_series
from rexforge.data.synthetic_covariates import iter_covariate_driven
from rexforge.errors import InputError


def test_read_variate_series_puts_items_on_their_grid(tmp_path):
    times = pd.date_range("2024-01-01", periods=6, freq="D")
    frame = pd.DataFrame(
        {
            "item_id": ["a"] * 6 + ["b"] * 3,
            "timestamp": list(times) + list(times[:3]),
            "y": np.arange(9.0),
            "z": np.arange(9.0) * 10,
            "p": np.arange(9.0) + 0.5,
            "f": np.arange(9.0) - 0.5,
        }
    ).drop(index=2)  # a missing day in item a
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    a, b = read_variate_series(path, target="y,z", past_covariates=["p"], future_covariates=["f"])
    assert a.item_id == "a" and a.target.shape == (2, 6) and len(b) == 3
    np.testing.assert_array_equal(a.target[0], [0, 1, np.nan, 3, 4, 5])
    np.testing.assert_array_equal(a.target[1], [0, 10, np.nan, 30, 40, 50])
    np.testing.assert_array_equal(a.past_covariates[0], [0.5, 1.5, np.nan, 3.5, 4.5, 5.5])
    np.testing.assert_array_equal(b.future_covariates[0], [5.5, 6.5, 7.5])
    with pytest.raises(InputError, match="nope"):
        read_variate_series(path, target="y", past_covariates=["nope"])


def test_data_mix_reads_covariates_and_synthetic_covariate_series(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame(
        {"item_id": "a", "timestamp": range(40), "y": np.arange(40.0), "f": np.ones(40)}
    ).to_csv(path, index=False)
    mix = DataMix(files=[path], target="y", future_covariates="f", synthetic={"covariate": 3})
    series, description = build_training_series(mix)
    assert [type(s) for s in series] == [VariateSeries] * 4
    assert series[0].future_covariates.shape == (1, 40)
    assert "future covariates ['f']" in description and "covariate-driven" in description
    assert SYNTHETIC_FAMILIES["covariate"].flag == "--covariate-synth"


def test_covariate_driven_series_hold_their_stated_effects():
    first = list(itertools.islice(iter_covariate_driven(3, 400), 5))
    again = list(itertools.islice(iter_covariate_driven(3, 400), 5))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.target, b.target)
    for item in first:
        meta = item.meta
        y, future = item.target[0], item.future_covariates[0]
        lag = meta["past_lag"]
        past = np.concatenate([np.zeros(lag), item.past_covariates[0, :-lag]])
        # Regressing the target on both covariates recovers the stated effects (x scale):
        # the rest (season + AR noise, std ~1-2) is independent of them.
        design = np.stack([np.ones_like(y), past, future], axis=1)
        coef = np.linalg.lstsq(design, y, rcond=None)[0] / meta["scale"]
        assert coef[2] == pytest.approx(meta["future_effect"], abs=0.6)
        assert coef[1] == pytest.approx(meta["past_effect"], abs=0.6)
    positive = list(itertools.islice(iter_covariate_driven(3, 50, signs="positive"), 20))
    assert all(i.meta["future_effect"] > 0 and i.meta["past_effect"] > 0 for i in positive)
