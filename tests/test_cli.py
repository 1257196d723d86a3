"""The CLI end to end, in process: exit codes, outputs and one-line errors."""

import numpy as np
import pandas as pd
import pytest

from rexforge.cli import COMMANDS, main


def long_csv(path, n_items=3, n=80):
    rows = []
    for i in range(n_items):
        idx = pd.date_range("2023-01-01", periods=n, freq="D")
        rows.append(
            pd.DataFrame(
                {"item_id": f"s{i}", "timestamp": idx, "target": np.sin(np.arange(n) / (3 + i)) + i}
            )
        )
    pd.concat(rows).to_csv(path, index=False)
    return path


def wide_csv(path, n=90):
    idx = pd.date_range("2024-01-01", periods=n, freq="h")
    pd.DataFrame(
        {"date": idx, "open": np.arange(n) + 1.0, "close": np.cos(np.arange(n) / 5) + 10}
    ).to_csv(path, index=False)
    return path


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("forecast", "info"):
        assert name in out and name in COMMANDS


def test_forecast_long_csv_with_plot(tmp_path, tiny_ckpt):
    out, png = tmp_path / "f.csv", tmp_path / "f.png"
    code = main(
        [
            "forecast",
            "--model",
            str(tiny_ckpt),
            "--data",
            str(long_csv(tmp_path / "d.csv")),
            "--horizon",
            "12",
            "--output",
            str(out),
            "--plot",
            str(png),
        ]
    )
    assert code == 0
    frame = pd.read_csv(out)
    assert len(frame) == 36 and set(frame["item_id"]) == {"s0", "s1", "s2"}
    assert frame.groupby("item_id")["timestamp"].first()["s0"] == "2023-03-22"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_forecast_wide_csv_picks_columns(tmp_path, tiny_ckpt):
    out = tmp_path / "w.csv"
    code = main(
        [
            "forecast",
            "--model",
            str(tiny_ckpt),
            "--data",
            str(wide_csv(tmp_path / "w_in.csv")),
            "--columns",
            "close",
            "--horizon",
            "5",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    frame = pd.read_csv(out)
    assert list(frame["item_id"].unique()) == ["close"] and len(frame) == 5


def test_yaml_config_sets_options(tmp_path, tiny_ckpt):
    out = tmp_path / "y.csv"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"model: {tiny_ckpt}\nhorizon: 3\noutput: {out}\n")
    assert (
        main(["forecast", "--config", str(cfg), "--data", str(long_csv(tmp_path / "d.csv"))]) == 0
    )
    assert len(pd.read_csv(out)) == 9


def test_yaml_keys_name_options_by_any_spelling(tmp_path):
    from rexforge.cli import parse_command

    cfg = tmp_path / "eval.yaml"
    # evaluate's old --context-length, and --season-length, an alias of --season.
    cfg.write_text("context-length: 64\nseason_length: 12\nhorizon: 4\n")
    options = parse_command(["evaluate", "--data", "x.csv", "--config", str(cfg)])[2]
    assert {k: options[k] for k in ("truncate_context", "season", "horizon")} == {
        "truncate_context": 64,
        "season": 12,
        "horizon": 4,
    }


def test_info(tiny_ckpt, capsys):
    assert main(["info", str(tiny_ckpt)]) == 0
    out = capsys.readouterr().out
    assert "Built with technology from NXAI" in out and "parameters" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "{missing}", "--horizon", "3"], "not found|does not exist|no such"),
        (["--data", "{dir}", "--horizon", "3"], "directory"),
        (["--data", "{empty}", "--horizon", "3"], "empty|no rows|no columns"),
        (["--data", "{good}", "--horizon", "0"], "horizon"),
        (["--data", "{good}", "--horizon", "3", "--target", "price"], "price"),
        (["--data", "{good}", "--horizon", "3", "--model", "{missing}"], "not found"),
        (["--data", "{good}", "--horizon", "3", "--model", "{good}"], "checkpoint"),
        (["--data", "{good}", "--horizon", "x"], "invalid int"),
    ],
)
def test_bad_input_exit_2_one_line(tmp_path, tiny_ckpt, capsys, args, message):
    good = long_csv(tmp_path / "good.csv")
    (tmp_path / "empty.csv").write_text("")
    fill = {
        "missing": tmp_path / "nope.csv",
        "dir": tmp_path,
        "empty": tmp_path / "empty.csv",
        "good": good,
    }
    args = [a.format(**fill) for a in args]
    if "--model" not in args:
        args += ["--model", str(tiny_ckpt)]
    code = main(["forecast", *args, "--output", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    import re

    assert re.search(message, err, re.IGNORECASE), err
    assert not (tmp_path / "o.csv").exists()


def test_help_imports_no_torch_pandas_or_lightning():
    # `rexforge --help` and `rexforge <command> --help` start fast (was ~1.6-4 s: torch).
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from rexforge.cli import build_parser\n"
        "build_parser()\n"
        "print(sorted(m for m in ('torch', 'pandas', 'lightning') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_a_reader_that_leaves_early_ends_the_command_quietly():
    """``rexforge forecast --output - | head -1``: the closed pipe is no traceback. The pipe's
    read end is closed before the command writes, so every write meets the closed pipe."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import rexforge

    data = Path(rexforge.__file__).parent / "assets" / "sample_data.csv"
    args = ["forecast", "--data", str(data), "--horizon", "48", "--output", "-"]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rexforge.cli", *args], stdout=write_end, stderr=subprocess.PIPE
        )
    finally:
        os.close(write_end)
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


@pytest.mark.parametrize("command", ["embed", "grow"])
def test_tirex_only_commands_refuse_a_tirex2_model_in_one_line(command, tmp_path, capsys):
    from pathlib import Path

    import rexforge
    from tests.io.test_tirex2_folder import random_forecaster

    folder = tmp_path / "tirex2"
    random_forecaster().save(folder)
    data = Path(rexforge.__file__).parent / "assets" / "sample_data.csv"
    args = {
        "embed": ["embed", "--model", str(folder), "--data", str(data)],
        "grow": ["grow", str(folder)],
    }[command]
    assert main([*args, "--output", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: rexforge {command} works on tirex models; {folder} is a tirex2 model"
    assert not (tmp_path / "out.csv").exists()
