"""Pure transforms: exact values plus hypothesis invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rexforge.data.sampler import WindowSampler
from rexforge.data.series import TimeSeries
from rexforge.data.transforms import (
    aggregate_temporal,
    filter_min_length,
    holdout,
    interpolate_gaps,
    left_pad,
    train_val_split,
)
from rexforge.errors import InputError

values_with_nan = arrays(
    np.float64,
    st.integers(0, 40),
    elements=st.one_of(st.floats(-1e6, 1e6), st.just(np.nan)),
)


def test_interpolate_gaps_values():
    x = np.array([np.nan, 1.0, np.nan, np.nan, 4.0, np.nan])
    np.testing.assert_array_equal(interpolate_gaps(x), [np.nan, 1, 2, 3, 4, np.nan])
    assert np.isnan(x[2])  # input untouched


@settings(max_examples=200, deadline=None)
@given(values_with_nan)
def test_interpolate_gaps_invariants(x):
    y = interpolate_gaps(x)
    observed = ~np.isnan(x)
    np.testing.assert_array_equal(y[observed], x[observed])  # observed values kept
    if observed.any():
        first, last = np.flatnonzero(observed)[[0, -1]]
        assert not np.isnan(y[first : last + 1]).any()  # interior fully filled
        assert np.isnan(y[:first]).all() and np.isnan(y[last + 1 :]).all()  # edges stay missing
        assert y[first : last + 1].min() >= x[observed].min() - 1e-9  # no overshoot
        assert y[first : last + 1].max() <= x[observed].max() + 1e-9


def test_left_pad_values():
    np.testing.assert_array_equal(left_pad([1.0, 2.0], 4), [np.nan, np.nan, 1, 2])
    np.testing.assert_array_equal(left_pad([1.0, 2.0, 3.0], 2), [2, 3])
    assert left_pad([1.0], 0).shape == (0,)
    with pytest.raises(InputError, match="length must be >= 0"):
        left_pad([1.0], -1)


@settings(max_examples=200, deadline=None)
@given(values_with_nan, st.integers(0, 60))
def test_left_pad_invariants(x, length):
    y = left_pad(x, length)
    assert y.shape == (length,) and y.dtype == np.float64
    keep = min(length, len(x))
    np.testing.assert_array_equal(y[length - keep :], x[len(x) - keep :])  # the most recent values
    assert np.isnan(y[: length - keep]).all()  # padding in front only


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(2, 30), min_size=1, max_size=6), st.integers(1, 8))
def test_split_invariants_and_no_window_reaches_holdout(lengths, horizon):
    lengths = [n + horizon for n in lengths]  # every series is long enough
    series = [np.arange(n, dtype=float) for n in lengths]
    train, val = train_val_split(series, horizon)
    for x, tr, va in zip(series, train, val):
        assert len(tr) == len(x) - horizon
        np.testing.assert_array_equal(tr, x[:-horizon])
        np.testing.assert_array_equal(va, x)  # validation sees the whole history
        context, target = holdout(va, horizon)
        np.testing.assert_array_equal(target, x[-horizon:])
        np.testing.assert_array_equal(context, tr)
    # The leakage check: every window drawn from the train parts stays before the held-out steps.
    sampler = WindowSampler(train, context_length=5, prediction_length=1)
    for index in range(sampler.num_windows):
        s, end = sampler.locate(index)
        context, future = sampler[index]
        assert end + 1 <= lengths[s] - horizon
        assert np.nanmax(np.concatenate([context, future])) < lengths[s] - horizon


def test_split_time_series_keeps_timestamps():
    import pandas as pd

    ts = TimeSeries("a", np.arange(5.0), pd.date_range("2024-01-01", periods=5, freq="D"), "D")
    (train,), (val,) = train_val_split([ts], 2)
    assert train.item_id == "a" and len(train) == 3 and train.timestamps[-1].day == 3
    assert val is ts


def test_split_rejects_short_series_by_name():
    with pytest.raises(InputError, match=r"series 'b', 'c' have at most horizon=3"):
        train_val_split(
            [TimeSeries("a", np.ones(4)), TimeSeries("b", np.ones(3)), TimeSeries("c", [1.0])], 3
        )
    with pytest.raises(InputError, match="horizon must be an integer >= 1"):
        train_val_split([np.ones(3)], 0)


def test_filter_min_length():
    xs = [np.ones(3), np.array([1.0, np.nan, np.nan, np.nan]), np.ones(1)]
    assert [len(x) for x in filter_min_length(xs, 3)] == [3, 4]
    assert [len(x) for x in filter_min_length(xs, 2, observed=True)] == [3]


def test_aggregate_temporal_values():
    x = np.arange(1.0, 8.0)  # 1..7: the oldest step is dropped, blocks end at the last step
    np.testing.assert_array_equal(aggregate_temporal(x, 3), [3.0, 6.0])
    np.testing.assert_array_equal(aggregate_temporal(x, 1), x)
    assert aggregate_temporal(x, 8).shape == (0,)
    gappy = np.array([1.0, np.nan, 3.0, 4.0, 5.0, 6.0])
    np.testing.assert_array_equal(aggregate_temporal(gappy, 2), [np.nan, 3.5, 5.5])
    assert np.isnan(gappy[1]) and gappy[0] == 1.0  # input untouched
    for bad in (0, -2, 2.0, True):
        with pytest.raises(InputError, match="factor must be an integer >= 1"):
            aggregate_temporal(x, bad)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(0, 60), elements=st.floats(-1e6, 1e6)), st.integers(1, 13))
def test_aggregate_temporal_invariants(x, factor):
    y = aggregate_temporal(x, factor)
    assert y.shape == (len(x) // factor,)
    if len(y):
        kept = x[len(x) - len(y) * factor :]
        # Means of equal blocks average to the mean of what they cover; each lies in its block.
        np.testing.assert_allclose(y.mean(), kept.mean(), rtol=1e-9, atol=1e-6)
        blocks = kept.reshape(len(y), factor)
        assert np.all(y >= blocks.min(axis=1) - 1e-9) and np.all(y <= blocks.max(axis=1) + 1e-9)
