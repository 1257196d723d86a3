"""Sequence formats, where one record holds a whole series: ``{"start", "target": [...], "item_id"}``.

* Arrow files as written by GluonTS' ``ArrowWriter`` (the Chronos training corpus: IPC *file*
  format) or Hugging Face ``datasets`` (IPC *stream* format, ``data-*.arrow``), and Parquet
  files of the same shape. Read with pyarrow, a record batch at a time, so a corpus of a
  million series streams through ``iter_arrow_dataset`` without being loaded whole.
* GluonTS JSON lines (``.json``, ``.jsonl``, ``.json.gz``), or any iterable of such dicts,
  read without needing gluonts itself.

A record's timestamps come from a ``timestamp`` list (Chronos ``autogluon/chronos_datasets``),
else from ``start`` + ``freq``; with neither they are None (``meta["start"]`` keeps a start
without a frequency). A 2-D target (multivariate) becomes one series per row, named
``<item_id>_<k>``.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from rexforge.data.problems import LoadReport, OnBad, SeriesProblem, check_on_bad, resolve
from rexforge.data.series import TimeSeries
from rexforge.data.time_grid import grid_from_start, infer_freq, normalize_freq
from rexforge.errors import InputError

logger = logging.getLogger(__name__)

_ID_FIELDS = ("item_id", "id")
_ARROW_SUFFIXES = (".arrow", ".ipc", ".feather", ".parquet")
_JSON_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")


def load_arrow_dataset(
    path: str | Path,
    *,
    target_field: str = "target",
    freq: str | None = None,
    on_bad: OnBad = "raise",
) -> list[TimeSeries]:
    """Load an Arrow/Parquet file (or a folder of them) with one series per row.

    ``target_field`` names the list column; ``freq`` overrides a ``freq`` column. Bad rows
    (non-list target, infinities, all values missing) raise one ``InputError`` or, with
    ``on_bad="skip"``, are logged and dropped.
    """
    check_on_bad(on_bad)
    report = LoadReport()
    for item in _arrow_records(Path(path), target_field, freq):
        _collect(report, item)
    return resolve(report, on_bad, str(path))


def iter_arrow_dataset(
    path: str | Path, *, target_field: str = "target", freq: str | None = None
) -> Iterator[TimeSeries]:
    """Stream the series of ``load_arrow_dataset`` one at a time; bad rows are logged and skipped."""
    for item in _arrow_records(Path(path), target_field, freq):
        if isinstance(item, SeriesProblem):
            logger.warning("%s: skipped item '%s': %s", path, item.item_id, item.reason)
        else:
            yield item


def load_gluonts(
    source: str | Path | Iterable[Mapping],
    *,
    freq: str | None = None,
    on_bad: OnBad = "raise",
) -> list[TimeSeries]:
    """Load a GluonTS dataset: a JSON-lines file, a folder of them, or an iterable of dicts.

    Each entry is ``{"start": ..., "target": [...], "item_id": ...}`` (``item_id``/``id`` and
    ``freq`` optional; ``start`` may be a string, ``pd.Timestamp`` or ``pd.Period``). ``freq``
    defaults to the entry's ``freq``, then to ``metadata.json`` next to the files.
    """
    check_on_bad(on_bad)
    if isinstance(source, str | Path):
        path = Path(source)
        entries: Iterable[Mapping] = _json_entries(path)
        freq = freq or _metadata_freq(path)
        name = str(path)
    else:
        entries, name = source, "<gluonts entries>"
    report = LoadReport()
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or "target" not in entry:
            raise InputError(f"{name}: entry {index} has no 'target' field")
        item_id = _entry_id(entry, index)
        try:
            target = np.asarray(entry["target"], dtype=np.float64)
        except (TypeError, ValueError):
            _collect(report, SeriesProblem(item_id, "target holds non-numeric values"))
            continue
        for item in _split_rows(
            item_id, target, entry.get("start"), entry.get("freq") or freq, None
        ):
            _collect(report, item)
    return resolve(report, on_bad, name)


def _collect(report: LoadReport, item: TimeSeries | SeriesProblem) -> None:
    if isinstance(item, SeriesProblem):
        report.problems.append(item)
    else:
        report.series.append(item)


def _entry_id(entry: Mapping, index: int) -> str:
    for key in _ID_FIELDS:
        if entry.get(key) is not None:
            return str(entry[key])
    return str(index)


def _split_rows(item_id, target, start, freq, timestamps) -> Iterator[TimeSeries | SeriesProblem]:
    """One record -> one series, or one per row of a 2-D (multivariate) target."""
    if target.ndim == 1:
        yield _make_series(item_id, target, start, freq, timestamps)
    elif target.ndim == 2:
        for k, row in enumerate(target):
            yield _make_series(f"{item_id}_{k}", row, start, freq, timestamps)
    else:
        yield SeriesProblem(item_id, f"target has {target.ndim} dimensions, expected 1 or 2")


def _make_series(item_id, values, start, freq, timestamps) -> TimeSeries | SeriesProblem:
    if len(values) == 0:
        return SeriesProblem(item_id, "target is empty")
    if np.isinf(values).any():
        return SeriesProblem(item_id, "target holds infinite values")
    if np.isnan(values).all():
        return SeriesProblem(item_id, "all values are missing")
    meta = {}
    index = None
    if timestamps is not None:
        index = pd.DatetimeIndex(timestamps)
        if len(index) != len(values):
            return SeriesProblem(
                item_id, f"{len(index)} timestamps for {len(values)} target values"
            )
        freq = freq or infer_freq(index)
    elif start is not None and freq:
        try:
            index = grid_from_start(start, freq, len(values))
        except (ValueError, TypeError) as exc:
            return SeriesProblem(item_id, f"cannot build timestamps from start {start!r}: {exc}")
        freq = index.freqstr or normalize_freq(freq)
    elif start is not None:
        meta["start"] = pd.Timestamp(
            start.to_timestamp() if isinstance(start, pd.Period) else start
        )
    if freq is not None:
        freq = normalize_freq(str(freq))
    return TimeSeries(item_id, values, index, freq, meta)


# ----------------------------------------------------------------------------- Arrow / Parquet


def _arrow_files(path: Path) -> list[Path]:
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.name.lower().endswith(_ARROW_SUFFIXES))
    if not files:
        raise InputError(f"{path}: folder holds no {', '.join(_ARROW_SUFFIXES)} files")
    return files


def _record_batches(path: Path):
    import pyarrow as pa

    if path.name.lower().endswith(".parquet"):
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(path).iter_batches()
        return
    source = pa.memory_map(str(path))
    try:
        reader = pa.ipc.open_file(source)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)
    except pa.ArrowInvalid:
        # Hugging Face `datasets` writes the stream format; GluonTS' ArrowWriter the file format.
        source.seek(0)
        yield from pa.ipc.open_stream(source)


def _arrow_records(path: Path, target_field: str, freq: str | None):
    try:
        import pyarrow as pa
    except ImportError as exc:
        raise ImportError(f"reading {path} needs pyarrow: pip install 'rexforge[parquet]'") from exc
    for file in _arrow_files(path):
        if file.stat().st_size == 0:
            raise InputError(f"{file}: file is empty")
        row = 0
        try:
            for batch in _record_batches(file):
                yield from _batch_records(file, batch, target_field, freq, row)
                row += batch.num_rows
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{file}: cannot read as Arrow/Parquet: {exc}") from exc
        if row == 0:
            raise InputError(f"{file}: holds no rows")


def _batch_records(file: Path, batch, target_field: str, freq: str | None, first_row: int):
    import pyarrow as pa
    import pyarrow.compute as pc

    names = batch.schema.names
    if target_field not in names:
        raise InputError(f"{file}: no column '{target_field}' (available: {', '.join(names)})")
    target = batch.column(target_field)
    if not (
        pa.types.is_list(target.type)
        or pa.types.is_large_list(target.type)
        or pa.types.is_fixed_size_list(target.type)
    ):
        raise InputError(
            f"{file}: column '{target_field}' has type {target.type}, expected a list of numbers "
            "per row (for one value per row use load_series)"
        )
    id_field = next((f for f in _ID_FIELDS if f in names), None)
    ids = batch.column(id_field).to_pylist() if id_field else None
    starts = batch.column("start").to_pylist() if "start" in names else None
    freqs = batch.column("freq").to_pylist() if "freq" in names and freq is None else None
    stamps = batch.column("timestamp") if "timestamp" in names else None
    nested = pa.types.is_list(target.type.value_type) or pa.types.is_large_list(
        target.type.value_type
    )
    if (
        not nested
        and not pa.types.is_floating(target.type.value_type)
        and not pa.types.is_integer(target.type.value_type)
    ):
        raise InputError(
            f"{file}: column '{target_field}' holds {target.type.value_type}, expected numbers"
        )
    if not nested:
        # Flatten the whole batch once and slice per row: far faster than to_pylist per row.
        lengths = pc.fill_null(target.value_lengths(), 0).to_numpy(zero_copy_only=False)
        flat = pc.cast(target.flatten(), pa.float64()).to_numpy(zero_copy_only=False)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
    nulls = target.is_null().to_numpy(zero_copy_only=False)
    for r in range(batch.num_rows):
        item_id = str(ids[r]) if ids is not None and ids[r] is not None else str(first_row + r)
        if nulls[r]:
            yield SeriesProblem(item_id, f"column '{target_field}' is null")
            continue
        if nested:
            values = np.asarray(target[r].as_py(), dtype=np.float64)
        else:
            values = flat[offsets[r] : offsets[r + 1]]
        row_stamps = stamps[r].as_py() if stamps is not None else None
        row_freq = freqs[r] if freqs is not None else freq
        yield from _split_rows(item_id, values, starts[r] if starts else None, row_freq, row_stamps)


# ----------------------------------------------------------------------------- GluonTS JSON


def _json_files(path: Path) -> list[Path]:
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.name.lower().endswith(_JSON_SUFFIXES))
    files = [p for p in files if p.name != "metadata.json"]
    if not files:
        subdirs = sorted(p.name for p in path.iterdir() if p.is_dir())
        hint = f"; point at one of its folders: {', '.join(subdirs)}" if subdirs else ""
        raise InputError(f"{path}: folder holds no GluonTS JSON files{hint}")
    return files


def _json_entries(path: Path) -> Iterator[Mapping]:
    for file in _json_files(path):
        if not file.name.lower().endswith(_JSON_SUFFIXES):
            raise InputError(
                f"{file}: unknown extension, expected one of {', '.join(_JSON_SUFFIXES)}"
            )
        opener = gzip.open if file.name.lower().endswith(".gz") else open
        try:
            with opener(file, "rt", encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{file}: cannot read: {exc}") from exc
        if not text.strip():
            raise InputError(f"{file}: file is empty")
        if text.lstrip().startswith("["):
            # A single JSON array instead of JSON lines: accept it too.
            try:
                yield from json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"{file}: invalid JSON: {exc}") from exc
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{file}:{number}: invalid JSON line: {exc.msg}") from exc


def _metadata_freq(path: Path) -> str | None:
    """``freq`` from a GluonTS ``metadata.json`` beside the data or one folder up."""
    folder = path if path.is_dir() else path.parent
    for candidate in (
        folder / "metadata.json",
        folder.parent / "metadata.json",
        folder.parent / "metadata" / "metadata.json",
    ):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text()).get("freq")
            except (json.JSONDecodeError, AttributeError):
                logger.warning("%s: unreadable metadata, ignoring it", candidate)
    return None
