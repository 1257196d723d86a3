"""Report tables, atomic writers and plots."""

import numpy as np
import pandas as pd
import pytest

from rexforge.data.series import TimeSeries
from rexforge.eval import report
from rexforge.eval.backtest import backtest
from rexforge.eval.baselines import get_baseline


@pytest.fixture(scope="module")
def results_and_series():
    t = np.arange(60, dtype=float)
    series = [TimeSeries(f"s{i}", 10 + i + np.sin(2 * np.pi * t / 6) + 0.05 * t) for i in range(3)]
    res = [
        backtest(get_baseline(n, season=6), series, 6, windows=2, season=6)
        for n in ("naive", "seasonal_naive")
    ]
    return res, series


def test_metrics_and_relative_tables(results_and_series):
    results, _ = results_and_series
    table = report.metrics_table(results)
    assert list(table.index) == ["naive", "seasonal_naive"]
    rel = report.relative_table(table, "seasonal_naive")
    assert rel.loc["seasonal_naive"].eq(1.0).all()
    assert rel.loc["naive", "mase"] == pytest.approx(
        table.loc["naive", "mase"] / table.loc["seasonal_naive", "mase"]
    )


def test_summary_table_is_geometric_mean_of_ratios():
    long = pd.DataFrame(
        {
            "dataset": ["a", "a", "b", "b"],
            "model": ["m", "seasonal_naive"] * 2,
            "mase": [1.0, 2.0, 4.0, 2.0],
            "wql": [0.1, 0.1, 0.1, 0.1],
        }
    )
    table = report.summary_table(long)
    assert table.loc["m", "mase_gmean_rel"] == pytest.approx(1.0)  # sqrt(0.5 * 2)
    assert table.loc["seasonal_naive", "wql_gmean_rel"] == pytest.approx(1.0)


def test_markdown_and_atomic_writes(tmp_path):
    table = pd.DataFrame({"mase": [1.23456, np.nan]}, index=pd.Index(["a", "b"], name="model"))
    md = report.to_markdown(table)
    assert md.splitlines() == ["| model | mase |", "|---|---|", "| a | 1.2346 |", "| b | nan |"]
    path = report.write_csv(table, tmp_path / "sub" / "t.csv")
    assert pd.read_csv(path, index_col=0).loc["a", "mase"] == pytest.approx(1.23456)
    assert [p.name for p in path.parent.iterdir()] == ["t.csv"]  # no temp files left behind
    report.write_json({"x": np.float64(np.nan), "n": np.int64(3)}, tmp_path / "r.json")
    assert (tmp_path / "r.json").read_text() == '{\n  "x": null,\n  "n": 3\n}\n'


def test_write_report_with_plots(tmp_path, results_and_series):
    pytest.importorskip("matplotlib")
    results, series = results_and_series
    paths = report.write_report(results, tmp_path, series=series)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        [
            "metrics.csv",
            "metrics.md",
            "per_series.csv",
            "forecasts.csv",
            "error_by_step.png",
            "fan_naive.png",
            "fan_seasonal_naive.png",
        ]
    )
    assert "Relative to seasonal_naive" in paths["metrics_md"].read_text()
    per_series = pd.read_csv(tmp_path / "per_series.csv")
    assert len(per_series) == 2 * 3 * 2


def test_report_files_get_the_users_umask_not_private_0600(tmp_path, results_and_series):
    import os
    import stat

    from rexforge.io.atomic import _UMASK

    results, series = results_and_series
    report.write_report(results, tmp_path, series=series, plots=False)
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~_UMASK, path.name


def test_point_baselines_show_coverage_n_a_not_zero(results_and_series):
    results, _ = results_and_series  # naive and seasonal naive: point forecasts
    table = report.metrics_table(results)
    assert table["coverage_80"].isna().all() and (table["width_80"] == 0).all()
    md = report.to_markdown(table[["coverage_80", "width_80"]])
    assert md.splitlines()[2] == "| naive | n/a | 0.0000 |"
    assert "n/a" in report.format_table(table)


def test_plots_have_titles_that_say_how_many_series_they_show(tmp_path, results_and_series):
    pytest.importorskip("matplotlib")
    results, series = results_and_series
    titles = []
    real_save = report._save

    def record(fig, plt, path):
        titles.append(fig.get_suptitle())
        return real_save(fig, plt, path)

    import unittest.mock

    with unittest.mock.patch.object(report, "_save", record):
        report.plot_fan_chart(results[0], series, tmp_path / "fan.png", n_series=2)
        report.plot_fan_chart(results[0], series, tmp_path / "all.svg", n_series=4)
        report.plot_error_by_step(results, tmp_path / "err.png")
    assert titles == [
        "naive: backtest window 2 of 2, first 2 of 3 series",
        "naive: backtest window 2 of 2, all 3 series",
        "Error by horizon step (naive, seasonal_naive)",
    ]
    assert (tmp_path / "all.svg").read_text().lstrip().startswith("<?xml")
