"""``rexforge forecast``: forecast every series of a CSV/Parquet file and write a long CSV.

By default the whole table is loaded, then forecast. ``--stream`` reads a long CSV in chunks
of whole items instead (``forecast_csv_streaming``): memory stays bounded however many series
the file holds, provided each item's rows are contiguous in the file. Bad series are named in
one error, or with ``--skip-bad`` left out and listed in one warning line.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rexforge.errors import InputError

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default="starter", help="checkpoint file/folder, or 'starter' (default)"
    )
    parser.add_argument(
        "--data", type=Path, required=True, help="CSV or Parquet file, long or wide"
    )
    parser.add_argument("--horizon", type=int, required=True, help="steps to forecast")
    parser.add_argument(
        "--output",
        type=Path,
        required=True,
        help="file to write: CSV, or Parquet when it ends in .parquet; '-' = CSV on stdout. "
        "Columns item_id, timestamp, mean and one per quantile level (0.1 ... 0.9); 'mean' is "
        "the median (the 0.5 quantile), as in NXAI's tirex package",
    )
    parser.add_argument(
        "--plot", type=Path, default=None, help="also write a fan chart (.png, .pdf or .svg)"
    )
    add_source_arguments(parser)
    parser.add_argument("--skip-bad", action="store_true", help="skip invalid series, report them")
    parser.add_argument(
        "--stream",
        action="store_true",
        help="long CSV only: read and forecast in chunks (bounded memory); each item's rows "
        "must be contiguous",
    )
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument(
        "--context-length",
        type=int,
        default=None,
        help="forecast from the last N steps of each series only (default: all of it; the "
        "model cuts longer contexts to the length it was trained on)",
    )
    parser.add_argument(
        "--rollout",
        # engine.ROLLOUTS (no torch import here), and TiRex-2's median rollout
        choices=("exact", "stateful", "median"),
        default=None,
        help="horizons over one patch (32 steps): exact reruns the model on the context plus "
        "each forecast patch, as NXAI's code does; stateful carries the recurrent state "
        "forward (faster for long horizons, slightly different forecasts). Default: the "
        "model's own (`rexforge info`): exact for official checkpoints, stateful for the "
        "bundled starter. TiRex-2: median forecasts past the model's cap (320 steps) by "
        "feeding the median back as context",
    )
    add_covariate_arguments(parser)
    parser.add_argument(
        "--resample-strategy",
        choices=("frequency",),
        default=None,
        help="frequency: forecast long-period series downsampled (official TiRex option)",
    )
    parser.add_argument(
        "--numerics",
        choices=("official", "bf16", "fp32", "fast"),  # kernels.common.NUMERICS (no torch here)
        default="bf16",
        help="official: tirex-ts' exact operations (its numbers on any CPU, its speed); "
        "bf16: their rounding emulated in fp32 (fast); fp32: no rounding; fast: the fastest "
        "kernels this CPU has (int8/bf16 projections, within 0.5%% WQL of exact)",
    )


def add_covariate_arguments(parser: argparse.ArgumentParser) -> None:
    """TiRex-2's inputs beyond one target per series (``rexforge.forecast.tirex2_cli``)."""
    parser.add_argument(
        "--past-covariates",
        default=None,
        metavar="COL[,COL]",
        help="TiRex-2, long layout: columns known up to the forecast start only",
    )
    parser.add_argument(
        "--future-covariates",
        default=None,
        metavar="COL[,COL]",
        help="TiRex-2, long layout: columns known ahead, with their values over the forecast "
        "steps in --future-data (default with --future-data: the columns it shares with --data)",
    )
    parser.add_argument(
        "--future-data",
        type=Path,
        default=None,
        help="TiRex-2: table with the known-future covariates over the forecast steps (same "
        "id and timestamp columns as --data)",
    )


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that say how to read ``--data`` (shared by forecast and embed)."""
    parser.add_argument("--layout", choices=("auto", "long", "wide"), default="auto")
    parser.add_argument("--id-column", default=None, help="long layout: series id column (item_id)")
    parser.add_argument(
        "--timestamp-column", default=None, help="long layout: time column (timestamp)"
    )
    parser.add_argument("--target", default=None, help="long layout: target column (target)")
    parser.add_argument(
        "--columns",
        nargs="+",
        default=None,
        help="wide layout: the series columns (a b, or a,b)",
    )
    parser.add_argument("--time-column", default=None, help="wide layout: the time column")
    parser.add_argument("--gaps", choices=("keep", "interpolate"), default="keep")


def load_source(args: argparse.Namespace):
    """``load_series_report`` of ``args.data`` as the ``add_source_arguments`` flags say."""
    from rexforge.data.sources import column_names, load_series_report

    layout = args.layout
    if layout == "auto" and any(
        v is not None for v in (args.id_column, args.timestamp_column, args.target)
    ):
        # Naming a long-layout column means the file is long: a wrong name is then an error
        # instead of the table being read as wide.
        layout = "long"
    return load_series_report(
        args.data,
        layout=layout,
        id_column=args.id_column or "item_id",
        timestamp_column=args.timestamp_column or "timestamp",
        target_column=args.target or "target",
        columns=column_names(args.columns),
        time_column=args.time_column,
        gaps=args.gaps,
    )


def run(args: argparse.Namespace) -> int:
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
    from rexforge.forecast import tirex2_cli

    if tirex2_cli.wants_table_forecast(
        args.target, args.past_covariates, args.future_covariates, args.future_data
    ):
        tirex2_cli.forecast_table_file(
            load_model(args.model, numerics=args.numerics),
            args.data,
            args.horizon,
            args.output,
            target=args.target,
            past_covariates=args.past_covariates,
            future_covariates=args.future_covariates,
            future_data=args.future_data,
            id_column=args.id_column,
            timestamp_column=args.timestamp_column,
            batch_size=args.batch_size,
            rollout=args.rollout,
            plot=args.plot,
            unsupported=[
                "--" + flag.replace("_", "-")
                for flag in ("stream", "skip_bad", "context_length", "columns", "time_column")
                if getattr(args, flag) not in (None, False)
            ],
        )
        return 0
    if args.stream:
        return _run_streaming(args)
    report = load_source(args)
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


PARQUET_SUFFIXES = (".parquet", ".pq")
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def _to_stdout(path: Path) -> bool:
    return str(path) == "-"


def check_output_paths(args: argparse.Namespace) -> None:
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


def _run_streaming(args: argparse.Namespace) -> int:
    from rexforge.forecast.api import load_model
    from rexforge.forecast.frames import forecast_csv_streaming

    wide = [
        "--" + name.replace("_", "-")
        for name in ("plot", "columns", "time_column")
        if getattr(args, name) is not None
    ]
    if args.layout == "wide":
        wide.append("--layout wide")
    if wide:
        raise InputError(f"--stream reads long CSVs only; it cannot be used with {', '.join(wide)}")
    model = load_model(args.model, numerics=args.numerics)
    summary = forecast_csv_streaming(
        model,
        args.data,
        args.horizon,
        args.output,
        id_column=args.id_column or "item_id",
        timestamp_column=args.timestamp_column or "timestamp",
        target=args.target or "target",
        gaps=args.gaps,
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
