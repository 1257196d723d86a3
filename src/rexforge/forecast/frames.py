"""Forecasting long DataFrames: ``item_id, timestamp, target`` in, one row per future step out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rexforge.data.series import TimeSeries
from rexforge.errors import InputError


def future_index(series: TimeSeries, horizon: int) -> pd.Index:
    """The ``horizon`` timestamps after the end of ``series``, continued at its frequency.

    Datetime series need an inferable frequency; integer-step (or timestamp-less) series
    continue their step count.
    """
    ts = series.timestamps
    if ts is None:
        return pd.RangeIndex(len(series), len(series) + horizon)
    if isinstance(ts, pd.DatetimeIndex):
        if not series.freq:
            raise InputError(
                f"series {series.item_id}: cannot continue its timestamps, the frequency could "
                "not be inferred"
            )
        return pd.date_range(ts[-1], periods=horizon + 1, freq=series.freq)[1:]
    step = int(ts[-1] - ts[-2]) if len(ts) > 1 else 1
    return pd.Index(int(ts[-1]) + step * np.arange(1, horizon + 1))


def quantile_column(level: float) -> str:
    return f"{level:g}"


def forecast_series(
    forecaster, series: list[TimeSeries], prediction_length: int, batch_size: int = 512
) -> pd.DataFrame:
    """Forecast each ``TimeSeries``; returns a long frame: item_id, timestamp, mean, quantiles."""
    if not series:
        raise InputError("no series to forecast")
    quantiles, mean = forecaster.forecast(
        [s.target for s in series], prediction_length=prediction_length,
        batch_size=batch_size, output_type="numpy",
    )
    frames = []
    for i, s in enumerate(series):
        part = {
            "item_id": s.item_id,
            "timestamp": future_index(s, prediction_length),
            "mean": mean[i],
        }
        for j, level in enumerate(forecaster.quantiles):
            part[quantile_column(level)] = quantiles[i, :, j]
        frames.append(pd.DataFrame(part))
    return pd.concat(frames, ignore_index=True)


def forecast_df(
    forecaster,
    df: pd.DataFrame,
    prediction_length: int,
    *,
    id_column: str = "item_id",
    timestamp_column: str = "timestamp",
    target: str = "target",
    batch_size: int = 512,
    on_bad: str = "raise",
) -> pd.DataFrame:
    """Forecast every series of a long DataFrame.

    Returns a long DataFrame with ``id_column``, ``timestamp_column`` (continued at each
    series' inferred frequency), ``mean`` (the median) and one column per quantile level
    (``"0.1"`` ... ``"0.9"``). ``on_bad="skip"`` drops invalid series (logged) instead of
    raising.
    """
    from rexforge.data.sources import load_series

    if not isinstance(df, pd.DataFrame):
        raise InputError(f"forecast_df needs a pandas DataFrame, got {type(df).__name__}")
    series = load_series(
        df, layout="long", id_column=id_column, timestamp_column=timestamp_column,
        target_column=target, on_bad=on_bad,
    )
    out = forecast_series(forecaster, series, prediction_length, batch_size)
    return out.rename(columns={"item_id": id_column, "timestamp": timestamp_column})
