"""rexforge vs tirex-ts forecasting speed, side by side on the same random weights.

    python benchmarks/bench_forecast.py                # full grid (slow: the official path)
    python benchmarks/bench_forecast.py --quick        # a smaller grid

Both models load the same random-weight checkpoint of the official size (tirex-35m) in the
official format. Every cell reports median wall time over repeats (after one warm-up call),
the ratio official/rexforge, and the deviation of rexforge's quantiles from the official
ones in units of each series' std. Results go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import fp32_matmul_peak, machine_info, median_time, write_result  # noqa: E402
from tests.conftest import make_context, tolerance_scale, write_official_checkpoint  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--preset", default="tirex-35m")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from tirex.models.tirex import TiRexZero

    from rexforge import load_model
    from rexforge.config import TiRexConfig

    if args.quick:
        grid = [(1, 512, 32), (1, 512, 256), (32, 128, 32), (32, 512, 32), (32, 2048, 32)]
        stateful = [(1, 512, 256), (32, 512, 256)]
    else:
        grid = [(b, c, 32) for b in (1, 32, 256) for c in (128, 512, 2048)]
        grid += [(1, 512, 256), (32, 512, 256)]
        stateful = [(1, 512, 256), (32, 512, 256)]
    peak = fp32_matmul_peak()
    tmp = Path(tempfile.mkdtemp())
    ckpt = write_official_checkpoint(tmp / "model.ckpt", TiRexConfig.from_name(args.preset), seed=0)

    start = time.perf_counter()
    ours = load_model(ckpt)
    ours.forecast(make_context([100]))  # includes building the padding-state cache
    first_call = time.perf_counter() - start
    official = TiRexZero.from_pretrained(str(ckpt), backend="torch", device="cpu")

    rows = []
    for batch, context_len, horizon in grid:
        context = make_context([context_len] * batch, seed=batch + context_len)
        t_ours, (q_ours, _) = median_time(
            lambda c=context, h=horizon: ours.forecast(c, prediction_length=h, output_type="numpy"), args.repeats
        )
        # The official path is slow: fewer repeats for big cells.
        rep_off = 1 if batch * horizon >= 32 * 256 or batch >= 256 else args.repeats
        t_off, (q_off, _) = median_time(
            lambda c=context, h=horizon: official.forecast(c, prediction_length=h, output_type="numpy"),
            rep_off, warmup=0 if rep_off == 1 else 1,
        )
        dev = np.abs(q_ours - q_off).max(axis=(1, 2)) / tolerance_scale(context)
        row = {
            "batch": batch, "context": context_len, "horizon": horizon,
            "rexforge_s": round(t_ours, 4), "official_s": round(t_off, 3),
            "speedup": round(t_off / t_ours, 2),
            "dev_median": float(np.median(dev)), "dev_max": float(dev.max()),
        }
        rows.append(row)
        print(row, flush=True)

    # The stateful rollout (carried states) against the official (exact) rollout: speed and
    # how far its forecasts move away from the official ones.
    for batch, context_len, horizon in stateful:
        context = make_context([context_len] * batch, seed=batch + context_len)
        t_ours, (q_ours, _) = median_time(
            lambda c=context, h=horizon: ours.forecast(c, prediction_length=h, output_type="numpy", rollout="stateful"),
            args.repeats,
        )
        measured = {(r["batch"], r["context"], r["horizon"]): r["official_s"] for r in rows}
        official_s = measured.get((batch, context_len, horizon))
        if official_s is None:
            official_s, (q_off, _) = median_time(
                lambda c=context, h=horizon: official.forecast(c, prediction_length=h, output_type="numpy"),
                1,
                warmup=0,
            )
        else:
            q_off, _ = official.forecast(context, prediction_length=horizon, output_type="numpy")
        dev = np.abs(q_ours - q_off).max(axis=(1, 2)) / tolerance_scale(context)
        row = {
            "batch": batch, "context": context_len, "horizon": horizon, "rollout": "stateful",
            "rexforge_s": round(t_ours, 4), "official_s": round(official_s, 3),
            "speedup": round(official_s / t_ours, 2),
            "dev_median": float(np.median(dev)), "dev_max": float(dev.max()),
        }
        rows.append(row)
        print(row, flush=True)

    info = machine_info()
    md = [
        f"# Forecast speed: rexforge vs tirex-ts ({args.preset}, random weights, CPU)\n",
        f"Command: `python benchmarks/bench_forecast.py{' --quick' if args.quick else ''}`  ",
        f"Machine: {info['cpu']}, {info['cores']} cores, torch threads {info['torch_threads']}; "
        f"versions {info['versions']}; git {info['git']}  ",
        f"fp32 matmul peak measured in this run: {peak:.1f} GFLOP/s  ",
        f"First forecast in this process (load + padding-state cache + forecast): {first_call:.2f} s\n",
        "Medians of wall time (rexforge: 3 repeats after a warm-up; official: 3, or 1 for big cells). "
        "Deviation = max |q_rexforge - q_official| per series / series std.\n",
        "| batch | context | horizon | rollout | rexforge s | tirex-ts s | speedup | dev median | dev max |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        md.append(
            f"| {r['batch']} | {r['context']} | {r['horizon']} | {r.get('rollout', 'exact')} | {r['rexforge_s']:.3f} | "
            f"{r['official_s']:.2f} | {r['speedup']:.1f}x | {r['dev_median']:.1e} | {r['dev_max']:.1e} |"
        )
    base = write_result("bench_forecast", {"machine": info, "fp32_peak_gflops": peak,
                        "first_forecast_s": first_call, "rows": rows}, "\n".join(md) + "\n")
    print(f"wrote {base}.md")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
