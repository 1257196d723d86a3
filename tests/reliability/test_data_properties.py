"""Property tests of the data layer on random long CSVs: random gaps, duplicates, shuffled and
interleaved rows, missing/infinite/text values, integer or datetime timestamps.

Loading either returns valid series or raises ``InputError``, never anything else; every item
is accounted for (a series or a named problem); and reading in chunks of whole items gives
exactly what loading the whole file gives, wherever the chunk boundaries fall.
"""

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rexforge.data.chunked import iter_item_chunks
from rexforge.data.sources import load_series, load_series_report
from rexforge.errors import InputError

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

values = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.just(float("nan")),
    st.sampled_from([float("inf"), float("-inf"), "n/a", "x1", ""]),
)


@st.composite
def item_rows(draw, item: str, dates: bool):
    """Rows of one item: positions on a grid with random gaps and duplicates."""
    n = draw(st.integers(0, 14))
    positions = draw(st.lists(st.integers(0, 40), min_size=n, max_size=n))
    step = draw(st.sampled_from([1, 2, 24]))
    if draw(st.booleans()):
        positions = sorted(positions)
    rows = []
    for p in positions:
        stamp = (
            str(pd.Timestamp("2024-01-01") + pd.Timedelta(hours=p * step)) if dates else p * step
        )
        rows.append((item, stamp, draw(values) if draw(st.integers(0, 9)) == 0 else float(p)))
    return rows


@st.composite
def long_tables(draw, contiguous: bool = False):
    dates = draw(st.booleans())
    items = draw(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=5, unique=True))
    rows = [row for item in items for row in draw(item_rows(item, dates))]
    if not contiguous and draw(st.booleans()):
        rows = draw(st.permutations(rows))
    return pd.DataFrame(rows, columns=["item_id", "timestamp", "target"])


def write(frame: pd.DataFrame, folder: str) -> Path:
    path = Path(folder) / "data.csv"
    frame.to_csv(path, index=False)
    return path


def check_series(series) -> None:
    assert len({s.item_id for s in series}) == len(series)
    for s in series:
        assert s.target.dtype == np.float64 and not np.isinf(s.target).any()
        assert not np.isnan(s.target).all()
        if s.timestamps is not None:
            assert len(s.timestamps) == len(s.target)
            assert s.timestamps.is_monotonic_increasing and s.timestamps.is_unique


@SETTINGS
@given(frame=long_tables())
def test_random_long_csv_loads_or_raises_input_error(frame):
    with tempfile.TemporaryDirectory() as folder:
        path = write(frame, folder)
        try:
            series = load_series(path)
        except InputError as exc:
            assert "\n" not in str(exc)
            return
        check_series(series)
        assert {s.item_id for s in series} == set(frame["item_id"])


@SETTINGS
@given(frame=long_tables())
def test_every_item_is_a_series_or_a_named_problem(frame):
    with tempfile.TemporaryDirectory() as folder:
        path = write(frame, folder)
        try:
            report = load_series_report(path)
        except InputError:
            return  # a problem of the table itself (e.g. header only)
        check_series(report.series)
        found = [s.item_id for s in report.series] + [p.item_id for p in report.problems]
        assert sorted(found) == sorted(set(frame["item_id"]))
        assert all(p.reason and "\n" not in p.reason for p in report.problems)


def _as_dict(report):
    series = {
        s.item_id: (
            s.target.tobytes(),  # NaN-safe equality
            None if s.timestamps is None else list(s.timestamps),
            s.freq,
        )
        for s in report.series
    }
    return series, sorted(report.problems)


@SETTINGS
@given(frame=long_tables(contiguous=True), chunk_rows=st.integers(1, 20))
def test_chunks_of_whole_items_load_like_the_whole_file(frame, chunk_rows):
    with tempfile.TemporaryDirectory() as folder:
        path = write(frame, folder)
        try:
            whole = load_series_report(path)
        except InputError:
            with pytest.raises(InputError):
                list(iter_item_chunks(path, chunk_rows=chunk_rows))
            return
        chunks = list(iter_item_chunks(path, chunk_rows=chunk_rows))
        ids = [set(c["item_id"]) for c in chunks]
        assert sum(map(len, ids)) == len(set().union(*ids))  # no item in two chunks
        # Every row once, in file order (each chunk infers its own dtypes: compare parsed).
        rows, expected = pd.concat(chunks), pd.read_csv(path, dtype={"item_id": str})
        for column in ("item_id", "timestamp"):
            assert rows[column].astype(str).tolist() == expected[column].astype(str).tolist()
        np.testing.assert_array_equal(
            pd.to_numeric(rows["target"], errors="coerce"),
            pd.to_numeric(expected["target"], errors="coerce"),
        )
        parts = [load_series_report(c) for c in chunks]
        merged = (
            {k: v for part in parts for k, v in _as_dict(part)[0].items()},
            sorted(p for part in parts for p in part.problems),
        )
        assert merged == _as_dict(whole)


@SETTINGS
@given(frame=long_tables(contiguous=True), chunk_rows=st.integers(1, 20), data=st.data())
def test_an_item_that_reappears_is_always_caught(frame, chunk_rows, data):
    items = list(dict.fromkeys(frame["item_id"]))
    counts = frame["item_id"].value_counts()
    movable = [item for item in items[:-1] if counts[item] >= 2]
    if not movable:
        return
    # Move the first row of an item with two or more rows after the rows of the last item.
    first = data.draw(st.sampled_from(movable))
    row = frame[frame["item_id"] == first].iloc[[0]]
    shuffled = pd.concat([frame.drop(index=row.index), row])
    with tempfile.TemporaryDirectory() as folder:
        path = write(shuffled, folder)
        with pytest.raises(InputError, match=f"item '{first}' appears again at line"):
            list(iter_item_chunks(path, chunk_rows=chunk_rows))
