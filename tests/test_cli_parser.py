"""The typed command line: parsers built from the command functions (jsonargparse), their
help, --config recipes and one-line usage errors."""

import re
from pathlib import Path

import pytest

from rexforge.cli import COMMANDS, main, parse_command

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _help(command: str, capsys) -> str:
    assert main([command, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    "command, shown",
    [
        ("forecast", ["--batch-size BATCH_SIZE series per forward pass (type: int, default: 512)"]),
        ("forecast", ["--numerics {official,bf16,fp32,fast}", "default: bf16", "--skip-bad"]),
        ("embed", ["--numerics {official,bf16,fp32,fast}", "default: official"]),
        ("info", ["--json print machine-readable JSON --"]),  # a switch: no type, no default
        ("evaluate", ["--windows WINDOWS rolling windows per series (type: int, default: 1)"]),
        ("evaluate", ["--season SEASON, --season-length SEASON", "auto_ets"]),
        ("pretrain", ["--max-steps MAX_STEPS optimizer steps (default 20000) (type: int) --"]),
        ("pretrain", ["--preset PRESET architecture preset of any family", "default: tirex-1m"]),
        ("finetune", ["--horizon HORIZON, --prediction-length HORIZON", "default: 64"]),
        ("finetune", ["--mode {scratch,full,freeze,lora}", "default: full", "--seasonal-synth"]),
        ("finetune", ["--lr LR peak learning rate (default: chosen from the data)"]),
        ("finetune", ["--progress-bar, --no-progress-bar", "--keep-checkpoints"]),
        ("export", ["--format FORMAT", "--selected-by SELECTED_BY"]),
        ("grow", ["--factor FACTOR blocks per original block (type: int, default: 2)"]),
        ("serve", ["--port PORT", "default: 8000", "--max-horizon", "default: 1024"]),
    ],
)
def test_help_lists_options_with_defaults(command, shown, capsys):
    text = _help(command, capsys)
    for part in shown:
        assert part in text, (command, part)
    assert "--config CONFIG" in text


def test_every_command_has_a_help_page(capsys):
    for command in COMMANDS:
        assert "default:" in _help(command, capsys) or command == "info"


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_unknown_yaml_key_is_one_line_exit_2(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("horizon: 3\nlearning_rate: 0.1\nbogus-key: 1\n")
    argv = ["forecast", "--config", str(recipe), "--data", "d.csv", "--output", "o.csv"]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert line == f"error: config file {recipe}: unknown option(s): bogus-key, learning_rate"


@pytest.mark.parametrize("key", ["context-length", "context_length"])
def test_a_deprecated_yaml_key_is_read_in_either_spelling(key, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"{key}: 64\n")
    kwargs = parse_command(["evaluate", "--config", str(recipe), "--data", "m3-monthly"])[2]
    assert kwargs["truncate_context"] == 64


def test_bad_value_in_yaml_is_one_line_exit_2(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("horizon: soon\n")
    assert main(["forecast", "--config", str(recipe), "--data", "d", "--output", "o.csv"]) == 2
    assert "--horizon: invalid int value: 'soon'" in _one_error_line(capsys)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["forecast", "--horizon", "abc"], "argument --horizon: invalid int value: 'abc'"),
        (["forecast", "--horizon", "3", "--rollout", "x"], "invalid choice: 'x'"),
        (["forecast", "--horizon", "3", "--bogus"], "unrecognized arguments: --bogus"),
        (["forecast"], "--horizon is required"),
        (["finetune", "--output-dir", "r"], "--data is required"),
        (["finetune", "--data", "d", "--output-dir", "r", "--mode", "x"], "choose from"),
        (["evaluate", "--windows", "1.5"], "argument --windows: invalid int value: '1.5'"),
        (["serve", "--max-wait-ms", "soon"], "argument --max-wait-ms: invalid float value"),
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path, capsys, argv, message):
    if argv[0] in ("forecast", "evaluate"):
        argv = [*argv, "--data", "d.csv"] + (["--output", "o.csv"] if argv[0] == "forecast" else [])
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert message in line, line


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "forecast" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert re.match(r"rexforge \d", capsys.readouterr().out)


@pytest.mark.parametrize(
    "recipe, flags",
    [
        (
            "finetune-lora.yaml",
            ["--mode", "lora", "--lora-alpha", "16", "--prediction-length", "64"],
        ),
        (
            "pretrain-tirex-1m-cpu.yaml",
            [
                "--preset",
                "tirex-1m",
                "--synthetic",
                "2000",
                "--synthetic-length",
                "1024",
                "--horizon",
                "64",
                "--context-length",
                "512",
                "--batch-size",
                "32",
                "--max-steps",
                "5000",
                "--lr",
                "1e-3",
                "--warmup-steps",
                "200",
                "--weight-decay",
                "0.01",
                "--grad-clip",
                "1.0",
                "--mask-max-start-prob",
                "0.15",
                "--mask-max-run",
                "8",
                "--val-every-n-steps",
                "250",
                "--accelerator",
                "cpu",
            ],
        ),
    ],
)
def test_a_recipe_parses_as_its_flags(recipe, flags):
    from rexforge.train.settings import TrainConfig

    command = recipe.split("-")[0]
    required = ["--output-dir", "r", "--data", "d.csv"]
    from_yaml = parse_command([command, "--config", str(CONFIGS / recipe), *required])[2]
    from_flags = parse_command([command, *flags, *required])[2]
    assert from_yaml == from_flags
    set_options = {k: v for k, v in from_yaml["train"].items() if v is not None}
    mode = {"mode": "scratch"} if command == "pretrain" else {}
    config = TrainConfig.from_dict({**set_options, **mode}).validate()
    assert (
        config
        == TrainConfig.from_dict(
            {**{k: v for k, v in from_flags["train"].items() if v is not None}, **mode}
        ).validate()
    )
    assert config.lr == (1e-3 if command == "pretrain" else TrainConfig.lr)


def test_flags_on_the_command_line_win_over_the_recipe_wherever_they_stand():
    recipe = str(CONFIGS / "finetune-lora.yaml")
    required = ["--output-dir", "r", "--data", "d.csv"]
    before = parse_command(["finetune", "--mode", "full", "--config", recipe, *required])[2]
    after = parse_command(["finetune", "--config", recipe, "--mode", "full", *required])[2]
    assert before["train"]["mode"] == after["train"]["mode"] == "full"
    assert before["train"]["lora_alpha"] == 16
