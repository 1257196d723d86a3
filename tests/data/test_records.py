"""Arrow (GluonTS / Hugging Face datasets) and GluonTS JSON-lines readers, without gluonts."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rexforge.data.records import iter_arrow_dataset, load_arrow_dataset, load_gluonts
from rexforge.errors import InputError


def corpus_table() -> pa.Table:
    return pa.table(
        {
            "start": pa.array(
                [pd.Timestamp("2020-01-01"), pd.Timestamp("2021-06-01")], pa.timestamp("s")
            ),
            "target": pa.array([[1.0, 2.0, None], [4.0, 5.0]], pa.list_(pa.float32())),
        }
    )


def test_arrow_file_format_like_chronos_corpus(tmp_path):
    path = tmp_path / "corpus.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, corpus_table().schema) as w:
        w.write_table(corpus_table())
    series = load_arrow_dataset(path)
    assert [s.item_id for s in series] == ["0", "1"]
    np.testing.assert_array_equal(series[0].target, [1.0, 2.0, np.nan])
    # A start without a frequency cannot give timestamps; it is kept in meta.
    assert series[0].timestamps is None
    assert series[1].meta["start"] == pd.Timestamp("2021-06-01")
    with_freq = load_arrow_dataset(path, freq="D")
    assert with_freq[1].timestamps[-1] == pd.Timestamp("2021-06-02")
    assert with_freq[1].freq == "D"


def test_hugging_face_stream_format_with_ids_and_timestamp_lists(tmp_path):
    table = pa.table(
        {
            "id": ["x", "y"],
            "timestamp": [
                list(pd.date_range("2024-01-01", periods=3, freq="h")),
                list(pd.date_range("2024-02-01", periods=4, freq="h")),
            ],
            "target": [[1, 2, 3], [4, 5, 6, 7]],
        }
    )
    folder = tmp_path / "hf"
    folder.mkdir()
    path = folder / "data-00000-of-00001.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=1)  # several record batches
    series = load_arrow_dataset(folder)
    assert [s.item_id for s in series] == ["x", "y"]
    assert series[1].freq == "h" and series[1].timestamps[0] == pd.Timestamp("2024-02-01")
    np.testing.assert_array_equal(series[1].target, [4, 5, 6, 7])


def test_parquet_sequences_and_multivariate_and_streaming(tmp_path):
    table = pa.table(
        {
            "item_id": ["m"],
            "start": ["2024-01-01"],
            "freq": ["D"],
            "target": [[[1.0, 2.0], [3.0, 4.0]]],
        }
    )
    pq.write_table(table, tmp_path / "multi.parquet")
    series = load_arrow_dataset(tmp_path / "multi.parquet")
    assert [s.item_id for s in series] == ["m_0", "m_1"]
    np.testing.assert_array_equal(series[1].target, [3.0, 4.0])
    assert series[0].freq == "D" and series[0].timestamps[1] == pd.Timestamp("2024-01-02")
    assert [s.item_id for s in iter_arrow_dataset(tmp_path / "multi.parquet")] == ["m_0", "m_1"]


def test_arrow_bad_rows_raise_or_skip(tmp_path):
    table = pa.table(
        {
            "item_id": ["ok", "inf", "nan", "null"],
            "target": [[1.0], [float("inf")], [None, None], None],
        }
    )
    pq.write_table(table, tmp_path / "bad.parquet")
    with pytest.raises(InputError) as info:
        load_arrow_dataset(tmp_path / "bad.parquet")
    message = str(info.value)
    assert "item 'inf': target holds infinite values" in message
    assert "item 'nan': all values are missing" in message
    assert "item 'null': column 'target' is null" in message
    kept = load_arrow_dataset(tmp_path / "bad.parquet", on_bad="skip")
    assert [s.item_id for s in kept] == ["ok"]


def test_arrow_wrong_target_column(tmp_path):
    pq.write_table(pa.table({"values": [[1.0]]}), tmp_path / "t.parquet")
    with pytest.raises(InputError, match=r"no column 'target' \(available: values\)"):
        load_arrow_dataset(tmp_path / "t.parquet")
    pq.write_table(pa.table({"target": [1.0]}), tmp_path / "flat.parquet")
    with pytest.raises(InputError, match="expected a list of numbers per row"):
        load_arrow_dataset(tmp_path / "flat.parquet")


def test_arrow_missing_and_garbage(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_arrow_dataset(tmp_path / "none.arrow")
    (tmp_path / "junk.arrow").write_bytes(b"not arrow")
    with pytest.raises(InputError, match=r"junk\.arrow: cannot read"):
        load_arrow_dataset(tmp_path / "junk.arrow")


def gluonts_entries():
    return [
        {"start": "2020-01-01 00:00", "target": [1.0, "NaN", 3.0], "item_id": "a"},
        {"start": "2020-03-01", "target": [5, None], "id": 7, "freq": "D"},
    ]


@pytest.mark.parametrize("name", ["data.json", "data.jsonl", "data.json.gz"])
def test_gluonts_json_lines(tmp_path, name):
    text = "\n".join(json.dumps(e) for e in gluonts_entries()) + "\n"
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    (tmp_path / "metadata.json").write_text(json.dumps({"freq": "H"}))
    a, b = load_gluonts(tmp_path if name == "data.json" else path)
    assert a.item_id == "a" and a.freq == "h"
    np.testing.assert_array_equal(a.target, [1.0, np.nan, 3.0])
    assert a.timestamps[-1] == pd.Timestamp("2020-01-01 02:00")
    assert b.item_id == "7" and b.freq == "D"
    assert b.timestamps[1] == pd.Timestamp("2020-03-02")


def test_gluonts_in_memory_with_periods():
    entries = [{"start": pd.Period("2021-05", freq="M"), "target": np.arange(3.0)}]
    (s,) = load_gluonts(entries, freq="M")
    assert s.item_id == "0" and s.freq == "MS"
    assert list(s.timestamps) == list(pd.date_range("2021-05-01", periods=3, freq="MS"))


def test_gluonts_errors(tmp_path):
    (tmp_path / "broken.json").write_text('{"start": "2020-01-01", "target": [1]}\n{oops\n')
    with pytest.raises(InputError, match=r"broken\.json:2: invalid JSON line"):
        load_gluonts(tmp_path / "broken.json")
    with pytest.raises(InputError, match="entry 0 has no 'target' field"):
        load_gluonts([{"start": "2020-01-01"}])
    with pytest.raises(InputError, match=r"item 'x': all values are missing"):
        load_gluonts([{"target": [None, None], "item_id": "x"}])
    with pytest.raises(InputError, match=r"item 'y': target holds non-numeric values"):
        load_gluonts([{"target": ["a"], "item_id": "y"}])
    nested = tmp_path / "ds"
    (nested / "train").mkdir(parents=True)
    with pytest.raises(InputError, match="point at one of its folders: train"):
        load_gluonts(nested)
