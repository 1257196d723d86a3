"""Large loads: streaming a long CSV in bounded memory, and out-of-memory batches.

Peak memory itself is measured by ``benchmarks/bench_memory.py`` (timing and memory figures
never go into tests); here: the streamed result equals the in-memory one whatever the chunk
boundaries, the file contract (items contiguous) is enforced, and the output is all or nothing.
"""

import logging

import numpy as np
import pandas as pd
import pytest
import torch

import rexforge.forecast.api as api
from rexforge import load_model
from rexforge.cli import main
from rexforge.data.sources import load_series
from rexforge.errors import CheckpointError, InputError
from rexforge.forecast.frames import forecast_csv_streaming, forecast_series


@pytest.fixture(scope="module")
def model(tiny_ckpt):
    return load_model(tiny_ckpt)


def long_csv(path, n_items=7, seed=0, steps=False):
    """Items of different lengths with missing values: daily and hourly with a gap, or
    integer steps (a file's time column holds one kind)."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n_items):
        n = int(rng.integers(5, 60))
        if steps:
            stamps = pd.Index(10 + 2 * np.arange(n))
        elif i % 2 == 0:
            stamps = pd.date_range("2024-01-01", periods=n, freq="D")
        else:
            stamps = pd.date_range("2024-01-01", periods=n + 3, freq="h").delete([2, 3, 4])
        values = rng.normal(10 * i, 1 + i, n)
        values[rng.random(n) < 0.1] = np.nan
        parts.append(pd.DataFrame({"item_id": f"item{i}", "timestamp": stamps, "target": values}))
    pd.concat(parts).to_csv(path, index=False)
    return path


def read_forecast(path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    # Text may differ (pandas prints dates without a time when a whole chunk is at midnight),
    # values may not.
    if frame["timestamp"].dtype == object:
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], format="ISO8601")
    return frame


@pytest.mark.parametrize("steps", [False, True], ids=["dates", "steps"])
@pytest.mark.parametrize("chunk_rows, chunk_series", [(1, 1), (7, 2), (50, 3), (10_000, 10_000)])
def test_streamed_forecast_equals_in_memory_forecast(
    tmp_path, model, chunk_rows, chunk_series, steps
):
    data = long_csv(tmp_path / "data.csv", steps=steps)
    forecast_series(model, load_series(data), 9).to_csv(tmp_path / "expected.csv", index=False)
    summary = forecast_csv_streaming(
        model, data, 9, tmp_path / "out.csv", chunk_rows=chunk_rows, chunk_series=chunk_series
    )
    assert (summary.series, summary.rows, summary.problems) == (7, 63, [])
    expected = read_forecast(tmp_path / "expected.csv")
    pd.testing.assert_frame_equal(read_forecast(tmp_path / "out.csv"), expected)


def test_cli_stream_and_whole_file_write_the_same_forecast(tmp_path, tiny_ckpt):
    data = long_csv(tmp_path / "data.csv")
    base = ["forecast", "--model", str(tiny_ckpt), "--data", str(data), "--horizon", "5"]
    assert main([*base, "--output", str(tmp_path / "whole.csv")]) == 0
    assert main([*base, "--output", str(tmp_path / "stream.csv"), "--stream"]) == 0
    expected = read_forecast(tmp_path / "whole.csv")
    pd.testing.assert_frame_equal(read_forecast(tmp_path / "stream.csv"), expected)


def test_item_that_reappears_is_named_and_output_is_untouched(tmp_path, model):
    rows = "item_id,timestamp,target\n" + "".join(
        f"{item},{t},{t}.5\n" for item, t in [("a", 1), ("a", 2), ("b", 1), ("b", 2), ("a", 3)]
    )
    (tmp_path / "data.csv").write_text(rows)
    output = tmp_path / "out.csv"
    output.write_text("previous result\n")
    for chunk_rows in (1, 2, 100):
        with pytest.raises(InputError) as info:
            forecast_csv_streaming(model, tmp_path / "data.csv", 3, output, chunk_rows=chunk_rows)
        assert str(info.value) == (
            f"{tmp_path / 'data.csv'}: item 'a' appears again at line 6 after other items' rows; "
            "reading in chunks needs each item's rows together (sort the file by 'item_id')"
        )
    assert output.read_text() == "previous result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "out.csv"]


def test_stream_names_every_bad_series_across_chunks(tmp_path, model):
    data = long_csv(tmp_path / "data.csv", n_items=6)
    frame = pd.read_csv(data)
    frame.loc[frame.item_id == "item1", "target"] = np.nan
    frame.loc[frame.index[-1], "target"] = np.inf  # item5
    frame.to_csv(data, index=False)
    with pytest.raises(InputError, match=r"item 'item1': all values .*; item 'item5': .*infinite"):
        forecast_csv_streaming(model, data, 3, tmp_path / "out.csv", chunk_rows=5, chunk_series=1)
    assert not (tmp_path / "out.csv").exists()
    summary = forecast_csv_streaming(
        model, data, 3, tmp_path / "out.csv", chunk_rows=5, chunk_series=1, on_bad="skip"
    )
    assert [p.item_id for p in summary.problems] == ["item1", "item5"]
    assert summary.series == 4
    assert list(pd.read_csv(tmp_path / "out.csv")["item_id"].unique()) == [
        "item0", "item2", "item3", "item4"
    ]  # fmt: skip


def test_stream_refuses_what_it_cannot_do(tmp_path, tiny_ckpt, capsys):
    data = long_csv(tmp_path / "data.csv")
    base = ["forecast", "--model", str(tiny_ckpt), "--horizon", "3", "--stream"]
    parquet = tmp_path / "data.parquet"
    parquet.write_bytes(b"PAR1")
    for extra, message in [
        (["--data", str(data), "--plot", str(tmp_path / "p.png")], "cannot be used with --plot"),
        (["--data", str(data), "--layout", "wide"], "cannot be used with --layout wide"),
        (["--data", str(parquet)], "needs a CSV or TSV file, not parquet"),
    ]:
        assert main([*base, *extra, "--output", str(tmp_path / "o.csv")]) == 2
        assert message in capsys.readouterr().err


def test_stream_disk_full_keeps_previous_output(tmp_path, model, monkeypatch):
    import os

    data = long_csv(tmp_path / "data.csv")
    output = tmp_path / "out.csv"
    output.write_text("previous result\n")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(CheckpointError, match=r"could not write .*out\.csv: No space left"):
        forecast_csv_streaming(model, data, 3, output)
    assert output.read_text() == "previous result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "out.csv"]


# ------------------------------------------------------------------------ out-of-memory batches


def fail_above(limit: int, seen: list, error=RuntimeError):
    real = api.forecast_quantiles

    def engine(model, batch, *args, **kwargs):
        seen.append(batch.shape[0])
        if batch.shape[0] > limit:
            raise error(
                "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate "
                "memory: you tried to allocate 123456789 bytes. Error code 12"
            )
        return real(model, batch, *args, **kwargs)

    return engine


@pytest.mark.parametrize("error", [RuntimeError, getattr(torch, "OutOfMemoryError", RuntimeError)])
def test_out_of_memory_batch_is_halved_and_retried(model, monkeypatch, caplog, error):
    context = [np.sin(np.arange(20 + 3 * i) / 4) for i in range(21)]
    expected_q, expected_mean = model.forecast(context, 7, batch_size=8)
    seen: list[int] = []
    monkeypatch.setattr(api, "forecast_quantiles", fail_above(3, seen, error))
    with caplog.at_level(logging.WARNING, logger="rexforge.forecast.api"):
        q, mean = model.forecast(context, 7, batch_size=8)
    torch.testing.assert_close(q, expected_q, rtol=0, atol=1e-6)
    torch.testing.assert_close(mean, expected_mean, rtol=0, atol=1e-6)
    # 8 fails, 4 fails, then pieces of 2 for the rest: the size that worked is remembered.
    assert seen[:3] == [8, 4, 2] and max(seen[3:]) == 2 and sum(seen) - 12 == 21
    assert "out of memory on a batch of 8 series; retrying in batches of 4" in caplog.text
    # yield_per_batch still yields one pair per requested batch
    monkeypatch.setattr(api, "forecast_quantiles", fail_above(3, []))
    sizes = [
        qq.shape[0] for qq, _ in model.forecast(context, 7, batch_size=8, yield_per_batch=True)
    ]
    assert sizes == [8, 8, 5]


def test_out_of_memory_at_batch_size_one_is_an_input_error(model, monkeypatch):
    monkeypatch.setattr(api, "forecast_quantiles", fail_above(0, []))
    with pytest.raises(InputError, match=r"even for a batch of 1 series \(batch_size 16 was split"):
        model.forecast([np.ones(30)] * 5, 4, batch_size=16)


def test_other_runtime_errors_are_not_retried(model, monkeypatch):
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(api, "forecast_quantiles", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        model.forecast([np.ones(30)] * 5, 4, batch_size=4)
    assert len(calls) == 1
