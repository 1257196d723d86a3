"""load_series / read_table: layouts, formats, gap handling, and one clear error per bad input."""

from __future__ import annotations

import gzip
import logging

import numpy as np
import pandas as pd
import pytest

from rexforge.data.series import TimeSeries
from rexforge.data.sources import (
    load_series,
    load_series_report,
    read_table,
    series_to_frame,
)
from rexforge.errors import InputError


def long_frame() -> pd.DataFrame:
    """Two daily items, rows deliberately interleaved and out of order."""
    return pd.DataFrame(
        {
            "item_id": ["b", "a", "a", "b", "a", "b"],
            "timestamp": [
                "2024-01-02",
                "2024-01-03",
                "2024-01-01",
                "2024-01-01",
                "2024-01-02",
                "2024-01-03",
            ],
            "target": [20.0, 3.0, 1.0, 10.0, 2.0, 30.0],
        }
    )


def write(frame: pd.DataFrame, path) -> str:
    name = str(path)
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    elif name.endswith((".arrow", ".feather")):
        frame.reset_index(drop=True).to_feather(path)
    elif name.endswith(".tsv"):
        frame.to_csv(path, sep="\t", index=False)
    else:
        frame.to_csv(path, index=False)
    return name


# ------------------------------------------------------------------------------------- layouts


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".tsv", ".parquet", ".arrow", ".feather"])
def test_long_layout_every_format(tmp_path, suffix):
    path = write(long_frame(), tmp_path / f"data{suffix}")
    series = load_series(path)
    assert [s.item_id for s in series] == ["b", "a"]  # order of first appearance
    by_id = {s.item_id: s for s in series}
    np.testing.assert_array_equal(by_id["a"].target, [1.0, 2.0, 3.0])  # sorted by time
    np.testing.assert_array_equal(by_id["b"].target, [10.0, 20.0, 30.0])
    assert by_id["a"].freq == "D"
    assert list(by_id["a"].timestamps) == list(pd.date_range("2024-01-01", periods=3, freq="D"))


def test_dataframe_source_and_round_trip():
    series = load_series(long_frame())
    frame = series_to_frame(series)
    assert list(frame.columns) == ["item_id", "timestamp", "target"]
    again = load_series(frame)
    for s, t in zip(series, again):
        assert s.item_id == t.item_id and s.freq == t.freq
        np.testing.assert_array_equal(s.target, t.target)
        assert s.timestamps.equals(t.timestamps)


def test_custom_column_names():
    frame = long_frame().rename(columns={"item_id": "id", "timestamp": "ds", "target": "y"})
    series = load_series(frame, id_column="id", timestamp_column="ds", target_column="y")
    assert sorted(s.item_id for s in series) == ["a", "b"]
    out = series_to_frame(series, id_column="id", timestamp_column="ds", target_column="y")
    assert list(out.columns) == ["id", "ds", "y"]


def test_long_without_id_is_one_series():
    frame = long_frame().query("item_id == 'a'").drop(columns="item_id")
    (series,) = load_series(frame, layout="long")
    assert series.item_id == "target"
    np.testing.assert_array_equal(series.target, [1.0, 2.0, 3.0])


def test_integer_steps():
    frame = pd.DataFrame({"item_id": ["x"] * 4, "timestamp": [0, 1, 3, 4], "target": [1, 2, 4, 5]})
    (series,) = load_series(frame)
    assert series.freq is None
    assert list(series.timestamps) == [0, 1, 2, 3, 4]
    assert series.timestamps.dtype == np.int64
    np.testing.assert_array_equal(series.target, [1, 2, np.nan, 4, 5])


def test_no_timestamp_column_means_row_order():
    frame = pd.DataFrame({"item_id": ["x", "x", "y"], "target": [3.0, 1.0, 2.0]})
    series = load_series(frame, timestamp_column=None)
    assert series[0].timestamps is None
    np.testing.assert_array_equal(series[0].target, [3.0, 1.0])


def crypto_frame() -> pd.DataFrame:
    dates = pd.date_range("2023-05-01", periods=5, freq="D").strftime("%Y-%m-%d")
    return pd.DataFrame(
        {
            "date": dates,
            "open": [1.0, 2, 3, 4, 5],
            "high": [2.0, 3, 4, 5, 6],
            "low": [0.5, 1, 2, 3, 4],
            "close": [1.5, 2.5, 3.5, 4.5, 5.5],
            "volume": [100, 200, 300, 400, 500],
            "symbol": ["BTC"] * 5,
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_wide_layout_picks_columns(tmp_path, suffix):
    path = write(crypto_frame(), tmp_path / f"btc{suffix}")
    (close,) = load_series(path, columns=["close"])
    assert close.item_id == "close" and close.freq == "D"
    np.testing.assert_array_equal(close.target, [1.5, 2.5, 3.5, 4.5, 5.5])
    assert close.timestamps[0] == pd.Timestamp("2023-05-01")
    every = load_series(path)  # all numeric columns; the text column "symbol" is not a series
    assert [s.item_id for s in every] == ["open", "high", "low", "close", "volume"]


def test_wide_explicit_time_column_and_datetime_index():
    frame = crypto_frame().rename(columns={"date": "when"})
    (s,) = load_series(frame, layout="wide", time_column="when", columns=["open"])
    assert s.freq == "D"
    indexed = (
        crypto_frame()
        .set_index(pd.DatetimeIndex(crypto_frame()["date"]))
        .drop(columns=["date", "symbol"])
    )
    (s2,) = load_series(indexed, columns=["high"])
    assert s2.freq == "D" and s2.timestamps[-1] == pd.Timestamp("2023-05-05")


def test_wide_without_time_column_has_no_timestamps():
    (s,) = load_series(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    assert s.timestamps is None and s.freq is None


# ----------------------------------------------------------------------------------- gaps


def gappy_frame() -> pd.DataFrame:
    # Hourly with 02:00 and 03:00 missing: two grid points to insert.
    stamps = ["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 04:00", "2024-01-01 05:00"]
    return pd.DataFrame({"item_id": "g", "timestamp": stamps, "target": [0.0, 1.0, 4.0, 5.0]})


def test_gaps_keep_inserts_nan():
    (s,) = load_series(gappy_frame())
    assert s.freq == "h" and len(s) == 6
    np.testing.assert_array_equal(s.target, [0, 1, np.nan, np.nan, 4, 5])
    assert s.timestamps[2] == pd.Timestamp("2024-01-01 02:00")


def test_gaps_interpolate_is_linear():
    (s,) = load_series(gappy_frame(), gaps="interpolate")
    np.testing.assert_allclose(s.target, [0, 1, 2, 3, 4, 5])


def test_monthly_gap_uses_calendar_months():
    stamps = ["2020-01-01", "2020-02-01", "2020-04-01", "2020-05-01"]
    frame = pd.DataFrame({"item_id": "m", "timestamp": stamps, "target": [1.0, 2, 4, 5]})
    (s,) = load_series(frame, gaps="interpolate")
    assert s.freq == "MS"
    np.testing.assert_allclose(s.target, [1, 2, 3, 4, 5])


def test_min_length_counts_filled_grid():
    (s,) = load_series(gappy_frame(), min_length=6)
    assert len(s) == 6
    with pytest.raises(InputError, match=r"item 'g'.*shorter than min_length 7"):
        load_series(gappy_frame(), min_length=7)


# ------------------------------------------------------------------------ read_table errors


def test_read_table_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.csv: file not found"):
        read_table(tmp_path / "nope.csv")


def test_read_table_directory(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        read_table(tmp_path)


def test_read_table_empty_file(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(InputError, match=r"e\.csv: file is empty"):
        read_table(tmp_path / "e.csv")


def test_read_table_empty_gzip(tmp_path):
    with gzip.open(tmp_path / "e.csv.gz", "wt") as f:
        f.write("")
    with pytest.raises(InputError, match="empty"):
        read_table(tmp_path / "e.csv.gz")


def test_read_table_header_only(tmp_path):
    (tmp_path / "h.csv").write_text("item_id,timestamp,target\n")
    with pytest.raises(InputError, match=r"h\.csv: table has a header .*target.* but no rows"):
        read_table(tmp_path / "h.csv")


def test_read_table_unknown_extension(tmp_path):
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(InputError, match=r"data\.xlsx: unknown table extension '\.xlsx'"):
        read_table(tmp_path / "data.xlsx")


@pytest.mark.parametrize("name", ["bad.parquet", "bad.arrow"])
def test_read_table_unparsable_binary(tmp_path, name):
    (tmp_path / name).write_bytes(b"this is not a columnar file at all")
    with pytest.raises(InputError, match=rf"{name}: cannot read as"):
        read_table(tmp_path / name)


def test_read_table_unparsable_csv(tmp_path):
    (tmp_path / "bad.csv").write_text('a,b\n1,"unterminated\n')
    with pytest.raises(InputError, match=r"bad\.csv: cannot read as csv"):
        read_table(tmp_path / "bad.csv")


# ------------------------------------------------------------------------ load_series errors


def test_missing_columns_list_available(tmp_path):
    path = write(long_frame(), tmp_path / "d.csv")
    with pytest.raises(InputError) as info:
        load_series(path, layout="long", target_column="value", timestamp_column="ds")
    message = str(info.value)
    assert "d.csv" in message and "'value'" in message and "'ds'" in message
    assert "available: item_id, timestamp, target" in message
    assert "\n" not in message


def test_wide_unknown_column_lists_available():
    with pytest.raises(InputError, match=r"no target column 'Close' \(available: date, open"):
        load_series(crypto_frame(), columns=["Close"])


def test_wide_without_numeric_columns():
    frame = pd.DataFrame({"date": ["2024-01-01", "2024-01-02"], "name": ["a", "b"]})
    with pytest.raises(InputError, match="no numeric column to use as a series"):
        load_series(frame)


def test_text_in_target_names_column_value_and_item():
    frame = long_frame()
    frame["target"] = frame["target"].astype(object)
    frame.loc[3, "target"] = "n/a"  # item b
    with pytest.raises(InputError) as info:
        load_series(frame)
    message = str(info.value)
    assert "item 'b'" in message and "column 'target'" in message and "'n/a'" in message
    assert "item 'a'" not in message


def test_text_wide_column_named():
    with pytest.raises(
        InputError, match=r"item 'symbol': column 'symbol' holds non-numeric value 'BTC'"
    ):
        load_series(crypto_frame(), columns=["close", "symbol"])


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_values_name_item(value):
    frame = long_frame()
    frame.loc[1, "target"] = value  # item a
    with pytest.raises(InputError, match=r"item 'a': column 'target' holds infinite values"):
        load_series(frame)


def test_all_nan_series():
    frame = long_frame()
    frame.loc[frame.item_id == "b", "target"] = np.nan
    with pytest.raises(InputError, match=r"item 'b': all values are missing"):
        load_series(frame)


def test_duplicate_timestamp_names_item():
    frame = long_frame()
    frame.loc[4, "timestamp"] = "2024-01-03"  # item a now has 01-03 twice
    with pytest.raises(InputError, match=r"item 'a': duplicate timestamp 2024-01-03"):
        load_series(frame)


def test_mixed_frequency_names_item():
    stamps = ["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 02:00", "2024-01-01 02:30"]
    frame = pd.DataFrame({"item_id": "mix", "timestamp": stamps, "target": [1.0, 2, 3, 4]})
    with pytest.raises(InputError, match=r"item 'mix': irregular time spacing.*02:30"):
        load_series(frame)


def test_unparsable_and_missing_timestamps():
    frame = long_frame()
    frame.loc[0, "timestamp"] = "yesterday-ish"  # item b
    frame.loc[1, "timestamp"] = None  # item a
    with pytest.raises(InputError) as info:
        load_series(frame)
    message = str(info.value)
    assert "item 'b': unparsable timestamp 'yesterday-ish' in column 'timestamp'" in message
    assert "item 'a': missing timestamp in column 'timestamp'" in message


def test_missing_item_id():
    frame = long_frame()
    frame.loc[2, "item_id"] = None
    with pytest.raises(
        InputError, match=r"column 'item_id': 1 rows have no item id \(first at row 2\)"
    ):
        load_series(frame)


def test_every_bad_series_in_one_message():
    frame = pd.concat(
        [
            long_frame(),
            pd.DataFrame({"item_id": ["c"], "timestamp": ["2024-01-01"], "target": [np.inf]}),
            pd.DataFrame({"item_id": ["d"], "timestamp": ["2024-01-01"], "target": [np.nan]}),
        ],
        ignore_index=True,
    )
    with pytest.raises(InputError) as info:
        load_series(frame)
    assert "item 'c'" in str(info.value) and "item 'd'" in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [{"layout": "tall"}, {"gaps": "fill"}, {"min_length": 0}, {"on_bad": "ignore"}],
)
def test_bad_arguments(kwargs):
    with pytest.raises(InputError, match=next(iter(kwargs))):
        load_series(long_frame(), **kwargs)


# --------------------------------------------------------------------------------- on_bad


def test_skip_drops_and_reports(caplog):
    frame = long_frame()
    frame.loc[frame.item_id == "b", "target"] = np.nan
    with caplog.at_level(logging.WARNING, logger="rexforge.data.problems"):
        series = load_series(frame, on_bad="skip")
    assert [s.item_id for s in series] == ["a"]
    assert "skipped 1 bad series" in caplog.text and "item 'b'" in caplog.text
    report = load_series_report(frame)
    assert [s.item_id for s in report.series] == ["a"]
    assert report.problems == [("b", "all values are missing")]


def test_series_to_frame_without_timestamps():
    frame = series_to_frame([TimeSeries("z", [1.0, 2.0])])
    assert frame["timestamp"].tolist() == [0, 1]
    assert frame["item_id"].tolist() == ["z", "z"]


def _long_frame(names, n_items=2, n=30):
    id_name, time_name, value_name = names
    frames = [
        pd.DataFrame(
            {
                id_name: f"s{i}",
                time_name: pd.date_range("2024-01-01", periods=n, freq="D"),
                value_name: np.arange(n) + 10.0 * i,
            }
        )
        for i in range(n_items)
    ]
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize(
    "names",
    [
        ("unique_id", "ds", "y"),
        ("item_id", "timestamp", "target"),
        ("id", "date", "value"),
        ("ID", "Date", "Value"),
    ],
)
def test_long_tables_under_common_library_names_are_read_as_long(tmp_path, names):
    path = tmp_path / "long.csv"
    _long_frame(names).to_csv(path, index=False)
    series = load_series(path)
    assert [s.item_id for s in series] == ["s0", "s1"]
    assert [float(s.target[-1]) for s in series] == [29.0, 39.0] and series[0].freq == "D"


def test_a_long_table_under_other_names_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "odd.csv"
    _long_frame(("series", "when", "amount")).to_csv(path, index=False)
    with pytest.raises(InputError) as caught:
        load_series(path)
    assert str(caught.value) == (
        f"{path}: cannot tell the layout (timestamps in column 'when' repeat, and column "
        "'series' looks like series ids, but there is no id column 'item_id'): name the "
        "columns: --id-column ID --timestamp-column TIME --target VALUE (long), or --layout wide"
    )
    named = load_series(path, id_column="series", timestamp_column="when", target_column="amount")
    assert len(named) == 2


def test_a_parquet_file_with_integer_ids_is_not_forecast_as_a_series(tmp_path):
    pytest.importorskip("pyarrow")
    frame = _long_frame(("key", "t", "v"))
    frame["key"] = frame["key"].str[1:].astype(int)  # integer ids: numeric, like a series
    path = tmp_path / "wrong.parquet"
    frame.to_parquet(path)
    with pytest.raises(InputError, match="timestamps in column 't' repeat, and column 'key'"):
        load_series(path)
    without_time = frame.drop(columns="t")
    with pytest.raises(InputError, match=r"\(no time column, and column 'key' looks like series"):
        load_series(without_time)
    wide = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=30), "a": np.arange(30)})
    assert [s.item_id for s in load_series(wide)] == ["a"]  # plain wide tables still load


def test_column_names_accept_commas_spaces_and_lists():
    from rexforge.data.sources import column_names

    for given in (["a,b"], ["a", "b"], ["a,", "b"], "a, b", ["a, b"]):
        assert column_names(given) == ["a", "b"], given
    assert column_names(None) is None and column_names([","]) is None
