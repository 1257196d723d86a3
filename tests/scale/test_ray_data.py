"""Ray Data batch forecasting on a local 2-worker cluster: the forecasts are forecast_df's,
to the bit (the workers forecast the same batches of series as one process does)."""

import pandas as pd
import pytest
import torch

import rexforge
from rexforge.errors import InputError
from rexforge.scale.batching import BATCH_COLUMN, batch_keys, sorted_item_ids
from tests.scale.conftest import same_frame

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from rexforge.scale.ray_data import ForecastBatches, forecast_dataset  # noqa: E402

H = 12


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    yield
    ray.shutdown()


def single_process(frame: pd.DataFrame, **options) -> pd.DataFrame:
    """forecast_df in this process with the workers' one torch thread (the thread count
    changes how a matrix product sums, hence the last bits)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return rexforge.load_model("starter").forecast_df(frame, H, **options)
    finally:
        torch.set_num_threads(threads)


def test_udf_forecasts_each_keyed_batch_apart(table):
    # What a worker does with a block holding two forecast batches (keys 0 and 2), under other
    # column names: one forecast_df call per batch, equal to forecast_df of each batch alone.
    renamed = table.rename(columns={"item_id": "id", "timestamp": "date", "target": "value"})
    first, third = renamed[renamed["id"] < "item-0010"], renamed[renamed["id"] >= "item-0140"]
    block = pd.concat([third.assign(**{BATCH_COLUMN: 2}), first.assign(**{BATCH_COLUMN: 0})])
    names = {"id_column": "id", "timestamp_column": "date", "target": "value"}
    udf = ForecastBatches("starter", H, num_threads=None, **names)
    got = udf(block)
    model = rexforge.load_model("starter")
    expected = pd.concat(
        [model.forecast_df(part, H, **names) for part in (first, third)], ignore_index=True
    )
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    # An empty partition of the shuffle gives no rows, with forecast_df's columns.
    empty = udf(block.iloc[:0])
    assert list(empty.columns) == list(expected.columns) and len(empty) == 0


@pytest.mark.slow
def test_two_workers_equal_single_process_forecast_df(cluster, table):
    # 150 series in batches of 64: three forward passes, each with the series one process
    # puts together; the rows arrive in 4 blocks that cut series apart.
    rows = ray.data.from_pandas(table).repartition(4)
    got = forecast_dataset(rows, "starter", H, batch_size=64, workers=2).to_pandas()
    expected = single_process(table, batch_size=64)
    assert len(expected) == 150 * H
    same_frame(got, expected)
    constant = got[got["item_id"] == "item-0003"]
    assert (constant["mean"] == 4.0).all()


def test_missing_column_is_one_line_error(cluster, table):
    rows = ray.data.from_pandas(table.drop(columns=["target"]))
    with pytest.raises(InputError, match="no column 'target'"):
        forecast_dataset(rows, "starter", H)


def test_batch_keys_follow_forecast_df_order():
    ids = pd.Series(["b", "a", "c", "a", "d"])
    order = sorted_item_ids(ids)
    assert order == ["a", "b", "c", "d"]
    assert batch_keys(ids, order, 2).tolist() == [0, 0, 1, 0, 1]
    assert sorted_item_ids([10, 9, 100]) == [9, 10, 100]  # numbers in numeric order
    assert sorted_item_ids([1, "a"]) == [1, "a"]  # mixed: as text
    with pytest.raises(InputError, match="missing values"):
        sorted_item_ids(["a", None])
    assert BATCH_COLUMN.startswith("__")
