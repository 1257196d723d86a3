from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from rexforge import load_model
from rexforge.config import TiRexConfig
from rexforge.errors import InputError
from rexforge.forecast.mixture import mixture_quantiles
from tests.conftest import make_context, write_official_checkpoint


@pytest.fixture(scope="module")
def model(tiny_ckpt):
    return load_model(tiny_ckpt)


def test_accepts_every_official_input_form(model):
    x = make_context([100], seed=0)[0]
    want, _ = model.forecast(x[None, :])
    for form in (
        x,
        torch.tensor(x),
        x[None, :].astype(np.float64),
        [x],
        [torch.tensor(x)],
        [list(x)],
    ):
        got, _ = model.forecast(form)
        torch.testing.assert_close(got, want)


def test_output_types_and_shapes(model):
    context = make_context([30, 70, 130])
    q, m = model.forecast(context, prediction_length=45, output_type="numpy")
    assert isinstance(q, np.ndarray) and q.shape == (3, 45, 9) and m.shape == (3, 45)
    batches = list(
        model.forecast(context, prediction_length=10, batch_size=2, yield_per_batch=True)
    )
    assert [b[0].shape[0] for b in batches] == [2, 1]
    torch.testing.assert_close(torch.cat([b[0] for b in batches]), model.forecast(context, 10)[0])


@pytest.mark.parametrize("magnitude", [1e20, 1e30, 1e-25, 1e-35])
def test_huge_and_tiny_values_forecast_like_their_rescaled_series(model, magnitude):
    # Token supplies in wei (1e18 per coin) reach 1e19+, whose squares overflow float32; values
    # of 1e-20 and below (prices per wei, physical constants) square below its range.
    x = make_context([300])[0]
    q_small, _ = model.forecast([x], prediction_length=32, output_type="numpy")
    q_huge, _ = model.forecast([x * magnitude], prediction_length=32, output_type="numpy")
    np.testing.assert_allclose(q_huge / magnitude, q_small, rtol=1e-4, atol=1e-4 * np.std(x))


def test_nan_anywhere_and_all_nan(model):
    x = make_context([200])[0]
    x[::7] = np.nan
    q, _ = model.forecast([x, np.full(50, np.nan)], prediction_length=33)
    assert torch.isfinite(q).all()


def test_predict_quantiles_selects_levels(model):
    q, _ = model.predict_quantiles(make_context([60]), 8, quantile_levels=[0.1, 0.5, 0.9])
    full, _ = model.forecast(make_context([60]), 8)
    torch.testing.assert_close(q, full[..., [0, 4, 8]])
    with pytest.raises(InputError, match="outside the trained range"):
        model.predict_quantiles(make_context([60]), 8, quantile_levels=[0.05])


@pytest.mark.parametrize(
    "context, kwargs, message",
    [
        ([np.array([])], {}, "empty"),
        ([np.array([1.0, np.inf])], {}, "inf"),
        ([["a", "b"]], {}, "non-numeric"),
        (np.zeros((2, 2, 2)), {}, "1-D or 2-D"),
        ([], {}, "no series"),
        ("abc", {}, "not supported"),
        (np.ones(10), {"prediction_length": 0}, "> 0"),
        (np.ones(10), {"prediction_length": 10**9}, "maximum"),
        (np.ones(10), {"batch_size": 0}, "batch_size"),
        (np.ones(10), {"output_type": "pandas"}, "output_type"),
    ],
)
def test_bad_input_is_one_clear_error(model, context, kwargs, message):
    with pytest.raises(InputError, match=message) as info:
        model.forecast(context, **kwargs)
    assert "\n" not in str(info.value)


def test_forecast_df_continues_timestamps(model):
    rows = []
    for item, start, freq, n in (("a", "2024-01-01", "D", 40), ("b", "2024-01-01 00:00", "h", 70)):
        idx = pd.date_range(start, periods=n, freq=freq)
        rows.append(pd.DataFrame({"id": item, "ts": idx, "y": np.sin(np.arange(n) / 3.0)}))
    df = pd.concat(rows)
    out = model.forecast_df(df, 5, id_column="id", timestamp_column="ts", target="y")
    assert list(out.columns[:3]) == ["id", "ts", "mean"]
    assert [f"{q:g}" for q in model.quantiles] == list(out.columns[3:])
    a = out[out["id"] == "a"]["ts"]
    assert list(a) == list(pd.date_range("2024-02-10", periods=5, freq="D"))
    b = out[out["id"] == "b"]["ts"]
    assert b.iloc[0] == pd.Timestamp("2024-01-03 22:00")
    q, _ = model.forecast([rows[0]["y"].to_numpy()], 5, output_type="numpy")
    # Alone vs in a batch of two: matrix shapes differ, so the last float bit may too.
    np.testing.assert_allclose(
        out[out["id"] == "a"]["0.5"].to_numpy(), q[0, :, 4], rtol=1e-5, atol=1e-6
    )


def test_predict_quantiles_interpolates_between_trained_levels(model):
    context = make_context([60])
    full, _ = model.predict_quantiles(context, 8)
    q, mean = model.predict_quantiles(context, 8, quantile_levels=[0.25, 0.5, 0.1, 0.9, 0.85])
    torch.testing.assert_close(q[..., 0], (full[..., 1] + full[..., 2]) / 2)
    assert torch.equal(q[..., 1], full[..., 4]) and torch.equal(q[..., 1], mean)
    assert torch.equal(q[..., 2], full[..., 0]) and torch.equal(q[..., 3], full[..., 8])
    torch.testing.assert_close(q[..., 4], 0.5 * full[..., 7] + 0.5 * full[..., 8])
    from rexforge.forecast.api import interpolate_quantiles

    increasing = torch.randn(4, 8, 9).sort(dim=-1).values
    fine = interpolate_quantiles(increasing, model.quantiles, np.linspace(0.1, 0.9, 33))
    assert (fine.diff(dim=-1) >= 0).all()  # monotone trained quantiles stay monotone
    with pytest.raises(InputError, match="outside the trained range"):
        model.predict_quantiles(context, 8, quantile_levels=[0.95])


def test_constant_series_are_forecast_as_constant_in_frames(model):
    import pandas as pd

    df = pd.DataFrame(
        {
            "item_id": ["flat"] * 50 + ["wavy"] * 50 + ["gap"] * 50,
            "timestamp": list(pd.date_range("2024-01-01", periods=50, freq="D")) * 3,
            "target": [7.25] * 50
            + list(np.sin(np.arange(50) / 3))
            + [np.nan if i % 7 == 0 else -2.0 for i in range(50)],
        }
    )
    out = model.forecast_df(df, prediction_length=40)
    flat, wavy, gap = (out[out.item_id == k] for k in ("flat", "wavy", "gap"))
    levels = [c for c in out.columns if c not in ("item_id", "timestamp")]
    assert (flat[levels].to_numpy() == 7.25).all() and (gap[levels].to_numpy() == -2.0).all()
    assert wavy["mean"].std() > 0  # other series keep the network's forecast
    # forecast() itself stays the drop-in: the network's own numbers (random weights here)
    q, _ = model.forecast(np.full(50, 7.25), prediction_length=40)
    assert not torch.all(q == 7.25)


def test_the_rollout_defaults_to_the_models_own(model):
    # A checkpoint without the metadata forecasts as the official code does.
    assert model.default_rollout == "exact"
    ctx = make_context([200, 150, 90], seed=4)
    q_default, _ = model.forecast(ctx, 70, output_type="numpy")
    q_exact, _ = model.forecast(ctx, 70, output_type="numpy", rollout="exact")
    q_stateful, _ = model.forecast(ctx, 70, output_type="numpy", rollout="stateful")
    np.testing.assert_array_equal(q_default, q_exact)
    assert not np.array_equal(q_exact[:, 32:], q_stateful[:, 32:])
    np.testing.assert_array_equal(q_exact[:, :32], q_stateful[:, :32])  # the first patch

    starter = load_model("starter")
    assert starter.default_rollout == "paths"
    q_default, _ = starter.forecast(ctx, 70, output_type="numpy")
    q_paths, _ = starter.forecast(ctx, 70, output_type="numpy", rollout="paths")
    np.testing.assert_array_equal(q_default, q_paths)


def test_the_median_rollout_feeds_each_patchs_median_back(model):
    ctx = make_context([200, 150, 90], seed=5)
    q, mean = model.forecast(ctx, 80, output_type="numpy", rollout="median")
    assert q.shape == (3, 80, 9)
    np.testing.assert_array_equal(mean, q[:, :, 4])
    # Patch 1 is the one-patch forecast; patch k+1 is the one-patch forecast of the context
    # extended by the medians of patches 1..k, as if they had been observed.
    first, _ = model.forecast(ctx, 32, output_type="numpy")
    np.testing.assert_array_equal(q[:, :32], first)
    for stop, length in ((32, 32), (64, 16)):
        grown = [np.concatenate([c, q[i, :stop, 4]]) for i, c in enumerate(ctx)]
        step, _ = model.forecast(grown, length, output_type="numpy")
        np.testing.assert_allclose(q[:, stop : stop + length], step, rtol=1e-5, atol=1e-5)
    exact, _ = model.forecast(ctx, 80, output_type="numpy", rollout="exact")
    assert not np.allclose(q[:, 32:], exact[:, 32:])


def test_the_paths_rollout_mixes_forecasts_from_every_quantile_curve(model):
    ctx = make_context([200, 150, 90], seed=6)
    q, mean = model.forecast(ctx, 80, output_type="numpy", rollout="paths")
    assert q.shape == (3, 80, 9) and np.isfinite(q).all()
    first, _ = model.forecast(ctx, 32, output_type="numpy")
    np.testing.assert_array_equal(q[:, :32], first)
    # At patch 2 the 9 paths have appended patch 1's 9 quantile curves, one each, whatever
    # their order: patch 2 is the mixture of the 9 one-patch forecasts from those contexts.
    grown = [
        np.concatenate([c, first[i, :, level]]) for i, c in enumerate(ctx) for level in range(9)
    ]
    per_path, _ = model.forecast(grown, 32, output_type="torch")  # [3*9, 32, 9]
    per_path = per_path.view(3, 9, 32, 9).permute(0, 1, 3, 2)  # [B, paths, Q, P]
    want = mixture_quantiles(per_path, model.config.quantiles).transpose(1, 2).numpy()
    np.testing.assert_allclose(q[:, 32:64], want, rtol=1e-5, atol=1e-5)
    # The mixture's band is wider than the median rollout's, which follows one path.
    q_median, _ = model.forecast(ctx, 80, output_type="numpy", rollout="median")
    width = q[:, 32:, 8] - q[:, 32:, 0]
    assert (width.mean(axis=1) > (q_median[:, 32:, 8] - q_median[:, 32:, 0]).mean(axis=1)).all()
    # A series' forecast does not depend on the rest of its batch, nor on the run.
    alone, _ = model.forecast(ctx[1:2], 80, output_type="numpy", rollout="paths")
    np.testing.assert_allclose(alone[0], q[1], rtol=1e-5, atol=1e-5)
    again, _ = model.forecast(ctx, 80, output_type="numpy", rollout="paths")
    np.testing.assert_array_equal(again, q)


def test_the_paths_rollout_refuses_unevenly_spaced_levels(tmp_path):
    # The paths draw the levels as equally likely: 0.1 / 0.5 / 0.9 are not (0.25 / 0.5 / 0.75).
    config = replace(TiRexConfig.from_name("tirex-test"), quantiles=[0.1, 0.5, 0.9])
    model = load_model(write_official_checkpoint(tmp_path / "model.ckpt", config))
    ctx = make_context([100], seed=7)
    with pytest.raises(InputError, match=r"rollout 'paths' needs quantile levels"):
        model.forecast(ctx, 64, rollout="paths")
    q, _ = model.forecast(ctx, 64, output_type="numpy", rollout="median")
    assert q.shape == (1, 64, 3)
