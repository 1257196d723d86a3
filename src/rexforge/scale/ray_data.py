"""Batch forecasting on Ray Data (the ``ray`` extra).

``ForecastBatches`` is ``forecast_df`` as a ``map_batches`` UDF: a callable
class, so Ray builds it once per worker (actor) and the model is loaded once there, not per
batch. ``forecast_dataset`` forecasts a Ray Dataset of long rows (id, timestamp, target):

    import ray, rexforge.scale.ray_data as rd
    rows = ray.data.read_parquet("s3://bucket/long/")          # item_id, timestamp, target
    forecasts = rd.forecast_dataset(rows, "starter", prediction_length=24, workers=8)
    forecasts.write_parquet("s3://bucket/forecasts/")

The result has ``forecast_df``'s columns and numbers: for the same rows, its rows equal
``load_model(model).forecast_df(frame, prediction_length)`` of the frame sorted by item id
(each worker forecasts the same batches of series as that call; ``rexforge.scale.batching``),
in another row order. Equal also means: the same number of torch threads per forecast
(``num_threads``, default 1 per worker, as Ray's one CPU per task).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from rexforge.errors import InputError
from rexforge.scale.batching import (
    BATCH_COLUMN,
    ForecastBatches,
    batch_keys,
    check_batch_size,
    sorted_item_ids,
)

__all__ = ["ForecastBatches", "forecast_dataset"]


def require_ray():
    """The ``ray`` module, or one ``InputError`` naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data ships in ray[data])
    except ModuleNotFoundError:
        raise InputError(
            "forecasting on Ray needs ray[data]: pip install 'rexforge[ray]'"
        ) from None
    return ray


def forecast_dataset(
    dataset,
    model: str,
    prediction_length: int,
    *,
    id_column: str = "item_id",
    timestamp_column: str = "timestamp",
    target: str = "target",
    batch_size: int = 512,
    workers: int | None = None,
    num_cpus: float = 1,
    num_threads: int | None = 1,
    numerics: str = "bf16",
    **forecast_options: Any,
):
    """Forecast every series of a Ray Dataset of long rows; returns a (lazy) Ray Dataset of
    ``forecast_df``'s rows: id, timestamp, mean, ``"0.1"`` ... ``"0.9"``.

    The distinct ids are collected first (one pass), numbered in sorted order, and the rows
    grouped into batches of ``batch_size`` consecutive series (a shuffle); each group is one
    ``forecast_df`` call on a worker. workers: number of forecasting actors (None: Ray
    scales them to the cluster). num_cpus: CPUs reserved per actor; num_threads: torch threads
    in it. Other keywords go to ``forecast_df`` (``on_bad``, ``resample_strategy``).
    """
    ray = require_ray()
    batch_size = check_batch_size(batch_size)
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise InputError(f"workers must be an integer >= 1 or None, got {workers!r}")
    missing = [c for c in (id_column, timestamp_column, target) if c not in dataset.columns()]
    if missing:
        raise InputError(f"the dataset has no column {', '.join(map(repr, missing))}")
    order = sorted_item_ids(dataset.unique(id_column))
    keyed = dataset.map_batches(
        _add_batch_keys,
        batch_format="pandas",
        fn_kwargs={"id_column": id_column, "order": order, "batch_size": batch_size},
    )
    # Hash-partition by batch key (every row of a batch in one block), and let the shuffle
    # finish before the forecasting actors start: actors holding every CPU while the shuffle
    # still waits for one would never get a block (seen with 2 actors on a 2-CPU cluster). The
    # grouped rows sit in the object store meanwhile (spilled to disk when larger).
    batches = -(-len(order) // batch_size)
    grouped = keyed.repartition(batches, keys=[BATCH_COLUMN]).materialize()
    return grouped.map_batches(
        ForecastBatches,
        batch_size=None,  # whole blocks: a block holds whole forecast batches
        batch_format="pandas",
        fn_constructor_kwargs={
            "model": model,
            "prediction_length": prediction_length,
            "id_column": id_column,
            "timestamp_column": timestamp_column,
            "target": target,
            "numerics": numerics,
            "num_threads": num_threads,
            "batch_size": batch_size,
            **forecast_options,
        },
        compute=ray.data.ActorPoolStrategy(size=workers)
        if workers
        else ray.data.ActorPoolStrategy(min_size=1),
        num_cpus=num_cpus,
    )


def _add_batch_keys(batch: pd.DataFrame, id_column: str, order: list, batch_size: int):
    return batch.assign(**{BATCH_COLUMN: batch_keys(batch[id_column], order, batch_size)})
