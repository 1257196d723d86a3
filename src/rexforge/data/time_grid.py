"""Timestamps: parse a time column, infer a series' frequency and regular grid, build grids from a start.

A series is *regular* when all its timestamps lie on one grid ``start, start + f, start + 2f, ...``;
missing grid points are gaps (filled with NaN by the loader). Timestamps that do not fit any grid
(e.g. hourly steps and half-hour offsets mixed) are *irregular* and rejected: guessing a grid there
would silently invent or drop data. So are *mixed frequencies*: a long run of equal coarser steps
on the grid (daily rows inside an hourly series) is a section sampled at another frequency, which
the grid would turn into mostly-NaN data.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

# A grid far longer than the data it holds means the "most common step" was a fluke (e.g. two
# points one second apart in a yearly series); refuse rather than allocate millions of NaNs.
_MAX_GRID_FACTOR = 100
_MAX_GRID_SLACK = 1000
# This many consecutive equal steps of k >= 2 grid steps each mark a section sampled at a
# coarser frequency. Random gaps seldom repeat one length this often in a row (at 10% missing
# points, a run of 8 gaps of the same length has odds of about 1e-8 per position).
_MIN_COARSE_RUN = 8


class IrregularSpacing(ValueError):
    """Timestamps do not lie on any regular grid; the message says where."""


@dataclass(frozen=True)
class ParsedTimes:
    """A parsed time column.

    ``values`` has one entry per row: ``datetime64`` (NaT where missing) for dates, or float64
    (NaN where missing) holding integer steps. ``bad`` marks rows whose text could not be parsed.
    """

    values: np.ndarray
    is_steps: bool
    bad: np.ndarray
    raw: pd.Series


def parse_time_column(column: pd.Series) -> ParsedTimes:
    """Parse a whole time column at once (one vectorised call, not one per series).

    Integers, integral floats and integer strings are steps; anything else is parsed as dates.
    """
    raw = column
    missing = column.isna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(column):
        return ParsedTimes(column.to_numpy(), False, np.zeros(len(column), bool), raw)
    if pd.api.types.is_bool_dtype(column):
        return ParsedTimes(column.to_numpy(), True, ~missing, raw)
    numeric = column if pd.api.types.is_numeric_dtype(column) else None
    if numeric is None:
        numeric = pd.to_numeric(column, errors="coerce")
        if bool((numeric.isna().to_numpy() & ~missing).any()):
            numeric = None  # some text is not a number: these are dates
    if numeric is not None:
        steps = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~missing & ~np.isnan(steps) & (steps != np.round(steps))
        return ParsedTimes(steps, True, bad, raw)
    dates = _to_datetime(column)
    bad = dates.isna().to_numpy() & ~missing
    if bad.any():
        # The first element fixed the format; retry the misfits one by one (mixed formats).
        retry = _to_datetime(column[bad], mixed=True)
        dates = dates.copy()
        dates[bad] = retry
        bad = dates.isna().to_numpy() & ~missing
    return ParsedTimes(dates.to_numpy(), False, bad, raw)


def _to_datetime(column: pd.Series, *, mixed: bool = False) -> pd.Series:
    with warnings.catch_warnings():
        # "Could not infer format" is expected for odd columns; failures become NaT and are reported.
        warnings.simplefilter("ignore", UserWarning)
        try:
            return pd.to_datetime(column, errors="coerce", format="mixed" if mixed else None)
        except (ValueError, TypeError, OverflowError):
            # Mixed time zones and similar: treat the whole column as unparsable.
            return pd.Series(pd.NaT, index=column.index, dtype="datetime64[ns]")


def looks_like_time(column: pd.Series) -> bool:
    """True for a datetime column or a text column whose every value parses as a date."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return True
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return False
    present = column.dropna()
    if present.empty or not pd.api.types.is_string_dtype(present):
        return False
    if pd.to_numeric(present, errors="coerce").notna().all():
        return False  # "1", "2", ... are numbers, not dates
    return bool(_to_datetime(present).notna().all())


def regular_grid(times: pd.Index) -> tuple[pd.Index, str | None]:
    """The regular grid from ``times[0]`` to ``times[-1]`` that holds every timestamp.

    ``times`` must be sorted and unique: a ``DatetimeIndex`` or an integer index of steps.
    Returns ``(grid, freq)``: ``freq`` is a pandas frequency string for dates (None for steps or a
    single timestamp). Raises ``IrregularSpacing`` when no grid fits, or when the timestamps mix
    frequencies (see ``_MIN_COARSE_RUN``).

    Frequency: ``pd.infer_freq`` when the series has no gaps; otherwise the most common step,
    tried first as a calendar offset (month, quarter, year, week, business day) and then as a
    fixed duration, keeping the first whose grid contains every timestamp.
    """
    if len(times) < 2:
        return times, None
    if not isinstance(times, pd.DatetimeIndex):
        grid = _step_grid(np.asarray(times, dtype=np.int64))
        _check_one_frequency(times, grid, f"{int(grid[1] - grid[0])}" if len(grid) > 1 else "1")
        return grid, None
    if len(times) >= 3:
        freq = infer_freq(times)
        if freq is not None:
            return pd.DatetimeIndex(times, freq=freq), freq
    deltas = np.diff(times.values)
    values, counts = np.unique(deltas, return_counts=True)
    step = pd.Timedelta(values[np.argmax(counts)])  # ties go to the smallest step
    limit = _MAX_GRID_FACTOR * len(times) + _MAX_GRID_SLACK
    span = times[-1] - times[0]
    if span / step + 1 > limit:
        raise IrregularSpacing(
            f"irregular time spacing: most common step {step} would need a grid of "
            f"{int(span / step) + 1} points for {len(times)} timestamps"
        )
    first_grid = None
    for offset in _candidate_offsets(step, times):
        grid = pd.date_range(times[0], times[-1], freq=offset)
        first_grid = grid if first_grid is None else first_grid
        if times.isin(grid).all():
            _check_one_frequency(times, grid, grid.freqstr)
            return grid, grid.freqstr
    off = times[~times.isin(first_grid)][0]
    raise IrregularSpacing(
        f"irregular time spacing: most common step is {step} but timestamp {off} is off that grid"
    )


def _check_one_frequency(times: pd.Index, grid: pd.Index, step: str) -> None:
    """Raise ``IrregularSpacing`` if ``times`` (all on ``grid``) hold a run of at least
    ``_MIN_COARSE_RUN`` consecutive equal steps of two or more grid steps each."""
    if len(grid) == len(times) or len(times) <= _MIN_COARSE_RUN:
        return
    steps = np.diff(grid.get_indexer(times))  # in grid steps; all >= 1
    starts = np.flatnonzero(np.r_[True, steps[1:] != steps[:-1]])
    lengths = np.diff(np.r_[starts, len(steps)])
    coarse = np.flatnonzero((steps[starts] > 1) & (lengths >= _MIN_COARSE_RUN))
    if coarse.size:
        first = int(starts[coarse[0]])
        last = first + int(lengths[coarse[0]])
        raise IrregularSpacing(
            f"mixed frequencies: the timestamps from {times[first]} to {times[last]} are "
            f"{int(steps[first])} x '{step}' apart, a coarser frequency than the series' step "
            f"'{step}'; resample it to one frequency"
        )


def infer_freq(times: pd.DatetimeIndex) -> str | None:
    """``pd.infer_freq`` as a string on every pandas version (pandas 4 returns an offset)."""
    if len(times) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the pandas-4 return-type notice
        freq = pd.infer_freq(times)
    return getattr(freq, "freqstr", freq)


def _candidate_offsets(step: pd.Timedelta, times: pd.DatetimeIndex) -> list:
    """Calendar offsets whose typical length matches ``step``, then ``step`` itself."""
    days = step / pd.Timedelta(days=1)
    first = times[0]
    offsets: list = []
    if 28 <= days <= 31:
        offsets += [pd.offsets.MonthBegin(), pd.offsets.MonthEnd()]
    elif 89 <= days <= 92:
        offsets += [
            pd.offsets.QuarterBegin(startingMonth=first.month),
            pd.offsets.QuarterEnd(startingMonth=first.month),
        ]
    elif 365 <= days <= 366:
        offsets += [pd.offsets.YearBegin(month=first.month), pd.offsets.YearEnd(month=first.month)]
    elif days == 7:
        offsets.append(pd.offsets.Week(weekday=first.weekday()))
    elif (
        days == 1
        and (times.day_of_week < 5).all()
        and (np.diff(times.values) == np.timedelta64(3, "D")).any()
    ):
        # Weekdays only with weekend jumps: business days, not daily data with gaps every weekend.
        offsets.append(pd.offsets.BDay())
    if days == int(days):
        # Whole days: spell them "D" (a calendar day) as pd.infer_freq does, not "24h".
        offsets.append(to_offset(f"{int(days)}D"))
    else:
        offsets.append(to_offset(step))
    return offsets


def _step_grid(steps: np.ndarray) -> pd.Index:
    diffs = np.diff(steps)
    values, counts = np.unique(diffs, return_counts=True)
    step = int(values[np.argmax(counts)])
    off = np.flatnonzero(diffs % step != 0)
    if off.size:
        i = int(off[0])
        raise IrregularSpacing(
            f"irregular time spacing: most common step is {step} but step "
            f"{steps[i]} -> {steps[i + 1]} is not a multiple of it"
        )
    length = (steps[-1] - steps[0]) // step + 1
    if length > _MAX_GRID_FACTOR * len(steps) + _MAX_GRID_SLACK:
        raise IrregularSpacing(
            f"irregular time spacing: most common step {step} would need a grid of "
            f"{length} points for {len(steps)} timestamps"
        )
    return pd.Index(np.arange(steps[0], steps[-1] + 1, step, dtype=np.int64))


def _read_offset(freq) -> tuple[pd.DateOffset | None, bool]:
    """(the pandas offset ``freq`` names or None, whether pandas called its spelling an old
    alias). Pandas 2 marks an old alias ("H", "15T", "A-DEC", "M") only by a FutureWarning
    while it parses it, so the warning is recorded here instead of shown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            offset = to_offset(freq.strip() if isinstance(freq, str) else freq)
        except (ValueError, TypeError):
            return None, False
    return offset, any(issubclass(w.category, FutureWarning) for w in caught)


def frequency_offset(freq) -> pd.DateOffset | None:
    """The pandas offset a frequency names, in any spelling pandas parses (old aliases of
    GluonTS data sets included), or None for None, "" and strings that name no frequency."""
    if freq is None or (isinstance(freq, str) and not freq.strip()):
        return None
    return _read_offset(freq)[0]


def normalize_freq(freq: str) -> str:
    """Spell ``freq`` as pandas 3 accepts it: an old alias becomes what pandas names that
    frequency (``"H"`` -> ``"h"``, ``"15T"`` -> ``"15min"``, ``"A-DEC"`` -> ``"Y-DEC"``).

    The period alias is preferred where one exists ("Y-DEC", not the offset's "YE-DEC"): a
    GluonTS ``start`` is a period and ``grid_from_start`` builds periods first. A current
    spelling comes back as given (stripped), and a string pandas cannot parse unchanged.
    """
    offset, old_alias = _read_offset(freq)
    if offset is None:
        return freq
    if not old_alias:
        return freq.strip()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pd.Period("2000-01-01", freq=offset).freqstr
    except (ValueError, TypeError):  # no period of this frequency (month starts, "BME", ...)
        return offset.freqstr


def grid_from_start(start, freq: str, length: int) -> pd.DatetimeIndex:
    """``length`` timestamps from ``start`` at ``freq`` (GluonTS convention: start is a period).

    A GluonTS ``start`` names the *period* holding the first value (``"2020-01-15"`` with
    monthly freq means January 2020), so periods are used where pandas supports them; others
    (e.g. business days) fall back to a plain ``date_range``. Raises ValueError on a bad freq.
    """
    freq = normalize_freq(freq)
    if isinstance(start, pd.Period):
        start = start.to_timestamp()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)  # deprecated Period freqs (business days)
            periods = pd.period_range(pd.Period(start, freq=freq), periods=length)
        return periods.to_timestamp()
    except (ValueError, TypeError, FutureWarning):
        return pd.date_range(pd.Timestamp(start), periods=length, freq=freq)


def horizon_end_problem(last: pd.Timestamp, freq: str, steps: int) -> str | None:
    """Why ``steps`` steps of ``freq`` after ``last`` cannot be timestamps (None when they can):
    pandas' nanosecond timestamps end in 2262. Checked on the last step alone, so a huge
    horizon is refused at once instead of after the forecast."""
    try:
        end = pd.Timestamp(last) + steps * to_offset(normalize_freq(freq))
        fits = end <= pd.Timestamp.max
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):  # OutOfBounds* too
        fits = False
    if fits:
        return None
    return (
        f"{steps} steps of {freq} after {pd.Timestamp(last)} run past the last timestamp "
        f"pandas can represent ({pd.Timestamp.max:%Y-%m-%d})"
    )
