"""Exact vs stateful rollout on real data: accuracy and time for long horizons.

    python benchmarks/rollout_quality.py [--model starter] [--data ../shared/data/crypto_hourly/train.csv]

Needs ../shared/data (outside the repository). Rolling-origin backtest on the last windows of
every series (the bundled starter never trained on crypto_hourly), horizons of several patches:
WQL and MASE of the official-style exact rollout and of the stateful rollout, and their times.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine_info  # noqa: E402
from benchmarks.results_writer import write_result  # noqa: E402


class WithRollout:
    """A forecaster view that always uses the given rollout."""

    def __init__(self, model, rollout: str):
        self.model, self.rollout, self.quantiles = model, rollout, model.quantiles

    def forecast(self, context, prediction_length, output_type="numpy", batch_size=256, **_):
        return self.model.forecast(
            context,
            prediction_length=prediction_length,
            output_type=output_type,
            batch_size=batch_size,
            rollout=self.rollout,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="starter")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/crypto_hourly/train.csv"))
    parser.add_argument("--horizons", default="96,192")
    parser.add_argument("--windows", type=int, default=3)
    args = parser.parse_args()
    if not args.data.is_file():
        print(
            f"error: {args.data} not found (this benchmark needs ../shared/data)", file=sys.stderr
        )
        raise SystemExit(2)

    from rexforge import load_model
    from rexforge.data.sources import load_series
    from rexforge.eval.backtest import backtest

    model = load_model(args.model)
    series = load_series(args.data)
    rows = []
    for horizon in map(int, args.horizons.split(",")):
        for rollout in ("exact", "stateful"):
            start = time.perf_counter()
            result = backtest(
                WithRollout(model, rollout), series, horizon, windows=args.windows, season=24
            )
            seconds = time.perf_counter() - start
            m = result.metrics
            row = {
                "horizon": horizon,
                "rollout": rollout,
                "wql": float(m["wql"]),
                "mase": float(m["mase"]),
                "coverage_80": float(m["coverage_80"]),
                "seconds": round(seconds, 2),
            }
            rows.append(row)
            print(row, flush=True)
    info = machine_info()
    md = [
        f"# Exact vs stateful rollout on {args.data.parent.name} ({args.model})\n",
        f"{len(series)} series, {args.windows} rolling windows per horizon (stride = horizon), season 24.\n",
        "| horizon | rollout | WQL | MASE | coverage 80% | seconds |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    md += [
        f"| {r['horizon']} | {r['rollout']} | {r['wql']:.4f} | {r['mase']:.3f} | {r['coverage_80']:.3f} | {r['seconds']} |"
        for r in rows
    ]
    base = write_result("rollout_quality", "\n".join(md) + "\n", {"machine": info, "rows": rows})
    print(f"wrote {base}.md")


if __name__ == "__main__":
    main()
