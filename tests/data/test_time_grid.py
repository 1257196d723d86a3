"""Frequency inference and regular grids."""

from __future__ import annotations

import pandas as pd
import pytest

from rexforge.data.time_grid import (
    IrregularSpacing,
    grid_from_start,
    looks_like_time,
    normalize_freq,
    parse_time_column,
    regular_grid,
)


@pytest.mark.parametrize(
    ("stamps", "freq", "length"),
    [
        (["2020-01-01", "2020-01-02", "2020-01-03"], "D", 3),
        (["2020-01-01", "2020-01-02", "2020-01-05"], "D", 5),
        (["2020-01-31", "2020-02-29", "2020-04-30"], "ME", 4),
        (["2020-01-01", "2020-04-01", "2020-10-01"], "QS-JAN", 4),
        (["2001-01-01", "2002-01-01", "2005-01-01"], "YS-JAN", 5),
        (["2024-01-01", "2024-01-08", "2024-01-22"], "W-MON", 4),
        (["2024-01-05", "2024-01-08", "2024-01-09", "2024-01-11"], "B", 5),  # Fri, Mon, Tue, Thu
        (["2024-01-01 00:00", "2024-01-01 00:15", "2024-01-01 01:00"], "15min", 5),
    ],
)
def test_regular_grid_with_gaps(stamps, freq, length):
    grid, inferred = regular_grid(pd.DatetimeIndex(stamps))
    assert inferred == freq
    assert len(grid) == length
    assert pd.DatetimeIndex(stamps).isin(grid).all()


def test_irregular_spacing_names_offending_timestamp():
    stamps = pd.DatetimeIndex(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-03 07:00"])
    with pytest.raises(IrregularSpacing, match="2024-01-03 07:00"):
        regular_grid(stamps)


def test_absurd_grid_is_refused():
    stamps = pd.DatetimeIndex(["2000-01-01 00:00:00", "2000-01-01 00:00:01", "2020-01-01"])
    with pytest.raises(IrregularSpacing, match="would need a grid"):
        regular_grid(stamps)


def test_integer_steps_grid():
    grid, freq = regular_grid(pd.Index([10, 12, 18]))
    assert freq is None and list(grid) == [10, 12, 14, 16, 18]
    with pytest.raises(IrregularSpacing, match="7 -> 10"):
        regular_grid(pd.Index([1, 3, 5, 7, 10]))


def test_parse_time_column_kinds():
    steps = parse_time_column(pd.Series(["1", "2", "3"]))
    assert steps.is_steps and list(steps.values) == [1, 2, 3]
    dates = parse_time_column(pd.Series(["2024-01-01", "2024-01-02 10:00", "bad", None]))
    assert not dates.is_steps
    assert list(dates.bad) == [False, False, True, False]
    assert pd.Timestamp(dates.values[1]) == pd.Timestamp("2024-01-02 10:00")
    fractional = parse_time_column(pd.Series([1.0, 2.5]))
    assert list(fractional.bad) == [False, True]


def test_looks_like_time():
    assert looks_like_time(pd.Series(["2024-01-01", "2024-02-01"]))
    assert not looks_like_time(pd.Series(["1", "2"]))
    assert not looks_like_time(pd.Series([1.0, 2.0]))
    assert not looks_like_time(pd.Series(["BTC", "ETH"]))


@pytest.mark.parametrize(("legacy", "modern"), [("H", "h"), ("15T", "15min"), ("A-DEC", "Y-DEC")])
def test_normalize_freq(legacy, modern):
    assert normalize_freq(legacy) == modern


def test_grid_from_start_uses_periods():
    # GluonTS: a monthly start of 2020-01-15 means the January 2020 period.
    assert list(grid_from_start("2020-01-15", "M", 2)) == list(
        pd.to_datetime(["2020-01-01", "2020-02-01"])
    )
    assert grid_from_start("2024-01-01 05:00", "H", 3)[-1] == pd.Timestamp("2024-01-01 07:00")
    assert grid_from_start("2024-01-05", "B", 2)[-1] == pd.Timestamp("2024-01-08")


def test_horizon_end_problem_names_steps_that_overflow_pandas_timestamps():
    from rexforge.data.time_grid import horizon_end_problem

    last = pd.Timestamp("2020-01-01")
    assert horizon_end_problem(last, "h", 100_000) is None  # 2031
    assert horizon_end_problem(last, "D", 100_000) == (
        "100000 steps of D after 2020-01-01 00:00:00 run past the last timestamp pandas can "
        "represent (2262-04-11)"
    )
    assert horizon_end_problem(last, "MS", 100_000) is not None  # year 10353
