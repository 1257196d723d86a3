"""rexforge vs tirex-2 0.4.0 TiRex-2 forecasting speed on the CPU, side by side in one run.

    python benchmarks/bench_forecast_tirex2.py [--preset tirex2-82m] [--repeats 3]

Both load the same random-weight checkpoint in the official layout (config.json +
model.safetensors; tirex2-82m is the released size) from one folder: tirex-2 through its
``load_model(folder, device="cpu")`` (its pure-PyTorch CPU path), rexforge through
``rexforge.load_model``. Grid: batch 1 and 32 univariate random walks, context 512 and 2048,
horizon 32. Each cell: the median wall time of ``repeats`` calls after one warm-up call (the
reference compiles a block on its first call), the ratio tirex-2 / rexforge for rexforge's default (the reference kernels) and for
``numerics="fast"`` (the fast recurrence kernels), and the largest
deviation of rexforge's quantiles from tirex-2's in units of each series' std and relative to
each forecast's largest value, and how many rows the post-processor differenced (steady
trends, whose forecasts are integrated and so amplify small differences). Both pad every
context to context_len + future_len by default, as the reference does. The 2 cores of this
machine are shared with other processes: the load average is written beside the times.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import median_time  # noqa: E402
from benchmarks.results_writer import write_result  # noqa: E402
from tests.forecast.tirex2_reference import reference_network, save_official_folder  # noqa: E402

BATCHES, CONTEXTS, HORIZON = (1, 32), (512, 2048), 32


def walks(batch: int, length: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, length, generator=gen).cumsum(-1) + 10.0


def cell(reference, variants: dict, batch: int, context: int, repeats: int) -> dict:
    """One grid cell: tirex-2's time, and each rexforge variant's time and deviation."""
    from tirex2 import TimeseriesType

    from rexforge.forecast.tirex2_post import trending_rows

    data = walks(batch, context, seed=batch * 10_000 + context)
    items = [
        TimeseriesType(target=row[None], past_covariates=None, future_covariates=None)
        for row in data
    ]
    ref_s, want = median_time(lambda: reference.forecast(items, prediction_length=HORIZON), repeats)
    row = {"batch": batch, "context": context, "horizon": HORIZON, "tirex2_s": ref_s}
    for label, ours in variants.items():
        ours_s, got = median_time(
            lambda model=ours: model.forecast(items, prediction_length=HORIZON), repeats
        )
        row[label] = {"s": ours_s, "ratio": ref_s / ours_s, **deviations(data, got, want)}
    row["differenced_rows"] = sum(trending_rows(data))
    return row


def deviations(data: torch.Tensor, got: list, want: list) -> dict:
    """Largest |rexforge - tirex-2| per series, in its std and relative to the forecast's size
    (random weights make differenced rows' forecasts far larger than the data, where the std
    scale exaggerates)."""
    std = data.std(dim=-1).clamp_min(1e-12)  # [B]
    in_std = max(((g - w).abs().amax() / s).item() for g, w, s in zip(got, want, std))
    relative = max(
        ((g - w).abs().amax() / w.abs().amax().clamp_min(1e-12)).item() for g, w in zip(got, want)
    )
    return {"max_deviation_in_std": in_std, "max_deviation_relative": relative}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="tirex2-82m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output-dir", type=Path, default=None)
    args = parser.parse_args()

    import tirex2

    import rexforge
    from rexforge.config_tirex2 import TiRex2Config

    config = TiRex2Config.from_name(args.preset, dropout=0.0)
    rows, load = [], [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_official_folder(reference_network(config), config, Path(tmp) / "model")
        reference = tirex2.load_model(str(folder), device="cpu")
        variants = {  # the default (reference kernels) and numerics="fast" (fast kernels)
            "exact": rexforge.load_model(folder),
            "fast": rexforge.load_model(folder, numerics="fast"),
        }
        for batch in BATCHES:
            for context in CONTEXTS:
                rows.append(cell(reference, variants, batch, context, args.repeats))
                load.append(os.getloadavg()[0])
                print(rows[-1], f"load {load[-1]:.2f}", flush=True)
    markdown = report(args, rows, load, variants)
    stem = write_result(
        "bench_forecast_tirex2",
        markdown,
        {"preset": args.preset, "repeats": args.repeats, "load_average": load, "rows": rows},
        folder=args.output_dir,
    )
    print(markdown)
    print(f"wrote {stem}.md/.json")


def report(args, rows: list, load: list, variants: dict) -> str:
    from rexforge.kernels.registry import kernel_name

    kernels = {
        label: {k: kernel_name(f) for k, f in ours.model.kernels.items()}
        for label, ours in variants.items()
    }
    lines = [
        f"# TiRex-2 forecasting speed: rexforge vs tirex-2 ({args.preset}, CPU)",
        "",
        f"Random weights in the official layout, univariate random walks, horizon {HORIZON}, "
        f"median of {args.repeats} calls after a warm-up call; rexforge kernels {kernels}; "
        f"torch threads {torch.get_num_threads()}. Load average (1 min) from {min(load):.2f} "
        f"to {max(load):.2f} during the run (2 shared cores). Deviation: the largest "
        "|rexforge - tirex-2| of a series in its std / relative to the forecast's size.",
        "",
        "| batch | context | tirex-2 (s) | exact (s) | fast (s) | tirex-2 / exact | "
        "tirex-2 / fast | deviation exact (std / rel) | deviation fast (std / rel) | "
        "differenced rows |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        e, f = r["exact"], r["fast"]
        lines.append(
            f"| {r['batch']} | {r['context']} | {r['tirex2_s']:.3f} | {e['s']:.3f} | "
            f"{f['s']:.3f} | {e['ratio']:.2f}x | {f['ratio']:.2f}x | "
            f"{e['max_deviation_in_std']:.1e} / {e['max_deviation_relative']:.1e} | "
            f"{f['max_deviation_in_std']:.1e} / {f['max_deviation_relative']:.1e} | "
            f"{r['differenced_rows']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
