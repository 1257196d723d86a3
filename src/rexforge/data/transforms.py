"""Pure functions on series: fill gaps, pad, split train/validation, filter by length.

Functions taking ``series`` accept either ``TimeSeries`` or 1-D numpy arrays and return the
same kind; none modifies its input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from rexforge.data.series import TimeSeries
from rexforge.errors import InputError

S = TypeVar("S", TimeSeries, np.ndarray)


def interpolate_gaps(values: np.ndarray) -> np.ndarray:
    """Linearly interpolate interior NaNs of a 1-D array ``[T]``; returns a new float64 ``[T]``.

    Leading and trailing NaNs stay NaN: there is no value on one side to interpolate from, and
    inventing one (e.g. repeating the edge) would look like real data to the model.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    out = values.copy()
    observed = ~np.isnan(values)
    if observed.sum() < 2:
        return out
    positions = np.flatnonzero(observed)
    interior = np.arange(positions[0], positions[-1] + 1)
    out[interior] = np.interp(interior, positions, values[positions])
    return out


def left_pad(values: np.ndarray, length: int) -> np.ndarray:
    """The last ``length`` values of a 1-D array, left-padded with NaN: float64 ``[length]``.

    Shorter inputs get NaNs in front (the model reads NaN as "not observed"); longer inputs are
    cut from the left, keeping the most recent values the model needs.
    """
    if length < 0:
        raise InputError(f"left_pad: length must be >= 0, got {length}")
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    out = np.full(length, np.nan)
    keep = min(length, len(values))
    if keep:
        out[length - keep :] = values[len(values) - keep :]
    return out


def train_val_split(series: Sequence[S], horizon: int) -> tuple[list[S], list[S]]:
    """Time-based split holding out the last ``horizon`` steps of every series.

    Returns ``(train, validation)``:

    * ``train[i]`` is ``series[i]`` without its last ``horizon`` steps. Training windows must
      be drawn from these parts only (``WindowSampler`` keeps each window's future inside the
      array it gets), so no training window touches a held-out step.
    * ``validation[i]`` is the *whole* ``series[i]``: the model may read the history, but only
      the last ``horizon`` steps are validation targets (``holdout`` splits them).

    Raises ``InputError`` naming every series with fewer than ``horizon + 1`` steps (they would
    leave no history to train on).
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise InputError(f"train_val_split: horizon must be an integer >= 1, got {horizon!r}")
    short = [_name(s, i) for i, s in enumerate(series) if len(s) <= horizon]
    if short:
        shown = ", ".join(short[:10]) + (f" and {len(short) - 10} more" if len(short) > 10 else "")
        raise InputError(
            f"train_val_split: series {shown} have at most horizon={horizon} steps, "
            "nothing left to train on"
        )
    train = [_cut(s, 0, len(s) - horizon) for s in series]
    return train, list(series)


def holdout(values: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a 1-D validation series ``[T]`` into ``(context [T - horizon], target [horizon])``."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if not 1 <= horizon < len(values):
        raise InputError(f"holdout: horizon {horizon} must be in [1, {len(values) - 1}]")
    return values[:-horizon], values[-horizon:]


def filter_min_length(series: Sequence[S], min_length: int, *, observed: bool = False) -> list[S]:
    """Series with at least ``min_length`` steps (``observed=True``: non-NaN values)."""

    def length(s) -> int:
        values = s.target if isinstance(s, TimeSeries) else np.asarray(s)
        return int((~np.isnan(values)).sum()) if observed else len(values)

    return [s for s in series if length(s) >= min_length]


def _name(s, i: int) -> str:
    return f"'{s.item_id}'" if isinstance(s, TimeSeries) else f"#{i}"


def _cut(s: S, start: int, stop: int) -> S:
    return s.slice(start, stop) if isinstance(s, TimeSeries) else np.asarray(s)[start:stop]


def aggregate_temporal(values: np.ndarray, factor: int) -> np.ndarray:
    """The mean of every ``factor`` consecutive steps of a 1-D array ``[T]``: float64 ``[T // factor]``.

    Blocks are aligned to the series' end (the last block ends at the last step), so the most
    recent data is kept whole and the ``T % factor`` oldest steps are dropped. A block with any
    missing value is NaN: a mean over part of a block would mix levels of different seasons.
    Monthly data averaged by 3 and 12 reads as quarterly and yearly data of the same process,
    which is how a training set gets real low-frequency series from high-frequency ones.
    """
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 1:
        raise InputError(f"aggregate_temporal: factor must be an integer >= 1, got {factor!r}")
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    blocks = len(values) // factor
    if blocks == 0:
        return np.empty(0)
    # [blocks, factor]; a NaN anywhere in a row makes its mean NaN, as intended.
    return values[len(values) - blocks * factor :].reshape(blocks, factor).mean(axis=1)
