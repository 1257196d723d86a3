"""Fan charts: history and the forecast's quantile bands (matplotlib, imported lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rexforge.data.series import TimeSeries
from rexforge.errors import InputError


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError(
            "plots need matplotlib: install rexforge[plot] (pip install 'rexforge[plot]')"
        ) from None
    return plt


def shown_series(shown: int, total: int) -> str:
    """How much of the data a plot shows, so a plot of a few series says it is a sample."""
    return f"all {total} series" if shown >= total else f"first {shown} of {total} series"


def fan_chart(
    series: list[TimeSeries],
    forecast: pd.DataFrame,
    path: str | Path,
    max_series: int = 6,
    history: int = 256,
) -> Path:
    """Write a PNG (or PDF/SVG, by the suffix of ``path``) with one panel per series (at most ``max_series``): the last ``history``
    observations, the median and the 10-90% and 30-70% bands."""
    from rexforge.io.atomic import atomic_write_bytes

    plt = _pyplot()
    shown = series[:max_series]
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 2.6 * len(shown)), squeeze=False)
    for ax, s in zip(axes[:, 0], shown):
        part = forecast[forecast["item_id"] == s.item_id]
        hist_x = s.timestamps if s.timestamps is not None else np.arange(len(s))
        ax.plot(hist_x[-history:], s.target[-history:], color="black", lw=1, label="history")
        x = part["timestamp"].to_numpy()
        ax.fill_between(x, part["0.1"], part["0.9"], alpha=0.25, color="C0", label="10-90%")
        ax.fill_between(x, part["0.3"], part["0.7"], alpha=0.35, color="C0", label="30-70%")
        ax.plot(x, part["0.5"], color="C0", lw=1.5, label="median")
        ax.set_title(str(s.item_id), fontsize=9)
        ax.legend(loc="upper left", fontsize=7)
    fig.suptitle(f"Forecast, {len(part)} steps: {shown_series(len(shown), len(series))}")
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    path = Path(path)
    fig.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path
