"""Long tables shared by the Ray and Spark tests."""

import numpy as np
import pandas as pd
import pytest


def long_table(n_series: int, seed: int = 0) -> pd.DataFrame:
    """``n_series`` random walks of 20-90 steps (different lengths, so a forward pass pads),
    sorted by item id as long tables usually are; one constant series."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 90, n_series)
    values = [10 + rng.normal(size=n).cumsum() for n in lengths]
    values[3] = np.full(lengths[3], 4.0)  # forecast_df holds a constant series constant
    return pd.DataFrame(
        {
            "item_id": np.repeat([f"item-{i:04d}" for i in range(n_series)], lengths),
            "timestamp": np.concatenate([np.arange(n) for n in lengths]),
            "target": np.concatenate(values),
        }
    )


@pytest.fixture(scope="session")
def table() -> pd.DataFrame:
    return long_table(150)


def same_frame(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """``got`` (any row order, engine dtypes such as Arrow strings) holds exactly ``expected``'s
    rows: same columns, same numbers to the bit."""
    got = got[list(expected.columns)].astype(expected.dtypes.to_dict())
    got = got.sort_values(["item_id", "timestamp"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_exact=True)
