"""Bad data through the CLI (``rexforge forecast``, loaded whole and ``--stream``ed) and the
Python API (``forecast``, ``forecast_df``, ``load_series``).

Every case ends in one clear one-line message naming the problem (and the item at fault),
exit status 2 from the CLI, and no traceback. Decisions on the borderline cases:

* all-NaN: a *table* series without one observation is refused ("all values are missing":
  it is almost surely a broken column or join); an all-NaN *array* passed to ``forecast``
  is forecast, as the official model does (its scale rules give a finite forecast).
* a single observation: forecastable by the model; from a table with integer steps (or
  none) it is forecast, but with one *datetime* its frequency is unknown and the future
  timestamps cannot be made, so that series is refused by name (``--skip-bad`` skips it).
* unsorted timestamps: sorted silently (row order in a file carries no meaning).
"""

import logging
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from rexforge import load_model
from rexforge.cli import main
from rexforge.data.sources import load_series
from rexforge.errors import InputError


def frame(item="a", n=40, start="2024-01-01", freq="D", seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "item_id": item,
            "timestamp": pd.date_range(start, periods=n, freq=freq),
            "target": np.sin(np.arange(n) / 3) + rng.normal(0, 0.1, n),
        }
    )


def with_bad_b(edit) -> str:
    """A good item 'a' followed by item 'b', which ``edit`` spoils; as CSV text."""
    a, b = frame("a"), frame("b", seed=1)
    b = edit(b.astype({"target": object, "timestamp": object}))
    return a.to_csv(index=False) + b.to_csv(index=False, header=False)


def _set(column, rows, value):
    def edit(b):
        b.loc[rows, column] = value
        return b

    return edit


def _daily_then_hourly(b):
    # Mostly hourly: the daily rows lie on the hourly grid, as a long run of 24-step gaps.
    return pd.concat([b.iloc[:12], frame("b", n=40, start="2024-03-01", freq="h")])


def _daily_then_half_hourly_offset(b):
    # Mostly daily, then rows off the daily grid.
    return pd.concat([b, frame("b", n=10, start="2024-03-01 00:30", freq="h")])


# name -> (file text, regex the one-line message must match)
CASES = {
    "empty file": ("", r"empty\.csv: file is empty"),
    "header only": ("item_id,timestamp,target\n", r"header.* but no rows"),
    "no numeric target": (
        with_bad_b(_set("target", slice(None), "high")),
        r"item 'b': column 'target' holds non-numeric value 'high'",
    ),
    "text in target": (
        with_bad_b(_set("target", 5, "12,5")),
        r"item 'b': column 'target' holds non-numeric value '12,5'",
    ),
    "all NaN": (
        with_bad_b(_set("target", slice(None), np.nan)),
        r"item 'b': all values are missing",
    ),
    "+inf": (with_bad_b(_set("target", 3, np.inf)), r"item 'b': column 'target' holds infinite"),
    "-inf": (with_bad_b(_set("target", 3, -np.inf)), r"item 'b': column 'target' holds infinite"),
    "single datetime observation": (
        with_bad_b(lambda b: b.iloc[:1]),
        r"item 'b': cannot continue its timestamps: a single timestamp has no frequency",
    ),
    "duplicate timestamps": (
        with_bad_b(_set("timestamp", 7, pd.Timestamp("2024-01-03"))),
        r"item 'b': duplicate timestamp 2024-01-03",
    ),
    "mixed frequencies (coarse run)": (
        with_bad_b(_daily_then_hourly),
        r"item 'b': mixed frequencies: the timestamps from 2024-01-01 00:00:00 to "
        r"2024-01-12 00:00:00 are 24 x 'h' apart",
    ),
    "mixed frequencies (off grid)": (
        with_bad_b(_daily_then_half_hourly_offset),
        r"item 'b': irregular time spacing: most common step is 1 days .* off that grid",
    ),
    "unparsable timestamp": (
        with_bad_b(_set("timestamp", 2, "soon")),
        r"item 'b': unparsable timestamp 'soon'",
    ),
}


@pytest.fixture
def cli(tmp_path, tiny_ckpt, capsys):
    """Run ``rexforge forecast`` in process: (exit code, stderr, output path)."""

    def run(*args: str, model=None):
        output = tmp_path / "forecast.csv"
        argv = ["forecast", "--model", str(model or tiny_ckpt), "--output", str(output), *args]
        code = main(argv)
        return code, capsys.readouterr().err.strip(), output

    return run


def assert_one_line_error(code, err, pattern):
    assert code == 2, err
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert re.search(pattern, err), err


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_file_one_line_exit_2(tmp_path, cli, case, stream):
    text, pattern = CASES[case]
    path = tmp_path / ("empty.csv" if case == "empty file" else "data.csv")
    path.write_text(text)
    code, err, output = cli("--data", str(path), "--horizon", "5", *(["--stream"] * stream))
    assert_one_line_error(code, err, pattern)
    assert not output.exists()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(
    "args, pattern",
    [
        (["--horizon", "0"], r"--horizon must be > 0, got 0"),
        (["--horizon", "-3"], r"--horizon must be > 0, got -3"),
        (["--horizon", "1000000000"], r"--horizon 1000000000 is larger than the supported maximum"),
        (["--horizon", "5", "--target", "price"], r"no target column 'price' \(available: "),
        (["--horizon", "5", "--id-column", "series"], r"no .*column 'series'"),
        (["--horizon", "5", "--data", "{missing}"], r"nope\.csv: file not found"),
        (["--horizon", "5", "--data", "{folder}"], r"is a directory"),
        (["--horizon", "5", "--batch-size", "0"], r"--batch-size must be >= 1"),
    ],
)
def test_bad_arguments_one_line_exit_2(tmp_path, cli, args, pattern, stream):
    good = tmp_path / "good.csv"
    good.write_text(frame().to_csv(index=False))
    fill = {"missing": tmp_path / "nope.csv", "folder": tmp_path}
    args = [a.format(**fill) for a in args]
    data = [] if "--data" in args else ["--data", str(good)]
    code, err, output = cli(*data, *args, *(["--stream"] * stream))
    assert_one_line_error(code, err, pattern)
    assert not output.exists()


def test_wide_table_without_numeric_column(tmp_path, cli):
    path = tmp_path / "wide.csv"
    path.write_text("date,a\n2024-01-01,x\n2024-01-02,y\n")
    assert_one_line_error(*cli("--data", str(path), "--horizon", "3")[:2], "no numeric column")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_skip_bad_forecasts_the_rest_and_reports_skipped_ids_in_one_line(
    tmp_path, cli, caplog, stream
):
    parts = [frame("a"), frame("b"), frame("c"), frame("d")]
    parts[1].loc[3, "target"] = np.inf
    parts[3] = parts[3].iloc[:1]  # a single datetime: no frequency
    path = tmp_path / "mixed.csv"
    pd.concat(parts).to_csv(path, index=False)
    with caplog.at_level(logging.WARNING):
        code, err, output = cli(
            "--data", str(path), "--horizon", "4", "--skip-bad", *(["--stream"] * stream)
        )
    assert code == 0, err
    result = pd.read_csv(output)
    assert list(result["item_id"].unique()) == ["a", "c"] and len(result) == 8
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and "\n" not in skipped[0]
    assert skipped[0].startswith("skipped 2 bad series: item 'b': ")
    assert "item 'd': cannot continue its timestamps" in skipped[0]


def test_skip_bad_with_nothing_left_is_an_error(tmp_path, cli):
    path = tmp_path / "bad.csv"
    frame("b").assign(target=np.nan).to_csv(path, index=False)
    for stream in ([], ["--stream"]):
        code, err, _ = cli("--data", str(path), "--horizon", "3", "--skip-bad", *stream)
        assert_one_line_error(code, err, r"all values are missing")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_unsorted_rows_give_the_sorted_forecast(tmp_path, cli, stream):
    data = pd.concat([frame("a"), frame("b", seed=1)])
    (tmp_path / "sorted.csv").write_text(data.to_csv(index=False))
    shuffled = pd.concat([frame("a").sample(frac=1, random_state=0), frame("b", seed=1)[::-1]])
    (tmp_path / "shuffled.csv").write_text(shuffled.to_csv(index=False))
    flags = ["--horizon", "6", *(["--stream"] * stream)]
    assert cli("--data", str(tmp_path / "sorted.csv"), *flags)[0] == 0
    expected = pd.read_csv(tmp_path / "forecast.csv")
    assert cli("--data", str(tmp_path / "shuffled.csv"), *flags)[0] == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "forecast.csv"), expected)


def test_single_observation_with_integer_steps_is_forecast(tmp_path, cli):
    path = tmp_path / "one.csv"
    path.write_text("item_id,timestamp,target\na,7,2.5\n")
    code, err, output = cli("--data", str(path), "--horizon", "3")
    assert code == 0, err
    result = pd.read_csv(output)
    assert list(result["timestamp"]) == [8, 9, 10] and np.isfinite(result["mean"]).all()


@pytest.mark.parametrize("args", [["--horizon", "0"], ["--data", "{missing}"]])
def test_real_process_prints_one_line_and_no_traceback(tmp_path, tiny_ckpt, args):
    good = tmp_path / "good.csv"
    good.write_text(frame().to_csv(index=False))
    args = [a.format(missing=tmp_path / "nope.csv") for a in args]
    data = [] if "--data" in args else ["--data", str(good)]
    proc = subprocess.run(
        [sys.executable, "-m", "rexforge.cli", "forecast", "--model", str(tiny_ckpt), *data,
         "--horizon", "3", *args, "--output", str(tmp_path / "o.csv")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: ")


def test_real_process_reports_skipped_series_in_one_stderr_line(tmp_path, tiny_ckpt):
    parts = [frame("a"), frame("b").assign(target=np.nan), frame("c").iloc[:1]]
    path = tmp_path / "data.csv"
    pd.concat(parts).to_csv(path, index=False)
    proc = subprocess.run(
        [sys.executable, "-m", "rexforge.cli", "forecast", "--model", str(tiny_ckpt),
         "--data", str(path), "--horizon", "3", "--output", str(tmp_path / "o.csv"),
         "--skip-bad", "--stream"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if "skipped" in ln]
    assert line.startswith("skipped 2 bad series: item 'b': all values are missing; item 'c': ")


# --------------------------------------------------------------------------------- Python API


@pytest.fixture(scope="module")
def model(tiny_ckpt):
    return load_model(tiny_ckpt)


@pytest.mark.parametrize(
    "context, kwargs, pattern",
    [
        ([np.ones(10), np.array([1.0, np.inf])], {}, r"series 1 contains \+-inf"),
        ([np.ones(10), np.array([1.0, -np.inf])], {}, r"series 1 contains \+-inf"),
        ([["1", "x"]], {}, r"series 0 holds non-numeric values"),
        ([np.array([1 + 2j, 3j])], {}, r"series 0 holds complex numbers"),
        ([torch.tensor([1 + 2j])], {}, r"series 0 has unsupported dtype"),
        ([np.ones(5), []], {}, r"series 1 is empty"),
        ([], {}, r"context holds no series"),
        ("abc", {}, r"context of type str is not supported"),
        (np.zeros((2, 2, 2)), {}, r"must be 1-D or 2-D"),
        ([np.ones(5)], {"prediction_length": 0}, r"prediction_length must be > 0"),
        ([np.ones(5)], {"prediction_length": 10**9}, r"larger than the supported maximum"),
        ([np.ones(5)], {"prediction_length": 2.5}, r"prediction_length must be an integer"),
        ([np.ones(5)], {"batch_size": 0}, r"batch_size must be a positive integer"),
    ],
)
def test_forecast_api_refuses_bad_context(model, context, kwargs, pattern):
    with pytest.raises(InputError, match=pattern) as info:
        model.forecast(context, **{"prediction_length": 4, **kwargs})
    assert "\n" not in str(info.value)


def test_forecast_api_accepts_all_nan_and_single_observation(model):
    # Official semantics: missing values are NaN anywhere; an all-NaN series is scaled by the
    # model's rules and forecast, a single observation is a (very short) context.
    q, mean = model.forecast([np.full(20, np.nan), np.array([2.5])], 4, output_type="numpy")
    assert q.shape == (2, 4, 9) and np.isfinite(q).all() and np.isfinite(mean).all()


def test_forecast_df_bad_frames(model):
    good = pd.concat([frame("a"), frame("b", seed=1)], ignore_index=True)
    cases = [
        (good.iloc[:0], {}, r"<DataFrame>: table has no rows"),
        (good, {"target": "y"}, r"no target column 'y'"),
        (good.assign(target=good["target"].astype(object).where(good.index != 50, "x")), {},
         r"item 'b': column 'target' holds non-numeric value 'x'"),
        (good.assign(target=np.where(good.index == 45, np.inf, good["target"])), {},
         r"item 'b': column 'target' holds infinite values"),
        (pd.concat([frame("a"), frame("b").iloc[:1]]), {},
         r"item 'b': cannot continue its timestamps"),
        (good, {"prediction_length": 0}, r"prediction_length must be > 0"),
        ([1, 2, 3], {}, r"needs a pandas DataFrame, got list"),
        (good, {"on_bad": "ignore"}, r"on_bad must be 'raise' or 'skip'"),
    ]  # fmt: skip
    for df, kwargs, pattern in cases:
        with pytest.raises(InputError, match=pattern) as info:
            model.forecast_df(df, **{"prediction_length": 3, **kwargs})
        assert "\n" not in str(info.value)


def test_forecast_df_skips_bad_series_on_request(model, caplog):
    df = pd.concat([frame("a"), frame("b").iloc[:1], frame("c")], ignore_index=True)
    with caplog.at_level(logging.WARNING):
        out = model.forecast_df(df, 3, on_bad="skip")
    assert list(out["item_id"].unique()) == ["a", "c"]
    assert "skipped 1 bad series: item 'b'" in caplog.text


def test_load_series_bad_sources(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("item_id,timestamp,target\n")
    (tmp_path / "notes.txt").write_text("hello")
    cases = [
        (tmp_path / "missing.csv", r"missing\.csv: file not found"),
        (tmp_path, r"is a directory, expected a table file"),
        (tmp_path / "empty.csv", r"file is empty"),
        (tmp_path / "header.csv", r"has a header \(item_id, timestamp, target\) but no rows"),
        (tmp_path / "notes.txt", r"unknown table extension '\.txt'"),
        (42, r"source must be a file path or a pandas DataFrame, got int"),
        ([1.0, 2.0], r"source must be a file path or a pandas DataFrame, got list"),
    ]
    for source, pattern in cases:
        with pytest.raises(InputError, match=pattern) as info:
            load_series(source)
        assert "\n" not in str(info.value)
