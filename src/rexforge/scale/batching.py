"""Forecast batches of a distributed long table, shared by the Ray and Spark helpers.

Why fixed batches: a forward pass over a batch left-pads its series to the longest one, and
its matrix products round differently with another batch size, so one series' forecast moves
in the last bits (~1e-3 of its scale with the default bf16 numerics) with the series beside
it. A cluster that grouped series by hash or by block would give numbers that no single
process reproduces. Numbering the series in sorted id order and cutting that order into runs
of ``batch_size`` gives every forward pass exactly the series that ``forecast_df`` puts
together for a table sorted by id, so the results are equal, not close.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from rexforge.errors import InputError

# Column added to the rows for grouping (dropped before forecasting).
BATCH_COLUMN = "__rexforge_batch"


def sorted_item_ids(ids: Iterable[Any]) -> list[Any]:
    """The distinct item ids in the order ``forecast_df`` meets them in a table sorted by id:
    natural order (numbers as numbers), or as text when the ids mix types."""
    distinct = list(dict.fromkeys(ids))
    if any(i is None or (isinstance(i, float) and np.isnan(i)) for i in distinct):
        raise InputError("the id column holds missing values: every row needs an item id")
    try:
        return sorted(distinct)
    except TypeError:  # e.g. ints beside strings
        return sorted(distinct, key=str)


def batch_keys(ids: pd.Series, order: Sequence[Any] | pd.Index, batch_size: int) -> np.ndarray:
    """Forecast batch of each row: ``position of its id in order // batch_size``, int64 [rows].

    ``order``: ``sorted_item_ids`` of the whole table (a ``pd.Index`` is used as is: building
    one costs a hash table, worth keeping between calls)."""
    index = order if isinstance(order, pd.Index) else pd.Index(order)
    position = index.get_indexer(ids)
    if (position < 0).any():
        missing = ids[position < 0].iloc[0]
        raise InputError(f"item id {missing!r} is not among the table's ids")
    return position.astype(np.int64) // batch_size


def check_batch_size(batch_size: int) -> int:
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int | np.integer)
        or batch_size < 1
    ):
        raise InputError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return int(batch_size)
