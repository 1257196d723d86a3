"""GluonTS outputs and datasets, against the official package on the same weights."""

import numpy as np
import pandas as pd
import pytest
import torch

from rexforge import load_model
from rexforge.errors import InputError
from tests.conftest import make_context

pytest.importorskip("gluonts", reason="gluonts is in the dev extra")
tirex_models = pytest.importorskip("tirex.models.tirex", reason="tirex-ts is in the dev extra")


def official(path):
    return tirex_models.TiRexZero.from_pretrained(str(path), backend="torch", device="cpu")


def assert_same_forecasts(ours, ref):
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert a.forecast_keys == b.forecast_keys
        assert a.start_date == b.start_date and a.item_id == b.item_id
        np.testing.assert_array_equal(a.forecast_array, b.forecast_array)


def test_output_type_gluonts_equals_official(tiny_ckpt):
    context = make_context([40, 100, 7], seed=2)
    ref = official(tiny_ckpt).forecast(context, prediction_length=40, output_type="gluonts")
    ours = load_model(tiny_ckpt, numerics="official")
    got = ours.forecast(context, prediction_length=40, output_type="gluonts")
    assert_same_forecasts(got, ref)
    assert got[0].forecast_keys[-1] == "mean" and got[0].forecast_array.shape == (10, 40)
    # Arrays carry no time axis: forecasts are dated from 2000-01-01 (hourly), as officially.
    assert got[1].start_date == pd.Period("2000-01-01", freq="h")
    batches = list(
        ours.forecast(
            context, prediction_length=40, output_type="gluonts", yield_per_batch=True, batch_size=2
        )
    )
    assert [len(b) for b in batches] == [2, 1]


def test_forecast_gluon_equals_official(tiny_ckpt):
    from gluonts.dataset.common import ListDataset

    series = make_context([60, 130], seed=4)
    dataset = ListDataset(
        [
            {"target": s, "start": pd.Period("2021-03-01", freq="D"), "item_id": f"s{i}"}
            for i, s in enumerate(series)
        ],
        freq="D",
    )
    off = official(tiny_ckpt)
    ours = load_model(tiny_ckpt, numerics="official")
    ref = off.forecast_gluon(dataset, output_type="gluonts", prediction_length=35)
    got = ours.forecast_gluon(dataset, output_type="gluonts", prediction_length=35)
    assert_same_forecasts(got, ref)
    assert got[1].start_date == pd.Period("2021-03-01", freq="D") + 130
    ref_q, _ = off.forecast_gluon(dataset, output_type="torch", prediction_length=35)
    q, _ = ours.forecast_gluon(dataset, output_type="torch", prediction_length=35)
    assert torch.equal(q, ref_q)


def test_gluon_entries_without_a_target_are_named():
    model_free = pytest.importorskip("rexforge.forecast.gluon")
    with pytest.raises(InputError, match="entry 1 has no 'target'"):
        model_free.dataset_entries([{"target": [1.0, 2.0]}, {"start": 3}])
