"""``rexforge evaluate``: backtest models and baselines on a file or a competition data set.

Examples::

    rexforge evaluate --data m3-monthly --baselines naive,seasonal-naive,auto-ets   # + starter
    rexforge evaluate --data m3-monthly --model none     # baselines only
    rexforge evaluate --model runs/tirex/final --data sales.csv --horizon 14 --windows 3 \\
        --target sales --id-column store --output-dir eval-out
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from rexforge.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_BASELINES = "naive,seasonal_naive"


class DeprecatedSpelling(argparse.Action):
    """An old spelling of an option: stores into the new option's ``dest`` and warns once per
    use, naming the new spelling."""

    def __init__(self, option_strings, dest, new_spelling: str, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new_spelling = new_spelling

    def __call__(self, parser, namespace, values, option_string=None):
        log.warning(
            "%s is deprecated here; use %s (same meaning)", option_string, self.new_spelling
        )
        setattr(namespace, self.dest, values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``evaluate`` options to ``parser``."""
    from rexforge.eval.baselines import list_baselines
    from rexforge.eval.datasets import list_datasets

    parser.add_argument(
        "--model",
        action="append",
        default=None,
        metavar="PATH",
        help="model checkpoint (file or folder, or 'starter') to evaluate, or a baseline name; "
        "repeatable; default: the bundled starter model; 'none' for baselines only "
        f"(baselines: {', '.join(list_baselines())})",
    )
    parser.add_argument(
        "--data",
        required=True,
        metavar="FILE|NAME",
        help=f"CSV/Parquet file, or a competition data set: {', '.join(list_datasets())}",
    )
    parser.add_argument(
        "--horizon", type=int, default=None, help="forecast horizon (default: the data set's)"
    )
    parser.add_argument("--windows", type=int, default=1, help="rolling windows per series")
    parser.add_argument(
        "--stride", type=int, default=None, help="steps between windows (default: horizon)"
    )
    parser.add_argument(
        "--truncate-context",
        type=int,
        default=None,
        metavar="N",
        help="give every forecaster only the last N points before each cutoff (default: all "
        "of them; MASE still scales by the whole history). Not the window a model pads or "
        "cuts every context to: that is its train_ctx_len, which finetune --context-length sets",
    )
    # The old spelling, still accepted (commands written with it keep working) but hidden: it
    # read as finetune's --context-length, which sets the model's padded window.
    parser.add_argument(
        "--context-length",
        dest="truncate_context",
        type=int,
        action=DeprecatedSpelling,
        new_spelling="--truncate-context",
        help=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--baselines",
        default=DEFAULT_BASELINES,
        help=f"comma-separated baselines to add, or 'none' (default: {DEFAULT_BASELINES})",
    )
    parser.add_argument(
        "--season",
        "--season-length",
        dest="season",
        type=int,
        default=None,
        help="seasonal period for MASE and seasonal naive (default: the data set's official "
        "one, else from the frequency: hourly 24, daily 7, business-daily 5, weekly 52 where "
        "the median series holds 104 weeks (else 1, the M4 convention), monthly 12, "
        "quarterly 4, yearly 1)",
    )
    parser.add_argument("--output-dir", type=Path, default=None, help="write tables and plots here")
    parser.add_argument("--no-plots", action="store_true", help="skip plots in --output-dir")
    parser.add_argument(
        "--target", default=None, help="file: target column (with covariates: a,b for several)"
    )
    parser.add_argument(
        "--past-covariates",
        default=None,
        metavar="COL[,COL]",
        help="file, long layout: past-only covariate columns, given to models that take "
        "covariates (TiRex-2); other forecasters use the target alone",
    )
    parser.add_argument(
        "--future-covariates",
        default=None,
        metavar="COL[,COL]",
        help="file, long layout: known-future covariate columns; each window's model gets "
        "their values through the test window, never the test window's target",
    )
    parser.add_argument("--id-column", default=None, help="file: series id column (long layout)")
    parser.add_argument(
        "--timestamp-column", default=None, help="file: timestamp (or, wide layout, time) column"
    )
    parser.add_argument(
        "--columns",
        nargs="+",
        default=None,
        help="file: the series columns, wide layout (a b, or a,b)",
    )
    parser.add_argument("--limit", type=int, default=None, help="use only the first N series")
    parser.add_argument("--batch-size", type=int, default=256, help="series per forecast batch")


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _load_data(args) -> tuple[list, int | None, int | None, str]:
    """Return (series, official horizon or None, official season or None, data label)."""
    from rexforge.eval.datasets import is_dataset, list_datasets, load_dataset

    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be >= 1, got {args.limit}")
    path = Path(args.data)
    if path.exists():
        from rexforge.data.sources import load_series

        if args.horizon is None:
            raise InputError(f"--horizon is required for file data ({path.name})")

        from rexforge.data.sources import column_names

        columns = column_names(args.columns)
        if columns:  # wide: one column per series, an optional time column
            kwargs = {"layout": "wide", "columns": columns, "time_column": args.timestamp_column}
        else:  # long when a long-layout column is named, so a typo is an error, not "wide"
            named = args.id_column is not None or args.target is not None
            kwargs = {
                "layout": "long" if named else "auto",
                "id_column": args.id_column,
                "timestamp_column": args.timestamp_column,
                "target_column": args.target,
            }
        series = load_series(path, **{k: v for k, v in kwargs.items() if v is not None})
        if args.limit is not None:
            series = series[: args.limit]
        return list(series), None, None, path.name
    if is_dataset(args.data):
        data = load_dataset(args.data, limit=args.limit)
        return data.full_series(), data.horizon, data.season, data.name
    raise InputError(
        f"--data {args.data!r} is neither an existing file nor a known data set "
        f"({', '.join(list_datasets())})"
    )


def _load_covariate_items(args):
    """The items of a file evaluated with covariates (``rexforge.eval.covariates``), or None
    when no covariate option is given."""
    if args.past_covariates is None and args.future_covariates is None:
        return None
    from rexforge.eval.covariates import load_items

    if not Path(args.data).is_file():
        raise InputError("--past-covariates/--future-covariates need --data FILE (a long table)")
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit must be >= 1, got {args.limit}")
    return load_items(
        args.data,
        id_column=args.id_column,
        timestamp_column=args.timestamp_column,
        target=_split(args.target) or None,
        past_covariates=_split(args.past_covariates),
        future_covariates=_split(args.future_covariates),
        limit=args.limit,
    )


def _build_forecasters(args, season: int) -> list[tuple[str, object]]:
    from rexforge.eval.baselines import get_baseline, is_baseline

    forecasters: list[tuple[str, object]] = []
    # Omitted --model means the bundled starter, as in every other command; "none" opts out.
    specs = ["starter"] if args.model is None else args.model
    if "none" in (spec.strip().lower() for spec in specs):
        if len(specs) > 1:
            raise InputError("--model none cannot be combined with other --model values")
        specs = []
    for spec in specs:
        if is_baseline(spec):
            forecasters.append((spec.replace("-", "_"), get_baseline(spec, season=season)))
            continue
        from rexforge.io.hub import is_hub_id

        if spec != "starter" and not Path(spec).exists() and not is_hub_id(spec):
            raise InputError(
                f"--model {spec!r} is neither an existing path, a hub id nor a known baseline"
            )
        import rexforge

        forecasters.append((str(spec), rexforge.load_model(spec)))
    extra = [] if args.baselines.strip().lower() == "none" else _split(args.baselines)
    for name in extra:
        forecasters.append((name.replace("-", "_"), get_baseline(name, season=season)))
    if not forecasters:
        raise InputError("nothing to evaluate: --model none and --baselines none")
    # Unique display names: a repeated name gets a numeric suffix.
    seen: dict[str, int] = {}
    unique = []
    for name, f in forecasters:
        seen[name] = seen.get(name, 0) + 1
        unique.append((name if seen[name] == 1 else f"{name}_{seen[name]}", f))
    return unique


def run(args: argparse.Namespace) -> int:
    """Run the backtests, print the metrics table, and write the report if asked."""
    from rexforge.eval import report
    from rexforge.eval.backtest import backtest, dominant_freq, typical_length
    from rexforge.eval.covariates import backtest_covariates
    from rexforge.eval.metrics import get_seasonality

    if args.truncate_context is not None and args.truncate_context < 1:
        raise InputError(f"--truncate-context must be >= 1, got {args.truncate_context}")
    items = _load_covariate_items(args)  # None without covariate options
    if items is None:
        series, official_horizon, official_season, label = _load_data(args)
    else:
        series = [s for item in items for s in item.target_series()]
        official_horizon, official_season, label = None, None, Path(args.data).name
    if not series:
        raise InputError(f"--data {args.data!r} holds no series")
    horizon = args.horizon if args.horizon is not None else official_horizon
    if horizon is None:
        raise InputError(f"--horizon is required for file data ({label})")
    if args.season is not None and args.season < 1:
        raise InputError(f"--season must be >= 1, got {args.season}")
    season = (
        args.season
        or official_season
        or get_seasonality(dominant_freq(series), default=1, history=typical_length(series))
    )
    forecasters = _build_forecasters(args, season)

    results = []
    for name, forecaster in forecasters:
        start = time.perf_counter()
        run_backtest = backtest if items is None else backtest_covariates
        result = run_backtest(
            forecaster,
            series if items is None else items,
            horizon,
            windows=args.windows,
            stride=args.stride,
            context_length=args.truncate_context,
            season=season,
            batch_size=args.batch_size,
            name=name,
        )
        log.info(
            "%s: %d series x %d window(s) in %.1f s",
            name,
            len(series),
            args.windows,
            time.perf_counter() - start,
        )
        results.append(result)

    table = report.metrics_table(results)
    stride = args.stride or horizon
    report.print_table(
        table,
        title=f"{label}: {len(series)} series, horizon {horizon}, {args.windows} window(s), "
        f"stride {stride}, season {season}",
    )
    if "seasonal_naive" in table.index and len(table) > 1:
        report.print_table(
            report.relative_table(table, "seasonal_naive"), title="\nrelative to seasonal_naive"
        )
    if args.output_dir is not None:
        paths = report.write_report(
            results,
            args.output_dir,
            series=series,
            plots=not args.no_plots,
            title=f"Evaluation on {label}",
        )
        log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return 0
