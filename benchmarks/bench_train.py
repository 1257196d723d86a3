"""Training-step speed: rexforge kernels vs the plain autograd reference vs the official module.

    python benchmarks/bench_train.py            # tirex-35m, tirex-1m, tirex-test; batch 8, context 512
    python benchmarks/bench_train.py --isa avx2 # as on a CPU without AVX-512/native bf16

One step = forward over all patches of a (context + one patch) window, pinball loss, backward.
The official package has no training code: "official" means tirex-ts's TiRexZero module run
under autograd (its torch backend, whose sLSTM cell computes in bf16) with the same loss.
Results go to benchmarks/results/ with the machine, versions and this run's fp32 matmul peak.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (  # noqa: E402
    ISA_CAPS,
    apply_isa_cap,
    fp32_matmul_peak,
    machine_info,
    median_time,
)
from benchmarks.results_writer import write_result  # noqa: E402


def make_step(loss_fn, params, tokens, targets):
    def step():
        for p in params:
            p.grad = None
        loss = loss_fn(tokens, targets)
        loss.backward()
        return float(loss.detach())

    return step


def repeats(step, at_least: int, budget_s: float = 2.0) -> int:
    """How many timed steps: ``at_least``, or more for millisecond steps (up to ``budget_s`` of
    them), whose single timings scatter too much for a median of three."""
    start = time.perf_counter()
    step()
    return max(at_least, min(200, int(budget_s / max(time.perf_counter() - start, 1e-4))))


# rexforge's ways to run a training step: the three kernels eagerly, and the whole loss under
# torch.compile (TrainConfig.compile / `--compile`).
METHODS = ("torch_ref", "cpu_fused", "cpu_compiled", "compiled_model")
COMPILING = ("cpu_compiled", "compiled_model")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", default="tirex-35m,tirex-1m,tirex-test")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--isa", choices=sorted(ISA_CAPS), default="native")
    args = parser.parse_args()
    apply_isa_cap(args.isa)

    from tirex.models.tirex import TiRexZero

    from rexforge.config import TiRexConfig
    from rexforge.kernels.reference import slstm_torch_ref
    from rexforge.model.tirex import TiRexModel, count_parameters
    from rexforge.train.loss import pinball_loss
    from rexforge.train.objective import tokens_loss

    peak = fp32_matmul_peak()
    rows = []
    for preset in args.presets.split(","):
        config = TiRexConfig.from_name(preset)
        P = config.input_patch_size
        N = args.context // P  # input patches; targets are patches 1..N
        gen = torch.Generator().manual_seed(0)
        tokens = torch.cat(
            (torch.randn(args.batch, N, P, generator=gen), torch.ones(args.batch, N, P)), -1
        )
        targets = torch.randn(args.batch, N, P, generator=gen)
        timings = {}
        first_step = {}
        for method in METHODS:
            kernel = "torch_ref" if method == "compiled_model" else method
            model = TiRexModel(config, kernel=kernel, numerics="fp32")
            model.reset_parameters(seed=0)
            loss_fn = functools.partial(tokens_loss, model)
            if method == "compiled_model":
                loss_fn = torch.compile(
                    functools.partial(tokens_loss, model, kernel=slstm_torch_ref), dynamic=False
                )
            step = make_step(loss_fn, list(model.parameters()), tokens, targets)
            start = time.perf_counter()
            step()  # the warm-up; for the compiling methods this compiles (once per shape)
            first_step[method] = time.perf_counter() - start
            timings[method], _ = median_time(step, repeats(step, args.repeats), warmup=0)
        official = TiRexZero(backend="torch", **config.to_hyper_parameters())
        official.load_state_dict(model.state_dict())

        shape_qp = (len(config.quantiles), P)

        def official_loss(t, y, m=official, qp=shape_qp, levels=config.quantiles):
            out = m._forward_model(t)  # [B, N, Q*P]
            return pinball_loss(out.reshape(t.shape[0], t.shape[1], *qp), y, levels)

        official_step = make_step(official_loss, list(official.parameters()), tokens, targets)
        official_step()  # warm-up
        timings["official"], _ = median_time(
            official_step, repeats(official_step, args.repeats), warmup=0
        )
        n_params = count_parameters(model)
        # forward + backward ~ 6 FLOP per parameter per token (matmul-dominated)
        flops = 6 * n_params * args.batch * N
        best = min(METHODS, key=timings.get)
        row = {
            "preset": preset,
            "parameters": n_params,
            **{f"{k}_s": round(v, 4) for k, v in timings.items()},
            **{f"{m}_vs_ref": round(timings["torch_ref"] / timings[m], 2) for m in METHODS},
            **{f"{m}_vs_official": round(timings["official"] / timings[m], 2) for m in METHODS},
            **{f"{m}_compile_s": round(first_step[m], 1) for m in COMPILING},
            "best": best,
            "best_gflops": round(flops / timings[best] / 1e9, 1),
        }
        rows.append(row)
        print(row, flush=True)

    info = machine_info()
    md = [
        "# Training-step speed (CPU)\n",
        f"fp32 matmul peak measured in this run: {peak:.1f} GFLOP/s\n",
        f"One step: forward over {args.context // 32} patches x batch {args.batch}, pinball loss, "
        f"backward. Medians of {args.repeats} steps (more for fast ones, ~2 s of steps) after a warm-up. 'official' = tirex-ts's "
        "module under autograd (torch backend, bf16 cell). cpu_compiled: its first step compiles "
        "and compiled_model (the whole loss under torch.compile, `--compile`): their first step "
        "compiles (seconds in the last columns; Inductor caches it on disk for later processes). "
        "GFLOP/s: 6 x parameters x tokens / time of the fastest rexforge method.\n",
        "| preset | params | "
        + " | ".join(f"{m} s" for m in (*METHODS, "official"))
        + " | "
        + " | ".join(f"{m} vs ref" for m in METHODS[1:])
        + " | "
        + " | ".join(f"{m} vs official" for m in METHODS)
        + " | best GFLOP/s | "
        + " | ".join(f"{m} compile s" for m in COMPILING)
        + " |",
        "|---|---:|" + "---:|" * (len(METHODS) + 1 + 2 * len(METHODS) - 1 + 1 + len(COMPILING)),
    ]
    for r in rows:
        cells = [r["preset"], f"{r['parameters']:,}"]
        cells += [f"{r[m + '_s']:.3f}" for m in (*METHODS, "official")]
        cells += [f"{r[m + '_vs_ref']:.2f}x" for m in METHODS[1:]]
        cells += [f"{r[m + '_vs_official']:.2f}x" for m in METHODS]
        cells += [f"{r['best_gflops']} ({r['best']})"]
        cells += [str(r[m + "_compile_s"]) for m in COMPILING]
        md.append("| " + " | ".join(cells) + " |")
    name = "bench_train" + ("" if args.isa == "native" else f"-{args.isa}")
    base = write_result(
        name, "\n".join(md) + "\n", {"machine": info, "fp32_peak_gflops": peak, "rows": rows}
    )
    print(f"wrote {base}.md")


if __name__ == "__main__":
    main()
