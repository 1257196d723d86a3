"""``rexforge forecast``: forecast every series of a CSV/Parquet file and write a long CSV.

By default the whole table is loaded, then forecast. ``--stream`` reads a long CSV in chunks
of whole items instead (``forecast_csv_streaming``): memory stays bounded however many series
the file holds, provided each item's rows are contiguous in the file. Bad series are named in
one error, or with ``--skip-bad`` left out and listed in one warning line.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

from rexforge.errors import InputError
from rexforge.forecast.rollouts import Rollout

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class SourceOptions:
    """How to read --data (forecast and embed).

    Args:
        layout: long (item_id, timestamp, target) or wide (a time column and one column per
            series); auto tells them apart
        id_column: long layout: series id column (item_id)
        timestamp_column: long layout: time column (timestamp)
        target: long layout: target column (target); TiRex-2: a,b for several targets
        columns: wide layout: the series columns (a b, or a,b)
        time_column: wide layout: the time column
        gaps: keep missing steps as NaN, or interpolate them
    """

    layout: Literal["auto", "long", "wide"] = "auto"
    id_column: str | None = None
    timestamp_column: str | None = None
    target: str | None = None
    columns: list[str] | None = None
    time_column: str | None = None
    gaps: Literal["keep", "interpolate"] = "keep"


def forecast(
    *,
    data: Path,
    horizon: int,
    output: Path,
    model: str = "starter",
    plot: Path | None = None,
    source: SourceOptions,
    skip_bad: bool = False,
    stream: bool = False,
    batch_size: int = 512,
    context_length: int | None = None,
    rollout: Rollout | None = None,
    past_covariates: list[str] | None = None,
    future_covariates: list[str] | None = None,
    future_data: Path | None = None,
    resample_strategy: Literal["frequency"] | None = None,
    numerics: Literal["official", "bf16", "fp32", "fast"] = "bf16",
) -> int:
    """Forecast series from a CSV/Parquet file.

    Args:
        data: CSV or Parquet file, long or wide
        horizon: steps to forecast
        output: file to write: CSV, or Parquet when it ends in .parquet; '-' = CSV on stdout.
            Columns item_id, timestamp, mean and one per quantile level (0.1 ... 0.9); 'mean'
            is the median (the 0.5 quantile), as in NXAI's tirex package
        model: checkpoint file/folder, hub id, or 'starter'
        plot: also write a fan chart (.png, .pdf or .svg)
        source: how to read --data
        skip_bad: skip invalid series, report them
        stream: long CSV only: read and forecast in chunks (bounded memory); each item's rows
            must be contiguous
        batch_size: series per forward pass
        context_length: forecast from the last N steps of each series only (default: all of
            it; the model cuts longer contexts to the length it was trained on)
        rollout: horizons over one patch (32 steps): exact reruns the model on the context
            plus each forecast patch, as NXAI's code does; stateful carries the recurrent state
            forward (faster for long horizons, slightly different forecasts); median feeds each
            patch's median back as context; paths feeds back quantile curves along 9 paths
            and mixes them (later bands that carry the earlier patches' uncertainty; ~10x the
            cost of median). Default: the model's own (`rexforge info`): exact for official
            checkpoints, paths for the bundled starter. TiRex-2: median or paths forecast past
            the model's cap (320 steps) the same way
        past_covariates: TiRex-2, long layout: columns known up to the forecast start only
            (a b, or a,b); --target may then name several targets (a,b)
        future_covariates: TiRex-2, long layout: columns known ahead, with their values over
            the forecast steps in --future-data (default with --future-data: the columns it
            shares with --data)
        future_data: TiRex-2: table with the known-future covariates over the forecast steps
            (same id and timestamp columns as --data)
        resample_strategy: frequency: forecast long-period series downsampled (official TiRex
            option)
        numerics: official: tirex-ts' exact operations (its numbers on any CPU, its speed);
            bf16: their rounding emulated in fp32 (fast); fp32: no rounding; fast: the
            fastest kernels this CPU has (int8/bf16 projections, within 0.5% WQL of exact)
    """
    return run(SimpleNamespace(**locals()))


def load_source(data: Path, source: SourceOptions):
    """``load_series_report`` of ``data`` as the ``SourceOptions`` say."""
    from rexforge.data.sources import column_names, load_series_report

    layout = source.layout
    if layout == "auto" and any(
        v is not None for v in (source.id_column, source.timestamp_column, source.target)
    ):
        # Naming a long-layout column means the file is long: a wrong name is then an error
        # instead of the table being read as wide.
        layout = "long"
    return load_series_report(
        data,
        layout=layout,
        id_column=source.id_column or "item_id",
        timestamp_column=source.timestamp_column or "timestamp",
        target_column=source.target or "target",
        columns=column_names(source.columns),
        time_column=source.time_column,
        gaps=source.gaps,
    )


def run(args: SimpleNamespace) -> int:
    from rexforge.data.problems import format_problems
    from rexforge.forecast.api import check_prediction_length, load_model
    from rexforge.forecast.frames import (
        check_horizon_fits,
        forecast_series,
        split_forecastable,
    )

    check_prediction_length(args.horizon, "--horizon")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    check_output_paths(args)
    if args.context_length is not None and args.context_length < 1:
        raise InputError(f"--context-length must be >= 1, got {args.context_length}")
    if _forecast_table(args):
        return 0
    if args.stream:
        return _run_streaming(args)
    report = load_source(args.data, args.source)
    report.series, unusable = split_forecastable(report.series)
    report.problems += unusable
    if report.problems:
        if not args.skip_bad or not report.series:
            raise InputError(f"{args.data}: {format_problems(report.problems)}")
        _warn_skipped(report.problems)
    check_horizon_fits(report.series, args.horizon)  # before loading the model
    model = load_model(args.model, numerics=args.numerics)
    frame = forecast_series(
        model,
        report.series,
        args.horizon,
        batch_size=args.batch_size,
        context_length=args.context_length,
        rollout=args.rollout,
        resample_strategy=args.resample_strategy,
    )
    write_forecast(frame, args.output)
    logger.info(
        "wrote %d rows (%d series x %d steps) to %s",
        len(frame),
        len(report.series),
        args.horizon,
        "stdout" if _to_stdout(args.output) else args.output,
    )
    if args.plot is not None:
        from rexforge.forecast.plot import fan_chart

        fan_chart(report.series, frame, args.plot)
        logger.info("wrote fan chart to %s", args.plot)
    return 0


def _forecast_table(args: SimpleNamespace) -> bool:
    """Forecast with TiRex-2's table inputs (several targets, covariates) when they are asked
    for (``rexforge.forecast.tirex2_cli``); False when they are not."""
    from rexforge.forecast import tirex2_cli
    from rexforge.forecast.api import load_model

    source = args.source
    pasts, futures = args.past_covariates, args.future_covariates  # lists: a b, or a,b
    if not tirex2_cli.wants_table_forecast(source.target, pasts, futures, args.future_data):
        return False
    given = {
        "stream": args.stream,
        "skip_bad": args.skip_bad,
        "context_length": args.context_length,
        "resample_strategy": args.resample_strategy,
        "columns": source.columns,
        "time_column": source.time_column,
        "layout wide": source.layout == "wide",
        "gaps interpolate": source.gaps == "interpolate",
    }
    tirex2_cli.forecast_table_file(
        load_model(args.model, numerics=args.numerics),
        args.data,
        args.horizon,
        args.output,
        target=source.target,
        past_covariates=pasts,
        future_covariates=futures,
        future_data=args.future_data,
        id_column=source.id_column,
        timestamp_column=source.timestamp_column,
        batch_size=args.batch_size,
        rollout=args.rollout,
        plot=args.plot,
        unsupported=[
            "--" + flag.replace("_", "-")
            for flag, value in given.items()
            if value not in (None, False)
        ],
    )
    return True


PARQUET_SUFFIXES = (".parquet", ".pq")
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def _to_stdout(path: Path) -> bool:
    return str(path) == "-"


def check_output_paths(args: SimpleNamespace) -> None:
    """Refuse, before any work, outputs that cannot be written as asked."""
    output = args.output
    if output.exists() and output.is_dir():
        raise InputError(f"--output {output} is a directory; give a file path (or - for stdout)")
    parquet = output.suffix.lower() in PARQUET_SUFFIXES
    if args.stream and (parquet or _to_stdout(output)):
        raise InputError(f"--stream writes a CSV file; it cannot write --output {output}")
    if parquet:
        import importlib.util

        if importlib.util.find_spec("pyarrow") is None:
            raise InputError(
                f"--output {output}: writing Parquet needs pyarrow: pip install pyarrow"
            )
    plot = args.plot
    if plot is not None and plot.suffix.lower() not in PLOT_SUFFIXES:
        raise InputError(
            f"--plot {plot}: a plot is written as {', '.join(PLOT_SUFFIXES)}; give a file name "
            "ending in one of them"
        )


def write_forecast(frame, output: Path) -> None:
    """``frame`` as Parquet (``.parquet``/``.pq``), CSV on stdout (``-``) or a CSV file;
    files are written atomically."""
    import sys

    from rexforge.io.atomic import atomic_write_bytes, atomic_write_text

    if _to_stdout(output):
        sys.stdout.write(frame.to_csv(index=False))
        sys.stdout.flush()
    elif output.suffix.lower() in PARQUET_SUFFIXES:
        import io

        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        atomic_write_bytes(output, buffer.getvalue())
    else:
        atomic_write_text(output, frame.to_csv(index=False))


def _warn_skipped(problems) -> None:
    from rexforge.data.problems import format_problems

    logger.warning("skipped %d bad series: %s", len(problems), format_problems(problems))


def _run_streaming(args: SimpleNamespace) -> int:
    from rexforge.forecast.api import load_model
    from rexforge.forecast.frames import forecast_csv_streaming

    source = args.source
    given = {"plot": args.plot, "columns": source.columns, "time_column": source.time_column}
    wide = ["--" + name.replace("_", "-") for name, value in given.items() if value is not None]
    if source.layout == "wide":
        wide.append("--layout wide")
    if wide:
        raise InputError(f"--stream reads long CSVs only; it cannot be used with {', '.join(wide)}")
    model = load_model(args.model, numerics=args.numerics)
    summary = forecast_csv_streaming(
        model,
        args.data,
        args.horizon,
        args.output,
        id_column=source.id_column or "item_id",
        timestamp_column=source.timestamp_column or "timestamp",
        target=source.target or "target",
        gaps=source.gaps,
        batch_size=args.batch_size,
        on_bad="skip" if args.skip_bad else "raise",
        context_length=args.context_length,
        rollout=args.rollout,
        resample_strategy=args.resample_strategy,
    )
    if summary.problems:
        _warn_skipped(summary.problems)
    logger.info(
        "wrote %d rows (%d series x %d steps) to %s",
        summary.rows,
        summary.series,
        args.horizon,
        args.output,
    )
    return 0
