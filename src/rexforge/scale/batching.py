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


class ForecastBatches:
    """``forecast_df`` as a UDF of a distributed engine: Ray Data's ``dataset.map_batches(
    ForecastBatches, fn_constructor_kwargs={...}, batch_format="pandas", compute=...)``, or the
    function of Spark's ``applyInPandas`` (``rexforge.scale.spark``).

    Every frame it is given must hold whole series (all rows of each item in it): a plain
    ``map_batches`` cuts blocks anywhere, so group first (``forecast_dataset`` does). Rows keyed
    with ``BATCH_COLUMN`` are forecast one forecast batch at a time. Returns
    ``forecast_df``'s long frame for the batch: id, timestamp, mean, quantile columns.

    model: what ``rexforge.load_model`` takes (path, ``"starter"``, hub id); loaded in
        ``__init__``, i.e. once per worker. numerics, kernel: ``load_model``'s.
    num_threads: torch threads of the worker (None: leave torch's default).
    forecast_options: passed to ``forecast_df`` (``batch_size``, ``on_bad``,
        ``resample_strategy``).
    """

    def __init__(
        self,
        model: str = "starter",
        prediction_length: int = 24,
        *,
        id_column: str = "item_id",
        timestamp_column: str = "timestamp",
        target: str = "target",
        numerics: str = "bf16",
        kernel: str = "auto",
        num_threads: int | None = 1,
        **forecast_options: Any,
    ):
        import torch

        import rexforge

        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self.forecaster = rexforge.load_model(model, kernel=kernel, numerics=numerics)
        self.prediction_length = prediction_length
        self.columns = {"id_column": id_column, "timestamp_column": timestamp_column}
        self.target = target
        self.forecast_options = forecast_options

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        if len(batch) == 0:  # an empty partition of a shuffle: no rows, forecast_df's columns
            return self._no_forecasts(batch)
        if BATCH_COLUMN not in batch.columns:
            return self._forecast(batch)
        # Rows keyed by ``forecast_dataset``: one forecast_df call per forecast batch, so that
        # each forward pass holds exactly that batch's series (a block may hold several).
        groups = batch.groupby(BATCH_COLUMN, sort=True)
        return pd.concat(
            [self._forecast(rows.drop(columns=[BATCH_COLUMN])) for _, rows in groups],
            ignore_index=True,
        )

    def _forecast(self, rows: pd.DataFrame) -> pd.DataFrame:
        return self.forecaster.forecast_df(
            rows,
            self.prediction_length,
            target=self.target,
            **self.columns,
            **self.forecast_options,
        )

    def _no_forecasts(self, batch: pd.DataFrame) -> pd.DataFrame:
        from rexforge.forecast.frames import quantile_column

        time = self.columns["timestamp_column"]
        columns = {
            self.columns["id_column"]: pd.Series([], dtype=object),
            time: batch[time].iloc[:0] if time in batch.columns else pd.Series([], dtype=object),
            "mean": pd.Series([], dtype=np.float32),
        }
        for level in self.forecaster.quantiles:
            columns[quantile_column(level)] = pd.Series([], dtype=np.float32)
        return pd.DataFrame({k: v.reset_index(drop=True) for k, v in columns.items()})
