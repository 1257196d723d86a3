"""The zero-shot guard's decision and report, and the automatic fine-tuning settings."""

import json
import math

from rexforge.train.auto import choose_settings
from rexforge.train.guard import FinetuneReport, keep_fine_tuned, write_report


def test_guard_keeps_only_a_strictly_better_finite_fine_tune():
    assert keep_fine_tuned({"wql": 0.30}, {"wql": 0.29})
    assert not keep_fine_tuned({"wql": 0.30}, {"wql": 0.30})
    assert not keep_fine_tuned({"wql": 0.30}, {"wql": 0.31})
    assert not keep_fine_tuned({"wql": 0.30}, {"wql": math.nan})
    assert keep_fine_tuned({"wql": math.nan}, {"wql": 0.5})


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
    # 20 x (500 - 48) = 9040 observations -> 282 windows -> 4 passes at batch 32 = 36 -> 100
    assert small.values == {
        "batch_size": 32,
        "max_steps": 100,
        "lr": 5e-5,
        "warmup_steps": 10,
        "val_every_n_steps": 10,
        "early_stopping_patience": 3,
    }
    big = choose_settings("full", [5000] * 300, 64, num_blocks=12)
    assert big.values["max_steps"] == 2000 and big.values["lr"] == 1e-4
    lora = choose_settings("lora", [3000] * 50, 64, num_blocks=12)
    assert lora.values["lr"] == 1e-3 and lora.values["lora_rank"] == 16  # 146,800 observations
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
