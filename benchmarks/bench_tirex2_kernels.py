"""TiRex-2's recurrence kernels on the CPU: the plain torch references against the fast ones.

    python benchmarks/bench_tirex2_kernels.py [--preset tirex2-82m] [--repeats 5]

One thread (``torch.set_num_threads(1)``). The same random weights (the model's
initialisation plus noise, so that no recurrent kernel is zero) run twice: with
``slstm_kernel=mlstm_kernel="torch_ref"`` and with ``"auto"`` (the fastest registered
kernels available here). Grid: batch 1 and 32 univariate random walks, context 512 and 2048,
horizon 32, forecast without padding the context (``pad_context=False``: the network sees
context + future_len steps, 26 or 74 patches; the forecaster's default pads every context to
2048 + 320, the context-2048 row).

Per cell: median wall times over ``repeats`` calls after one warm-up call of (a) each
recurrence kernel alone on the inputs the network gives it in its first block of that kind,
(b) the whole forecast; the speed-ups; the largest difference between the two models'
forecasts relative to each forecast's largest value; and, for scale, the same difference
between the reference's forecasts with and without 1e-7 relative noise on its sLSTM outputs. The machine's cores may be shared with
other processes: the 1-minute load average is written beside every cell.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import median_time  # noqa: E402
from benchmarks.results_writer import write_result  # noqa: E402

BATCHES, CONTEXTS, HORIZON = (1, 32), (512, 2048), 32


def build_models(preset: str):
    """(reference, fast) forecasters over the same random weights, and the fast kernels' names."""
    from rexforge.config_tirex2 import TiRex2Config
    from rexforge.forecast.tirex2_api import TiRex2Forecaster
    from rexforge.kernels.registry import kernel_name
    from rexforge.model.tirex2 import TiRex2Model

    config = TiRex2Config.from_name(preset, dropout=0.0)
    torch.manual_seed(0)
    reference = TiRex2Model(config, slstm_kernel="torch_ref", mlstm_kernel="torch_ref").eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen))
    fast = TiRex2Model(config).eval()  # "auto" kernels
    fast.load_state_dict(reference.state_dict())
    names = {kind: kernel_name(fn) for kind, fn in fast.kernels.items()}
    return TiRex2Forecaster(reference), TiRex2Forecaster(fast), names


def captured_kernel_inputs(forecaster, data: torch.Tensor) -> dict:
    """The positional and keyword arguments of the first call of each recurrence kind in one
    forecast (the first block of that kind)."""
    model, seen = forecaster.model, {}
    original = dict(model.kernels)

    def recorder(kind):
        def record(*args, **kwargs):
            seen.setdefault(kind, (args, kwargs))
            return original[kind](*args, **kwargs)

        return record

    model.kernels = {kind: recorder(kind) for kind in original}
    try:
        forecaster.forecast(data, HORIZON, pad_context=False)
    finally:
        model.kernels = original
    return seen


def kernel_times(reference, fast, data: torch.Tensor, repeats: int) -> dict:
    """Median seconds of each kind's reference and fast kernel on the network's inputs."""
    times = {}
    with torch.no_grad():
        for kind, (args, kwargs) in captured_kernel_inputs(fast, data).items():
            calls = [
                lambda fn=f.model.kernels[kind], a=args, k=kwargs: fn(*a, **k)
                for f in (reference, fast)
            ]
            ref_s, want = median_time(calls[0], repeats)
            fast_s, got = median_time(calls[1], repeats)
            error = ((got - want).abs().max() / want.abs().max().clamp_min(1e-30)).item()
            times[kind] = {"reference_s": ref_s, "fast_s": fast_s, "max_error_relative": error}
    return times


def rounding_sensitivity(reference, data: torch.Tensor, relative: float = 1e-7) -> float:
    """How far the reference forecasts move (relative to each forecast's largest value) when
    every sLSTM output gets random relative noise of ``relative``, about one fp32 rounding:
    the scale against which the fast kernels' deviation is to be read."""
    model, exact = reference.model, reference.model.kernels["slstm"]
    gen = torch.Generator().manual_seed(0)

    def noisy(*args, **kwargs):
        h = exact(*args, **kwargs)
        return h * (1 + relative * torch.randn(h.shape, generator=gen))

    want = reference.forecast(data, HORIZON, pad_context=False)
    model.kernels = {**model.kernels, "slstm": noisy}
    try:
        got = reference.forecast(data, HORIZON, pad_context=False)
    finally:
        model.kernels = {**model.kernels, "slstm": exact}
    return max(
        ((g - w).abs().amax() / w.abs().amax().clamp_min(1e-12)).item() for g, w in zip(got, want)
    )


def walks(batch: int, length: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, length, generator=gen).cumsum(-1) + 10.0


def patches(config, context: int) -> int:
    """Patches the network sees: context + future_len steps, at most context_len of context."""
    steps = min(context, config.context_len) + config.future_len
    return -(-steps // config.input_patch_size)


def cell(reference, fast, batch: int, context: int, repeats: int) -> dict:
    data = walks(batch, context, seed=batch * 10_000 + context)
    load_before = os.getloadavg()[0]
    kernels = kernel_times(reference, fast, data, repeats)
    run = {name: lambda f=f: f.forecast(data, HORIZON, pad_context=False) for name, f in
           (("reference", reference), ("fast", fast))}  # fmt: skip
    ref_s, want = median_time(run["reference"], repeats)
    fast_s, got = median_time(run["fast"], repeats)
    deviation = max(
        ((g - w).abs().amax() / w.abs().amax().clamp_min(1e-12)).item() for g, w in zip(got, want)
    )
    return {
        "batch": batch,
        "context": context,
        "patches": patches(reference.config, context),
        "kernels": kernels,
        "forecast_reference_s": ref_s,
        "forecast_fast_s": fast_s,
        "forecast_max_deviation_relative": deviation,
        "forecast_deviation_from_1e-7_noise": rounding_sensitivity(reference, data),
        "load_average": [load_before, os.getloadavg()[0]],
    }


def markdown(args, names: dict, rows: list[dict]) -> str:
    loads = [x for r in rows for x in r["load_average"]]
    lines = [
        f"# TiRex-2 recurrence kernels on the CPU: torch references vs fast ({args.preset})",
        "",
        f'Fast kernels ("auto" here): sLSTM `{names["slstm"]}`, mLSTM `{names["mlstm"]}`; '
        f"reference: `torch_ref` for both. Random weights, univariate random walks, horizon "
        f"{HORIZON}, `pad_context=False`; median of {args.repeats} calls after a warm-up "
        f"call; torch threads {torch.get_num_threads()}. Kernel times are one call of each "
        "kernel on the inputs of the network's first block of that kind. The machine's cores "
        f"are shared with other processes: load average (1 min) {min(loads):.2f} to "
        f'{max(loads):.2f} during the run, so single timings are noisy. "same from 1e-7 '
        "noise\": the reference's forecasts against themselves with every sLSTM output "
        "perturbed by 1e-7 relative noise (about one fp32 rounding): how much this random-"
        "weight network amplifies rounding, the scale for the fast kernels' deviation.",
        "",
        "| batch | context | patches | sLSTM ref / fast (ms) | sLSTM speed-up | mLSTM ref / fast (ms) "
        "| mLSTM speed-up | forecast ref / fast (s) | forecast speed-up | max forecast "
        "deviation (relative) | same from 1e-7 noise | max kernel error (relative) | load avg |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        s, m = r["kernels"]["slstm"], r["kernels"]["mlstm"]
        lines.append(
            f"| {r['batch']} | {r['context']} | {r['patches']} | "
            f"{s['reference_s'] * 1e3:.2f} / {s['fast_s'] * 1e3:.2f} | "
            f"{s['reference_s'] / s['fast_s']:.2f}x | "
            f"{m['reference_s'] * 1e3:.2f} / {m['fast_s'] * 1e3:.2f} | "
            f"{m['reference_s'] / m['fast_s']:.2f}x | "
            f"{r['forecast_reference_s']:.3f} / {r['forecast_fast_s']:.3f} | "
            f"{r['forecast_reference_s'] / r['forecast_fast_s']:.2f}x | "
            f"{r['forecast_max_deviation_relative']:.1e} | "
            f"{r['forecast_deviation_from_1e-7_noise']:.1e} | "
            f"{max(s['max_error_relative'], m['max_error_relative']):.1e} | "
            f"{r['load_average'][0]:.2f}-{r['load_average'][1]:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="tirex2-82m")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output-dir", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    reference, fast, names = build_models(args.preset)
    rows = []
    for batch in BATCHES:
        for context in CONTEXTS:
            rows.append(cell(reference, fast, batch, context, args.repeats))
            print(rows[-1], flush=True)
    text = markdown(args, names, rows)
    payload = {"preset": args.preset, "repeats": args.repeats, "kernels": names, "rows": rows}
    stem = write_result("bench_tirex2_kernels", text, payload, folder=args.output_dir)
    print(text)
    print(f"wrote {stem}.md/.json")


if __name__ == "__main__":
    main()
