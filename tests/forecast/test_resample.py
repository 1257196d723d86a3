"""resample_strategy="frequency": the resampling steps on known periods, and forecasts equal to
the official tirex-ts ones (numerics="official") for series that are and are not resampled."""

import numpy as np
import pytest
import torch

from rexforge.forecast.api import load_model
from rexforge.forecast.resample import (
    downsampling_factor,
    fill_gaps_linearly,
    interpolate_upsample,
    window_mean_downsample,
)
from tests.conftest import tolerance_scale


def seasonal(n, period, seed=0, noise=0.1):
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return (10 + np.sin(2 * np.pi * t / period) + noise * rng.normal(size=n)).astype(np.float32)


@pytest.mark.parametrize(
    ("period", "expected"),
    [(200, 1 / 3), (320, 1 / 5), (128, 1 / 2), (64, 1.0), (20, 1.0)],
)
def test_factor_puts_one_period_in_64_steps(period, expected):
    factor = downsampling_factor(torch.from_numpy(seasonal(3000, period)), 300)
    assert factor == pytest.approx(expected, rel=1e-6)


def test_short_series_and_short_horizons_are_not_resampled():
    assert downsampling_factor(torch.from_numpy(seasonal(1999, 200)), 300) == 1.0
    assert downsampling_factor(torch.from_numpy(seasonal(3000, 200)), 99) == 1.0


def test_window_mean_and_interpolation_on_known_values():
    x = torch.arange(12, dtype=torch.float32)
    down = window_mean_downsample(x, 1 / 3)  # 4 windows of 3 steps centred on 0, 11/3, ...
    assert down.shape == (4,) and down[0] == pytest.approx(0.5) and down[-1] == pytest.approx(10.5)
    up = interpolate_upsample(torch.tensor([0.0, 3.0, 9.0]), 3)  # 9 points over [0, 2]
    assert up.tolist() == pytest.approx([0, 0.75, 1.5, 2.25, 3, 4.5, 6, 7.5, 9])
    gaps = fill_gaps_linearly(torch.tensor([float("nan"), 1.0, float("nan"), 5.0, float("nan")]))
    assert gaps.tolist() == [1.0, 1.0, 3.0, 5.0, 5.0]


@pytest.mark.slow
@pytest.mark.parametrize("horizon", [150, 300])
def test_frequency_resampling_matches_official(tiny_ckpt, horizon):
    tirex_models = pytest.importorskip("tirex.models.tirex")
    context = [seasonal(3000, 200, 1), seasonal(2500, 320, 2), seasonal(400, 30, 3)]
    context.append(seasonal(3000, 160, 4))
    context[3][1000:1100] = np.nan
    official = tirex_models.TiRexZero.from_pretrained(str(tiny_ckpt), backend="torch", device="cpu")
    q_ref, m_ref = official.forecast(
        context, prediction_length=horizon, resample_strategy="frequency"
    )
    ours = load_model(tiny_ckpt, numerics="official")
    q, m = ours.forecast(context, prediction_length=horizon, resample_strategy="frequency")
    assert q.shape == q_ref.shape == (4, horizon, 9)
    scale = torch.from_numpy(tolerance_scale(context))[:, None, None]
    deviation = ((q - q_ref).abs() / scale).amax().item()
    print(f"horizon {horizon}: max deviation {deviation:.3g} of std")
    assert deviation < 1e-5
    assert torch.equal(m, q[..., 4])
    # Resampling changed the long-period forecasts and left the short series alone.
    plain, _ = ours.forecast(context, prediction_length=horizon)
    assert (plain[0] - q[0]).abs().max() > 1e-3
    assert (plain[2] - q[2]).abs().max().item() < 1e-4 * scale[2].item()


@pytest.mark.slow
def test_forecast_df_and_cli_resample(tmp_path, tiny_ckpt):
    import pandas as pd

    from rexforge.cli import main

    values = seasonal(3000, 200, 5)
    df = pd.DataFrame({"item_id": "a", "timestamp": np.arange(3000), "target": values})
    ours = load_model(tiny_ckpt, numerics="official")
    frame = ours.forecast_df(df, 150, resample_strategy="frequency")
    q, _ = ours.forecast([values], prediction_length=150, resample_strategy="frequency")
    np.testing.assert_array_equal(frame["0.5"].to_numpy(), q[0, :, 4].numpy())
    df.to_csv(tmp_path / "in.csv", index=False)
    args = ["forecast", "--model", str(tiny_ckpt), "--data", str(tmp_path / "in.csv")]
    args += ["--horizon", "150", "--output", str(tmp_path / "out.csv"), "--numerics", "official"]
    assert main(args + ["--resample-strategy", "frequency"]) == 0
    cli = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_allclose(cli["0.5"].to_numpy(), q[0, :, 4].numpy(), rtol=1e-6)
    assert main(args + ["--resample-strategy", "frequency", "--stream"]) == 0
    streamed = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_allclose(streamed["0.5"].to_numpy(), q[0, :, 4].numpy(), rtol=1e-6)


def test_unknown_strategy_is_an_input_error(tiny_ckpt):
    from rexforge.errors import InputError

    with pytest.raises(InputError, match="resample_strategy"):
        load_model(tiny_ckpt).forecast([seasonal(100, 10)], resample_strategy="linear")
