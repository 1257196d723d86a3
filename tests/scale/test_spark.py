"""Spark batch forecasting (applyInPandas) on a local 2-thread Spark: the forecasts are
forecast_df's, to the bit. Skipped without pyspark or Java."""

import os
import shutil
import sys

import pandas as pd
import pytest
import torch

import rexforge
from rexforge.errors import InputError
from tests.scale.conftest import same_frame

pytest.importorskip("pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java", allow_module_level=True)

from rexforge.scale.spark import forecast_spark  # noqa: E402

H = 12


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    before = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers need this interpreter's rexforge
    session = (
        SparkSession.builder.master("local[2]")
        .appName("rexforge-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    if before is None:
        os.environ.pop("PYSPARK_PYTHON", None)
    else:
        os.environ["PYSPARK_PYTHON"] = before


@pytest.mark.slow
def test_spark_equals_single_process_forecast_df(spark, table):
    rows = spark.createDataFrame(table).repartition(3)  # partitions that cut series apart
    got = forecast_spark(rows, "starter", H, batch_size=64).toPandas()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' thread count: the same sums, the same bits
    try:
        expected = rexforge.load_model("starter").forecast_df(table, H, batch_size=64)
    finally:
        torch.set_num_threads(threads)
    same_frame(got, expected)


def test_spark_missing_column_is_one_line_error(spark, table):
    rows = spark.createDataFrame(table.drop(columns=["timestamp"]))
    with pytest.raises(InputError, match="no column 'timestamp'"):
        forecast_spark(rows, "starter", H)


def test_spark_datetime_timestamps(spark, table):
    small = table[table["item_id"] < "item-0005"].copy()
    small["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(small["timestamp"], "D")
    got = forecast_spark(spark.createDataFrame(small), "starter", 3).toPandas()
    assert len(got) == 5 * 3
    last = small.groupby("item_id")["timestamp"].max()
    first_future = got.groupby("item_id")["timestamp"].min()
    assert (first_future == last + pd.Timedelta(days=1)).all()
