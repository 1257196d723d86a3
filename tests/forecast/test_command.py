"""``rexforge forecast``: what it checks before any model work, and what it writes."""

import numpy as np
import pandas as pd
import pytest

from rexforge.cli import main


def monthly_csv(path, n_items=2, n=40):
    frames = [
        pd.DataFrame(
            {
                "item_id": f"s{i}",
                "timestamp": pd.date_range("2001-01-01", periods=n, freq="MS"),
                "target": np.sin(np.arange(n) / 3) + 10 + i,
            }
        )
        for i in range(n_items)
    ]
    pd.concat(frames).to_csv(path, index=False)
    return path


@pytest.fixture
def no_model_work(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the horizon was checked")

    monkeypatch.setattr("rexforge.forecast.api.load_model", refuse)


def test_a_horizon_past_the_last_representable_timestamp_fails_fast(
    tmp_path, capsys, no_model_work
):
    data = monthly_csv(tmp_path / "m.csv")
    out = tmp_path / "f.csv"
    args = ["forecast", "--data", str(data), "--horizon", "100000", "--output", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: --horizon 100000: series s0: 100000 steps of MS after 2004-04-01 00:00:00 run "
        "past the last timestamp pandas can represent (2262-04-11)\n"
    )
    assert not out.exists()


def test_an_output_too_large_for_memory_fails_fast(tmp_path, capsys, monkeypatch, no_model_work):
    monkeypatch.setattr("rexforge.forecast.frames._available_memory", lambda: 2**19)
    data = monthly_csv(tmp_path / "m.csv")
    # 1000 months stay inside pandas' range; 2 series x 1000 steps do not fit in 0.5 MiB.
    args = ["forecast", "--data", str(data), "--horizon", "1000", "--output", str(tmp_path / "f")]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "error: --horizon 1000: 2 series x 1000 steps need about 0.8 MiB for the output, more "
        "than the 0.5 MiB of memory available; use a shorter --horizon or fewer series per run\n"
    )
