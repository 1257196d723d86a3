"""Accuracy of the fast numerics modes against the exact one, on real data.

    python benchmarks/numerics_accuracy.py [--max-series 64] [--isa native|avx2]

Needs ../shared/data (outside the repository). For every set there, a backtest on the last
``horizon`` steps of each series (up to ``--max-series`` series per set, the first ones in file
order): WQL and MASE of ``numerics="official"`` (the official operations, tirex-ts' bits on any
CPU), ``"bf16"`` (the default: the official rounding emulated in fp32) and ``"fp32"``, for the
bundled starter and for tirex-35m random weights (numerical sensitivity only: random weights
forecast badly). Reported: each fast mode's relative WQL / MASE difference to the exact mode,
and the median forecast deviation in units of each series' std.
"""

from __future__ import annotations

import argparse
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
MODES = ("official", "bf16", "fp32")


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
    rows, exact_q = [], None
    for mode in MODES:
        view = Recording(models[mode])
        start = time.perf_counter()
        metrics = backtest(view, series, horizon, windows=1, season=season).metrics
        seconds = time.perf_counter() - start
        if mode == "official":
            exact_q, exact = view.last, metrics
            std = np.array([np.nanstd(s.target[:-horizon]) or 1.0 for s in series])
        dev = np.abs(view.last - exact_q).max(axis=(1, 2)) / std
        rows.append(
            {
                "set": name,
                "series": len(series),
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


def markdown(rows: list[dict]) -> str:
    lines = [
        "# Fast numerics modes against the exact (official) mode on real data\n",
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
    parser.add_argument("--sets", default=",".join(SETS))
    args = parser.parse_args()
    apply_isa_cap(args.isa)
    if not DATA.is_dir():
        print(f"error: {DATA} not found (this benchmark needs ../shared/data)", file=sys.stderr)
        raise SystemExit(2)
    from rexforge import load_model
    from rexforge.config import TiRexConfig
    from tests.conftest import write_official_checkpoint

    random_35m = write_official_checkpoint(
        Path(tempfile.mkdtemp()) / "model.ckpt", TiRexConfig.from_name("tirex-35m")
    )
    rows = []
    for label, path in (("starter", "starter"), ("tirex-35m random", random_35m)):
        models = {mode: load_model(path, numerics=mode) for mode in MODES}
        for name in args.sets.split(","):
            rows += [{"model": label, **r} for r in run_set(models, name, args.max_series)]
    info = machine_info()
    suffix = "-avx2" if args.isa == "avx2" else ""
    base = write_result(
        f"numerics_accuracy{suffix}", markdown(rows), {"machine": info, "rows": rows}
    )
    print(f"wrote {base}.md")


if __name__ == "__main__":
    main()
