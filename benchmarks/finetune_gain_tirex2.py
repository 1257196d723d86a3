"""What fine-tuning a TiRex-2 model gains over zero-shot, with and without covariates (issue 24).

The TiRex-2 sibling of ``finetune_gain.py``. For every data set with covariates, every
covariate condition and every fine-tuning mode (full, freeze, lora) it writes the training part
as a long CSV and runs, as a subprocess, what a user would type::

    rexforge finetune --model BASE --data train.csv --target OT [--past-covariates A,B,...] \\
        --horizon H --mode MODE --output-dir RUN [--time-budget T]

everything else at the automatic defaults, with the zero-shot guard (``finetune_report.json``).
Then the base model (zero-shot) and ``RUN/final`` are scored by ``backtest_covariates`` on
rolling windows after the training part: WQL, MASE (the set's season) and 80% coverage. Seconds
and optimizer steps stand beside every score.

Covariate conditions: ``none`` (the target alone), ``past`` (the covariates known up to the
forecast origin: the realistic case for both sets) and, for zero-shot only, ``future`` (the same
columns given as known-future inputs, i.e. their actual values over the horizon: an oracle, what
a plan or a perfect forecast of them would give).

Sets:

* ``etth1``, ``etth2`` (``../shared/data/ett``): target OT (oil temperature), covariates the six
  load features HUFL, HULL, MUFL, MULL, LUFL, LULL; the first 14,400 rows (the standard
  train/val/test end), horizon 24, 48 windows 60 hours apart, the last ending at row 14,400 (all
  in the standard test part); training part: every row before the first window.
* ``macrodata`` (statsmodels): target realgdp, covariates realcons, realinv, realgovt, realdpi
  and unemp; quarterly 1959-2009, horizon 4, 8 windows 4 quarters apart at the end; training part:
  the 171 quarters before.

Targets (issue 24): WQL at least 10% better than zero-shot (ratio <= 0.90) with covariates on
at least two sets at the automatic defaults, and never more than 1% worse (ratio <= 1.01).

    python benchmarks/finetune_gain_tirex2.py --model starter-tirex2
    python benchmarks/finetune_gain_tirex2.py --model starter-tirex2 --modes "" --name covariates
    python benchmarks/finetune_gain_tirex2.py --sets etth1 --modes lora --time-budget 60s \\
        --extra-finetune-args "--max-steps 5" --name smoke

Runs are cached in ``<work-dir>/<set>/<covariates>/<mode>.json`` (same command: continues).
Results: ``benchmarks/results/finetune_gain_tirex2[-NAME]-<machine>-<date>.{md,json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.finetune_gain import last_error, summarize_report  # noqa: E402
from benchmarks.results_writer import write_result  # noqa: E402

log = logging.getLogger("finetune_gain_tirex2")
DATA = REPO.parent / "shared" / "data"
MODES = ("full", "freeze", "lora")
CONDITIONS = ("none", "past", "future")  # zero-shot; fine-tuning uses none and past
SETS = ("etth1", "etth2", "macrodata")
ETT_COVARIATES = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL"]
MACRO_COVARIATES = ["realcons", "realinv", "realgovt", "realdpi", "unemp"]
WQL_GAIN_TARGET = 0.90
NO_WORSE_TARGET = 1.01
CACHE_FORMAT = "rexforge-finetune-gain-tirex2/1"


@dataclass
class CovSet:
    """One series with its covariates: the full frame (``timestamp``, target, covariates), the
    rolling test windows and the training part (every row before the first window)."""

    name: str
    frame: pd.DataFrame
    target: str
    covariates: list[str]
    horizon: int
    windows: int
    stride: int
    season: int
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def first_cutoff(self) -> int:
        return len(self.frame) - self.horizon - (self.windows - 1) * self.stride

    def train_frame(self) -> pd.DataFrame:
        return self.frame.iloc[: self.first_cutoff]

    def items(self, condition: str):
        """The one ``CovariateItem`` as the condition gives it to the model."""
        from rexforge.eval.covariates import CovariateItem

        cov = self.frame[self.covariates].to_numpy(np.float64).T
        return [
            CovariateItem(
                item_id=self.name,
                target_names=[self.target],
                targets=self.frame[[self.target]].to_numpy(np.float64).T,
                past=cov if condition == "past" else None,
                future=cov if condition == "future" else None,
            )
        ]

    def fingerprint(self) -> str:
        digest = hashlib.sha256(f"{self.name}|{self.horizon}|{self.windows}|{self.stride}".encode())
        digest.update(pd.util.hash_pandas_object(self.frame, index=False).values.tobytes())
        return digest.hexdigest()[:16]


def load_set(name: str, data_dir: Path) -> CovSet | str:
    """The set, or why it is skipped."""
    if name in ("etth1", "etth2"):
        path = data_dir / "ett" / f"ETT{name[3:].lower()}.csv"
        if not path.is_file():
            return f"{path} not found"
        frame = pd.read_csv(path).iloc[:14400].rename(columns={"date": "timestamp"})
        return CovSet(name, frame, "OT", ETT_COVARIATES, 24, 48, 60, 24, str(path))
    try:
        import statsmodels.api as sm
    except ImportError:
        return "statsmodels is not installed"
    data = sm.datasets.macrodata.load_pandas().data
    stamps = pd.PeriodIndex.from_fields(
        year=data["year"].astype(int), quarter=data["quarter"].astype(int), freq="Q"
    ).to_timestamp()
    frame = data[["realgdp", *MACRO_COVARIATES]].assign(timestamp=stamps.astype(str))
    return CovSet(name, frame, "realgdp", MACRO_COVARIATES, 4, 8, 4, 4, "statsmodels macrodata")


def score(forecaster, cset: CovSet, condition: str, batch_size: int = 64) -> dict:
    """WQL, MASE and 80% coverage over the set's windows, and the seconds it took."""
    from rexforge.eval.covariates import backtest_covariates

    t0 = time.perf_counter()
    res = backtest_covariates(
        forecaster,
        cset.items(condition),
        cset.horizon,
        windows=cset.windows,
        stride=cset.stride,
        season=cset.season,
        batch_size=batch_size,
    )
    metrics = {m: float(res.metrics[m]) for m in ("wql", "mase", "coverage_80")}
    return {**metrics, "seconds": round(time.perf_counter() - t0, 2)}


def read_cache(path: Path, key: dict) -> dict | None:
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())
    return doc if doc.get("format") == CACHE_FORMAT and doc.get("key") == key else None


def write_cache(path: Path, key: dict, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"format": CACHE_FORMAT, "key": key, "row": row}, indent=2) + "\n")
    tmp.replace(path)


def finetune_command(model: str, cset: CovSet, condition: str, mode: str, csv: Path, args):
    """The finetune options: model, data, target, covariates, horizon, mode, and the budget."""
    cmd = ["--model", model, "--data", str(csv), "--target", cset.target]
    if condition == "past":
        cmd += ["--past-covariates", ",".join(cset.covariates)]
    cmd += ["--horizon", str(cset.horizon), "--mode", mode]
    if args.time_budget:
        cmd += ["--time-budget", args.time_budget]
    return cmd + shlex.split(args.extra_finetune_args)


def one_run(model: str, sha: str, cset: CovSet, condition: str, mode: str, args) -> dict:
    """Fine-tune, score ``final/`` and cache one (set, condition, mode) row."""
    import rexforge

    folder = args.work_dir / cset.name
    csv = folder / "train.csv"
    if not csv.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        cset.train_frame().assign(item_id=cset.name).to_csv(csv, index=False)
    options = finetune_command(model, cset, condition, mode, csv, args)
    key = {"data": cset.fingerprint(), "base": sha, "options": options[4:]}
    cache = folder / condition / f"{mode}.json"
    cached = None if args.overwrite else read_cache(cache, key)
    if cached is not None:
        return {**cached["row"], "cached": True}
    run_dir = folder / condition / mode
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "rexforge.cli", "finetune", *options, "--output-dir", str(run_dir)]
    log.info("$ %s", shlex.join(cmd))
    log_path = folder / condition / f"{mode}.log"
    t0 = time.perf_counter()
    with open(log_path, "w") as handle:
        rc = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT).returncode
    row = {
        "command": shlex.join(["rexforge", *cmd[3:]]),
        "returncode": rc,
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }
    if rc != 0 or not (run_dir / "finetune_report.json").is_file():
        row.update(status="failed", error=last_error(log_path))
        log.warning("%s %s %s failed: %s", cset.name, condition, mode, row["error"])
        return {**row, "cached": False}
    row.update(status="ok", **summarize_report(run_dir))
    row["fine_tuned"] = score(rexforge.load_model(run_dir / "final"), cset, condition)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    write_cache(cache, key, row)
    return {**row, "cached": False}


def _n(value, fmt: str = ".4g") -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and np.isnan(value))
        else format(value, fmt)
    )


def tables(zero: dict, runs: list[dict]) -> tuple[list[str], list[dict]]:
    """The Markdown rows (zero-shot, then every run) and the verdict rows."""
    md = [
        "| set | covariates | model | WQL | MASE | cov. 80% | WQL / zero-shot (same inputs) | "
        "WQL / zero-shot target-only | steps | seconds (train + score) | guard |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for (name, cond), z in zero.items():
        base = zero[(name, "none")]["wql"]
        md.append(
            f"| {name} | {cond} | zero-shot | {_n(z['wql'])} | {_n(z['mase'])} | "
            f"{_n(z['coverage_80'], '.2f')} | 1 | {_n(z['wql'] / base)} | 0 | {z['seconds']:.1f} | - |"
        )
    verdict = []
    for r in runs:
        z = zero[(r["set"], r["condition"])]
        base = zero[(r["set"], "none")]["wql"]
        if r["status"] != "ok":
            md.append(f"| {r['set']} | {r['condition']} | {r['mode']} | failed: {r['error']} |")
            continue
        f = r["fine_tuned"]
        ratio = f["wql"] / z["wql"]
        seconds = f"{r['wall_seconds']:.0f} + {f['seconds']:.1f}"
        guard = "base kept" if r.get("kept") == "base" else f"{r.get('kept')} kept"
        md.append(
            f"| {r['set']} | {r['condition']} | {r['mode']} | {_n(f['wql'])} | {_n(f['mase'])} | "
            f"{_n(f['coverage_80'], '.2f')} | {_n(ratio)} | {_n(f['wql'] / base)} | "
            f"{r.get('steps')} | {seconds} | {guard} |"
        )
        verdict.append(
            {
                "set": r["set"],
                "condition": r["condition"],
                "mode": r["mode"],
                "ratio": ratio,
                "ratio_target_only": f["wql"] / base,
            }
        )
    return md, verdict


def verdict_lines(verdict: list[dict]) -> list[str]:
    with_cov = [v for v in verdict if v["condition"] == "past"]
    gained = sorted({v["set"] for v in with_cov if v["ratio"] <= WQL_GAIN_TARGET})
    worse = [v for v in verdict if v["ratio"] > NO_WORSE_TARGET]
    lines = [
        f"* WQL >= 10% better than zero-shot with covariates (ratio <= {WQL_GAIN_TARGET}) on "
        f"{len(gained)} set(s){': ' + ', '.join(gained) if gained else ''} "
        f"(target: at least two) -> {'met' if len(gained) >= 2 else 'NOT met'}.",
        f"* Never more than 1% worse than zero-shot (ratio <= {NO_WORSE_TARGET}): "
        + (
            "met"
            if not worse
            else "NOT met: "
            + ", ".join(f"{v['set']} {v['condition']} {v['mode']} {v['ratio']:.3f}" for v in worse)
        )
        + ".",
    ]
    strict = sorted({v["set"] for v in with_cov if v["ratio_target_only"] <= WQL_GAIN_TARGET})
    lines.append(
        "* Stricter, against the better zero-shot (the target alone): fine-tuned with covariates "
        f"WQL <= {WQL_GAIN_TARGET} x zero-shot target-only on {len(strict)} set(s)"
        f"{': ' + ', '.join(strict) if strict else ''}."
    )
    return lines


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="starter-tirex2", help="base TiRex-2 model")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--modes", default=",".join(MODES), help='comma list; "" = zero-shot only')
    parser.add_argument("--conditions", default="none,past", help="fine-tuning: none,past")
    parser.add_argument("--time-budget", default=None, help="finetune --time-budget (e.g. 2m)")
    parser.add_argument("--extra-finetune-args", default="", help="debug: appended to finetune")
    parser.add_argument("--work-dir", type=Path, default=REPO / "runs" / "finetune_gain_tirex2")
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--name", default="")
    args = parser.parse_args(argv)
    args.sets = [s for s in args.sets.split(",") if s]
    args.modes = [m for m in args.modes.split(",") if m]
    args.conditions = [c for c in args.conditions.split(",") if c]
    bad = sorted(set(args.sets) - set(SETS)) + sorted(set(args.modes) - set(MODES))
    bad += sorted(set(args.conditions) - {"none", "past"})
    if bad:
        parser.error(f"unknown: {', '.join(bad)}")
    return args


def run_all(args, base, sha: str, write) -> None:
    """Zero-shot scores per (set, condition), then the fine-tuning rows; ``write(zero, runs,
    skipped, sets)`` after every set (a stopped run leaves the finished sets' results)."""
    zero, runs, skipped, sets = {}, [], {}, {}
    for name in args.sets:
        cset = load_set(name, args.data_dir)
        if isinstance(cset, str):
            skipped[name] = cset
            log.warning("%s skipped: %s", name, cset)
            continue
        sets[name] = cset
        for cond in CONDITIONS:
            zero[(name, cond)] = score(base, cset, cond)
            log.info("%s zero-shot %s: %s", name, cond, zero[(name, cond)])
        for cond in args.conditions:
            for mode in args.modes:
                row = one_run(args.model, sha, cset, cond, mode, args)
                runs.append({"set": name, "condition": cond, "mode": mode, **row})
                log.info("%s %s %s: %s", name, cond, mode, row.get("fine_tuned", row.get("error")))
        write(zero, runs, skipped, sets)


def markdown(args, zero, runs, skipped, sets, seconds: float, threads: int) -> list[str]:
    md_rows, verdict = tables(zero, runs)
    set_lines = [
        f"* `{s.name}` ({s.source}): target {s.target}, covariates {', '.join(s.covariates)}; "
        f"{len(s.frame)} steps, horizon {s.horizon}, {s.windows} windows {s.stride} apart, "
        f"training part the first {s.first_cutoff} steps; MASE season {s.season}."
        for s in sets.values()
    ]
    return [
        f"# Fine-tuning gain, TiRex-2 ({args.model})",
        "",
        *set_lines,
        *(f"* `{k}` skipped: {v}" for k, v in skipped.items()),
        "",
        "Covariates: `none` = the target alone; `past` = the covariates up to the forecast origin; "
        "`future` (zero-shot only) = the covariates given as known-future inputs over the horizon "
        "too (their actual values: an oracle). Fine-tuning at the automatic defaults"
        + (f", `--time-budget {args.time_budget}`" if args.time_budget else "")
        + (f", extra `{args.extra_finetune_args}`" if args.extra_finetune_args else "")
        + "; seconds = the finetune command's wall time + scoring.",
        "",
        *md_rows,
        "",
        *(verdict_lines(verdict) if verdict else []),
        "",
        f"Total {seconds:.0f} s; torch threads {threads}; "
        f"{sum(bool(r.get('cached')) for r in runs)} of {len(runs)} fine-tuning rows read from "
        "the work folder's cache (their seconds are those of the run that made them).",
    ]


def main(argv=None) -> int:
    import torch

    import rexforge
    from benchmarks.eval_zero_shot import model_file_sha
    from rexforge.assets import resolve_starter

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args = parse_args(argv)
    torch.set_num_threads(1)
    base = rexforge.load_model(args.model)
    sha = model_file_sha(str(resolve_starter(args.model))) or args.model
    started = time.perf_counter()
    bench = "finetune_gain_tirex2" + (f"-{args.name}" if args.name else "")
    keys = ("target", "covariates", "horizon", "windows", "stride", "first_cutoff")

    def write(zero, runs, skipped, sets):
        seconds = time.perf_counter() - started
        md = markdown(args, zero, runs, skipped, sets, seconds, torch.get_num_threads())
        payload = {
            "model": args.model,
            "model_sha256": sha,
            "sets": {
                k: {**{f: getattr(s, f) for f in keys}, "fingerprint": s.fingerprint()}
                for k, s in sets.items()
            },
            "skipped": skipped,
            "zero_shot": {f"{k[0]}/{k[1]}": v for k, v in zero.items()},
            "runs": runs,
            "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        stem = write_result(bench, "\n".join(md) + "\n", payload)
        print("\n".join(md))
        print(f"wrote {stem}.md/.json")

    run_all(args, base, sha, write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
