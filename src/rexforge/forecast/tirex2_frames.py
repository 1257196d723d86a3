"""Long DataFrames in and out for ``TiRex2Forecaster.forecast_df``.

In: one row per item and time step, with the item's target column(s) and covariate columns;
for known-future covariates also a ``future_df`` in the same layout that holds their values
over the forecast steps. The arguments are named as in the reference ``tirex2`` 0.4.0
``forecast_df`` (``id_column``, ``timestamp_column``, ``target``, ``past_covariates``,
``future_covariates``, ``future_df``).

Out: the layout of TiRex's ``forecast_df`` (``rexforge.forecast.frames``): ``id_column``,
``timestamp_column`` (continued at each item's frequency), a ``target`` column naming the
target when there are several, ``mean`` (the median quantile) and one column per quantile
level. Rows go item by item (in order of first appearance), target by target, step by step.

Unlike the reference, which reads the rows of an item as consecutive steps, timestamps are put
on the item's regular grid first (``rexforge.data.time_grid``), so a missing row is a NaN step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rexforge.data.series import TimeSeries
from rexforge.data.sources import require_columns
from rexforge.data.time_grid import IrregularSpacing, parse_time_column, regular_grid
from rexforge.errors import InputError
from rexforge.forecast.frames import future_index, quantile_column
from rexforge.forecast.tirex2_inputs import TimeseriesType

TARGET_NAME_COLUMN = "target"
MEAN_COLUMN = "mean"


@dataclass(frozen=True)
class FrameColumns:
    """Which column plays which part; ``item_id`` / ``timestamp`` None: one series / positions."""

    item_id: str | None
    timestamp: str | None
    targets: list[str]
    past: list[str]
    future: list[str]


@dataclass
class FrameItem:
    """One item's series, ready to forecast, and the timestamps its forecast continues."""

    item_id: object
    series: TimeseriesType
    future_times: pd.Index
    history_times: pd.Index  # the T steps of ``series``, on the item's regular grid


def _names(columns: str | Sequence[str] | None) -> list[str]:
    if columns is None:
        return []
    return [columns] if isinstance(columns, str) else list(columns)


def resolve_columns(
    df: pd.DataFrame,
    future_df: pd.DataFrame | None,
    id_column: str | None,
    timestamp_column: str | None,
    target,
    past_covariates,
    future_covariates,
) -> FrameColumns:
    """Check the frames' columns and pick the targets and covariates.

    Known-future covariates default to the columns ``future_df`` shares with ``df`` (besides
    the id and timestamp); targets default to every other numeric column of ``df`` that is not
    a covariate, as in the reference."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"forecast_df needs a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise InputError("forecast_df: df has no rows")
    keys = [c for c in (id_column, timestamp_column) if c is not None]
    past, future = _names(past_covariates), _names(future_covariates)
    if future_df is not None and not isinstance(future_df, pd.DataFrame):
        raise InputError(f"future_df must be a pandas DataFrame, got {type(future_df).__name__}")
    if future_df is not None and not future:
        future = [c for c in future_df.columns if c in df.columns and c not in keys + past]
    if future and future_df is None:
        raise InputError(f"future_covariates {future} need their future values: pass future_df")
    wanted = [(c, "id" if c == id_column else "timestamp") for c in keys]
    wanted += [(c, "past covariate") for c in past] + [(c, "future covariate") for c in future]
    require_columns(df, "df", wanted)
    if future_df is not None:
        require_columns(future_df, "future_df", [(c, r) for c, r in wanted if c not in past])
    targets = _names(target) or _default_targets(df, keys + past + future)
    require_columns(df, "df", [(c, "target") for c in targets])
    return FrameColumns(id_column, timestamp_column, targets, past, future)


def _default_targets(df: pd.DataFrame, taken: list[str]) -> list[str]:
    targets = [
        c
        for c in df.columns
        if c not in taken
        and pd.api.types.is_numeric_dtype(df[c])
        and not pd.api.types.is_bool_dtype(df[c])
    ]
    if not targets:
        raise InputError("df has no numeric column left to forecast; name it with target=...")
    return targets


def check_output_names(columns: FrameColumns, quantiles: Sequence[float]) -> None:
    """The id and timestamp columns come back under their names: they must not clash with
    the columns the forecast adds."""
    added = {TARGET_NAME_COLUMN, MEAN_COLUMN} | {quantile_column(q) for q in quantiles}
    for column in (columns.item_id, columns.timestamp):
        if column in added:
            raise InputError(f"column '{column}' would clash with a forecast column; rename it")


def numeric_rows(frame: pd.DataFrame, columns: list[str], what: str) -> np.ndarray:
    """``columns`` of ``frame`` as a float64 [len(columns), rows] array; NaN stays missing."""
    for column in columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise InputError(
                f"{what} column '{column}' is not numeric (dtype {frame[column].dtype})"
            )
    return frame[columns].to_numpy(dtype=np.float64, na_value=np.nan).T


def _time_index(frame: pd.DataFrame, column: str, what: str) -> pd.Index:
    """The parsed timestamps of ``frame``'s rows: a DatetimeIndex or an integer step index."""
    if pd.api.types.is_datetime64_any_dtype(frame[column]):
        times = pd.DatetimeIndex(frame[column])  # keeps a time zone, unlike to_numpy
    else:
        parsed = parse_time_column(frame[column])
        if parsed.bad.any():
            bad = frame[column][parsed.bad].iloc[0]
            raise InputError(f"{what} column '{column}': cannot read timestamp {bad!r}")
        times = pd.Index(parsed.values)
        if parsed.is_steps and not times.isna().any():
            times = times.astype(np.int64)
    if times.isna().any():
        raise InputError(f"{what} column '{column}' has missing timestamps")
    return times


def _groups(frame: pd.DataFrame, id_column: str | None, what: str) -> dict:
    """Item id -> row positions of ``frame``, in order of first appearance."""
    if id_column is None:
        return {None: np.arange(len(frame))}
    if frame[id_column].isna().any():
        raise InputError(f"{what} column '{id_column}' has missing item ids")
    codes, ids = pd.factorize(frame[id_column], sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes, minlength=len(ids)))[:-1]
    return dict(zip(ids, np.split(order, bounds)))


@dataclass
class _Table:
    """One frame's parts, parsed once for all items: row groups, timestamps, value rows."""

    groups: dict
    times: pd.Index | None
    values: dict[str, np.ndarray]


def _table(frame: pd.DataFrame, columns: FrameColumns, parts: dict[str, list[str]], what: str):
    times = None if columns.timestamp is None else _time_index(frame, columns.timestamp, what)
    values = {part: numeric_rows(frame, names, f"{what} {part}") for part, names in parts.items()}
    return _Table(_groups(frame, columns.item_id, what), times, values)


def frame_items(
    df: pd.DataFrame, future_df: pd.DataFrame | None, columns: FrameColumns, horizon: int
) -> list[FrameItem]:
    """Every item of ``df`` as a ``FrameItem`` whose series forecasts ``horizon`` steps."""
    history = _table(
        df,
        columns,
        {
            "target": columns.targets,
            "past covariate": columns.past,
            "future covariate": columns.future,
        },
        "df",
    )
    future = None
    if columns.future:
        future = _table(future_df, columns, {"future covariate": columns.future}, "future_df")
        unknown = [item for item in future.groups if item not in history.groups]
        if unknown:
            raise InputError(f"future_df has rows for item(s) {unknown[:5]} that df does not have")
    return [
        _item(item_id, rows, history, future, horizon) for item_id, rows in history.groups.items()
    ]


def _item(item_id, rows: np.ndarray, history: _Table, future: _Table | None, horizon: int):
    """One item: its rows put in time order on a regular grid (missing steps NaN), its next
    ``horizon`` timestamps, and its known-future covariates over both."""
    name = "the series" if item_id is None else f"item {item_id!r}"
    if history.times is None:
        grid, positions = pd.RangeIndex(len(rows)), np.arange(len(rows))
        next_times = pd.RangeIndex(len(rows), len(rows) + horizon)
    else:
        grid, positions, rows = _on_grid(history.times[rows], rows, name)
        freq = getattr(grid, "freqstr", None) if isinstance(grid, pd.DatetimeIndex) else None
        next_times = future_index(
            TimeSeries(str(item_id), np.zeros(len(grid)), grid, freq), horizon
        )

    def gridded(part: str) -> np.ndarray | None:
        values = history.values[part]
        if len(values) == 0:
            return None
        out = np.full((len(values), len(grid)), np.nan)
        out[:, positions] = values[:, rows]
        return out

    known = gridded("future covariate")
    if known is not None:
        ahead = _known_ahead(item_id, name, future, next_times, horizon)
        known = np.concatenate([known, ahead], axis=1)
    series = TimeseriesType(
        *(
            None if a is None else _tensor(a)
            for a in (gridded("target"), gridded("past covariate"), known)
        )
    )
    return FrameItem(item_id, series, next_times, grid)


def _on_grid(times: pd.Index, rows: np.ndarray, name: str):
    """(the regular grid of ``times``, each sorted row's position on it, the sorted rows)."""
    order = np.argsort(np.asarray(times), kind="stable")
    times, rows = times[order], rows[order]
    if times.has_duplicates:
        raise InputError(f"{name} has two rows for timestamp {times[times.duplicated()][0]}")
    try:
        grid, freq = regular_grid(times)
    except IrregularSpacing as error:
        raise InputError(f"{name}: {error}") from None
    if isinstance(grid, pd.DatetimeIndex) and freq is not None and grid.freq is None:
        grid = pd.DatetimeIndex(grid, freq=freq)
    return grid, grid.get_indexer(times), rows


def _known_ahead(item_id, name: str, future: _Table, next_times: pd.Index, horizon: int):
    """[V_f, horizon] values of the known-future covariates at the forecast timestamps."""
    if item_id not in future.groups:
        raise InputError(f"future_df has no rows for {name}")
    rows = future.groups[item_id]
    values = future.values["future covariate"]
    if future.times is None:  # no timestamps: its rows are the next steps, in order
        if len(rows) < horizon:
            raise InputError(f"future_df has {len(rows)} rows for {name}; it needs {horizon}")
        return values[:, rows[:horizon]]
    times = future.times[rows]
    if times.has_duplicates:
        raise InputError(f"future_df has two rows for {name} at {times[times.duplicated()][0]}")
    positions = times.get_indexer(next_times)
    if (positions < 0).any():
        missing = next_times[positions < 0][0]
        raise InputError(
            f"future_df has no row for {name} at {missing}; it needs the {horizon} steps "
            f"from {next_times[0]} to {next_times[-1]}"
        )
    return values[:, rows[positions]]


def _tensor(values: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))


def forecast_frame(
    items: list[FrameItem], forecasts: list[np.ndarray], columns: FrameColumns, quantiles
) -> pd.DataFrame:
    """The long output frame (see the module doc) from one [V_t, Q, H] forecast per item."""
    median = int(np.argmin([abs(q - 0.5) for q in quantiles]))
    n_targets = len(columns.targets)
    stamps, blocks = [], []
    for item, forecast in zip(items, forecasts):
        steps = forecast.shape[-1]
        stamps += [item.future_times[:steps]] * n_targets
        blocks.append(forecast.transpose(0, 2, 1).reshape(-1, len(quantiles)))  # [V*H, Q]
    values = np.concatenate(blocks)
    steps_per_item = [f.shape[-1] for f in forecasts]
    out = {}
    if columns.item_id is not None:
        ids = np.array([item.item_id for item in items], dtype=object)
        out[columns.item_id] = np.repeat(ids, [n_targets * s for s in steps_per_item])
    out[columns.timestamp or "timestamp"] = stamps[0].append(stamps[1:]) if stamps else []
    if n_targets > 1:
        names = [np.repeat(np.array(columns.targets, dtype=object), s) for s in steps_per_item]
        out[TARGET_NAME_COLUMN] = np.concatenate(names)
    out[MEAN_COLUMN] = values[:, median]
    for j, level in enumerate(quantiles):
        out[quantile_column(level)] = values[:, j]
    return pd.DataFrame(out)
