"""Errors rexforge raises for problems a user can fix.

Each carries a one-line message that names the file, column, key or series at fault. Only the
CLI's entry point catches them, prints ``error: <message>`` and exits with status 2.
"""

import os


class RexforgeError(Exception):
    """Base class: a problem with what the user asked for, not a bug in rexforge."""


class ConfigError(RexforgeError, ValueError):
    """A model or run configuration is invalid (unknown key, impossible size, bad preset name)."""


class CheckpointError(RexforgeError):
    """A checkpoint file or folder cannot be read, or does not match the model it claims to be."""


class InputError(RexforgeError, ValueError):
    """Data or arguments given to a forecast, training or evaluation call are unusable."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C; the message says which checkpoint holds the last step.

    A ``KeyboardInterrupt`` so that callers who stop on Ctrl-C keep doing so; ``cli.main``
    prints its message and exits with status 130.
    """


def collect_problems(problems: list[str], error_type: type[RexforgeError], what: str) -> None:
    """Raise ``error_type`` once, naming every problem found, if there are any."""
    if problems:
        joined = "; ".join(problems)
        raise error_type(f"{what}: {joined}" if what else joined)


def secondary_process() -> bool:
    """Whether this is a rank > 0 process of a distributed run (Lightning and torchrun set
    ``RANK``/``LOCAL_RANK`` in each process they start): such a process shares the main one's
    terminal, so what every process would say (a Ctrl-C) is said by the main one only."""
    rank = os.environ.get("RANK") or os.environ.get("LOCAL_RANK") or "0"
    return rank != "0"
