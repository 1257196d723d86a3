"""rexforge vs tirex-ts forecasting speed, side by side on the same random weights.

    python benchmarks/bench_forecast.py                # full grid (slow: the official path)
    python benchmarks/bench_forecast.py --quick        # a smaller grid
    python benchmarks/bench_forecast.py --quick --official-compile   # + tirex-ts compile=True
    python benchmarks/bench_forecast.py --quick --isa avx2   # as on a CPU without AVX-512/bf16
    python benchmarks/bench_forecast.py --targets --official-compile   # issue 23's cells only

Both models load the same random-weight checkpoint of the official size (tirex-35m) in the
official format. rexforge runs twice: in its default numerics ("bf16", the official rounding;
"exact" below) and in ``numerics="fast"`` (the plan ``kernels.fast`` picks here, named in the
header). Every cell reports median wall time over repeats (after one warm-up call), the ratio
official/rexforge, rexforge's achieved GFLOP/s (matmul FLOPs of the patches it runs) against
this run's fp32 matmul peak, tokens (patches through the network) per second, and the
deviation of rexforge's quantiles from the official ones in units of each series' std. The
fast "bound" is the largest speed-up any implementation moving the fast plan's weight bytes at
the measured memory bandwidth and doing the FLOPs at the measured fp32 peak could show.
"First forecast" is timed in a fresh Python process: imports, loading, padding-state cache and
one forecast. The load average (other processes share the cores) is written at start and end.
Results go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (  # noqa: E402
    ISA_CAPS,
    apply_isa_cap,
    forward_flops,
    fp32_matmul_peak,
    load_average,
    machine_info,
    median_time,
    memory_bandwidth,
)
from benchmarks.results_writer import write_result  # noqa: E402
from tests.conftest import make_context, tolerance_scale, write_official_checkpoint  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--preset", default="tirex-35m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--official-compile",
        action="store_true",
        help="also time tirex-ts with compile=True (batch 32, horizon 32; warmed up)",
    )
    parser.add_argument("--isa", choices=sorted(ISA_CAPS), default="native")
    parser.add_argument(
        "--targets", action="store_true", help="only batch 1 and 32 at horizon 32 (issue 23)"
    )
    args = parser.parse_args()
    apply_isa_cap(args.isa)
    load_at_start = load_average()

    from tirex.models.tirex import TiRexZero

    from rexforge import load_model
    from rexforge.config import TiRexConfig

    if args.targets:
        grid = [(b, c, 32) for b in (1, 32) for c in (128, 512, 2048)]
        stateful = []
    elif args.quick:
        grid = [(1, 128, 32), (1, 512, 32), (1, 2048, 32), (1, 512, 256)]
        grid += [(32, 128, 32), (32, 512, 32), (32, 2048, 32), (32, 512, 256), (256, 2048, 32)]
        stateful = [(1, 512, 256), (32, 512, 256)]
    else:
        grid = [(b, c, 32) for b in (1, 32, 256) for c in (128, 512, 2048)]
        grid += [(1, 512, 256), (32, 512, 256)]
        stateful = [(1, 512, 256), (32, 512, 256)]
    peak = fp32_matmul_peak()
    bandwidth = memory_bandwidth()
    tmp = Path(tempfile.mkdtemp())
    ckpt = write_official_checkpoint(tmp / "model.ckpt", TiRexConfig.from_name(args.preset), seed=0)

    first_call = fresh_process_first_forecast(ckpt)
    first_call_fast = fresh_process_first_forecast(ckpt, "fast")
    ours = load_model(ckpt)
    ours.forecast(make_context([100]))  # builds the padding-state cache
    fast = load_model(ckpt, numerics="fast")
    fast.forecast(make_context([100]))
    plan = fast.model.projections.plan
    official = TiRexZero.from_pretrained(str(ckpt), backend="torch", device="cpu")
    config = ours.model.config
    P = config.input_patch_size

    rows = []
    for batch, context_len, horizon in grid:
        context = make_context([context_len] * batch, seed=batch + context_len)
        t_ours, (q_ours, _) = median_time(
            lambda c=context, h=horizon: ours.forecast(c, prediction_length=h, output_type="numpy"),
            args.repeats,
        )
        t_fast, (q_fast, _) = median_time(
            lambda c=context, h=horizon: fast.forecast(c, prediction_length=h, output_type="numpy"),
            args.repeats,
        )
        # The official path is slow: fewer repeats for big cells.
        rep_off = 1 if batch * horizon >= 32 * 256 or batch >= 256 else args.repeats
        t_off, (q_off, _) = median_time(
            lambda c=context, h=horizon: official.forecast(
                c, prediction_length=h, output_type="numpy"
            ),
            rep_off,
            warmup=0 if rep_off == 1 else 1,
        )
        dev = np.abs(q_ours - q_off).max(axis=(1, 2)) / tolerance_scale(context)
        dev_fast = np.abs(q_fast - q_off).max(axis=(1, 2)) / tolerance_scale(context)
        # The exact rollout reruns the observed context plus one NaN patch per step taken.
        steps, observed = -(-horizon // P), -(-context_len // P)
        flops = batch * sum(forward_flops(config, observed + j, 1) for j in range(steps))
        tokens = batch * sum(observed + j for j in range(steps))
        moved = steps * weight_bytes(fast.model, plan, batch * observed)
        fast_floor = max(flops / 1e9 / peak, moved / 1e9 / bandwidth)
        row = {
            "batch": batch,
            "context": context_len,
            "horizon": horizon,
            "rexforge_s": round(t_ours, 4),
            "fast_s": round(t_fast, 4),
            "official_s": round(t_off, 3),
            "speedup": round(t_off / t_ours, 2),
            "fast_speedup": round(t_off / t_fast, 2),
            "tokens_per_s": round(tokens / t_ours),
            "fast_tokens_per_s": round(tokens / t_fast),
            "fast_weight_mb": round(moved / steps / 1e6, 1),
            # The largest ratio anything moving the fast plan's weight bytes at the measured
            # bandwidth and doing the FLOPs at the fp32 peak could reach here.
            "fast_speedup_bound": round(t_off / fast_floor, 1),
            "fast_dev_median": float(np.median(dev_fast)),
            "fast_dev_max": float(dev_fast.max()),
            "gflops": round(flops / t_ours / 1e9, 1),
            "peak_share": round(flops / t_ours / 1e9 / peak, 3),
            # The largest ratio any fp32 implementation doing these FLOPs could reach here.
            "speedup_bound": round(t_off / (flops / 1e9 / peak), 1),
            "dev_median": float(np.median(dev)),
            "dev_max": float(dev.max()),
        }
        rows.append(row)
        print(row, flush=True)

    # The stateful rollout (carried states) against the official (exact) rollout: speed and
    # how far its forecasts move away from the official ones.
    for batch, context_len, horizon in stateful:
        context = make_context([context_len] * batch, seed=batch + context_len)
        t_ours, (q_ours, _) = median_time(
            lambda c=context, h=horizon: ours.forecast(
                c, prediction_length=h, output_type="numpy", rollout="stateful"
            ),
            args.repeats,
        )
        t_fast, (q_fast, _) = median_time(
            lambda c=context, h=horizon: fast.forecast(
                c, prediction_length=h, output_type="numpy", rollout="stateful"
            ),
            args.repeats,
        )
        measured = {(r["batch"], r["context"], r["horizon"]): r["official_s"] for r in rows}
        official_s = measured.get((batch, context_len, horizon))
        if official_s is None:
            official_s, (q_off, _) = median_time(
                lambda c=context, h=horizon: official.forecast(
                    c, prediction_length=h, output_type="numpy"
                ),
                1,
                warmup=0,
            )
        else:
            q_off, _ = official.forecast(context, prediction_length=horizon, output_type="numpy")
        dev_fast = np.abs(q_fast - q_off).max(axis=(1, 2)) / tolerance_scale(context)
        dev = np.abs(q_ours - q_off).max(axis=(1, 2)) / tolerance_scale(context)
        row = {
            "batch": batch,
            "context": context_len,
            "horizon": horizon,
            "rollout": "stateful",
            "rexforge_s": round(t_ours, 4),
            "official_s": round(official_s, 3),
            "speedup": round(official_s / t_ours, 2),
            "fast_s": round(t_fast, 4),
            "fast_speedup": round(official_s / t_fast, 2),
            "fast_dev_median": float(np.median(dev_fast)),
            "fast_dev_max": float(dev_fast.max()),
            "dev_median": float(np.median(dev)),
            "dev_max": float(dev.max()),
        }
        rows.append(row)
        print(row, flush=True)

    compiled_rows, compile_s = [], None
    if args.official_compile:
        compiled_rows, compile_s = time_official_compiled(ckpt, ours, fast, rows, args.repeats)

    info = machine_info()
    md = [
        f"# Forecast speed: rexforge vs tirex-ts ({args.preset}, random weights, CPU)\n",
        f'`numerics="fast"` here: {plan.describe()} ({"; ".join(plan.notes)})  ',
        f"Load average at start / end (1/5/15 min, 2 cores shared with other processes): "
        f"{load_at_start} / {load_average()}  ",
        f"fp32 matmul peak measured in this run: {peak:.1f} GFLOP/s; memory copy bandwidth: "
        f"{bandwidth:.1f} GB/s  ",
        f"First forecast in a fresh process (imports, load, padding-state cache, one forecast of one "
        f"series): {first_call:.2f} s (exact), {first_call_fast:.2f} s (fast: + plan measurement)\n",
        "Medians of wall time (rexforge: 3 repeats after a warm-up; official: 3, or 1 for big cells). "
        "exact = rexforge's default numerics (the official bf16 rounding emulated in fp32). "
        "GFLOP/s: matmul FLOPs of the patches exact runs / its time (share of the fp32 peak). "
        "Bound (exact): the official time / the time these FLOPs take at the fp32 peak. "
        "Bound (fast): the official time / max(FLOPs at the fp32 peak, the fast plan's weight "
        "bytes per forward pass (MB column) at the measured copy bandwidth): the largest speed-up "
        "any implementation of that plan could show here. tok/s: patches through the network per "
        "second. Deviation = max |q_rexforge - q_official| per series / series std.\n",
        "| batch | context | horizon | rollout | exact s | fast s | tirex-ts s | exact speedup "
        "| fast speedup | bound exact / fast | fast weight MB | GFLOP/s exact (peak) "
        "| tok/s exact / fast | dev exact median / max | dev fast median / max |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        md.append(markdown_row(r))
    if compiled_rows:
        md += [
            "",
            f"## Against tirex-ts `compile=True` (warmed up; its first call, compiling, took {compile_s:.0f} s)\n",
            "| batch | context | horizon | exact s | fast s | tirex-ts compiled s | exact speedup "
            "| fast speedup |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in compiled_rows:
            md.append(
                f"| {r['batch']} | {r['context']} | {r['horizon']} | {r['rexforge_s']:.3f} | "
                f"{r['fast_s']:.3f} | {r['official_compiled_s']:.3f} | {r['speedup']:.1f}x | "
                f"{r['fast_speedup']:.1f}x |"
            )
    name = "bench_forecast" + ("" if args.isa == "native" else f"-{args.isa}")
    payload = {
        "machine": info,
        "fp32_peak_gflops": peak,
        "memory_bandwidth_gbs": bandwidth,
        "first_forecast_s": first_call,
        "first_forecast_fast_s": first_call_fast,
        "fast_plan": {"describe": plan.describe(), "notes": list(plan.notes)},
        "load_average": {"start": load_at_start, "end": load_average()},
        "rows": rows,
        "official_compiled": compiled_rows,
        "official_compile_s": compile_s,
    }
    base = write_result(name, "\n".join(md) + "\n", payload)
    print(f"wrote {base}.md")


def markdown_row(r: dict) -> str:
    def pair(a, b, fmt):
        return "-" if a is None else f"{a:{fmt}} / {b:{fmt}}"

    gflops = f"{r['gflops']} ({r['peak_share']:.0%})" if "gflops" in r else "-"
    bound = (
        f"{r['speedup_bound']:.0f}x / {r['fast_speedup_bound']:.0f}x"
        if "speedup_bound" in r
        else "-"
    )
    return (
        f"| {r['batch']} | {r['context']} | {r['horizon']} | {r.get('rollout', 'exact')} "
        f"| {r['rexforge_s']:.3f} | {r['fast_s']:.3f} | {r['official_s']:.2f} | {r['speedup']:.1f}x "
        f"| {r['fast_speedup']:.1f}x | {bound} | {r.get('fast_weight_mb', '-')} | {gflops} "
        f"| {pair(r.get('tokens_per_s'), r.get('fast_tokens_per_s'), '.0f')} "
        f"| {pair(r['dev_median'], r['dev_max'], '.1e')} "
        f"| {pair(r['fast_dev_median'], r['fast_dev_max'], '.1e')} |"
    )


def weight_bytes(model, plan, rows: int) -> int:
    """Bytes of weights one forward pass of ``rows`` tokens reads under the fast ``plan``: the
    projections (embedding, feed-forward, head) in the plan's format for that many rows
    (int8: 1 byte, bf16: 2, fp32: 4), everything else (gates, recurrence, norms) in fp32."""
    per_weight = {"int8_weight": 1, "bf16": 2, "fp32": 4}[plan.linear_for(rows)]
    projections = {
        id(m.weight): m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)
    }
    other = sum(p.numel() for p in model.parameters() if id(p) not in projections)
    return per_weight * sum(projections.values()) + 4 * other


def fresh_process_first_forecast(ckpt: Path, numerics: str = "bf16") -> float:
    """Wall time of a new Python process that imports rexforge, loads ``ckpt`` and forecasts
    one series, minus the time of an empty interpreter start."""
    code = (
        "import numpy as np, rexforge; m = rexforge.load_model({path!r}, numerics={numerics!r}); "
        "m.forecast(np.sin(np.arange(300) / 7.0)[None], prediction_length=32)"
    )

    def run(source: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", source], check=True)
        return time.perf_counter() - start

    return run(code.format(path=str(ckpt), numerics=numerics)) - run("pass")


def time_official_compiled(ckpt: Path, ours, fast, rows: list[dict], repeats: int):
    """tirex-ts with ``compile=True`` on the batch-32, horizon-32 cells (every context is
    padded to the same length officially, so one compilation serves them all)."""
    from tirex.models.tirex import TiRexZero

    compiled = TiRexZero.from_pretrained(str(ckpt), backend="torch", device="cpu", compile=True)
    cells = [r for r in rows if r["batch"] == 32 and r["horizon"] == 32 and "rollout" not in r]
    start = time.perf_counter()
    compiled.forecast(make_context([128] * 32, seed=1), prediction_length=32, output_type="numpy")
    compile_s = time.perf_counter() - start
    out = []
    for r in cells:
        context = make_context([r["context"]] * 32, seed=32 + r["context"])
        t, _ = median_time(
            lambda c=context: compiled.forecast(c, prediction_length=32, output_type="numpy"),
            repeats,
        )
        out.append(
            {
                **{k: r[k] for k in ("batch", "context", "horizon", "rexforge_s", "fast_s")},
                "official_compiled_s": round(t, 4),
                "speedup": round(t / r["rexforge_s"], 2),
                "fast_speedup": round(t / r["fast_s"], 2),
            }
        )
        print(out[-1], flush=True)
    return out, compile_s


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
