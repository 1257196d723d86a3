"""Read a long CSV in pieces of whole items, for files too large to load at once.

``iter_item_chunks`` yields DataFrames of about ``chunk_rows`` rows, each holding only complete
items (every row of each of its items), in file order. This needs each item's rows to be
contiguous in the file (sorted by item, or at least grouped; the order of the items and of the
rows within an item is free). An item whose rows appear again after another item's rows is an
``InputError`` naming the item and the line, since its series would otherwise be split in two.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rexforge.data.sources import check_table_file, require_columns
from rexforge.errors import InputError

logger = logging.getLogger(__name__)


def iter_item_chunks(
    path: str | Path,
    *,
    id_column: str = "item_id",
    columns: Sequence[tuple[str, str]] = (),
    chunk_rows: int = 200_000,
) -> Iterator[pd.DataFrame]:
    """Yield the rows of a long CSV/TSV file in DataFrames of complete items.

    Args:
        id_column: the item id column (read as text: ``007`` stays ``007``).
        columns: further ``(column, role)`` pairs that must exist, checked on the header.
        chunk_rows: rows read at a time; a yielded frame also holds the rows of the item that
            straddled the previous boundary, so it can be longer. Memory is bounded by
            ``chunk_rows`` plus the longest item, and a set of the item ids seen so far.

    Raises ``InputError`` for an unreadable file, missing columns, a row without an item id,
    or an item whose rows are not contiguous.
    """
    path = Path(path)
    kind = check_table_file(path)
    if kind not in ("csv", "tsv"):
        raise InputError(f"{path}: reading in chunks needs a CSV or TSV file, not {kind}")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise InputError(f"chunk_rows must be an integer >= 1, got {chunk_rows!r}")
    finished: set[str] = set()  # items whose rows have ended
    carry: pd.DataFrame | None = None  # rows of the last item read, which may go on
    for chunk in _read_chunks(path, kind, id_column, columns, chunk_rows):
        ids = chunk[id_column]
        missing = np.flatnonzero(ids.isna().to_numpy())
        if missing.size:
            raise InputError(
                f"{path}: column '{id_column}': line {_line(chunk, int(missing[0]))} has no item id"
            )
        if carry is not None:
            chunk = _concat_rows(carry, chunk)
        values = chunk[id_column].to_numpy()
        starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
        for start in starts:  # one check per run of rows, not per row
            item = values[start]
            if item in finished:
                raise InputError(
                    f"{path}: item '{item}' appears again at line {_line(chunk, int(start))} "
                    f"after other items' rows; reading in chunks needs each item's rows together "
                    f"(sort the file by '{id_column}')"
                )
            finished.add(item)
        # The last run may continue in the next chunk: hold it back, and it is not finished yet.
        finished.discard(values[starts[-1]])
        complete, carry = chunk.iloc[: starts[-1]], chunk.iloc[starts[-1] :]
        if len(complete):
            yield complete
    if carry is not None and len(carry):
        yield carry


def _read_chunks(path, kind, id_column, columns, chunk_rows) -> Iterator[pd.DataFrame]:
    """``pd.read_csv`` in chunks, with its errors as one-line ``InputError``s."""
    try:
        reader = pd.read_csv(
            path, sep="," if kind == "csv" else "\t", chunksize=chunk_rows, dtype={id_column: str}
        )
        rows = 0
        for i, chunk in enumerate(reader):
            if i == 0:
                require_columns(chunk, str(path), [(id_column, "item id"), *columns])
            rows += len(chunk)
            if len(chunk):
                yield chunk
        if rows == 0:
            raise InputError(f"{path}: table has a header but no rows")
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        if isinstance(exc, InputError):
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read as {kind}: {reason}") from None


def _concat_rows(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``first`` then ``second``; columns whose dtypes differ (each chunk infers its
    own) become object columns, which the loaders parse value by value."""
    differ = {c: object for c in second.columns if first[c].dtype != second[c].dtype}
    if differ:
        first, second = first.astype(differ), second.astype(differ)
    return pd.concat([first, second])


def _line(chunk: pd.DataFrame, position: int) -> int:
    """The 1-based file line of row ``position`` of ``chunk`` (the header is line 1)."""
    return int(chunk.index[position]) + 2
