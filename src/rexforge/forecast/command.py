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
    parser.add_argument("--output", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--plot", type=Path, default=None, help="also write a fan chart PNG")
    parser.add_argument("--layout", choices=("auto", "long", "wide"), default="auto")
    parser.add_argument("--id-column", default=None, help="long layout: series id column (item_id)")
    parser.add_argument(
        "--timestamp-column", default=None, help="long layout: time column (timestamp)"
    )
    parser.add_argument("--target", default=None, help="long layout: target column (target)")
    parser.add_argument(
        "--columns", default=None, help="wide layout: comma-separated series columns"
    )
    parser.add_argument("--time-column", default=None, help="wide layout: the time column")
    parser.add_argument("--gaps", choices=("keep", "interpolate"), default="keep")
    parser.add_argument("--skip-bad", action="store_true", help="skip invalid series, report them")
    parser.add_argument(
        "--stream",
        action="store_true",
        help="long CSV only: read and forecast in chunks (bounded memory); each item's rows "
        "must be contiguous",
    )
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument(
        "--resample-strategy",
        choices=("frequency",),
        default=None,
        help="frequency: forecast long-period series downsampled (official TiRex option)",
    )
    parser.add_argument(
        "--numerics",
        choices=("official", "bf16", "fp32"),  # kernels.common.NUMERICS (no torch import here)
        default="bf16",
        help="official: tirex-ts' exact operations (its numbers on any CPU, its speed); "
        "bf16: their rounding emulated in fp32 (fast); fp32: no rounding",
    )


def run(args: argparse.Namespace) -> int:
    from rexforge.data.problems import format_problems
    from rexforge.data.sources import load_series_report
    from rexforge.forecast.api import check_prediction_length, load_model
    from rexforge.forecast.frames import forecast_series, split_forecastable
    from rexforge.io.atomic import atomic_write_text

    check_prediction_length(args.horizon, "--horizon")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.output.exists() and args.output.is_dir():
        raise InputError(f"--output {args.output} is a directory; give a CSV file path")
    if args.stream:
        return _run_streaming(args)
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    layout = args.layout
    if layout == "auto" and any(
        v is not None for v in (args.id_column, args.timestamp_column, args.target)
    ):
        # Naming a long-layout column means the file is long: a wrong name is then an error
        # instead of the table being read as wide.
        layout = "long"
    report = load_series_report(
        args.data,
        layout=layout,
        id_column=args.id_column or "item_id",
        timestamp_column=args.timestamp_column or "timestamp",
        target_column=args.target or "target",
        columns=columns,
        time_column=args.time_column,
        gaps=args.gaps,
    )
    report.series, unusable = split_forecastable(report.series)
    report.problems += unusable
    if report.problems:
        if not args.skip_bad or not report.series:
            raise InputError(f"{args.data}: {format_problems(report.problems)}")
        _warn_skipped(report.problems)
    model = load_model(args.model, numerics=args.numerics)
    frame = forecast_series(
        model,
        report.series,
        args.horizon,
        batch_size=args.batch_size,
        resample_strategy=args.resample_strategy,
    )
    atomic_write_text(args.output, frame.to_csv(index=False))
    logger.info(
        "wrote %d rows (%d series x %d steps) to %s",
        len(frame),
        len(report.series),
        args.horizon,
        args.output,
    )
    if args.plot is not None:
        from rexforge.forecast.plot import fan_chart

        fan_chart(report.series, frame, args.plot)
        logger.info("wrote fan chart to %s", args.plot)
    return 0


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
