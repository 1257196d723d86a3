"""``rexforge finetune`` / ``pretrain`` end to end through ``cli.main``."""

import numpy as np
import pandas as pd
import pytest

from rexforge.cli import main
from rexforge.config import TiRexConfig

from ..conftest import write_official_checkpoint

FAST = [
    "--horizon",
    "40",
    "--context-length",
    "96",
    "--batch-size",
    "4",
    "--max-steps",
    "2",
    "--warmup-steps",
    "1",
    "--val-every-n-steps",
    "2",
]


def write_csv(path, lengths=(200, 180), column="close"):
    rows = []
    for i, n in enumerate(lengths):
        t = np.arange(n)
        for k, v in zip(t, np.sin(t / 6 + i) + 0.01 * t):
            rows.append(
                {
                    "item_id": f"s{i}",
                    "timestamp": pd.Timestamp("2024-01-01") + pd.Timedelta(hours=int(k)),
                    column: v,
                }
            )
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_cli_finetune_lora_end_to_end(tmp_path, tiny_ckpt, capsys):
    data = write_csv(tmp_path / "prices.csv")
    out = tmp_path / "runs" / "lora"
    code = main(
        [
            "finetune",
            "--model",
            str(tiny_ckpt),
            "--data",
            str(data),
            "--target",
            "close",
            "--mode",
            "lora",
            "--lora-rank",
            "2",
            "--output-dir",
            str(out),
            *FAST,
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.startswith(
        f"finetune {tiny_ckpt} (lora, rank 2) on 2 series: 2 steps (warmup 1)"
    )
    # header (2 lines), the fine-tuning report's path, done: not every option dumped
    assert "done:" in printed and len(printed.splitlines()) == 4
    assert f"report: {out / 'finetune_report.md'}" in printed
    assert (out / "finetune_report.json").is_file()
    for name in (
        "command.yaml",
        "config.yaml",
        "metrics.csv",
        "final/model.ckpt",
        "final/adapter.safetensors",
    ):
        assert (out / name).is_file(), name
    from rexforge import load_model

    q, _ = load_model(out / "final").forecast([np.sin(np.arange(100) / 6)], 40, output_type="numpy")
    assert q.shape == (1, 40, 9) and np.isfinite(q).all()


def test_cli_yaml_recipe_and_pretrain(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "preset: tirex-test\nsynthetic: 3\nsynthetic_length: 200\nprediction_length: 40\n"
        "context-length: 96\nbatch_size: 4\nmax_steps: 3\nwarmup_steps: 1\nval_every_n_steps: 2\n"
        "checkpoint_every_n_steps: 1\nkeep_checkpoints: -1\n"
    )
    assert main(["pretrain", "--config", str(recipe), "--output-dir", str(tmp_path / "pre")]) == 0
    assert (tmp_path / "pre" / "final" / "model.ckpt").is_file()
    kept = sorted(p.name for p in (tmp_path / "pre" / "checkpoints").glob("step-*.ckpt"))
    assert kept == ["step-000001.ckpt", "step-000002.ckpt", "step-000003.ckpt"]  # -1: all
    bad = ["pretrain", "--config", str(recipe), "--output-dir", str(tmp_path / "x")]
    assert main([*bad, "--keep-checkpoints", "-2"]) == 2
    assert not (tmp_path / "pre" / "final" / "NOTICE").exists()  # from scratch: not NXAI-derived


@pytest.mark.parametrize(
    "case, message",
    [
        ("short", "'s1' (30)"),
        ("text-target", "all values are missing"),
        ("empty", ""),
        ("mismatch", "do not match"),
    ],
)
def test_cli_bad_inputs_exit_2(tmp_path, tiny_ckpt, capsys, case, message):
    model = str(tiny_ckpt)
    data = tmp_path / "d.csv"
    if case == "short":
        write_csv(data, lengths=(200, 30))
    elif case == "text-target":
        write_csv(data)
        frame = pd.read_csv(data)
        frame["close"] = "n/a"
        frame.to_csv(data, index=False)
    elif case == "empty":
        data.write_text("")
    else:
        write_csv(data)
        bad = write_official_checkpoint(tmp_path / "bad.ckpt", TiRexConfig.from_name("tirex-test"))
        import torch

        payload = torch.load(bad, weights_only=True)
        payload["hyper_parameters"]["model_config"]["block_kwargs"]["embedding_dim"] = 32
        torch.save(payload, bad)
        model = str(bad)
    code = main(
        [
            "finetune",
            "--model",
            model,
            "--data",
            str(data),
            "--target",
            "close",
            "--output-dir",
            str(tmp_path / "run"),
            *FAST,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # no run folder holding only command.yaml
    assert "finetune" not in capsys.readouterr().out  # nothing said to run before the check


def test_cli_rerun_with_changed_settings_refuses_and_records_nothing(tmp_path, tiny_ckpt, capsys):
    data = write_csv(tmp_path / "prices.csv")
    out = tmp_path / "run"
    command = ["finetune", "--model", str(tiny_ckpt), "--data", str(data), "--target", "close"]
    command += ["--output-dir", str(out), *FAST]
    assert main(command) == 0
    recorded = {name: (out / name).read_text() for name in ("command.yaml", "config.yaml")}
    capsys.readouterr()
    assert main([*command, "--lr", "0.001", "--max-steps", "3"]) == 2  # --resume auto
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing said to run
    err = captured.err
    assert err == (
        f"error: --output-dir {out} holds a run with max_steps 2, lr 5e-05; this command asks "
        "max_steps 3, lr 0.001: use --resume never (start over) or a new --output-dir\n"
    )
    assert {name: (out / name).read_text() for name in recorded} == recorded
    assert main([*command, "--lr", "0.001", "--resume", "never"]) == 0  # starts over
    assert "lr: 0.001" in (out / "command.yaml").read_text()


def test_shipped_recipes_parse():
    from pathlib import Path

    from rexforge.cli import parse_command

    root = Path(__file__).resolve().parents[2] / "configs"
    for path in sorted(root.glob("*.yaml")):
        command = "pretrain" if path.name.startswith("pretrain") else "finetune"
        if path.name.startswith(("pretrain", "finetune")):
            # The required options a recipe leaves to the command line.
            argv = [command, "--config", str(path), "--output-dir", "r", "--data", "d.csv"]
            assert parse_command(argv)[0] == command


def test_pretrain_mixes_tsmixup_series_from_the_data(tmp_path):
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd

    from rexforge.train.command import load_training_series

    rows = [
        pd.DataFrame(
            {
                "item_id": f"s{i}",
                "timestamp": np.arange(200),
                "target": np.sin(np.arange(200) / (3 + i)),
            }
        )
        for i in range(3)
    ]
    path = tmp_path / "d.csv"
    pd.concat(rows).to_csv(path, index=False)
    args = SimpleNamespace(
        data=[path],
        layout="auto",
        id_column="item_id",
        timestamp_column="timestamp",
        target="target",
        columns=None,
        synthetic=2,
        synthetic_length=64,
        tsmixup=4,
        seed=0,
        seasonal_synth=5,
        trend_synth=3,
        cycle_synth=2,
    )
    series, description = load_training_series(args)
    assert len(series) == 3 + 2 + 5 + 3 + 2 + 4
    assert "TSMixup (4 mixtures of 3 real series" in description
    assert "seasonal-trend synthetic (5 series" in description
    assert "persistent-trend synthetic (3 series of 8-160" in description
    assert [s.item_id for s in series[10:13]] == ["trend-0", "trend-1", "trend-2"]
    assert "trend-cycle synthetic (2 series of 8-160" in description
    assert [s.item_id for s in series[13:15]] == ["cycle-0", "cycle-1"]
    mixes = series[-4:]
    assert all(s.item_id.startswith("tsmixup-") and 128 <= len(s) <= 200 for s in mixes)
    seasonal = series[5:10]
    assert all(s.item_id.startswith("seasonal-") and 16 <= len(s) <= 1024 for s in seasonal)


def test_aggregated_series_names_stamps_and_short_ones_left_out():
    import numpy as np
    import pandas as pd

    from rexforge.data.mix import aggregated_series
    from rexforge.data.series import TimeSeries
    from rexforge.errors import InputError

    monthly = TimeSeries(
        "m", np.arange(40.0), pd.date_range("2020-01-31", periods=40, freq="ME"), "ME"
    )
    steps = TimeSeries("s", np.arange(30.0))
    out = aggregated_series([monthly, steps], [3, 12])
    # 40 // 3 = 13 and 30 // 3 = 10 quarters kept; 3 and 2 years are under 8 values: left out.
    assert [(s.item_id, len(s)) for s in out] == [("m@mean3", 13), ("s@mean3", 10)]
    quarterly = out[0]
    np.testing.assert_array_equal(quarterly.target[-2:], [35.0, 38.0])  # means of 34..36, 37..39
    assert quarterly.timestamps[-1] == monthly.timestamps[-1]  # a block is stamped with its end
    assert quarterly.timestamps[0] == monthly.timestamps[3]
    assert out[1].timestamps is None and out[1].meta == {"aggregate": 3}
    with pytest.raises(InputError, match="factors must be integers >= 2"):
        aggregated_series([monthly], [1])


def test_training_data_takes_temporal_aggregates_from_the_yaml_option(tmp_path):
    from types import SimpleNamespace

    from rexforge.cli import parse_command
    from rexforge.train.command import load_training_series

    frame = pd.DataFrame(
        {"item_id": np.repeat(["a", "b"], 48), "timestamp": np.tile(np.arange(48), 2)}
    )
    frame["target"] = np.arange(96.0)
    frame.to_csv(tmp_path / "d.csv", index=False)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"data: [{tmp_path / 'd.csv'}]\naggregate: [3, 4, 12]\n")
    options = parse_command(["finetune", "--config", str(recipe), "--output-dir", "run"])[2]
    args = SimpleNamespace(data=options["data"], seed=0, **vars(options["mix"]))
    series, description = load_training_series(args)
    # 48 // 12 = 4 yearly values are too few: only the 3- and 4-step means join.
    assert [s.item_id for s in series] == ["a", "b", "a@mean3", "b@mean3", "a@mean4", "b@mean4"]
    assert "temporal aggregates (4 series: means over 3, 4, 12 steps)" in description
    np.testing.assert_array_equal(series[3].target[:2], [49.0, 52.0])  # b holds 48..95


@pytest.mark.parametrize("option", ["--stable-synth", "--cycle-synth", "--synthetic", "--tsmixup"])
def test_negative_series_counts_are_one_line_errors(tmp_path, capsys, option):
    from rexforge.cli import main

    code = main(["pretrain", option, "-3", "--output-dir", str(tmp_path / "run")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {option} must be a number of series >= 0, got -3"]


def test_a_bad_option_is_one_message_before_anything_is_said_to_run(tmp_path, capsys):
    data = write_csv(tmp_path / "prices.csv")
    args = [
        "finetune",
        "--data",
        str(data),
        "--target",
        "close",
        "--output-dir",
        str(tmp_path / "r"),
    ]
    assert main([*args, *FAST, "--lr", "-1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("--lr") == 1, captured.err
    assert not (tmp_path / "r").exists()
    assert main([*args, *FAST, "--context-shorten-prob", "1.5"]) == 2
    captured = capsys.readouterr()
    assert (
        captured.err
        == "error: invalid training options: --context-shorten-prob must be in [0, 1]\n"
    )
    assert not (tmp_path / "r").exists()


def test_warmup_defaults_to_a_tenth_of_a_short_run():
    from rexforge.train.settings import TrainConfig

    assert TrainConfig(max_steps=80).validate().warmup_steps == 8  # run.sh's demo
    assert TrainConfig(max_steps=5000).validate().warmup_steps == 100
    assert TrainConfig(max_steps=80, warmup_steps=30).validate().warmup_steps == 30


def test_cli_no_auto_keeps_fixed_defaults_and_skips_the_guard(tmp_path, tiny_ckpt):
    data = write_csv(tmp_path / "prices.csv")
    out = tmp_path / "run"
    args = ["finetune", "--model", str(tiny_ckpt), "--data", str(data), "--target", "close"]
    code = main([*args, "--output-dir", str(out), "--no-auto", *FAST])
    assert code == 0
    assert not (out / "finetune_report.json").exists()
    import yaml

    train = yaml.safe_load((out / "config.yaml").read_text())["train"]
    # TrainConfig's fixed defaults, not the rule's: no early stopping, rank 8, no frozen blocks
    assert train["early_stopping_patience"] is None and train["lora_rank"] == 8
    assert train["freeze_blocks"] == 0


def test_training_flags_come_from_train_config_fields():
    # Every TrainConfig option is a flag whose default is None where fine-tuning leaves it to
    # train.auto, else the field's default (pretrain: its own default where it has one).
    import dataclasses

    from rexforge.cli import parse_command
    from rexforge.train.auto import AUTO_OPTIONS
    from rexforge.train.settings import TrainConfig, cli_fields, field_default

    finetune = parse_command(["finetune", "--data", "d.csv", "--output-dir", "r"])[2]["train"]
    pretrain = parse_command(["pretrain", "--output-dir", "r"])[2]["train"]
    options = {f.name for f in cli_fields()}
    assert options == {f.name for f in dataclasses.fields(TrainConfig)} - {
        "beta1",
        "beta2",
        "base_checkpoint",
        "base_sha256",
        "derived_from_nxai_weights",
        "rollout",  # filled in by fit from the base model, like the three above
    }
    for f in cli_fields():
        expected = None if f.name in AUTO_OPTIONS else field_default(f)
        assert finetune[f.name] == expected, f.name
    assert pretrain["max_steps"] == 20000 and pretrain["lr"] == 1e-3
    assert pretrain["batch_size"] == TrainConfig.batch_size
    assert pretrain["partial_future"] is None  # the --no- form exists for auto
    assert "mode" not in pretrain and "lora_alpha" not in pretrain
    spelled = ["finetune", "--data", "d.csv", "--output-dir", "r", "--lora-targets", "a", "b"]
    for flag in ("--horizon", "--prediction-length"):
        options = parse_command([*spelled, flag, "12", "--no-partial-future"])[2]["train"]
        assert options["prediction_length"] == 12 and options["partial_future"] is False
        assert options["lora_targets"] == ["a", "b"]


@pytest.mark.parametrize(
    "flags",
    [["blocks.*.ffn", "blocks.*.slstm_layer.fgate"], ["blocks.*.ffn,blocks.*.slstm_layer.fgate"]],
)
def test_lora_targets_read_space_or_comma_separated(flags):
    from rexforge.cli import parse_command
    from rexforge.train.settings import TrainConfig

    argv = ["finetune", "--data", "d.csv", "--output-dir", "run", "--lora-targets", *flags]
    options = parse_command(argv)[2]["train"]
    settings = TrainConfig.from_dict({k: v for k, v in options.items() if v is not None})
    assert settings.validate().lora_targets == ["blocks.*.ffn", "blocks.*.slstm_layer.fgate"]
