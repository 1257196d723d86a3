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
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (  # noqa: E402
    ISA_CAPS,
    apply_isa_cap,
    describe_machine,
    fp32_matmul_peak,
    machine_info,
    median_time,
    write_result,
)


def make_step(model_forward, params, tokens, targets, quantiles):
    def step():
        for p in params:
            p.grad = None
        pred = model_forward(tokens)  # [B, N, Q, P]
        diff = targets[:, :, None, :] - pred
        loss = torch.maximum(quantiles * diff, (quantiles - 1) * diff).mean()
        loss.backward()
        return float(loss.detach())

    return step


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
    from rexforge.model.tirex import TiRexModel, count_parameters

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
        q = torch.tensor(config.quantiles)[None, None, :, None]
        timings = {}
        first_step = {}
        for kernel in ("torch_ref", "cpu_fused", "cpu_compiled"):
            model = TiRexModel(config, kernel=kernel, numerics="fp32")
            model.reset_parameters(seed=0)
            step = make_step(
                lambda t, m=model: m(t).quantiles, list(model.parameters()), tokens, targets, q
            )
            start = time.perf_counter()
            step()  # the warm-up; for cpu_compiled this compiles (once per shape)
            first_step[kernel] = time.perf_counter() - start
            timings[kernel], _ = median_time(step, args.repeats, warmup=0)
        official = TiRexZero(backend="torch", **config.to_hyper_parameters())
        official.load_state_dict(model.state_dict())

        shape_qp = (len(config.quantiles), P)

        def official_forward(t, m=official, qp=shape_qp):
            out = m._forward_model(t)  # [B, N, Q*P]
            return out.reshape(t.shape[0], t.shape[1], *qp)

        timings["official"], _ = median_time(
            make_step(official_forward, list(official.parameters()), tokens, targets, q),
            args.repeats,
        )
        n_params = count_parameters(model)
        # forward + backward ~ 6 FLOP per parameter per token (matmul-dominated)
        flops = 6 * n_params * args.batch * N
        row = {
            "preset": preset,
            "parameters": n_params,
            **{f"{k}_s": round(v, 4) for k, v in timings.items()},
            "fused_vs_ref": round(timings["torch_ref"] / timings["cpu_fused"], 2),
            "compiled_vs_ref": round(timings["torch_ref"] / timings["cpu_compiled"], 2),
            "compiled_vs_official": round(timings["official"] / timings["cpu_compiled"], 2),
            "compile_s": round(first_step["cpu_compiled"], 1),
            "fused_vs_official": round(timings["official"] / timings["cpu_fused"], 2),
            "fused_gflops": round(flops / timings["cpu_fused"] / 1e9, 1),
        }
        rows.append(row)
        print(row, flush=True)

    info = machine_info()
    md = [
        "# Training-step speed (CPU)\n",
        f"Command: `python benchmarks/bench_train.py --batch {args.batch} --context {args.context}"
        f"{'' if args.isa == 'native' else ' --isa ' + args.isa}`  ",
        describe_machine(info),
        f"fp32 matmul peak measured in this run: {peak:.1f} GFLOP/s\n",
        f"One step: forward over {args.context // 32} patches x batch {args.batch}, pinball loss, "
        f"backward. Medians of {args.repeats} steps after a warm-up. 'official' = tirex-ts's "
        "module under autograd (torch backend, bf16 cell). cpu_compiled: its first step compiles "
        "(time in the last column; Inductor caches it on disk for later processes).\n",
        "| preset | params | torch_ref s | cpu_fused s | cpu_compiled s | official s | fused vs ref "
        "| fused vs official | compiled vs ref | compiled vs official | fused GFLOP/s | compile s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        md.append(
            f"| {r['preset']} | {r['parameters']:,} | {r['torch_ref_s']:.3f} | {r['cpu_fused_s']:.3f} "
            f"| {r['cpu_compiled_s']:.3f} | {r['official_s']:.3f} | {r['fused_vs_ref']:.2f}x "
            f"| {r['fused_vs_official']:.2f}x | {r['compiled_vs_ref']:.2f}x "
            f"| {r['compiled_vs_official']:.2f}x | {r['fused_gflops']} | {r['compile_s']} |"
        )
    name = "bench_train" + ("" if args.isa == "native" else f"-{args.isa}")
    base = write_result(
        name, {"machine": info, "fp32_peak_gflops": peak, "rows": rows}, "\n".join(md) + "\n"
    )
    print(f"wrote {base}.md")


if __name__ == "__main__":
    main()
