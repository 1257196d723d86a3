"""``rexforge forecast``: what it checks before any model work, and what it writes."""

import io

import numpy as np
import pandas as pd
import pytest

from rexforge.cli import main


def monthly_csv(path, n_items=2, n=40):
    frames = [
        pd.DataFrame(
            {
                "item_id": f"s{i}",
                "timestamp": pd.date_range("2001-01-01", periods=n, freq="MS"),
                "target": np.sin(np.arange(n) / 3) + 10 + i,
            }
        )
        for i in range(n_items)
    ]
    pd.concat(frames).to_csv(path, index=False)
    return path


@pytest.fixture
def no_model_work(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the horizon was checked")

    monkeypatch.setattr("rexforge.forecast.api.load_model", refuse)


def test_a_horizon_past_the_last_representable_timestamp_fails_fast(
    tmp_path, capsys, no_model_work
):
    data = monthly_csv(tmp_path / "m.csv")
    out = tmp_path / "f.csv"
    args = ["forecast", "--data", str(data), "--horizon", "100000", "--output", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: --horizon 100000: series s0: 100000 steps of MS after 2004-04-01 00:00:00 run "
        "past the last timestamp pandas can represent (2262-04-11)\n"
    )
    assert not out.exists()


def test_an_output_too_large_for_memory_fails_fast(tmp_path, capsys, monkeypatch, no_model_work):
    monkeypatch.setattr("rexforge.forecast.frames._available_memory", lambda: 2**19)
    data = monthly_csv(tmp_path / "m.csv")
    # 1000 months stay inside pandas' range; 2 series x 1000 steps do not fit in 0.5 MiB.
    args = ["forecast", "--data", str(data), "--horizon", "1000", "--output", str(tmp_path / "f")]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "error: --horizon 1000: 2 series x 1000 steps need about 0.8 MiB for the output, more "
        "than the 0.5 MiB of memory available; use a shorter --horizon or fewer series per run\n"
    )


def test_output_parquet_writes_parquet_and_dash_writes_csv_to_stdout(tmp_path, tiny_ckpt, capsys):
    pytest.importorskip("pyarrow")
    data = monthly_csv(tmp_path / "m.csv")
    common = ["forecast", "--model", str(tiny_ckpt), "--data", str(data), "--horizon", "3"]
    assert main([*common, "--output", str(tmp_path / "f.parquet")]) == 0
    frame = pd.read_parquet(tmp_path / "f.parquet")
    assert len(frame) == 6 and list(frame.columns[:3]) == ["item_id", "timestamp", "mean"]
    assert str(frame["timestamp"].iloc[0]) == "2004-05-01 00:00:00"
    capsys.readouterr()
    assert main([*common, "--output", "-"]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].startswith("item_id,timestamp,mean,")
    assert len(printed.splitlines()) == 7 and not (tmp_path / "-").exists()
    np.testing.assert_allclose(pd.read_csv(io.StringIO(printed))["mean"], frame["mean"], rtol=1e-6)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--plot", "f.txt"], "error: --plot f.txt: a plot is written as .png, .pdf, .svg; "),
        (["--stream", "--output", "f.parquet"], "error: --stream writes a CSV file; it cannot"),
    ],
)
def test_outputs_that_cannot_be_written_as_asked_are_refused_first(
    tmp_path, capsys, no_model_work, monkeypatch, extra, message
):
    monkeypatch.chdir(tmp_path)
    data = monthly_csv(tmp_path / "m.csv")
    args = ["forecast", "--data", str(data), "--horizon", "3", "--output", "f.csv", *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]


def test_help_says_the_mean_column_is_the_median(capsys):
    assert main(["forecast", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "'mean' is the median (the 0.5 quantile)" in text
    assert "Parquet when it ends in .parquet; '-' = CSV on stdout" in text


def test_the_fan_chart_says_it_shows_only_some_series(tmp_path):
    pytest.importorskip("matplotlib")
    from rexforge.data.series import TimeSeries
    from rexforge.forecast import plot

    series = [TimeSeries(f"s{i}", np.arange(20.0)) for i in range(8)]
    frame = pd.DataFrame(
        [
            {"item_id": f"s{i}", "timestamp": 20 + k, **{str(q / 10): 1.0 for q in range(1, 10)}}
            for i in range(8)
            for k in range(4)
        ]
    )
    titles = []
    import matplotlib.figure

    real = matplotlib.figure.Figure.savefig

    def record(fig, *args, **kwargs):
        titles.append(fig.get_suptitle())
        return real(fig, *args, **kwargs)

    import unittest.mock

    with unittest.mock.patch.object(matplotlib.figure.Figure, "savefig", record):
        plot.fan_chart(series, frame, tmp_path / "f.png")
    assert titles == ["Forecast, 4 steps: first 6 of 8 series"]


def test_context_length_and_rollout_reach_the_model(tmp_path, tiny_ckpt, capsys):
    from rexforge import load_model

    data = monthly_csv(tmp_path / "m.csv", n=120)
    common = ["forecast", "--model", str(tiny_ckpt), "--data", str(data), "--horizon", "70"]
    runs = {}
    for name, extra in {
        "full": [],
        "cut": ["--context-length", "24"],
        "stateful": ["--rollout", "stateful"],
    }.items():
        out = tmp_path / f"{name}.csv"
        assert main([*common, "--output", str(out), *extra]) == 0
        runs[name] = pd.read_csv(out)
    model = load_model(tiny_ckpt)
    series = pd.read_csv(data)
    last_24 = [g["target"].to_numpy()[-24:] for _, g in series.groupby("item_id", sort=False)]
    _, mean = model.forecast(last_24, prediction_length=70, output_type="numpy")
    np.testing.assert_allclose(runs["cut"]["mean"], mean.reshape(-1), rtol=1e-5, atol=1e-6)
    assert not np.allclose(runs["cut"]["mean"], runs["full"]["mean"])
    full = [g["target"].to_numpy() for _, g in series.groupby("item_id", sort=False)]
    _, stateful = model.forecast(full, 70, output_type="numpy", rollout="stateful")
    np.testing.assert_allclose(runs["stateful"]["mean"], stateful.reshape(-1), rtol=1e-5, atol=1e-6)
    assert not np.allclose(runs["stateful"]["mean"], runs["full"]["mean"])  # 70 > one patch
    capsys.readouterr()
    assert main([*common, "--output", str(tmp_path / "x.csv"), "--context-length", "0"]) == 2
    assert capsys.readouterr().err == "error: --context-length must be >= 1, got 0\n"


@pytest.mark.parametrize("command", ["forecast", "evaluate", "finetune", "pretrain"])
def test_columns_are_spelled_the_same_in_every_command(command):
    from rexforge.cli import parse_command
    from rexforge.data.sources import column_names

    required = {"forecast": ["--horizon", "3", "--output", "o.csv"], "evaluate": []}
    base = [command, "--data", "d.csv", *required.get(command, ["--output-dir", "r"])]
    for spelling in (["a,b"], ["a", "b"]):
        options = parse_command([*base, "--columns", *spelling])[2]
        columns = options["source"].columns if command == "forecast" else None
        columns = options["mix"].columns if command in ("finetune", "pretrain") else columns
        columns = options["columns"] if command == "evaluate" else columns
        assert column_names(columns) == ["a", "b"], (command, spelling)


def test_forecast_wide_columns_with_spaces_or_commas_agree(tmp_path, tiny_ckpt):
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=60, freq="D"),
            "a": np.sin(np.arange(60) / 4),
            "b": np.arange(60.0),
            "c": np.ones(60),
        }
    )
    frame.to_csv(tmp_path / "w.csv", index=False)
    common = ["forecast", "--model", str(tiny_ckpt), "--data", str(tmp_path / "w.csv")]
    common += ["--horizon", "4"]
    assert main([*common, "--output", str(tmp_path / "1.csv"), "--columns", "a,b"]) == 0
    assert main([*common, "--output", str(tmp_path / "2.csv"), "--columns", "a", "b"]) == 0
    one, two = pd.read_csv(tmp_path / "1.csv"), pd.read_csv(tmp_path / "2.csv")
    assert list(one["item_id"].unique()) == ["a", "b"] and one.equals(two)
