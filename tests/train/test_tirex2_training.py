"""TiRex-2 through the one training loop: windows laid out as the forecaster lays them out,
a loss on the targets only, every mode on its parameters, exports that tirex-2 0.4.0 loads
with equal forecasts, the zero-shot guard, the CLI, and a fine-tune that learns to read a
covariate. All on tirex2-test (width 32, 2 blocks, patch 4, context 32, future_len 8)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch

import rexforge
from rexforge.cli import main
from rexforge.config_tirex2 import TiRex2Config
from rexforge.data.multivariate import VariateSeries
from rexforge.data.synthetic_covariates import iter_covariate_driven
from rexforge.forecast.tirex2_api import TiRex2Forecaster
from rexforge.forecast.tirex2_inputs import TimeseriesType
from rexforge.io.checkpoint import Checkpoint, read_checkpoint
from rexforge.io.tirex2_folder import write_official_folder
from rexforge.model.tirex2 import TiRex2Model
from rexforge.train.loop import fit
from rexforge.train.modes import apply_mode
from rexforge.train.objective import MaskingConfig
from rexforge.train.tirex2_data import WindowLayout, collate_windows, training_window
from rexforge.train.tirex2_family import LORA_TARGETS, window_loss

TINY = TiRex2Config.from_name("tirex2-test", dropout=0.0)
H = 8  # the tiny model's whole forecast window
FAST = {"val_every_n_steps": 5, "batch_size": 8, "progress_bar": False, "resume": None}


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny model's ops are far too small to split: on a busy 2-core machine two threads
    made a training step ~10x slower than one (measured 1.6 s vs 0.1 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def items(count=12, length=80, seed=0, signs="random"):
    return list(itertools.islice(iter_covariate_driven(seed, length, signs=signs), count))


@pytest.fixture
def base_folder(tmp_path):
    """A random-weight TiRex-2 in the official layout, marked as derived from NXAI weights."""
    torch.manual_seed(0)
    model = TiRex2Model(TINY)
    folder = tmp_path / "base"
    write_official_folder(
        folder, Checkpoint(TINY, model.state_dict(), {"derived_from_nxai_weights": True})
    )
    return folder


# -- windows and loss --------------------------------------------------------------------------
@pytest.mark.parametrize("trend", [False, True])
def test_window_is_laid_out_as_the_forecaster_lays_out_a_forecast(trend):
    item = items(1, 60)[0]
    if trend:  # a steady rise: the forecaster feeds it as differences
        item.target[0] = np.arange(60) * 3.0 + 0.01 * np.sin(np.arange(60))
    end, C = 45, TINY.context_len
    window = training_window(item, end, WindowLayout(C, H, TINY.future_len, True))
    forecaster = TiRex2Forecaster(TiRex2Model(TINY))
    past = item.slice(0, end)
    series = TimeseriesType(
        torch.tensor(past.target).float(),
        torch.tensor(past.past_covariates).float(),
        torch.tensor(item.future_covariates[:, : end + H]).float(),
    )
    from rexforge.forecast.tirex2_post import trending_rows

    flags = trending_rows(series.target)
    assert flags == [trend]
    rows = forecaster._group_rows(series, H, flags)[:, -(C + TINY.future_len) :]
    torch.testing.assert_close(window["inputs"], rows, equal_nan=True)
    expected = item.target[0, end : end + H]
    if trend:
        expected = np.diff(item.target[0, end - 1 : end + H])
    np.testing.assert_allclose(window["truth"][0].numpy(), expected, rtol=1e-6)


def test_loss_scores_the_targets_forecast_window_only():
    batch = collate_windows(
        [training_window(item, 50, WindowLayout(32, H, 8, False)) for item in items(3, 70)]
    )
    L = batch["inputs"].shape[1]
    output = torch.zeros(len(batch["inputs"]), TINY.num_quantiles, L, requires_grad=True)

    class Fixed(torch.nn.Module):
        config = TINY

        def forward(self, series, group_ids, target_mask):
            return output * 1.0

    window_loss(Fixed(), batch).backward()
    touched = output.grad.abs().sum(1) > 0  # [BV, L]
    targets = batch["target_mask"]
    assert not touched[~targets].any()  # covariates are never scored
    P = TINY.input_patch_size
    # Output j forecasts step j + P: exactly the outputs of steps C .. C+H-1 get gradients.
    assert touched[targets][:, 32 - P : 32 - P + H].all()
    assert touched[targets].sum() == targets.sum() * H


def test_ranks_weighted_shares_give_the_gradient_of_the_whole_batch():
    """Two ranks of a distributed run each score their half of one global batch; DDP averages
    their weighted losses' gradients, which must equal one process's gradient on the batch."""
    from rexforge.train.family import RankShare
    from rexforge.train.tirex2_family import share_loss

    torch.manual_seed(3)
    model = TiRex2Model(TINY)
    samples = [training_window(item, 50, WindowLayout(32, H, 8, False)) for item in items(4, 70)]
    samples[1]["truth"][:, :3] = torch.nan  # missing targets, unevenly spread over the ranks
    batch = collate_windows(samples)

    def gradient(share):
        model.zero_grad()
        loss, weight = share_loss(
            model, batch, MaskingConfig(), torch.Generator().manual_seed(7), share
        )
        (loss if weight is None else loss * weight).backward()
        return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    whole = gradient(None)
    averaged = (gradient(RankShare(0, 2)) + gradient(RankShare(1, 2))) / 2
    torch.testing.assert_close(averaged, whole, rtol=1e-4, atol=1e-6)


# -- modes -------------------------------------------------------------------------------------
MODES = {
    "scratch": {},
    "full": {},
    "freeze": {"freeze_blocks": 1},
    "head-only": {"mode": "freeze", "head_only": True},
    "lora": {"lora_rank": 2},
}


def _trains(case: str, name: str) -> bool:
    if case in ("scratch", "full"):
        return True
    if case == "freeze":
        return not name.startswith(("input_patch_embedding.", "stack.0."))
    if case == "head-only":
        return name.startswith(("stack_out_norm.", "output_patch_embedding."))
    return name.endswith((".lora_A", ".lora_B"))


@pytest.mark.parametrize("case", list(MODES))
def test_each_mode_trains_exactly_its_parameters(case):
    options = dict(MODES[case])
    mode = options.pop("mode", case)
    torch.manual_seed(1)
    model = TiRex2Model(TINY)
    counts = apply_mode(model, mode, seed=0, **options)
    assert counts["trainable"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    before = {k: v.clone() for k, v in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = collate_windows(
        [training_window(item, 60, WindowLayout(32, H, 8, False)) for item in items(4, 70)]
    )
    for step in range(2):
        loss = window_loss(model, batch, MaskingConfig(), torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for name, value in model.named_parameters():
        moved = not torch.equal(before[name], value)
        assert moved == _trains(case, name), name


def test_lora_adapts_every_projection_kind_and_merges_to_the_same_forecasts():
    from rexforge.train.lora import merge_lora

    torch.manual_seed(2)
    model = TiRex2Model(TINY)
    apply_mode(model, "lora", lora_rank=2, seed=0)
    adapted = [n for n, m in model.named_modules() if hasattr(m, "lora_A")]
    for kind in (".fwd_cell.q", ".fwd_cell.igate_preact", ".fwd_cell.fgate", ".attn.WQ"):
        assert any(kind in name for name in adapted), kind
    assert any(name.endswith("variate_mixer.ffn.wi") for name in adapted)
    assert any(name.endswith("time_mixer.ffn.proj_up") for name in adapted)
    # mLSTM block: q k v, 3 gates, out_proj, combination, 3 FFN, WQ WK WV WO, wi wo = 17;
    # sLSTM block: 4 gates, combination, 3 FFN, 4 attention, 2 attention FFN = 14.
    assert len(adapted) == 17 + 14
    assert len(LORA_TARGETS) == 12
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("lora_B"):
                p.normal_(0, 0.1)
    model.eval()
    x = torch.randn(3, 40)
    groups, targets = torch.tensor([0, 0, 1]), torch.tensor([True, False, True])
    with torch.no_grad():
        want = model(x, groups, targets)
        got = merge_lora(model)(x, groups, targets)
    assert not any(hasattr(m, "lora_A") for m in model.modules())
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


# -- fit, export, guard ------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["full", "freeze", "lora"])
def test_fine_tune_exports_a_folder_tirex2_loads_with_equal_forecasts(tmp_path, base_folder, mode):
    reference = pytest.importorskip("tirex2")
    result = fit(
        str(base_folder),
        items(),
        output_dir=tmp_path / mode,
        mode=mode,
        auto=False,
        prediction_length=H,
        max_steps=6,
        lr=3e-3,
        data_description="synthetic covariate-driven",
        **FAST,
    )
    final = result.final_dir
    assert json.loads((final / "config.json").read_text()) == result.model.config.to_official()
    provenance = read_checkpoint(final).metadata  # from the safetensors header
    assert provenance["mode"] == mode and provenance["data"] == "synthetic covariate-driven"
    assert provenance["base_checkpoint"] == str(base_folder)
    assert provenance["derived_from_nxai_weights"] and (final / "NOTICE").is_file()
    assert "Built with technology from NXAI" in provenance["notice"]
    assert (final / "adapter.safetensors").is_file() == (mode == "lora")
    loaded = rexforge.load_model(final)
    assert isinstance(loaded, TiRex2Forecaster) and loaded.metadata["mode"] == mode
    base = rexforge.load_model(base_folder).model.state_dict()
    assert any(not torch.equal(v, base[k]) for k, v in loaded.model.state_dict().items())
    theirs = reference.load_model(str(final), device="cpu")
    series = [
        reference.TimeseriesType(
            target=torch.tensor(i.target[:, :60]).float(),
            past_covariates=torch.tensor(i.past_covariates[:, :60]).float(),
            future_covariates=torch.tensor(i.future_covariates[:, : 60 + H]).float(),
        )
        for i in items(3, 80, seed=7)
    ]
    for want, got in zip(theirs.forecast(series, H), loaded.forecast(series, H)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))
    if mode != "lora":  # a training checkpoint loads as a model too (LoRA's hold adapters only)
        last = rexforge.load_model(result.last_checkpoint)
        assert isinstance(last, TiRex2Forecaster) and last.metadata["mode"] == mode
        assert "Built with technology from NXAI" in last.metadata["notice"]
        assert last.metadata["steps"] == 6


def test_guard_exports_the_base_when_fine_tuning_cannot_beat_zero_shot(tmp_path, base_folder):
    tuned = rexforge.fit(
        str(base_folder),
        items(),
        prediction_length=H,
        mode="full",
        output_dir=tmp_path / "run",
        lr=1e-12,  # nothing moves: the fine-tune equals zero-shot, which it must beat
        max_steps=10,
        **FAST,
    )
    report = tuned.fit_report
    assert report.kept == "base" and report.settings["mode"] == "full"
    assert report.chosen["validation_windows"]  # the automatic settings ran
    assert (tmp_path / "run" / "finetune_report.md").is_file()
    base = rexforge.load_model(base_folder)
    for name, value in base.model.state_dict().items():
        torch.testing.assert_close(tuned.model.state_dict()[name], value)


def test_horizon_past_the_models_window_is_one_error(tmp_path, base_folder):
    with pytest.raises(rexforge.ConfigError, match="future_len 8"):
        fit(str(base_folder), items(), output_dir=tmp_path / "x", prediction_length=16, **FAST)


# -- covariates are learnt ----------------------------------------------------------------------
def test_fine_tuning_learns_to_use_the_covariate(tmp_path):
    """From random weights, 200 steps on series whose known-future covariate pushes the target
    up (events or a driver): forecasts given the covariates must then be clearly better than
    from the target alone, above all on the steps an event falls on."""
    result = fit(
        TINY,
        items(64, 200, signs="positive"),
        output_dir=tmp_path / "cov",
        mode="scratch",
        validation=False,
        prediction_length=H,
        max_steps=200,
        batch_size=32,
        lr=3e-3,
        progress_bar=False,
    )
    test = items(200, 48, seed=99, signs="positive")
    context = [i.target[:, :40] for i in test]
    given = result.forecaster.forecast(
        context,
        H,
        past_covariates=[i.past_covariates[:, :40] for i in test],
        future_covariates=[i.future_covariates for i in test],
        output_type="numpy",
    )
    alone = result.forecaster.forecast(context, H, output_type="numpy")
    truth = np.stack([i.target[0, 40:] for i in test])
    scale = np.stack([i.target[0, :40].std() for i in test])[:, None]

    def errors(forecasts):  # [N, H] absolute errors of the median, in context stds
        return np.abs(np.stack([f[0, 4] for f in forecasts]) - truth) / scale

    events = np.stack(
        [(i.future_covariates[0, 40:] == 1) & (i.meta["future_kind"] == "events") for i in test]
    )
    assert events.sum() > 20
    # Measured: 0.77 overall, 0.58 on event steps (200 steps; 0.69 / 0.51 after 300).
    assert errors(given).mean() < 0.85 * errors(alone).mean()
    assert errors(given)[events].mean() < 0.75 * errors(alone)[events].mean()


# -- the command line --------------------------------------------------------------------------
def _long_csv(path, count=6, length=80):
    frames = []
    for item in items(count, length):
        frames.append(
            pd.DataFrame(
                {
                    "item_id": item.item_id,
                    "timestamp": pd.date_range("2024-01-01", periods=length, freq="h"),
                    "load": item.target[0],
                    "indicator": item.past_covariates[0],
                    "calendar": item.future_covariates[0],
                }
            )
        )
    pd.concat(frames).to_csv(path, index=False)
    return path


def test_cli_finetunes_a_tirex2_folder_on_a_table_with_covariates(tmp_path, base_folder, capsys):
    data = _long_csv(tmp_path / "load.csv")
    code = main(
        [
            "finetune",
            "--model",
            str(base_folder),
            "--data",
            str(data),
            "--target",
            "load",
            "--past-covariates",
            "indicator",
            "--future-covariates",
            "calendar",
            "--horizon",
            str(H),
            "--mode",
            "lora",
            "--max-steps",
            "6",
            "--output-dir",
            str(tmp_path / "run"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "lora" in out and "finetune_report.md" in out
    provenance = read_checkpoint(tmp_path / "run/final").metadata
    assert "past covariates ['indicator']" in provenance["data"]
    assert "future covariates ['calendar']" in provenance["data"]


def test_cli_pretrains_tirex2_test_on_synthetic_covariate_series(tmp_path):
    code = main(
        [
            "pretrain",
            "--preset",
            "tirex2-test",
            "--covariate-synth",
            "16",
            "--synthetic-length",
            "64",
            "--horizon",
            str(H),
            "--max-steps",
            "4",
            "--batch-size",
            "4",
            "--val-every-n-steps",
            "2",
            "--output-dir",
            str(tmp_path / "pt"),
        ]
    )
    assert code == 0
    model = rexforge.load_model(tmp_path / "pt" / "final")
    assert isinstance(model, TiRex2Forecaster)
    assert model.metadata["mode"] == "scratch" and not model.metadata["derived_from_nxai_weights"]
    assert not (tmp_path / "pt" / "final" / "NOTICE").exists()
    # A step checkpoint of the run reads as a TiRex-2 model (its own config and notice) and
    # exports as an official folder that forecasts as the run's final/ at that step.
    step = tmp_path / "pt" / "checkpoints" / "last.ckpt"
    ckpt = read_checkpoint(step)
    assert isinstance(ckpt.config, TiRex2Config) and ckpt.metadata["steps"] == 4
    assert main(["export", str(step), "--output", str(tmp_path / "exported")]) == 0
    exported = rexforge.load_model(tmp_path / "exported")
    assert exported.metadata["notice"] == model.metadata["notice"]
    assert not exported.metadata["derived_from_nxai_weights"]
    context = [np.sin(np.arange(40) / 3.0)]
    torch.testing.assert_close(exported.forecast(context, H), model.forecast(context, H))


def test_univariate_series_train_tirex2_too(tmp_path):
    series = [np.sin(np.arange(90) / 4.0) * 5 + i for i in range(4)]
    result = fit(
        TINY,
        series,
        output_dir=tmp_path / "u",
        mode="scratch",
        prediction_length=4,
        max_steps=3,
        **FAST,
    )
    [forecast] = result.forecaster.forecast([series[0]], 4)
    assert forecast.shape == (1, 9, 4) and torch.isfinite(forecast).all()


def test_variate_series_refuses_mismatched_covariates():
    with pytest.raises(rexforge.InputError, match="past_covariates have 5 steps"):
        VariateSeries("a", np.zeros(6), np.zeros(5))


def test_a_tirex_model_refuses_series_with_covariates(tmp_path):
    with pytest.raises(rexforge.InputError, match="train a TiRex-2 model"):
        fit("tirex-test", items(2), output_dir=tmp_path / "t", mode="scratch", **FAST)


@pytest.mark.parametrize(
    "option, says",
    [
        ({"kernel": "cpu_fused"}, "unknown TiRex-2 kernel 'cpu_fused'"),
        ({"compile": True}, "--compile trains TiRex models only"),
        ({"context_shorten_prob": 0.5}, "--context-shorten-prob applies to TiRex training"),
        ({"context_truncation_prob": 0.3}, "--context-truncation-prob applies to TiRex"),
    ],
)
def test_options_that_train_tirex_only_are_refused_before_the_run(
    tmp_path, base_folder, option, says
):
    from rexforge.errors import ConfigError

    with pytest.raises(ConfigError, match=says):
        fit(str(base_folder), items(), output_dir=tmp_path / "run", prediction_length=H, **option)
    assert not (tmp_path / "run" / "checkpoints").exists()
