"""Forecasting long tables: ``item_id, timestamp, target`` in, one row per future step out.

``forecast_df`` takes a DataFrame in memory; ``forecast_csv_streaming`` reads a long CSV in
chunks of whole items and appends each chunk's forecasts to the output, so memory does not
grow with the number of series.
"""

from __future__ import annotations

import logging
import sys
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from rexforge.data.problems import SeriesProblem, check_on_bad, format_problems, resolve
from rexforge.data.series import TimeSeries
from rexforge.errors import InputError

logger = logging.getLogger(__name__)


def future_index(series: TimeSeries, horizon: int) -> pd.Index:
    """The ``horizon`` timestamps after the end of ``series``, continued at its frequency.

    Datetime series need an inferable frequency; integer-step (or timestamp-less) series
    continue their step count.
    """
    reason = timestamp_problem(series)
    if reason is not None:
        raise InputError(f"series {series.item_id}: {reason}")
    ts = series.timestamps
    if ts is None:
        return pd.RangeIndex(len(series), len(series) + horizon)
    if isinstance(ts, pd.DatetimeIndex):
        from rexforge.data.time_grid import horizon_end_problem

        problem = horizon_end_problem(ts[-1], series.freq, horizon)
        if problem is not None:
            raise InputError(f"series {series.item_id}: {problem}; use a shorter horizon")
        return pd.date_range(ts[-1], periods=horizon + 1, freq=series.freq)[1:]
    step = int(ts[-1] - ts[-2]) if len(ts) > 1 else 1
    return pd.Index(int(ts[-1]) + step * np.arange(1, horizon + 1))


def timestamp_problem(series: TimeSeries) -> str | None:
    """Why the timestamps of ``series`` cannot be continued (None when they can)."""
    if isinstance(series.timestamps, pd.DatetimeIndex) and not series.freq:
        if len(series) == 1:
            return (
                "cannot continue its timestamps: a single timestamp has no frequency "
                "(give at least two rows, or integer steps)"
            )
        return "cannot continue its timestamps, the frequency could not be inferred"
    return None


def check_horizon_fits(series: list[TimeSeries], horizon: int, n_columns: int = 10) -> None:
    """Refuse, before any model work, a horizon whose timestamps overflow for some series
    (checked on the latest end per frequency) or whose output frame would not fit in memory
    (``n_columns``: mean and the 9 quantiles of official models)."""
    from rexforge.data.time_grid import horizon_end_problem

    latest: dict[str, TimeSeries] = {}
    for s in series:
        if isinstance(s.timestamps, pd.DatetimeIndex) and s.freq and len(s.timestamps):
            best = latest.get(s.freq)
            if best is None or s.timestamps[-1] > best.timestamps[-1]:
                latest[s.freq] = s
    for s in latest.values():
        problem = horizon_end_problem(s.timestamps[-1], s.freq, horizon)
        if problem is not None:
            raise InputError(f"--horizon {horizon}: series {s.item_id}: {problem}")
    # A row: the float columns, its timestamp and item_id pointer, ~14 characters a value as
    # CSV text, and pandas' working copies (measured ~2.5x the frame while writing).
    row_bytes = int(2.5 * (8 * n_columns + 16) + 14 * (n_columns + 2))
    needed, available = len(series) * horizon * row_bytes, _available_memory()
    if available is not None and needed > available:
        raise InputError(
            f"--horizon {horizon}: {len(series)} series x {horizon} steps need about "
            f"{_size(needed)} for the output, more than the {_size(available)} of memory "
            "available; use a shorter --horizon or fewer series per run"
        )


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"


def _available_memory() -> int | None:
    """MemAvailable in bytes (Linux), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def split_forecastable(series: list[TimeSeries]) -> tuple[list[TimeSeries], list[SeriesProblem]]:
    """``series`` whose future timestamps can be made, and a problem for each of the others."""
    good, problems = [], []
    for s in series:
        reason = timestamp_problem(s)
        (good.append(s) if reason is None else problems.append(SeriesProblem(s.item_id, reason)))
    return good, problems


def quantile_column(level: float) -> str:
    """The column (or GluonTS forecast key) of a quantile level in every table rexforge writes:
    the level itself, ``0.1`` -> ``"0.1"``, as NXAI's and Chronos' ``predict_df``. ``:g`` keeps
    a level computed in floating point (``0.30000000000000004``) from naming a column of its own.
    """
    return f"{float(level):g}"


def hold_constant_series(contexts, quantiles: np.ndarray, mean: np.ndarray) -> None:
    """Forecast a series whose observed values are all equal (at least two) as that value,
    in place: quantiles [B, H, Q] and mean [B, H].

    The network forecasts such a series only close to constant (its scale is |mean| + 1e-5, so
    its tokens are all ~±1 and the head's small offsets show); users reading a table expect
    the constant. ``forecast`` itself keeps the network's numbers, as the official package.
    """
    for i, context in enumerate(contexts):
        observed = np.asarray(context, dtype=np.float64)
        observed = observed[~np.isnan(observed)]
        if observed.size >= 2 and np.all(observed == observed[0]):
            quantiles[i] = observed[0]
            mean[i] = observed[0]


def forecast_series(
    forecaster,
    series: list[TimeSeries],
    prediction_length: int,
    batch_size: int = 512,
    *,
    context_length: int | None = None,
    rollout: str | None = None,
    resample_strategy: str | None = None,
) -> pd.DataFrame:
    """Forecast each ``TimeSeries``; returns a long frame: item_id, timestamp, mean (the
    median), quantiles. A constant series is forecast as its constant (``hold_constant_series``).

    context_length: forecast from the last N steps of each series only (default: all; the
        model itself cuts contexts to its train_ctx_len). rollout: see
        ``TiRexForecaster.forecast``. Every series whose timestamps cannot be continued is
        named in one ``InputError`` before anything is forecast.
    """
    if not series:
        raise InputError("no series to forecast")
    _, problems = split_forecastable(series)
    if problems:
        raise InputError(format_problems(problems))
    if context_length is not None and (isinstance(context_length, bool) or context_length < 1):
        raise InputError(f"--context-length must be an integer >= 1, got {context_length!r}")
    contexts = [s.target if context_length is None else s.target[-context_length:] for s in series]
    quantiles, mean = _forecast_arrays(
        forecaster, contexts, prediction_length, batch_size, rollout, resample_strategy
    )
    hold_constant_series(contexts, quantiles, mean)
    H = quantiles.shape[1]
    stamps = [future_index(s, H) for s in series]
    columns = {
        "item_id": np.repeat(np.array([s.item_id for s in series], dtype=object), H),
        "timestamp": stamps[0].append(stamps[1:]) if len(stamps) > 1 else stamps[0],
        "mean": mean.reshape(-1),
    }
    for j, level in enumerate(forecaster.quantiles):
        columns[quantile_column(level)] = quantiles[:, :, j].reshape(-1)
    return pd.DataFrame(columns)


def _forecast_arrays(forecaster, contexts, prediction_length, batch_size, rollout, resample):
    """(quantiles [B, H, Q], mean [B, H]) as numpy for 1-D ``contexts``: TiRex's ``forecast``,
    or a TiRex-2 forecaster's TiRex-style ``predict_quantiles`` (each series one target; the
    rollout and resampling options are TiRex's own)."""
    # A TiRex-2 forecaster exists only once its module is loaded: TiRex runs never import it.
    tirex2_api = sys.modules.get("rexforge.forecast.tirex2_api")
    if tirex2_api is None or not isinstance(forecaster, tirex2_api.TiRex2Forecaster):
        return forecaster.forecast(
            contexts,
            prediction_length=prediction_length,
            batch_size=batch_size,
            output_type="numpy",
            rollout=rollout,
            resample_strategy=resample,
        )
    from rexforge.forecast.tirex2_rollout import PAST_CAP

    further = " or ".join(PAST_CAP)
    if rollout not in (None, *PAST_CAP) or resample is not None:
        raise InputError(
            "--rollout exact/stateful and --resample-strategy apply to TiRex models, not "
            f"TiRex-2 (which has --rollout {further})"
        )
    longest = forecaster.config.future_len
    if prediction_length > longest and rollout is None:
        raise InputError(
            f"this TiRex-2 model forecasts at most {longest} steps, got --horizon "
            f"{prediction_length}; add --rollout {further} to forecast further"
        )
    quantiles, mean = forecaster.predict_quantiles(
        contexts, prediction_length, batch_size=batch_size, rollout=rollout or "cut"
    )
    return quantiles.float().numpy(), mean.float().numpy()


def forecast_df(
    forecaster,
    df: pd.DataFrame,
    prediction_length: int,
    *,
    id_column: str = "item_id",
    timestamp_column: str = "timestamp",
    target: str = "target",
    batch_size: int = 512,
    on_bad: str = "raise",
    resample_strategy: str | None = None,
) -> pd.DataFrame:
    """Forecast every series of a long DataFrame.

    Returns a long DataFrame with ``id_column``, ``timestamp_column`` (continued at each
    series' inferred frequency), ``mean`` (the median) and one column per quantile level
    (``"0.1"`` ... ``"0.9"``). ``on_bad="skip"`` drops invalid series (logged) instead of
    raising. ``resample_strategy="frequency"``: see ``TiRexForecaster.forecast``.
    """
    from rexforge.data.sources import load_series_report

    check_on_bad(on_bad)
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"forecast_df needs a pandas DataFrame, got {type(df).__name__}")
    report = load_series_report(
        df,
        layout="long",
        id_column=id_column,
        timestamp_column=timestamp_column,
        target_column=target,
    )
    report.series, problems = split_forecastable(report.series)
    report.problems += problems
    series = resolve(report, on_bad, "<DataFrame>")
    out = forecast_series(
        forecaster, series, prediction_length, batch_size, resample_strategy=resample_strategy
    )
    return out.rename(columns={"item_id": id_column, "timestamp": timestamp_column})


class StreamSummary(NamedTuple):
    """What ``forecast_csv_streaming`` did: series forecast, rows written, series skipped."""

    series: int
    rows: int
    problems: list[SeriesProblem]


def forecast_csv_streaming(
    forecaster,
    path: str | Path,
    prediction_length: int,
    output: str | Path,
    *,
    id_column: str = "item_id",
    timestamp_column: str | None = "timestamp",
    target: str = "target",
    gaps: str = "keep",
    batch_size: int = 512,
    chunk_series: int = 10_000,
    chunk_rows: int = 200_000,
    on_bad: str = "raise",
    context_length: int | None = None,
    rollout: str | None = None,
    resample_strategy: str | None = None,
) -> StreamSummary:
    """Forecast every series of a long CSV without loading it whole; write a long CSV.

    The input is read ``chunk_rows`` rows at a time (``rexforge.data.chunked``): each item's
    rows must be contiguous in the file (sorted or grouped by item), else an ``InputError``
    names the item that reappears. Complete items are validated like ``load_series`` does,
    forecast ``chunk_series`` at a time, and their rows appended to a temporary file that
    replaces ``output`` only when every series is done: ``output`` never holds a partial
    result. Peak memory is bounded by the chunk sizes, not by the number of series.

    The output has the columns of ``rexforge forecast``: ``item_id``, ``timestamp``, ``mean``
    and one per quantile level, items in file order (as text, a chunk whose timestamps all
    fall at midnight prints dates only). ``on_bad="raise"`` names every bad series in one
    ``InputError`` (the rest of the file is still checked, not forecast); ``"skip"`` leaves
    them out and returns them in ``StreamSummary.problems``.
    """
    from rexforge.data.chunked import iter_item_chunks
    from rexforge.io.atomic import atomic_open

    prediction_length, output = _check_stream_arguments(
        on_bad, prediction_length, chunk_series, output
    )
    chunks = iter_item_chunks(
        path,
        id_column=id_column,
        columns=[(target, "target")]
        + ([(timestamp_column, "timestamp")] if timestamp_column is not None else []),
        chunk_rows=chunk_rows,
    )
    forecast_chunk = partial(
        forecast_series,
        forecaster,
        prediction_length=prediction_length,
        batch_size=batch_size,
        context_length=context_length,
        rollout=rollout,
        resample_strategy=resample_strategy,
    )
    with atomic_open(output, "w") as handle:
        writer = _StreamWriter(handle, forecast_chunk, chunk_series, on_bad)
        for good, problems in _validated_chunks(chunks, id_column, timestamp_column, target, gaps):
            writer.add(good, problems)
        writer.flush()
        _refuse_stream_result(path, writer.problems, writer.series, on_bad)
    logger.debug("%s: forecast %d series in chunks", path, writer.series)
    return StreamSummary(writer.series, writer.rows, writer.problems)


def _check_stream_arguments(
    on_bad: str, prediction_length: int, chunk_series: int, output: str | Path
) -> tuple[int, Path]:
    """Refuse (``InputError``) bad arguments of ``forecast_csv_streaming``; return the checked
    ``prediction_length`` and ``output`` as a ``Path``."""
    from rexforge.forecast.api import check_prediction_length

    check_on_bad(on_bad)
    prediction_length = check_prediction_length(prediction_length)
    if isinstance(chunk_series, bool) or not isinstance(chunk_series, int) or chunk_series < 1:
        raise InputError(f"chunk_series must be an integer >= 1, got {chunk_series!r}")
    output = Path(output)
    if output.is_dir():
        raise InputError(f"output {output} is a directory; give a CSV file path")
    return prediction_length, output


def _validated_chunks(chunks, id_column: str, timestamp_column: str | None, target: str, gaps: str):
    """For each chunk of whole items (a long DataFrame with columns ``id_column``, ``target``
    and ``timestamp``), validated like ``load_series``: yield (the series that can be
    forecast, a ``SeriesProblem`` for each of the others)."""
    from rexforge.data.sources import load_series_report

    for chunk in chunks:
        report = load_series_report(
            chunk,
            layout="long",
            id_column=id_column,
            timestamp_column=timestamp_column,
            target_column=target,
            gaps=gaps,
        )
        good, unusable = split_forecastable(report.series)
        yield good, report.problems + unusable


class _StreamWriter:
    """Forecasts the series it is given ``chunk_series`` at a time with ``forecast_chunk``
    (list[TimeSeries] -> the long frame of ``forecast_series``) and appends the rows to the open
    CSV ``handle``, the header with the first chunk. Once a problem is recorded under
    ``on_bad="raise"`` it forecasts no more, only collects problems. ``series``, ``rows`` and
    ``problems`` say what it did so far."""

    def __init__(self, handle, forecast_chunk, chunk_series: int, on_bad: str) -> None:
        self.handle, self.forecast_chunk = handle, forecast_chunk
        self.chunk_series, self.on_bad = chunk_series, on_bad
        self.pending: list[TimeSeries] = []
        self.problems: list[SeriesProblem] = []
        self.series = 0
        self.rows = 0

    def add(self, good: list[TimeSeries], problems: list[SeriesProblem]) -> None:
        """Queue ``good`` and record ``problems``; flush once ``chunk_series`` are queued."""
        self.problems += problems
        self.pending += good
        if len(self.pending) >= self.chunk_series:
            self.flush()

    def flush(self) -> None:
        """Forecast and write the queued series (unless a problem stops it), then drop them."""
        if self.pending and not (self.problems and self.on_bad == "raise"):
            frame = self.forecast_chunk(self.pending)
            frame.to_csv(self.handle, header=self.series == 0, index=False)
            self.series += len(self.pending)
            self.rows += len(frame)
        self.pending.clear()


def _refuse_stream_result(path, problems: list[SeriesProblem], n_series: int, on_bad: str) -> None:
    """Raise ``InputError`` (so the output is not written) when bad series must be reported
    (``on_bad="raise"``, or nothing was forecast) or when no series was forecast at all."""
    if problems and (on_bad == "raise" or n_series == 0):
        raise InputError(f"{path}: {format_problems(problems)}")
    if n_series == 0:
        raise InputError(f"{path}: no series to forecast")
