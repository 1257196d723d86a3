"""Fan charts: history and the forecast's quantile bands (matplotlib, imported lazily).

``draw_fan`` draws one panel and is the one fan drawing of the package: ``fan_chart`` (the
``forecast --plot`` figure) and ``eval.report.plot_fan_chart`` (backtest windows) both use it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from rexforge.data.series import TimeSeries
from rexforge.errors import ConfigError
from rexforge.forecast.frames import quantile_column


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend (plots are written, never shown)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(
            "plots need matplotlib: install rexforge[plot] (pip install 'rexforge[plot]')"
        ) from None
    return plt


def save_figure(fig, plt, path: str | Path, dpi: int) -> Path:
    """Write ``fig`` as PNG, PDF or SVG (by the suffix of ``path``) atomically, and close it."""
    from rexforge.io.atomic import atomic_write_bytes

    path = Path(path)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi)
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def shown_series(shown: int, total: int) -> str:
    """How much of the data a plot shows, so a plot of a few series says it is a sample."""
    return f"all {total} series" if shown >= total else f"first {shown} of {total} series"


def central_bands(levels) -> list[tuple[float, float]]:
    """Pairs of levels symmetric about the median (``(0.1, 0.9)``, ``(0.2, 0.8)``, ...), widest
    first, so the narrower (darker) bands are drawn on top."""
    levels = sorted(float(level) for level in levels)
    return [(lo, hi) for lo in levels for hi in levels if lo < 0.5 < hi and abs(lo + hi - 1) < 1e-9]


def draw_fan(
    ax,
    history_x,
    history_y,
    forecast_x,
    quantiles: Mapping[float, np.ndarray],
    median: np.ndarray,
    title: str,
) -> None:
    """One panel: the observed ``history`` in black, a band between each pair of quantile
    levels symmetric about the median (darker where narrower) and the ``median`` line."""
    ax.plot(history_x, history_y, color="black", lw=1, label="observed")
    for lo, hi in central_bands(quantiles):
        ax.fill_between(
            forecast_x,
            quantiles[lo],
            quantiles[hi],
            color="C0",
            alpha=0.15 + 0.5 * (0.5 - (hi - lo) / 2),
            lw=0,
            label=f"{lo * 100:g}-{hi * 100:g}%",
        )
    ax.plot(forecast_x, median, color="C0", lw=1.5, label="median")
    ax.set_title(title, fontsize=9)


def quantiles_of(table: pd.DataFrame, levels) -> dict[float, np.ndarray]:
    """The quantile columns of a forecast table, by level (the levels it has of ``levels``)."""
    return {
        float(level): table[quantile_column(level)].to_numpy()
        for level in levels
        if quantile_column(level) in table
    }


def fan_chart(
    series: list[TimeSeries],
    forecast: pd.DataFrame,
    path: str | Path,
    max_series: int = 6,
    history: int = 256,
    levels=(0.1, 0.3, 0.5, 0.7, 0.9),
) -> Path:
    """Write a PNG (or PDF/SVG, by the suffix of ``path``) with one panel per series (at most
    ``max_series``): the last ``history`` observations, the median and the bands between
    ``levels`` (by default 10-90% and 30-70%)."""
    plt = pyplot()
    shown = series[:max_series]
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 2.6 * len(shown)), squeeze=False)
    for ax, s in zip(axes[:, 0], shown):
        part = forecast[forecast["item_id"] == s.item_id]
        hist_x = s.timestamps if s.timestamps is not None else np.arange(len(s))
        draw_fan(
            ax,
            hist_x[-history:],
            s.target[-history:],
            part["timestamp"].to_numpy(),
            quantiles_of(part, levels),
            part[quantile_column(0.5)].to_numpy(),
            str(s.item_id),
        )
        ax.legend(loc="upper left", fontsize=7)
    fig.suptitle(f"Forecast, {len(part)} steps: {shown_series(len(shown), len(series))}")
    fig.tight_layout()
    return save_figure(fig, plt, path, dpi=90)
