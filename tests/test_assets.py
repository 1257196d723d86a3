"""The bundled starter model and sample data go through the real loader."""

import numpy as np
import pandas as pd

import rexforge
from rexforge.assets import SAMPLE_DATA, STARTER_DIR
from rexforge.cli import main


def test_starter_model_loads_forecasts_and_carries_the_notice():
    model = rexforge.load_model("starter")
    assert (STARTER_DIR / "model.safetensors").stat().st_size <= 20e6
    assert model.metadata["notice"].startswith("Built with technology from NXAI")
    assert model.metadata["derived_from_nxai_weights"] is False
    frame = pd.read_csv(SAMPLE_DATA)
    context = [g["target"].to_numpy() for _, g in frame.groupby("item_id")]
    q, mean = model.forecast(context, prediction_length=48, output_type="numpy")
    assert q.shape == (6, 48, 9) and np.isfinite(q).all()
    # A trained model: the median stays within the range the history spans.
    for x, m in zip(context, mean):
        lo, hi = np.nanmin(x), np.nanmax(x)
        assert lo - 0.25 * (hi - lo) < m.mean() < hi + 0.25 * (hi - lo)


def test_cli_uses_the_starter_when_model_is_omitted(tmp_path):
    out = tmp_path / "f.csv"
    assert (
        main(["forecast", "--data", str(SAMPLE_DATA), "--horizon", "8", "--output", str(out)]) == 0
    )
    assert len(pd.read_csv(out)) == 6 * 8


def test_starter_forecasts_with_the_context_it_was_trained_on():
    # Forecasting pads every series with empty patches up to train_ctx_len; the starter must
    # see the padding its training windows had (512 steps in every stage, see MODEL_CARD.md).
    model = rexforge.load_model("starter")
    # (Exports keep the training context once, as train_ctx_len.) Its last stage also trained
    # at every shorter context, so --context-length and fine-tunes at other lengths work too.
    assert model.config.train_ctx_len == 512
    assert model.metadata["train_config"]["context_shorten_prob"] == 0.5


def test_starter_tirex2_loads_forecasts_with_covariates_and_carries_the_notice():
    from rexforge.assets import STARTER_TIREX2_DIR
    from rexforge.forecast.tirex2_api import TimeseriesType

    model = rexforge.load_model("starter-tirex2")
    assert (STARTER_TIREX2_DIR / "model.safetensors").stat().st_size <= 20e6
    assert (STARTER_TIREX2_DIR / "MODEL_CARD.md").is_file()
    assert model.metadata["notice"].startswith("Built with technology from NXAI")
    assert model.metadata["derived_from_nxai_weights"] is False
    assert model.metadata["mode"] == "scratch"
    rng = np.random.default_rng(0)
    t = np.arange(200.0)
    y = 10 + np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(200)
    past = rng.standard_normal((2, 200))
    future = np.cos(2 * np.pi * np.arange(224.0) / 24)[None]
    [f] = model.forecast(
        [TimeseriesType(target=y[None], past_covariates=past, future_covariates=future)],
        prediction_length=24,
    )
    f = np.asarray(f)
    assert f.shape == (1, 9, 24) and np.isfinite(f).all()
    # Target only, from the CLI's name resolution as well: finite, within the history's range.
    q, mean = model.predict_quantiles([y], prediction_length=24)
    q, mean = np.asarray(q), np.asarray(mean)
    assert np.isfinite(q).all() and 8 < mean.mean() < 12
