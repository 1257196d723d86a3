"""Rolling-origin backtests with covariates, leak-free by construction.

An item holds one or more targets and covariates over the same steps: past-only covariates
(known up to the forecast origin) and known-future covariates (known ahead, such as calendars,
prices or planned promotions). For window ``w`` the cutoff is that of ``backtest``
(``rexforge.eval.backtest``); a forecaster that takes covariates (``takes_covariates``) gets

* ``target[:, :cutoff]`` and ``past[:, :cutoff]``: nothing at or after the cutoff;
* ``future[:, :cutoff + horizon]``: the known-future covariates through the test window,
  as they would be known when forecasting; never the test window's target.

Each target of an item is scored as its own series (``item/target`` when an item has
several), with the metrics and report of ``backtest``. Forecasters that take no covariates
(TiRex, baselines) forecast the same target series from their own past only, so every row of
the report compares like with like.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rexforge.data.series import TimeSeries
from rexforge.errors import InputError, collect_problems
from rexforge.eval import backtest as B
from rexforge.eval.forecasters import backtest_view, check_horizon_reached, takes_covariates

log = logging.getLogger(__name__)


@dataclass
class CovariateItem:
    """One item: targets [V_t, T], past-only covariates [V_p, T] and known-future covariates
    [V_f, T] (None when there are none) on one time grid, NaN where missing."""

    item_id: str
    target_names: list[str]
    targets: np.ndarray
    past: np.ndarray | None = None
    future: np.ndarray | None = None
    timestamps: pd.Index | None = None
    freq: str | None = None

    def target_series(self) -> list[TimeSeries]:
        """One ``TimeSeries`` per target, named ``item/target`` when there are several."""
        several = len(self.target_names) > 1
        return [
            TimeSeries(
                f"{self.item_id}/{name}" if several else self.item_id,
                row,
                self.timestamps,
                self.freq,
            )
            for name, row in zip(self.target_names, self.targets)
        ]

    def window_input(self, cutoff: int, horizon: int, context_length: int | None):
        """What a forecaster may see for the window starting at ``cutoff`` (see the module
        doc), as a ``TimeseriesType``; every part a fresh copy."""
        from rexforge.forecast.tirex2_inputs import TimeseriesType, as_rows

        start = 0 if context_length is None else max(0, cutoff - context_length)

        def rows(values, stop, what):
            return None if values is None else as_rows(values[:, start:stop].copy(), what)

        what = f"item {self.item_id!r}"
        return TimeseriesType(
            rows(self.targets, cutoff, f"{what} target"),
            rows(self.past, cutoff, f"{what} past covariates"),
            rows(self.future, cutoff + horizon, f"{what} future covariates"),
        )


def items_from_frame(
    df: pd.DataFrame,
    *,
    id_column: str | None = "item_id",
    timestamp_column: str | None = "timestamp",
    target: str | Sequence[str] | None = None,
    past_covariates: Sequence[str] = (),
    future_covariates: Sequence[str] = (),
) -> list[CovariateItem]:
    """Every item of a long DataFrame, its rows on a regular time grid (a missing row is a NaN
    step). Column problems (unknown, not numeric, duplicate timestamps) are one ``InputError``."""
    from rexforge.forecast import tirex2_frames as frames

    past, future = list(past_covariates), list(future_covariates)
    overlap = sorted(set(past) & set(future))
    if overlap:
        raise InputError(f"column(s) {overlap} are named as both past and future covariates")
    # Over the history both kinds of covariate are plain columns; they are split again below.
    columns = frames.resolve_columns(
        df, None, id_column, timestamp_column, target, past + future, None
    )
    clash = sorted(set(columns.targets) & set(past + future))
    if clash:
        raise InputError(f"column(s) {clash} are named as both target and covariate")
    items = []
    for item in frames.frame_items(df, None, columns, horizon=1):
        covariates = item.series.past_covariates
        covariates = None if covariates is None else covariates.double().numpy()
        grid = item.history_times
        items.append(
            CovariateItem(
                item_id=str(item.item_id if item.item_id is not None else "series"),
                target_names=list(columns.targets),
                targets=item.series.target.double().numpy(),
                past=covariates[: len(past)] if past else None,
                future=covariates[len(past) :] if future else None,
                timestamps=grid,
                freq=getattr(grid, "freqstr", None) if isinstance(grid, pd.DatetimeIndex) else None,
            )
        )
    return items


def backtest_covariates(
    forecaster,
    items: Sequence[CovariateItem],
    horizon: int,
    windows: int = 1,
    stride: int | None = None,
    context_length: int | None = None,
    *,
    season: int | None = None,
    batch_size: int = 256,
    name: str | None = None,
) -> B.BacktestResult:
    """Rolling-origin backtest of ``forecaster`` on ``items`` (see the module doc); the
    arguments and result are ``backtest``'s, with one result row per (target, window)."""
    items = list(items)
    forecaster = backtest_view(forecaster)
    flat = [series for item in items for series in item.target_series()]
    stride = horizon if stride is None else stride
    collect_problems(
        B._check_arguments(flat, horizon, windows, stride, context_length), InputError, "backtest"
    )
    horizon, windows, stride = int(horizon), int(windows), int(stride)
    B._check_windows_fit(flat, horizon, windows, stride)
    name = name or B.model_name(forecaster)
    levels = B._quantile_levels(forecaster, name)
    season = B._mase_season(flat, season)
    with_covariates = takes_covariates(forecaster)
    if not with_covariates:
        log.info("%s takes no covariates: it forecasts each target from its own past", name)
    arrays = B._WindowArrays.empty(len(flat), windows, horizon, len(levels))
    for w in range(windows):
        contexts = B._fill_window(arrays, flat, w, stride, context_length, season)
        if with_covariates:
            # Every target of an item has the item's length, so its first row's cutoff is its own.
            first_rows = np.cumsum([0] + [len(item.target_names) for item in items])[:-1]
            inputs = [
                item.window_input(int(arrays.cutoffs[row, w]), horizon, context_length)
                for item, row in zip(items, first_rows)
            ]
            window = _forecast_items(forecaster, inputs, horizon, levels, batch_size, name)
        else:
            window = B._forecast_window(
                forecaster, contexts, horizon, len(levels), batch_size, name
            )
        arrays.quantiles[:, w], arrays.mean[:, w] = window
    return B._backtest_result(name, flat, arrays, levels, stride, season)


def _forecast_items(forecaster, inputs, horizon: int, levels, batch_size: int, name: str):
    """(quantiles [N, H, Q], mean [N, H]) for the N target rows of ``inputs``, from a
    forecaster that takes covariates (its ``forecast`` returns one [V_t, Q, H] per item)."""
    model = getattr(forecaster, "model", forecaster)
    forecasts = model.forecast(
        inputs, prediction_length=horizon, output_type="numpy", batch_size=batch_size
    )
    quantiles = np.concatenate([np.asarray(f, dtype=np.float64) for f in forecasts])
    check_horizon_reached(name, quantiles.shape[-1], horizon)
    quantiles = quantiles.transpose(0, 2, 1)  # [N, Q, H] -> [N, H, Q]
    median = int(np.argmin([abs(q - 0.5) for q in levels]))
    return quantiles, quantiles[..., median].copy()


def load_items(
    path,
    *,
    id_column: str | None = None,
    timestamp_column: str | None = None,
    target: str | Sequence[str] | None = None,
    past_covariates: Sequence[str] = (),
    future_covariates: Sequence[str] = (),
    limit: int | None = None,
) -> list[CovariateItem]:
    """``items_from_frame`` of a long table file (CSV, Parquet, ...); the id and timestamp
    columns default to ``item_id`` and ``timestamp`` where the table has them."""
    from rexforge.data.sources import read_table

    frame = read_table(path)
    if id_column is None and "item_id" in frame.columns:
        id_column = "item_id"
    if timestamp_column is None and "timestamp" in frame.columns:
        timestamp_column = "timestamp"
    items = items_from_frame(
        frame,
        id_column=id_column,
        timestamp_column=timestamp_column,
        target=target,
        past_covariates=past_covariates,
        future_covariates=future_covariates,
    )
    return items if limit is None else items[:limit]
