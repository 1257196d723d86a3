"""Read tables (CSV, Parquet, Arrow) into validated ``TimeSeries``, and write them back.

Two table layouts are understood:

* **long**: one row per observation, with an id, a timestamp and a target column
  (``item_id,timestamp,target``). Without an id column the whole table is one series (only
  for the default name ``item_id``: an id column named otherwise must exist). With the
  default names, the long names of Nixtla (``unique_id,ds,y``) and ``id,date,value`` are
  recognised too; a table that looks long under other names is refused with a hint to name
  its columns (``detect_layout``).
* **wide**: one time column plus one numeric column per series (``date,open,high,low,close``);
  each selected column becomes a series named after the column.

Every series is checked (numbers only, no infinities, not all missing, unique and regular
timestamps, long enough); bad series are either all named in one ``InputError`` or skipped and
reported, see ``load_series`` / ``load_series_report``. Sequence formats (one row holding a whole
series: Hugging Face / GluonTS Arrow, GluonTS JSON lines) live in ``records.py`` and are
re-exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from rexforge.data.problems import LoadReport, OnBad, SeriesProblem, check_on_bad, resolve
from rexforge.data.records import load_arrow_dataset, load_gluonts
from rexforge.data.series import TimeSeries
from rexforge.data.time_grid import (
    IrregularSpacing,
    ParsedTimes,
    looks_like_time,
    parse_time_column,
    regular_grid,
)
from rexforge.data.transforms import interpolate_gaps
from rexforge.errors import InputError

__all__ = [
    "read_table",
    "load_series",
    "load_series_report",
    "series_to_frame",
    "load_arrow_dataset",
    "load_gluonts",
    "LoadReport",
    "SeriesProblem",
]

logger = logging.getLogger(__name__)

Layout = Literal["auto", "long", "wide"]
Gaps = Literal["keep", "interpolate"]

_TABLE_SUFFIXES = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "tsv",
    ".tsv.gz": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a ``.csv``/``.csv.gz``/``.tsv``, ``.parquet`` or ``.arrow``/``.feather``/``.ipc`` table.

    Raises ``InputError`` naming the file when it is missing, a directory, empty, header-only,
    of an unknown extension, or cannot be parsed.
    """
    path = Path(path)
    kind = check_table_file(path)
    try:
        frame = _read(path, kind)
    except ImportError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}: file is empty") from exc
    except Exception as exc:  # noqa: BLE001 - parsers raise many types; all mean "unreadable"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read as {kind}: {reason}") from exc
    if len(frame.columns) == 0:
        raise InputError(f"{path}: table has no columns")
    if len(frame) == 0:
        raise InputError(
            f"{path}: table has a header ({', '.join(map(str, frame.columns))}) but no rows"
        )
    return frame


def check_table_file(path: Path) -> str:
    """The table kind of ``path`` (``"csv"``, ``"tsv"``, ``"parquet"``, ``"arrow"``), or an
    ``InputError`` when it is missing, a directory, empty or of an unknown extension."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a table file")
    kind = _table_kind(path)
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    return kind


def _table_kind(path: Path) -> str:
    name = path.name.lower()
    for suffix, kind in _TABLE_SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    raise InputError(
        f"{path}: unknown table extension '{''.join(path.suffixes) or path.name}' "
        f"(expected one of {', '.join(_TABLE_SUFFIXES)})"
    )


def _read(path: Path, kind: str) -> pd.DataFrame:
    if kind in ("csv", "tsv"):
        return pd.read_csv(path, sep="," if kind == "csv" else "\t")
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"reading {path} needs pyarrow: pip install 'rexforge[parquet]'") from exc
    if kind == "parquet":
        return pd.read_parquet(path)
    import pyarrow as pa
    import pyarrow.feather as feather

    try:
        return feather.read_table(path).to_pandas()
    except pa.ArrowInvalid:
        # Hugging Face `datasets` writes the Arrow *stream* format, not the file format.
        with pa.memory_map(str(path)) as source:
            return pa.ipc.open_stream(source).read_all().to_pandas()


def load_series(
    source: str | Path | pd.DataFrame,
    *,
    layout: Layout = "auto",
    id_column: str = "item_id",
    timestamp_column: str | None = "timestamp",
    target_column: str = "target",
    columns: Sequence[str] | None = None,
    time_column: str | None = None,
    gaps: Gaps = "keep",
    min_length: int = 1,
    on_bad: OnBad = "raise",
) -> list[TimeSeries]:
    """Load a long or wide table (path or DataFrame) as a list of validated ``TimeSeries``.

    Args:
        layout: ``"long"``, ``"wide"``, or ``"auto"`` (long when ``id_column`` exists,
            else wide).
        id_column, timestamp_column, target_column: column names of the long layout.
            ``timestamp_column=None`` means the rows are in time order without timestamps.
            A table without an ``item_id`` column is one series; a missing id column of any
            other name is an error (a typo must not merge every series into one).
        columns: wide layout: the columns to load as series (default: every numeric column).
        time_column: wide layout: the time column (default: the first column that parses as
            dates; without one the rows are steps and ``timestamps`` is None).
        gaps: missing points of the regular time grid become NaN (``"keep"``) or are linearly
            interpolated together with other interior NaNs (``"interpolate"``).
        min_length: series shorter than this (after gap filling) are bad.
        on_bad: ``"raise"`` one ``InputError`` naming every bad series, or ``"skip"`` them
            with a logged warning (``load_series_report`` returns the reasons).

    Returns:
        Series in order of first appearance; each ``target`` is float64 [T] on a regular grid,
        ``timestamps`` a ``DatetimeIndex`` (``freq`` set when inferable) or an integer index
        of steps (``freq`` None).
    """
    check_on_bad(on_bad)
    report = load_series_report(
        source,
        layout=layout,
        id_column=id_column,
        timestamp_column=timestamp_column,
        target_column=target_column,
        columns=columns,
        time_column=time_column,
        gaps=gaps,
        min_length=min_length,
    )
    return resolve(report, on_bad, _source_name(source))


def load_series_report(
    source: str | Path | pd.DataFrame,
    *,
    layout: Layout = "auto",
    id_column: str = "item_id",
    timestamp_column: str | None = "timestamp",
    target_column: str = "target",
    columns: Sequence[str] | None = None,
    time_column: str | None = None,
    gaps: Gaps = "keep",
    min_length: int = 1,
) -> LoadReport:
    """Like ``load_series``, but never raises for a bad *series*: returns ``LoadReport(series,
    problems)`` with one ``SeriesProblem(item_id, reason)`` per rejected series.

    Problems with the table itself (unreadable file, missing columns) still raise ``InputError``.
    """
    if layout not in ("auto", "long", "wide"):
        raise InputError(f"layout must be 'auto', 'long' or 'wide', got {layout!r}")
    if gaps not in ("keep", "interpolate"):
        raise InputError(f"gaps must be 'keep' or 'interpolate', got {gaps!r}")
    if isinstance(min_length, bool) or not isinstance(min_length, int) or min_length < 1:
        raise InputError(f"min_length must be an integer >= 1, got {min_length!r}")
    if not isinstance(source, str | Path | pd.DataFrame):
        raise InputError(
            f"source must be a file path or a pandas DataFrame, got {type(source).__name__}"
        )
    name = _source_name(source)
    frame = source if isinstance(source, pd.DataFrame) else read_table(source)
    if isinstance(source, pd.DataFrame) and len(frame) == 0:
        raise InputError(f"{name}: table has no rows")
    if layout == "auto":
        layout, (id_column, timestamp_column, target_column) = detect_layout(
            frame, name, (id_column, timestamp_column, target_column), time_column
        )
    if layout == "long":
        raw = _long_items(frame, name, id_column, timestamp_column, target_column)
    else:
        raw = _wide_items(frame, name, columns, time_column)
    report = LoadReport()
    for item_id, times, values, column in raw:
        series, reason = _build_series(item_id, times, values, column, gaps, min_length)
        if reason is None:
            report.series.append(series)
        else:
            report.problems.append(SeriesProblem(item_id, reason))
    logger.debug("%s: %d series loaded, %d bad", name, len(report.series), len(report.problems))
    return report


# Long-format column names of common libraries: (id, timestamp, target). The first is ours
# (and GluonTS' / AutoGluon's); a file using one of them entirely is read as long.
LONG_NAMES = (
    ("item_id", "timestamp", "target"),
    ("unique_id", "ds", "y"),  # Nixtla (StatsForecast, NeuralForecast, TimeGPT)
    ("id", "date", "value"),
)
_DEFAULT_NAMES = LONG_NAMES[0]
_NAME_HINT = "name the columns: --id-column ID --timestamp-column TIME --target VALUE"


def detect_layout(frame: pd.DataFrame, name: str, names: tuple, time_column=None):
    """``("long", (id, timestamp, target))`` or ``("wide", names)`` for ``layout="auto"``.

    An id column means a long table: a missing target column is then reported as such rather
    than the table being read as wide (and failing on something unrelated). With the default
    names, a table holding all of one ``LONG_NAMES`` triple (any letter case) is long too. A
    table read as wide whose timestamps repeat, or (without a time column) that has a column
    of repeated ids in runs, is a long table under other names: refused, not misread.
    """
    if names[0] in frame.columns:
        return "long", names
    if tuple(names) == _DEFAULT_NAMES:
        by_lower = {str(c).lower(): c for c in frame.columns}
        for triple in LONG_NAMES:
            if all(n in by_lower for n in triple):
                found = tuple(by_lower[n] for n in triple)
                logger.info("%s: long layout, columns %s", name, "/".join(map(str, found)))
                return "long", found
    if time_column is None:
        time_column = next((c for c in frame.columns if looks_like_time(frame[c])), None)
    ids = [str(c) for c in frame.columns if c != time_column and _looks_like_ids(frame[c])]
    repeats = time_column is not None and frame[time_column].duplicated().any()
    if repeats or (ids and time_column is None):
        why = f"timestamps in column '{time_column}' repeat" if repeats else "no time column"
        guess = f", and column '{ids[0]}' looks like series ids" if ids else ""
        raise InputError(
            f"{name}: cannot tell the layout ({why}{guess}, but there is no id column "
            f"'{names[0]}'): {_NAME_HINT} (long), or --layout wide"
        )
    return "wide", names


def _looks_like_ids(column: pd.Series) -> bool:
    """Integer or text values, each in one contiguous run of rows, most repeated: the id
    column of a long table sorted by series."""
    if not (pd.api.types.is_integer_dtype(column) or pd.api.types.is_string_dtype(column)):
        return False
    values = column.dropna()
    distinct = values.nunique()
    if distinct < 2 or distinct > len(values) // 2:
        return False
    runs = int((values != values.shift()).sum())
    return runs == distinct


def column_names(values) -> list[str] | None:
    """``--columns`` as given on a command line or in YAML: ``a,b``, ``a b``, ``a, b`` or a
    list all name the columns a and b (None stays None: every numeric column)."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    names = [part.strip() for value in values for part in str(value).split(",")]
    return [name for name in names if name] or None


def _source_name(source) -> str:
    return "<DataFrame>" if isinstance(source, pd.DataFrame) else str(source)


def require_columns(frame: pd.DataFrame, name: str, wanted: Sequence[tuple[str, str]]) -> None:
    """Raise once naming every missing column (``wanted`` holds (column, role) pairs)."""
    missing = [f"{role} column '{col}'" for col, role in wanted if col not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns))
        raise InputError(f"{name}: no {' and no '.join(missing)} (available: {available})")


# One raw item: (item_id, times for its rows or None, raw target values, target column name).
_RawItem = tuple[str, "_TimeSlice | None", pd.Series, str]


class _TimeSlice:
    """The rows of a parsed time column that belong to one series."""

    def __init__(self, parsed: ParsedTimes, rows: np.ndarray | slice, column: str):
        self.values = parsed.values[rows]
        self.is_steps = parsed.is_steps
        self.bad = parsed.bad[rows]
        self.raw = parsed.raw.iloc[rows]
        self.column = column


def _long_items(
    frame: pd.DataFrame,
    name: str,
    id_column: str,
    timestamp_column: str | None,
    target_column: str,
) -> list[_RawItem]:
    wanted = [(target_column, "target")]
    if timestamp_column is not None:
        wanted.append((timestamp_column, "timestamp"))
    require_columns(frame, name, wanted)
    parsed = None if timestamp_column is None else parse_time_column(frame[timestamp_column])
    target = frame[target_column]
    if id_column not in frame.columns:
        if id_column != "item_id":
            require_columns(frame, name, [(id_column, "item id")])
        logger.info("%s: no column '%s', reading one series", name, id_column)
        times = None if parsed is None else _TimeSlice(parsed, slice(None), timestamp_column)
        return [(str(target_column), times, target, target_column)]
    ids = frame[id_column]
    no_id = np.flatnonzero(ids.isna().to_numpy())
    if no_id.size:
        raise InputError(
            f"{name}: column '{id_column}': {no_id.size} rows have no item id "
            f"(first at row {int(no_id[0])})"
        )
    items = []
    for key, rows in ids.groupby(ids, sort=False).indices.items():
        times = None if parsed is None else _TimeSlice(parsed, rows, timestamp_column)
        items.append((str(key), times, target.iloc[rows], target_column))
    return items


def _wide_items(
    frame: pd.DataFrame, name: str, columns: Sequence[str] | None, time_column: str | None
) -> list[_RawItem]:
    if isinstance(columns, str):
        columns = [columns]  # a lone name is an easy slip; a string is not a list of names
    require_columns(
        frame,
        name,
        ([(time_column, "time")] if time_column else []) + [(c, "target") for c in columns or []],
    )
    if time_column is None:
        time_column = next((c for c in frame.columns if looks_like_time(frame[c])), None)
    times = None
    if time_column is not None:
        times = _TimeSlice(parse_time_column(frame[time_column]), slice(None), str(time_column))
    elif isinstance(frame.index, pd.DatetimeIndex):
        times = _TimeSlice(parse_time_column(frame.index.to_series()), slice(None), "index")
    if columns is None:
        columns = [
            c
            for c in frame.columns
            if c != time_column
            and pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c])
        ]
        if not columns:
            available = ", ".join(map(str, frame.columns))
            raise InputError(
                f"{name}: no numeric column to use as a series (available: {available})"
            )
        logger.debug("%s: wide layout, series columns %s", name, columns)
    return [(str(c), times, frame[c], str(c)) for c in columns]


def _build_series(
    item_id: str,
    times: _TimeSlice | None,
    raw_values: pd.Series,
    column: str,
    gaps: str,
    min_length: int,
) -> tuple[TimeSeries | None, str | None]:
    """Validate one series and put it on its regular grid: ``(series, None)`` or ``(None, reason)``."""
    values, reason = _to_float(raw_values, column)
    if reason is not None:
        return None, reason
    if np.isinf(values).any():
        return None, f"column '{column}' holds infinite values"
    index = None
    freq = None
    if times is not None:
        index, reason = _time_index(times)
        if reason is not None:
            return None, reason
        if not index.is_monotonic_increasing:
            # Out-of-order rows are harmless: sort them (stable, so duplicates stay detectable).
            order = np.argsort(index.values, kind="stable")
            index, values = index[order], values[order]
        dup = index.duplicated()
        if dup.any():
            return None, f"duplicate timestamp {index[dup][0]} in column '{times.column}'"
        try:
            grid, freq = regular_grid(index)
        except IrregularSpacing as exc:
            return None, str(exc)
        if len(grid) != len(index):
            filled = np.full(len(grid), np.nan)
            filled[grid.get_indexer(index)] = values
            values, index = filled, grid
        else:
            index = grid
    if np.isnan(values).all():
        return None, "all values are missing"
    if gaps == "interpolate":
        values = interpolate_gaps(values)
    if len(values) < min_length:
        return None, f"length {len(values)} is shorter than min_length {min_length}"
    return TimeSeries(item_id, values, index, freq), None


def _to_float(raw: pd.Series, column: str) -> tuple[np.ndarray, str | None]:
    if pd.api.types.is_bool_dtype(raw):
        return raw.to_numpy(dtype=np.float64), None
    if pd.api.types.is_numeric_dtype(raw):
        return raw.to_numpy(dtype=np.float64, na_value=np.nan), None
    numbers = pd.to_numeric(raw, errors="coerce")
    offending = numbers.isna().to_numpy() & raw.notna().to_numpy()
    if offending.any():
        first = raw.iloc[int(np.flatnonzero(offending)[0])]
        hint = ""
        if isinstance(first, list | tuple | np.ndarray):
            hint = " (a whole sequence per row: use load_arrow_dataset or load_gluonts)"
        return np.empty(0), f"column '{column}' holds non-numeric value {first!r}{hint}"
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan), None


def _time_index(times: _TimeSlice) -> tuple[pd.Index | None, str | None]:
    if times.bad.any():
        first = times.raw.iloc[int(np.flatnonzero(times.bad)[0])]
        what = "non-integer step" if times.is_steps else "unparsable timestamp"
        return None, f"{what} {first!r} in column '{times.column}'"
    if times.is_steps:
        if np.isnan(times.values).any():
            return None, f"missing timestamp in column '{times.column}'"
        return pd.Index(times.values.astype(np.int64)), None
    if pd.isna(times.values).any():
        return None, f"missing timestamp in column '{times.column}'"
    return pd.DatetimeIndex(times.values), None


def series_to_frame(
    series: Sequence[TimeSeries],
    *,
    id_column: str = "item_id",
    timestamp_column: str = "timestamp",
    target_column: str = "target",
) -> pd.DataFrame:
    """The long table of ``series`` (inverse of ``load_series`` with layout ``"long"``).

    Series without timestamps get integer steps ``0..T-1``.
    """
    parts = []
    for s in series:
        stamps = s.timestamps if s.timestamps is not None else pd.RangeIndex(len(s))
        parts.append(
            pd.DataFrame(
                {
                    id_column: np.full(len(s), s.item_id, dtype=object),
                    timestamp_column: np.asarray(stamps),
                    target_column: s.target,
                }
            )
        )
    if not parts:
        return pd.DataFrame({id_column: [], timestamp_column: [], target_column: []})
    return pd.concat(parts, ignore_index=True)
