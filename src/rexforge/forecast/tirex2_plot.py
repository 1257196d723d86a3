"""Fan charts of TiRex-2 forecasts: one panel per target of each item, drawn by the one fan
chart of the package (``rexforge.forecast.plot.fan_chart``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rexforge.data.series import TimeSeries
from rexforge.forecast.tirex2_frames import TARGET_NAME_COLUMN


def plot_forecast_df(
    df: pd.DataFrame,
    forecast: pd.DataFrame,
    path: str | Path,
    *,
    target: str | Sequence[str],
    id_column: str | None = "item_id",
    timestamp_column: str | None = "timestamp",
    max_panels: int = 6,
) -> Path:
    """Write a PNG (or PDF/SVG) of ``forecast`` (``TiRex2Forecaster.forecast_df``'s output)
    beside the history in ``df`` (its input), one panel per (item, target), at most
    ``max_panels``; the panels are named ``item/target`` when there are several targets.
    The arguments name the columns as ``forecast_df`` did."""
    from rexforge.forecast.plot import fan_chart

    targets = [target] if isinstance(target, str) else list(target)
    several = len(targets) > 1
    ids = forecast[id_column].astype(str) if id_column else pd.Series("series", forecast.index)
    panel = ids + ("/" + forecast[TARGET_NAME_COLUMN].astype(str) if several else "")
    # fan_chart reads item_id and timestamp; each panel is one (item, target).
    chart = forecast.assign(item_id=panel, timestamp=forecast[timestamp_column or "timestamp"])
    series = []
    for key in dict.fromkeys(panel):  # fan_chart shows the first max_panels and says so
        rows = forecast[panel == key]
        name = rows[TARGET_NAME_COLUMN].iloc[0] if several else targets[0]
        history = df if id_column is None else df[df[id_column] == rows[id_column].iloc[0]]
        times = _times(history, timestamp_column)
        order = np.argsort(np.asarray(times), kind="stable")  # rows may come in any order
        values = _values(history, name)[order]
        series.append(TimeSeries(key, values, times[order]))
    return fan_chart(series, chart, path, max_series=max_panels)


def _values(history: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(history[column], errors="coerce").to_numpy(dtype=np.float64)


def _times(history: pd.DataFrame, column: str | None) -> pd.Index:
    """The x positions of the history: its timestamps (parsed), or step numbers."""
    if column is None:
        return pd.RangeIndex(len(history))
    values = history[column]
    if pd.api.types.is_numeric_dtype(values):
        return pd.Index(values)
    return pd.DatetimeIndex(pd.to_datetime(values))
