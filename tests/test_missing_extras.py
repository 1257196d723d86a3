"""A command whose optional dependency is missing ends with one ``error:`` line naming the
extra to install, exit status 2 (the module is hidden with ``sys.modules[name] = None``)."""

import sys

from rexforge.cli import main
from tests.test_cli import long_csv


def hide_modules(monkeypatch, *names):
    for name in list(sys.modules):
        if name.split(".")[0] in names or name.startswith("rexforge.train"):
            monkeypatch.delitem(sys.modules, name)
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def test_finetune_without_lightning(monkeypatch, tmp_path, tiny_ckpt, capsys):
    hide_modules(monkeypatch, "lightning")
    data = long_csv(tmp_path / "d.csv")
    argv = ["finetune", "--model", str(tiny_ckpt), "--data", str(data)]
    code = main(argv + ["--output-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: ") and "install rexforge[train]" in err[0]


def test_plot_without_matplotlib(monkeypatch, tmp_path, tiny_ckpt, capsys):
    hide_modules(monkeypatch, "matplotlib")
    argv = ["forecast", "--model", str(tiny_ckpt), "--data", str(long_csv(tmp_path / "d.csv"))]
    argv += [
        "--horizon",
        "4",
        "--output",
        str(tmp_path / "f.csv"),
        "--plot",
        str(tmp_path / "p.png"),
    ]
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: ") and "install rexforge[plot]" in err[0]


def test_parquet_without_pyarrow(monkeypatch, tmp_path, tiny_ckpt, capsys):
    hide_modules(monkeypatch, "pyarrow")
    (tmp_path / "d.parquet").write_bytes(b"PAR1")
    argv = ["forecast", "--model", str(tiny_ckpt), "--data", str(tmp_path / "d.parquet")]
    code = main(argv + ["--horizon", "4", "--output", str(tmp_path / "f.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "rexforge[parquet]" in err[0]
