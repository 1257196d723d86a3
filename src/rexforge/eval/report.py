"""Tables, files and plots from backtest results.

Tables are pandas DataFrames: ``metrics_table`` (models x metrics for one data set),
``relative_table`` (each model's metric divided by a baseline's) and ``summary_table`` (geometric
mean over data sets of those ratios, the GIFT-Eval / Chronos aggregate). Writers are atomic (a
temporary file in the same folder, then ``os.replace``), so a killed run never leaves half a file.
Plots need matplotlib (``pip install 'rexforge[plot]'``), imported only when a plot is asked for.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rexforge.errors import ConfigError, InputError
from rexforge.eval.backtest import BacktestResult
from rexforge.eval.metrics import METRICS, geometric_mean_relative
from rexforge.forecast.frames import quantile_column
from rexforge.forecast.plot import draw_fan, pyplot, quantiles_of, save_figure, shown_series

log = logging.getLogger(__name__)

# Metrics where smaller is better, and so where a ratio to a baseline means something.
RELATIVE_METRICS: tuple[str, ...] = ("mase", "smape", "wql", "crps", "mae", "rmse")


# --- tables ------------------------------------------------------------------------------------


def metrics_table(
    results: Sequence[BacktestResult], metrics: Sequence[str] = METRICS
) -> pd.DataFrame:
    """Models x metrics: one row per result (index ``model``), columns ``metrics``."""
    rows = {r.name: {m: r.metrics[m] for m in metrics} for r in results}
    for name, row in rows.items():
        # A point forecast (every quantile the same, interval width 0) has no interval to
        # cover anything: its coverage is not 0 but undefined, shown as "n/a".
        if "coverage_80" in row and results_width(results, name) == 0:
            row["coverage_80"] = float("nan")
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(metrics))
    table.index.name = "model"
    return table


def results_width(results: Sequence[BacktestResult], name: str) -> float:
    return next(float(r.metrics.get("width_80", np.nan)) for r in results if r.name == name)


# Columns whose NaN means "not defined for this model", not a failed forecast.
_UNDEFINED_AS_NA = ("coverage_80",)


def relative_table(
    table: pd.DataFrame, baseline: str, metrics: Sequence[str] = RELATIVE_METRICS
) -> pd.DataFrame:
    """Each model's metric divided by ``baseline``'s (rows of ``metrics_table``); <1 is better."""
    if baseline not in table.index:
        raise InputError(f"baseline {baseline!r} is not among the models: {', '.join(table.index)}")
    cols = [m for m in metrics if m in table.columns]
    base = table.loc[baseline, cols].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return table[cols].astype(float).div(base.where(base > 0), axis=1)


def summary_table(
    long: pd.DataFrame,
    baseline: str = "seasonal_naive",
    metrics: Sequence[str] = ("mase", "wql"),
) -> pd.DataFrame:
    """Geometric mean over data sets of ``metric(model) / metric(baseline)``, models x metrics.

    ``long`` has one row per (dataset, model) with columns ``dataset``, ``model`` and ``metrics``.
    """
    missing = [c for c in ("dataset", "model", *metrics) if c not in long.columns]
    if missing:
        raise InputError(f"summary_table: missing column(s) {', '.join(missing)}")
    out = {}
    for metric in metrics:
        wide = long.pivot(index="dataset", columns="model", values=metric)
        if baseline not in wide.columns:
            raise InputError(f"summary_table: baseline {baseline!r} has no {metric} results")
        rel = geometric_mean_relative(wide.to_numpy(), wide[baseline].to_numpy())
        out[f"{metric}_gmean_rel"] = pd.Series(rel, index=wide.columns)
    table = pd.DataFrame(out)
    table.index.name = "model"
    return table


def _fmt(value, floatfmt: str, column: str = "") -> str:
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "n/a" if column in _UNDEFINED_AS_NA else "nan"
        return format(float(value), floatfmt)
    return str(value)


def to_markdown(table: pd.DataFrame, floatfmt: str = ".4f", index: bool = True) -> str:
    """A GitHub Markdown table (no tabulate needed)."""
    frame = table.reset_index() if index else table
    header = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v, floatfmt, c) for v, c in zip(row, header)) + " |")
    return "\n".join(lines) + "\n"


def format_table(table: pd.DataFrame, floatfmt: str = ".4f") -> str:
    """Fixed-width text for a terminal."""
    frame = table.reset_index()
    cells = [[str(c) for c in frame.columns]]
    cells += [
        [_fmt(v, floatfmt, c) for v, c in zip(row, cells[0])]
        for row in frame.itertuples(index=False)
    ]
    widths = [max(len(r[j]) for r in cells) for j in range(len(cells[0]))]
    lines = []
    for k, row in enumerate(cells):
        first = row[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join([first, *rest]))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_table(table: pd.DataFrame, title: str | None = None, file=None) -> None:
    """Print ``table`` for a person (the report printer: the one place eval prints)."""
    file = sys.stdout if file is None else file
    if title:
        print(title, file=file)
    print(format_table(table), file=file)


# --- atomic writers ----------------------------------------------------------------------------


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` to ``path`` atomically (``io.atomic``: a temporary file beside it, fsync,
    rename), with the permissions a plain ``open`` would give (the user's umask)."""
    from rexforge.io.atomic import atomic_write_text

    path = Path(path)
    atomic_write_text(path, text)
    return path


def write_csv(table: pd.DataFrame, path: str | os.PathLike, index: bool = True) -> Path:
    """Write a DataFrame as CSV, atomically."""
    return write_text(table.to_csv(index=index), path)


def write_markdown(text_or_table, path: str | os.PathLike) -> Path:
    """Write Markdown text (or a DataFrame, via ``to_markdown``), atomically."""
    if isinstance(text_or_table, pd.DataFrame):
        text_or_table = to_markdown(text_or_table)
    return write_text(text_or_table, path)


def write_json(data, path: str | os.PathLike) -> Path:
    """Write JSON (NaN becomes null), atomically."""

    def clean(x):
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, (np.floating, float)):
            return None if not math.isfinite(float(x)) else float(x)
        if isinstance(x, np.integer):
            return int(x)
        return x

    return write_text(json.dumps(clean(data), indent=2) + "\n", path)


# --- plots -------------------------------------------------------------------------------------


def plot_fan_chart(
    result: BacktestResult,
    series: Sequence,
    path: str | os.PathLike,
    n_series: int = 4,
    window: int = -1,
    history: int = 100,
) -> Path:
    """History plus forecast median and quantile bands for the first ``n_series`` series.

    ``series`` are the ``TimeSeries`` the backtest ran on (for the history); ``window`` picks the
    backtest window (default: the last); ``history`` limits the points shown before the cutoff.
    """
    plt = pyplot()
    window = window % result.windows
    fc = result.forecasts[result.forecasts["window"] == window]
    chosen = list(series)[:n_series]
    fig, axes = plt.subplots(len(chosen), 1, figsize=(9, 2.6 * len(chosen)), squeeze=False)
    levels = sorted(result.quantile_levels)
    median = quantile_column(0.5) if 0.5 in levels else "mean"
    for ax, s in zip(axes[:, 0], chosen):
        f = fc[fc["item_id"] == s.item_id]
        if f.empty:
            continue
        cutoff = int(f["cutoff"].iloc[0])
        start = max(0, cutoff - history)
        end = cutoff + result.horizon
        # Dates on the x axis where the series has them, else step numbers.
        times = getattr(s, "timestamps", None)
        axis = np.asarray(times) if times is not None and len(times) >= end else np.arange(end)
        draw_fan(
            ax,
            axis[start:end],
            s.target[start:end],
            axis[cutoff + f["step"].to_numpy() - 1],
            quantiles_of(f, levels),
            f[median].to_numpy(),
            f"{result.name}: {s.item_id}",
        )
        ax.axvline(axis[cutoff - 1], color="grey", lw=0.8, ls="--")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.suptitle(
        f"{result.name}: backtest window {window + 1} of {result.windows}, "
        + shown_series(len(chosen), len(list(series)))
    )
    fig.tight_layout()
    return _save(fig, plt, path)


def plot_error_by_step(
    results: Sequence[BacktestResult],
    path: str | os.PathLike,
    metrics: Sequence[str] = ("mase", "wql"),
) -> Path:
    """One panel per metric: its value at each horizon step, one line per model."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for r in results:
        by_step = r.error_by_step()
        for ax, metric in zip(axes[0], metrics):
            ax.plot(by_step["step"], by_step[metric], marker="o", ms=3, label=r.name)
    for ax, metric in zip(axes[0], metrics):
        ax.set_xlabel("horizon step")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"Error by horizon step ({', '.join(r.name for r in results)})")
    fig.tight_layout()
    return _save(fig, plt, path)


def _save(fig, plt, path) -> Path:
    return save_figure(fig, plt, path, dpi=110)


# --- a whole report ----------------------------------------------------------------------------


def write_report(
    results: Sequence[BacktestResult],
    output_dir: str | os.PathLike,
    series: Sequence | None = None,
    baseline: str | None = "seasonal_naive",
    plots: bool = True,
    title: str = "Evaluation",
) -> dict[str, Path]:
    """Write ``metrics.csv``, ``metrics.md``, ``per_series.csv``, ``forecasts.csv`` and, with
    ``plots`` (and matplotlib installed), ``fan_<model>.png`` and ``error_by_step.png``.

    Returns the written paths by name. A missing matplotlib skips the plots with a warning.
    """
    out = Path(output_dir)
    table = metrics_table(results)
    paths = {"metrics_csv": write_csv(table, out / "metrics.csv")}
    r0 = results[0]
    md = [
        f"# {title}\n",
        f"horizon {r0.horizon}, windows {r0.windows}, stride {r0.stride}, season {r0.season}, "
        f"{len(r0.per_series) // r0.windows} series\n",
        to_markdown(table),
    ]
    if baseline and baseline in table.index and len(table) > 1:
        md += [f"\n## Relative to {baseline}\n", to_markdown(relative_table(table, baseline))]
    paths["metrics_md"] = write_text("\n".join(md), out / "metrics.md")
    per_series = pd.concat([r.per_series.assign(model=r.name) for r in results], ignore_index=True)
    paths["per_series_csv"] = write_csv(per_series, out / "per_series.csv", index=False)
    forecasts = pd.concat([r.forecasts.assign(model=r.name) for r in results], ignore_index=True)
    paths["forecasts_csv"] = write_csv(forecasts, out / "forecasts.csv", index=False)
    if plots:
        try:
            pyplot()
        except ConfigError as exc:
            log.warning("skipping plots: %s", exc)
            return paths
        paths["error_by_step_png"] = plot_error_by_step(results, out / "error_by_step.png")
        if series is not None:
            for r in results:
                safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in r.name)
                paths[f"fan_{safe}_png"] = plot_fan_chart(r, series, out / f"fan_{safe}.png")
    return paths
