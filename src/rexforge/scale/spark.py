"""Batch forecasting on Spark (the ``spark`` extra): ``groupBy(...).applyInPandas``.

    from pyspark.sql import SparkSession
    from rexforge.scale.spark import forecast_spark
    spark = SparkSession.builder.getOrCreate()
    rows = spark.read.parquet("long/")                     # item_id, timestamp, target
    forecasts = forecast_spark(rows, "starter", prediction_length=24)
    forecasts.write.parquet("forecasts/")

As ``rexforge.scale.ray_data``: the rows are grouped into forecast batches (series numbered in
sorted id order, ``batch_size`` consecutive series a batch; a small broadcast join adds the
batch key), and each group is one ``forecast_df`` call, so the forecasts equal
``load_model(model).forecast_df`` of the frame sorted by id with the same torch thread count
(``num_threads``, default 1 per Python worker). The model is loaded once per Python worker
process (Spark reuses them between tasks; ``spark.python.worker.reuse``, its default).
Spark's Python workers must run an interpreter that has rexforge: set ``PYSPARK_PYTHON``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from rexforge.errors import InputError
from rexforge.scale.batching import (
    BATCH_COLUMN,
    ForecastBatches,
    check_batch_size,
    sorted_item_ids,
)

# One ForecastBatches per Python worker process and set of options: a worker serves many
# groups (tasks), and loading the model for each would dominate.
_WORKER_UDFS: dict[tuple, ForecastBatches] = {}


def require_pyspark():
    try:
        import pyspark.sql
    except ModuleNotFoundError:
        raise InputError(
            "forecasting on Spark needs pyspark: pip install 'rexforge[spark]'"
        ) from None
    return pyspark.sql


def forecast_spark(
    frame,
    model: str,
    prediction_length: int,
    *,
    id_column: str = "item_id",
    timestamp_column: str = "timestamp",
    target: str = "target",
    batch_size: int = 512,
    num_threads: int | None = 1,
    numerics: str = "bf16",
    **forecast_options: Any,
):
    """Forecast every series of a Spark DataFrame of long rows; returns a (lazy) Spark
    DataFrame with ``forecast_df``'s columns: id (string), timestamp (the input's type), mean,
    ``"0.1"`` ... ``"0.9"`` (float). Other keywords go to ``forecast_df``."""
    sql = require_pyspark()
    batch_size = check_batch_size(batch_size)
    missing = [c for c in (id_column, timestamp_column, target) if c not in frame.columns]
    if missing:
        raise InputError(f"the DataFrame has no column {', '.join(map(repr, missing))}")
    import rexforge

    # On the driver: a model that cannot load fails here, in one line, and gives the levels.
    levels = rexforge.load_model(model).quantiles
    ids = [row[0] for row in frame.select(id_column).distinct().collect()]
    order = sorted_item_ids(ids)
    keys = frame.sparkSession.createDataFrame(
        pd.DataFrame(
            {id_column: order, BATCH_COLUMN: [i // batch_size for i in range(len(order))]}
        ),
        schema=f"`{id_column}` {frame.schema[id_column].dataType.simpleString()}, "
        f"`{BATCH_COLUMN}` bigint",
    )
    keyed = frame.select(id_column, timestamp_column, target).join(
        sql.functions.broadcast(keys), on=id_column
    )
    options = {
        "model": model,
        "prediction_length": prediction_length,
        "id_column": id_column,
        "timestamp_column": timestamp_column,
        "target": target,
        "numerics": numerics,
        "num_threads": num_threads,
        "batch_size": batch_size,
        **forecast_options,
    }
    schema = _output_schema(
        frame.schema[timestamp_column].dataType, id_column, timestamp_column, levels
    )

    def forecast_group(rows: pd.DataFrame) -> pd.DataFrame:
        return _worker_udf(options)(rows)

    return keyed.groupBy(BATCH_COLUMN).applyInPandas(forecast_group, schema=schema)


def _worker_udf(options: dict) -> ForecastBatches:
    key = tuple(sorted((k, repr(v)) for k, v in options.items()))
    if key not in _WORKER_UDFS:
        _WORKER_UDFS[key] = ForecastBatches(**options)
    return _WORKER_UDFS[key]


def _output_schema(time_type, id_column: str, timestamp_column: str, levels) -> str:
    from rexforge.forecast.frames import quantile_column

    time = time_type.simpleString()
    if time in ("date", "string"):
        time = "timestamp"  # forecast_df continues dates and parsed strings as datetimes
    columns = [f"`{id_column}` string", f"`{timestamp_column}` {time}", "`mean` float"]
    columns += [f"`{quantile_column(q)}` float" for q in levels]
    return ", ".join(columns)
