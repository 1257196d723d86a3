"""The zero-shot guard's decision and report, and the automatic fine-tuning settings."""

import json
import math

import numpy as np
import torch

from rexforge.train.auto import choose_settings
from rexforge.train.guard import FinetuneReport, keep_fine_tuned, wql_ratio_bound, write_report


def test_guard_keeps_only_a_strictly_better_finite_fine_tune():
    assert keep_fine_tuned({"wql": 0.30}, {"wql": 0.29})
    assert not keep_fine_tuned({"wql": 0.30}, {"wql": 0.30})
    assert not keep_fine_tuned({"wql": 0.30}, {"wql": 0.31})
    assert not keep_fine_tuned({"wql": 0.30}, {"wql": math.nan})
    assert keep_fine_tuned({"wql": math.nan}, {"wql": 0.5})
    # Better on average, but not beyond the tail's noise: the base stays.
    assert keep_fine_tuned({"wql": 0.30}, {"wql": 0.29}, upper_ratio=0.97)
    assert not keep_fine_tuned({"wql": 0.30}, {"wql": 0.29}, upper_ratio=1.04)
    # Better WQL (the largest series) while the scale-free error gets worse: the base stays.
    assert not keep_fine_tuned({"wql": 0.30, "mase": 1.00}, {"wql": 0.28, "mase": 1.02}, 0.95)
    assert keep_fine_tuned({"wql": 0.30, "mase": 1.00}, {"wql": 0.28, "mase": 1.00}, 0.95)
    assert keep_fine_tuned({"wql": 0.30, "mase": math.nan}, {"wql": 0.28, "mase": 1.0}, 0.95)


def test_ratio_bound_separates_a_consistent_gain_from_a_lucky_one():
    rng = np.random.default_rng(0)
    base = rng.lognormal(0.0, 1.0, 200)  # per-forecast losses vary by orders of magnitude
    consistent = base * rng.uniform(0.85, 0.95, 200)  # every forecast ~10% better
    assert wql_ratio_bound(base, consistent) < 0.93
    # One lucky forecast carries the whole gain: the mean ratio is 0.98, the bound above 1.
    lucky = base * rng.uniform(0.95, 1.05, 200)
    lucky[np.argmax(base)] *= 0.5
    assert (lucky.sum() / base.sum()) < 1.0 < wql_ratio_bound(base, lucky)
    assert math.isnan(wql_ratio_bound(base[:1], lucky[:1]))
    assert math.isnan(wql_ratio_bound(base, np.full(200, np.nan)))


def test_report_is_written_as_markdown_and_json(tmp_path):
    report = FinetuneReport(
        zero_shot={"wql": 0.40, "mase": 1.2, "coverage_80": 0.7},
        fine_tuned={"wql": 0.44, "mase": 1.3, "coverage_80": math.nan},
        kept="base",
        best_step=20,
        steps=100,
        seconds=12.5,
        settings={"lr": 5e-5, "max_steps": 100},
        chosen={"lr": "9040 observations"},
    )
    md = write_report(tmp_path, report)
    text = md.read_text()
    assert "did not beat zero-shot" in text and "final/ is the base model" in text
    assert "| zero-shot | 0.4000 | 1.2000 | 0.7000 |" in text
    assert "| fine-tuned | 0.4400 | 1.3000 | n/a |" in text
    assert "`lr`: 5e-05 (automatic: 9040 observations)" in text
    data = json.loads((tmp_path / "finetune_report.json").read_text())
    assert data["kept"] == "base" and abs(data["wql_ratio"] - 1.1) < 1e-12


def test_automatic_settings_follow_the_documented_rule():
    small = choose_settings("full", [500] * 20, 48, num_blocks=2)
    # 200 / 20 series -> 10 tail windows, capped at 8 (each series keeps 500 // 192 = 2);
    # 20 x (500 - 2 x 48) = 8080 observations -> 252 windows -> 4 passes at batch 32 = 32 -> 100
    assert small.values == {
        "validation_windows": 8,
        "partial_future": False,  # every series holds the tail and a 48 + 64-step window
        "batch_size": 32,
        "max_steps": 100,
        "lr": 5e-5,
        "warmup_steps": 10,
        "val_every_n_steps": 10,
        "early_stopping_patience": 3,
    }
    big = choose_settings("full", [5000] * 300, 64, num_blocks=12)
    assert big.values["max_steps"] == 2000 and big.values["lr"] == 1e-4
    assert big.values["validation_windows"] == 1  # 300 series: one window each
    lora = choose_settings("lora", [3000] * 50, 64, num_blocks=12)
    # 4 tail windows each: 50 x (3000 - 256) = 137,200 observations
    assert lora.values["lr"] == 1e-3 and lora.values["lora_rank"] == 16
    short = choose_settings("full", [39] * 5 + [200], 12, num_blocks=2)
    assert short.values["partial_future"] is True  # 39 < 12 + 32 + 1
    assert short.reasons["partial_future"].startswith("5 of 6 series shorter than 45 steps")
    freeze = choose_settings("freeze", [300] * 3, 24, num_blocks=12)
    assert freeze.values["freeze_blocks"] == 6 and freeze.values["batch_size"] == 8


def test_explicit_options_win_and_feed_dependent_choices():
    chosen = choose_settings(
        "full", [5000] * 300, 64, num_blocks=12, explicit={"batch_size": 256, "lr": 3e-4}
    )
    assert "batch_size" not in chosen.values and "lr" not in chosen.values
    # 46,275 windows x 4 / 256 = 724 steps (with the rule's batch of 32 it would be 2000)
    assert chosen.values["max_steps"] == 724 and chosen.values["warmup_steps"] == 72
    assert "max_steps 724 (" in chosen.describe()
    # Two processes train 2 x 256 windows a step: half the steps for the same 4 passes.
    two = choose_settings(
        "full", [5000] * 300, 64, num_blocks=12, explicit={"batch_size": 256}, processes=2
    )
    assert two.values["max_steps"] == 362 and "(2 processes)" in two.reasons["max_steps"]


# -- the guard inside fit (tirex-test, a few CPU steps) -------------------------------------
def sine_series(n=4, length=260, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return [np.sin(t / (4 + i)) + 0.01 * t + 0.05 * rng.standard_normal(length) for i in range(n)]


GUARDED = dict(prediction_length=32, context_length=96, batch_size=8, seed=0)


def test_a_fine_tune_that_cannot_beat_zero_shot_exports_the_base(tmp_path, tiny_ckpt):
    from rexforge.io.checkpoint import read_checkpoint
    from rexforge.train import fit

    # lr 2.0 wrecks the weights within a step: the best checkpoint is worse than zero-shot.
    run = fit(
        tiny_ckpt,
        sine_series(),
        output_dir=tmp_path / "run",
        mode="full",
        max_steps=4,
        lr=2.0,
        val_every_n_steps=2,
        **GUARDED,
    )
    report = run.report
    assert report.kept == "base" and report.fine_tuned["wql"] >= report.zero_shot["wql"]
    base = read_checkpoint(tiny_ckpt).state_dict
    final = read_checkpoint(run.final_dir).state_dict
    assert all(torch.equal(final[k], base[k]) for k in base)
    data = json.loads((run.run_dir / "finetune_report.json").read_text())
    assert data["kept"] == "base" and data["zero_shot"]["wql"] == report.zero_shot["wql"]
    assert "final/ is the base model" in (run.run_dir / "finetune_report.md").read_text()


def test_the_guard_compares_with_the_base_at_its_own_context(tmp_path, tiny_ckpt, caplog):
    from rexforge.io.checkpoint import read_checkpoint
    from rexforge.train import fit

    # Fine-tuning with a shorter context than the base's (256) must not handicap zero-shot:
    # the guard scores the base as it forecasts untouched, and a kept base keeps its context.
    reports = {}
    for context in (256, 64):
        run = fit(
            tiny_ckpt,
            sine_series(),
            output_dir=tmp_path / f"ctx{context}",
            mode="full",
            max_steps=2,
            lr=2.0,
            val_every_n_steps=2,
            **{**GUARDED, "context_length": context},
        )
        reports[context] = run.report
        assert run.report.kept == "base"
        final = read_checkpoint(run.final_dir)
        assert final.config.train_ctx_len == 256 and final.metadata["finetune_kept"] == "base"
    assert reports[64].zero_shot == reports[256].zero_shot
    assert "trained on 64-step contexts" not in caplog.text  # no context-mismatch warning


def test_a_fine_tune_that_helps_is_kept_with_its_best_checkpoint(tmp_path, tiny_ckpt):
    from rexforge import load_model
    from rexforge.train import fit

    run = fit(
        tiny_ckpt,
        sine_series(),
        output_dir=tmp_path / "run",
        mode="full",
        max_steps=30,
        lr=3e-3,
        val_every_n_steps=10,
        **GUARDED,
    )
    report = run.report
    assert report.kept == "fine-tuned" and report.wql_ratio < 0.9, report
    assert report.best_step in (10, 20, 30) and report.steps >= report.best_step
    # The best checkpoint is the one with the lowest tail WQL (what the guard judges), not
    # the lowest validation loss.
    import pandas as pd

    rows = pd.read_csv(run.run_dir / "metrics.csv").dropna(subset=["val_wql"])
    rows = rows[rows["step"] > 0]
    assert report.best_step == int(rows.loc[rows["val_wql"].idxmin(), "step"]) + 1
    callbacks = torch.load(run.run_dir / "checkpoints" / "best.ckpt", weights_only=False)
    assert any("'monitor': 'val_wql'" in key for key in callbacks["callbacks"])
    # final/ holds the best checkpoint: its tail score is the reported one.
    best = load_model(run.run_dir / "checkpoints" / "best.ckpt")
    ctx = [x[:-32] for x in sine_series()]
    q_best, _ = best.forecast(ctx, 32, output_type="numpy")
    q_final, _ = load_model(run.final_dir).forecast(ctx, 32, output_type="numpy")
    np.testing.assert_allclose(q_final, q_best, rtol=1e-5, atol=1e-5)


def test_fit_fills_unset_options_from_the_data_and_reports_why(tmp_path, tiny_ckpt):
    from rexforge.train import fit

    run = fit(
        tiny_ckpt,
        sine_series(n=2, length=200),
        output_dir=tmp_path / "run",
        mode="lora",
        **GUARDED,
    )
    chosen = run.report.chosen
    # 2 x (200 - 32) = 336 observations: 10 windows, at least 100 steps, 8 per batch (explicit)
    assert set(chosen) >= {"max_steps", "lr", "lora_rank", "warmup_steps"}
    assert "batch_size" not in chosen
    settings = run.report.settings
    assert settings["max_steps"] == 100 and settings["lr"] == 1e-3 and settings["lora_rank"] == 8
    assert run.report.steps <= 100


def test_time_budget_ends_training_and_keeps_the_best(tmp_path, tiny_ckpt):
    import time

    from rexforge.train import fit

    start = time.perf_counter()
    run = fit(
        tiny_ckpt,
        sine_series(),
        output_dir=tmp_path / "run",
        mode="full",
        max_steps=100_000,
        val_every_n_steps=5,
        early_stopping_patience=0,
        time_budget="2s",
        **GUARDED,
    )
    assert time.perf_counter() - start < 60
    assert 0 < run.report.steps < 100_000 and run.report.kept in ("fine-tuned", "base")
