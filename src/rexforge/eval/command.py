"""``rexforge evaluate``: backtest models and baselines on a file or a competition data set.

Examples::

    rexforge evaluate --data m3-monthly --baselines naive,seasonal-naive,auto-ets   # + starter
    rexforge evaluate --data m3-monthly --model none     # baselines only
    rexforge evaluate --model runs/tirex/final --data sales.csv --horizon 14 --windows 3 \\
        --target sales --id-column store --output-dir eval-out
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from types import SimpleNamespace

from rexforge.cli_parser import Spelling
from rexforge.errors import InputError

log = logging.getLogger(__name__)

# The old spelling, still accepted (commands and recipes written with it keep working) but not
# shown: it read as finetune's --context-length, which sets the model's padded window.
DEPRECATED_FLAGS = {"--context-length": "--truncate-context"}
SPELLINGS = {
    "model": Spelling(repeatable=True),
    "season": Spelling(flags=("--season", "--season-length")),
}


def help_values() -> dict[str, str]:
    """What the help of ``evaluate`` lists from the registries."""
    from rexforge.eval.baselines import list_baselines
    from rexforge.eval.datasets import list_datasets

    return {"baselines": ", ".join(list_baselines()), "datasets": ", ".join(list_datasets())}


def evaluate(
    *,
    data: str,
    model: list[str] | None = None,
    horizon: int | None = None,
    windows: int = 1,
    stride: int | None = None,
    truncate_context: int | None = None,
    baselines: str = "naive,seasonal_naive",
    season: int | None = None,
    output_dir: Path | None = None,
    no_plots: bool = False,
    target: str | None = None,
    past_covariates: list[str] | None = None,
    future_covariates: list[str] | None = None,
    id_column: str | None = None,
    timestamp_column: str | None = None,
    columns: list[str] | None = None,
    limit: int | None = None,
    batch_size: int = 256,
) -> int:
    """Backtest models and baselines, print the metrics table and write the report if asked.

    Args:
        data: CSV/Parquet file, or a competition data set: {datasets}
        model: model checkpoint (file or folder, or 'starter') to evaluate, or a baseline name;
            repeatable; default: the bundled starter model; 'none' for baselines only
            (baselines: {baselines})
        horizon: forecast horizon (default: the data set's)
        windows: rolling windows per series
        stride: steps between windows (default: horizon)
        truncate_context: give every forecaster only the last N points before each cutoff
            (default: all of them; MASE still scales by the whole history). Not the window a
            model pads or cuts every context to: that is its train_ctx_len, which finetune
            --context-length sets
        baselines: comma-separated baselines to add, or 'none'
        season: seasonal period for MASE and seasonal naive (default: the data set's official
            one, else from the frequency: hourly 24, daily 7, business-daily 5, weekly 52 where
            the median series holds 104 weeks (else 1, the M4 convention), monthly 12,
            quarterly 4, yearly 1)
        output_dir: write tables and plots here
        no_plots: skip plots in --output-dir
        target: file: target column (with covariates: a,b for several)
        past_covariates: file, long layout: past-only covariate columns (a b, or a,b), given
            to models that take covariates (TiRex-2); other forecasters use the target alone
        future_covariates: file, long layout: known-future covariate columns; each window's
            model gets their values through the test window, never the test window's target
        id_column: file: series id column (long layout)
        timestamp_column: file: timestamp (or, wide layout, time) column
        columns: file: the series columns, wide layout (a b, or a,b)
        limit: use only the first N series
        batch_size: series per forecast batch
    """
    args = SimpleNamespace(**locals())  # first: the parameters only

    items = _load_covariate_items(args)  # None without covariate options
    series, horizon, season, label = _resolve(args, items)
    forecasters = _build_forecasters(args, season)
    results = [
        _backtest(args, name, forecaster, series, items, horizon, season)
        for name, forecaster in forecasters
    ]
    _report(args, results, series, horizon, season, label)
    return 0


def _backtest(args, name: str, forecaster, series: list, items, horizon: int, season: int):
    """One forecaster's backtest (``backtest_covariates`` where the file has covariates)."""
    from rexforge.eval.backtest import backtest
    from rexforge.eval.covariates import backtest_covariates

    start = time.perf_counter()
    result = (backtest if items is None else backtest_covariates)(
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
    elapsed = time.perf_counter() - start
    log.info("%s: %d series x %d window(s) in %.1f s", name, len(series), args.windows, elapsed)
    return result


def _split(values: str | list[str] | None) -> list[str]:
    """Names given as ``a,b``, ``a b`` or a list of either (``column_names``)."""
    from rexforge.data.sources import column_names

    return column_names(values) or []


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
        from rexforge.assets import is_starter
        from rexforge.io.hub import is_hub_id

        if not is_starter(spec) and not Path(spec).exists() and not is_hub_id(spec):
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


def _resolve(args: SimpleNamespace, items) -> tuple[list, int, int, str]:
    """(series, horizon, season, data label) of the command, checked; ``items``: the
    covariate items of the file, or None."""
    from rexforge.eval.backtest import dominant_freq, typical_length
    from rexforge.eval.metrics import get_seasonality

    if args.truncate_context is not None and args.truncate_context < 1:
        raise InputError(f"--truncate-context must be >= 1, got {args.truncate_context}")
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
    return series, horizon, season, label


def _report(
    args: SimpleNamespace, results: list, series: list, horizon: int, season: int, label: str
):
    """Print the metrics tables; write the report to --output-dir if given."""
    from rexforge.eval import report

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
