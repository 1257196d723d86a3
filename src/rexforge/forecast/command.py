"""``rexforge forecast``: forecast every series of a CSV/Parquet file and write a long CSV."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rexforge.errors import InputError

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="starter", help="checkpoint file/folder, or 'starter' (default)")
    parser.add_argument("--data", type=Path, required=True, help="CSV or Parquet file, long or wide")
    parser.add_argument("--horizon", type=int, required=True, help="steps to forecast")
    parser.add_argument("--output", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--plot", type=Path, default=None, help="also write a fan chart PNG")
    parser.add_argument("--layout", choices=("auto", "long", "wide"), default="auto")
    parser.add_argument("--id-column", default=None, help="long layout: series id column (item_id)")
    parser.add_argument("--timestamp-column", default=None, help="long layout: time column (timestamp)")
    parser.add_argument("--target", default=None, help="long layout: target column (target)")
    parser.add_argument("--columns", default=None, help="wide layout: comma-separated series columns")
    parser.add_argument("--time-column", default=None, help="wide layout: the time column")
    parser.add_argument("--gaps", choices=("keep", "interpolate"), default="keep")
    parser.add_argument("--skip-bad", action="store_true", help="skip invalid series, report them")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--numerics", choices=("bf16", "fp32"), default="bf16")


def run(args: argparse.Namespace) -> int:
    from rexforge.data.problems import format_problems
    from rexforge.data.sources import load_series_report
    from rexforge.forecast.api import load_model
    from rexforge.forecast.frames import forecast_series
    from rexforge.io.atomic import atomic_write_text

    if args.horizon is None or args.horizon <= 0:
        raise InputError(f"--horizon must be > 0, got {args.horizon}")
    if args.output.exists() and args.output.is_dir():
        raise InputError(f"--output {args.output} is a directory; give a CSV file path")
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    layout = args.layout
    if layout == "auto" and any(v is not None for v in (args.id_column, args.timestamp_column, args.target)):
        # Naming a long-layout column means the file is long: a wrong name is then an error
        # instead of the table being read as wide.
        layout = "long"
    report = load_series_report(
        args.data, layout=layout, id_column=args.id_column or "item_id",
        timestamp_column=args.timestamp_column or "timestamp",
        target_column=args.target or "target", columns=columns,
        time_column=args.time_column, gaps=args.gaps,
    )
    if report.problems:
        if not args.skip_bad or not report.series:
            raise InputError(f"{args.data}: {format_problems(report.problems)}")
        logger.warning("skipped %d bad series: %s", len(report.problems), format_problems(report.problems))
    model = load_model(args.model, numerics=args.numerics)
    frame = forecast_series(model, report.series, args.horizon, batch_size=args.batch_size)
    atomic_write_text(args.output, frame.to_csv(index=False))
    logger.info(
        "wrote %d rows (%d series x %d steps) to %s",
        len(frame), len(report.series), args.horizon, args.output,
    )
    if args.plot is not None:
        from rexforge.forecast.plot import fan_chart

        fan_chart(report.series, frame, args.plot)
        logger.info("wrote fan chart to %s", args.plot)
    return 0
