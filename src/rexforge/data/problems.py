"""Per-series problems found while loading, and what to do about them (raise or skip).

Loaders check every series before deciding, so one call reports every bad series at once
(STYLE.md section 12) instead of stopping at the first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from rexforge.data.series import TimeSeries
from rexforge.errors import InputError

logger = logging.getLogger(__name__)

OnBad = Literal["raise", "skip"]

# A message naming hundreds of series is unreadable; name this many and count the rest.
_MAX_NAMED = 10


class SeriesProblem(NamedTuple):
    """Why one series was rejected: ``item_id`` and a one-line ``reason``."""

    item_id: str
    reason: str


@dataclass
class LoadReport:
    """What a loader produced: the good ``series`` and the ``problems`` of the rejected ones."""

    series: list[TimeSeries] = field(default_factory=list)
    problems: list[SeriesProblem] = field(default_factory=list)


def check_on_bad(on_bad: str) -> None:
    if on_bad not in ("raise", "skip"):
        raise InputError(f"on_bad must be 'raise' or 'skip', got {on_bad!r}")


def format_problems(problems: list[SeriesProblem]) -> str:
    """One line naming up to ``_MAX_NAMED`` problems, e.g. ``item 'a': all values are missing``."""
    named = [f"item '{p.item_id}': {p.reason}" for p in problems[:_MAX_NAMED]]
    more = len(problems) - _MAX_NAMED
    if more > 0:
        named.append(f"... and {more} more bad series")
    return "; ".join(named)


def resolve(report: LoadReport, on_bad: OnBad, source_name: str) -> list[TimeSeries]:
    """Apply ``on_bad``: raise one InputError naming every problem, or log them and drop the series."""
    if not report.problems:
        return report.series
    if on_bad == "raise":
        raise InputError(f"{source_name}: {format_problems(report.problems)}")
    logger.warning(
        "%s: skipped %d bad series: %s",
        source_name,
        len(report.problems),
        format_problems(report.problems),
    )
    return report.series
