"""The parser of one ``rexforge`` command, built by jsonargparse from its typed function.

A command is a plain function: its parameters are the options (type, default and, from the
``Args:`` section of its docstring, the help text), and a parameter typed as a dataclass is an
option group whose fields are flat flags (``TrainConfig`` for pretrain/finetune). jsonargparse
builds the parser, validates the values and reads ``--config FILE.yaml``; ``CommandParser`` only
keeps the house spelling of the flags the commands have always had:

- ``--dashed-names`` (the parameter ``batch_size`` is ``--batch-size``), plus the extra spellings
  a command module lists in ``FLAGS`` (``{"season": ("--season", "--season-length")}``);
- a ``bool`` option is a switch without a value (``--skip-bad``), and one that defaults to
  None has a ``--no-`` form (``--progress-bar/--no-progress-bar``);
- a list option takes its values space-separated (``--columns a b``);
- every error is one line (``CommandError``), which ``cli.main`` prints as ``error: ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import jsonargparse

from rexforge.errors import ConfigError, RexforgeError


class CommandError(RexforgeError):
    """A usage error: an unknown option, a value of the wrong type, a missing option."""


UNSET = object()


@dataclasses.dataclass
class Spelling:
    """How an option is written: its flags, its help, and whether it has a ``--no-`` form."""

    flags: tuple[str, ...] = ()
    help: str | None = None
    negatable: bool = False
    repeatable: bool = False  # a list option given once per value (--model a --model b)
    default: Any = UNSET  # this command's default, where not the field's


class HelpFormatter(jsonargparse.DefaultHelpFormatter):
    """jsonargparse's help with types as a user reads them (``path``, ``int | none`` ->
    ``int``), none where the metavar already lists the choices or the option is a switch, and
    no second default where the help text names its own (``(default 20000)``) or it is None."""

    def _get_type_str(self, action: argparse.Action) -> str | None:
        text = super()._get_type_str(action)
        if text is None or "Literal[" in text or action.nargs == 0:
            return None
        text = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", text)
        text = re.sub(r"^Optional\[(.*)\]$", r"\1", text).replace(" | null", "")
        return text.replace("Path", "path").replace("str", "text")

    def _get_help_string(self, action: argparse.Action) -> str:
        text = super()._get_help_string(action)
        own_default = "default" in (action.help or "").lower()
        if action.default in (None, False) or own_default:  # a switch is off unless given
            text = re.sub(r"(, )?default: %\(default\)s", "", text)
        return text.replace(" ()", "").replace("(, ", "(")


class CommandParser(jsonargparse.ArgumentParser):
    """jsonargparse, with the flags spelled as rexforge spells them and one-line errors."""

    def __init__(self, *args, **kwargs):
        self.spellings: dict[str, Spelling] = {}  # dest -> how to write it (set by the builder)
        self.hints: dict[str, Any] = {}  # dest -> its type annotation
        self.flag_of: dict[str, str] = {}  # dest -> the flag that names it in messages
        self.dest_of: dict[str, str] = {}  # any spelling, as a YAML key -> dest
        self.subcommand_parsers: dict[str, CommandParser] = {}  # the top-level parser's
        self.help_values: dict[str, str] = {}  # {name} in a help text -> what it lists
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, exit_on_error=False, **kwargs)

    def add_argument(self, *args, **kwargs):
        owner = getattr(self, "parser", None) or self  # groups add to their parser's options
        positional = bool(args) and not args[0].startswith("-")
        name = args[0] if positional else args[0][2:] if args else ""
        if name not in owner.hints or name == "config":
            return super().add_argument(*args, **kwargs)
        spelling = owner.spellings.get(name, Spelling())
        hint = owner.hints[name]
        if spelling.default is not UNSET:
            kwargs = {**kwargs, "default": spelling.default}
            hint = hint | None if spelling.default is None else hint
        keywords = argparse_keywords(hint, kwargs, spelling.negatable)
        if spelling.help is not None:
            keywords["help"] = spelling.help
        if keywords.get("help") and owner.help_values:
            keywords["help"] = keywords["help"].format_map(_Keep(owner.help_values))
        if spelling.repeatable:
            keywords.pop("nargs", None)
            keywords["action"] = "append"
        if positional:
            keywords.pop("required", None)
            keywords.pop("default", None)
            keywords.setdefault("nargs", None)
            owner.flag_of[name] = name
            return super().add_argument(name, **keywords)
        flags = spelling.flags or ("--" + name.replace("_", "-"),)
        if "action" not in keywords and "choices" not in keywords and "metavar" not in keywords:
            keywords["metavar"] = flags[0][2:].upper().replace("-", "_")
        owner.flag_of[name] = flags[0]
        for flag in (*flags, "--" + name):
            owner.dest_of[flag.lstrip("-").replace("-", "_")] = name
        return super().add_argument(*flags, dest=name, **keywords)

    def error(self, message: str, ex: Exception | None = None) -> typing.NoReturn:  # type: ignore[override]
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        raise CommandError(f"{prog}: {self.one_line(message)}") from None

    def option(self, key: str) -> tuple[str, Any]:
        """(flag, type) of the option whose jsonargparse key is ``key`` (``dest``, or
        ``command.dest`` in the top-level parser)."""
        command, _, dest = key.rpartition(".")
        parser = self.subcommand_parsers.get(command, self)
        return parser.flag_of.get(dest, "--" + dest.replace("_", "-")), parser.hints.get(dest)

    def one_line(self, message: str) -> str:
        """jsonargparse's (often multi-line) message as one line that names the flag."""
        required = re.search(r"arguments are required: ([\w.]+)", message) or re.search(
            r'Key "([\w.]+)" is required', message
        )
        if required:
            return f"{self.option(required.group(1))[0]} is required"
        key = re.search(r'Parser key "([\w.]+)"', message)
        value = re.search(r"(?:Got value|Given value): (.*)", message)
        if not (key and value):
            return " ".join(message.split())
        flag, hint = self.option(key.group(1))
        given = value.group(1).strip()
        choices = literal_choices(hint)
        if choices:
            known = ", ".join(map(repr, choices))
            return f"argument {flag}: invalid choice: {given!r} (choose from {known})"
        kinds = [k for k in re.findall(r"Expected a <class '(\w+)'>", message) if k != "NoneType"]
        kind = f"{kinds[0]} " if kinds else ""
        return f"argument {flag}: invalid {kind}value: {given!r}"


class _Keep(dict):
    """``format_map`` values that leave unknown ``{names}`` as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def argparse_keywords(hint, kwargs: dict, negatable: bool) -> dict:
    """argparse keywords of an option of type ``hint`` (jsonargparse's ``kwargs`` give the
    default and help; its type action is replaced where the house spelling differs)."""
    keywords = {"help": kwargs.get("help"), "default": kwargs.get("default")}
    if kwargs.get("required"):
        keywords = {"help": keywords["help"], "required": True}
    kind = without_none(hint)
    if kind is bool:
        none_default = keywords.get("default") is None
        action = argparse.BooleanOptionalAction if negatable or none_default else "store_true"
        return {**keywords, "action": action}
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        return {**keywords, **_typed(item), "nargs": "+"}
    if keywords.get("default") is None and kind is not hint:
        return {**keywords, **_typed(hint)}
    return {**keywords, **_typed(kind)}


def _typed(hint) -> dict:
    """``type`` (and ``choices`` for a ``Literal``) of one value."""
    choices = literal_choices(hint)
    if choices:
        return {"type": hint, "metavar": "{" + ",".join(map(str, choices)) + "}"}
    return {"type": hint}


def literal_choices(hint) -> tuple:
    """The values of a ``Literal`` (or ``Literal | None``) type; () for other types."""
    kind = without_none(hint)
    return typing.get_args(kind) if typing.get_origin(kind) is Literal else ()


def without_none(hint):
    """``X`` for ``X | None``, else ``hint`` itself."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return hint


# An option group whose flags come from elsewhere than its class's fields: the type of a
# command parameter -> (add its flags to a parser for a command, build the value from them).
GroupAdder = Callable[[CommandParser, str], Callable[[dict], Any]]
GROUP_ADDERS: dict[Any, GroupAdder] = {}


def register_group(kind) -> Callable[[GroupAdder], GroupAdder]:
    def register(adder: GroupAdder) -> GroupAdder:
        GROUP_ADDERS[kind] = adder
        return adder

    return register


@dataclasses.dataclass
class BuiltCommand:
    """A command's parser and how to turn its parsed values into the function's arguments."""

    parser: CommandParser
    function: Callable[..., int | None]
    groups: dict[str, tuple[list[str], Callable[[dict], Any]]]  # parameter -> (dests, build)
    deprecated: dict[str, str]  # old flag -> its replacement

    def arguments(self, values: dict) -> dict:
        """The function's keyword arguments from the parsed ``values``."""
        values = {k: v for k, v in values.items() if k != "config"}
        kwargs = dict(values)
        for parameter, (dests, build) in self.groups.items():
            kwargs[parameter] = build({d: kwargs.pop(d) for d in dests if d in kwargs})
        return kwargs


def build_command(prog: str, function: Callable, command: str, help: str) -> BuiltCommand:
    """The parser of ``function`` (the command named ``command``): the function's parameters,
    then its option groups, then ``--config``."""
    module = __import__(function.__module__, fromlist=["_"])
    parser = CommandParser(prog=prog, description=help)
    parser.spellings = dict(getattr(module, "SPELLINGS", {}))
    parser.help_values = module.help_values() if hasattr(module, "help_values") else {}
    hints = typing.get_type_hints(function)
    hints.pop("return", None)
    grouped = {name: hint for name, hint in hints.items() if _is_group(hint)}
    parser.hints = {k: v for k, v in hints.items() if k not in grouped}
    parser.add_function_arguments(function, as_group=False, as_positional=True, skip=set(grouped))
    groups = {}
    for name, hint in grouped.items():
        before = set(parser.hints)
        build = _add_group(parser, without_none(hint), command)
        groups[name] = (sorted(set(parser.hints) - before), build)
    parser.add_argument(
        "--config",
        action=jsonargparse.ActionConfigFile,
        help="YAML file whose keys (option names, - or _) set the options; flags on the command "
        "line win",
    )
    return BuiltCommand(parser, function, groups, getattr(module, "DEPRECATED_FLAGS", {}))


def _is_group(hint) -> bool:
    kind = without_none(hint)
    return kind in GROUP_ADDERS or dataclasses.is_dataclass(kind)


def _add_group(parser: CommandParser, kind, command: str) -> Callable[[dict], Any]:
    if kind in GROUP_ADDERS:
        return GROUP_ADDERS[kind](parser, command)
    parser.hints.update(typing.get_type_hints(kind))
    parser.add_class_arguments(kind, nested_key=None, as_group=True)
    return lambda values: kind(**values)


def normalise_config(built: BuiltCommand, path: Path) -> dict:
    """The YAML mapping at ``path`` with every key spelled as its option's name (``-`` or
    ``_``, any of an option's flags); an unknown key or a file that is no mapping is an error."""
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

    def spelled(flag: str) -> str:
        return flag.lstrip("-").replace("-", "_")

    renamed = {spelled(old): spelled(new) for old, new in built.deprecated.items()}
    dest_of = built.parser.dest_of
    values, unknown = {}, []
    for key, value in data.items():
        name = spelled(str(key))
        name = renamed.get(name, name)
        dest = dest_of.get(name)
        (values.__setitem__(dest, value) if dest is not None else unknown.append(str(key)))
    if unknown:
        raise ConfigError(f"config file {path}: unknown option(s): {', '.join(sorted(unknown))}")
    return values
