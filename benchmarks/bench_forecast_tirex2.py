"""rexforge vs tirex-2 0.4.0 TiRex-2 forecasting speed on the CPU, side by side in one run.

    python benchmarks/bench_forecast_tirex2.py [--preset tirex2-82m] [--repeats 3]

Both load the same random-weight checkpoint in the official layout (config.json +
model.safetensors; tirex2-82m is the released size) from one folder: tirex-2 through its
``load_model(folder, device="cpu")`` (its pure-PyTorch CPU path), rexforge through
``rexforge.load_model``. Grid: batch 1 and 32 univariate random walks, context 512 and 2048,
horizon 32. Each cell: the median wall time of ``repeats`` calls after one warm-up call (the
reference compiles a block on its first call), the ratio tirex-2 / rexforge, and the largest
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


def cell(reference, ours, batch: int, context: int, repeats: int) -> dict:
    from tirex2 import TimeseriesType

    from rexforge.forecast.tirex2_post import trending_rows

    data = walks(batch, context, seed=batch * 10_000 + context)
    items = [
        TimeseriesType(target=row[None], past_covariates=None, future_covariates=None)
        for row in data
    ]
    ref_s, want = median_time(lambda: reference.forecast(items, prediction_length=HORIZON), repeats)
    ours_s, got = median_time(lambda: ours.forecast(items, prediction_length=HORIZON), repeats)
    std = data.std(dim=-1).clamp_min(1e-12)  # [B]
    deviation = max(((g - w).abs().amax() / s).item() for g, w, s in zip(got, want, std))
    # Relative to each forecast's own size: random weights make the forecasts of differenced
    # (trending) rows far larger than the data, where the std scale above exaggerates.
    relative = max(
        ((g - w).abs().amax() / w.abs().amax().clamp_min(1e-12)).item() for g, w in zip(got, want)
    )
    trending = sum(trending_rows(data))
    return {
        "batch": batch,
        "context": context,
        "horizon": HORIZON,
        "tirex2_s": ref_s,
        "rexforge_s": ours_s,
        "ratio": ref_s / ours_s,
        "max_deviation_in_std": deviation,
        "max_deviation_relative": relative,
        "differenced_rows": trending,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="tirex2-82m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output-dir", type=Path, default=None)
    parser.add_argument(
        "--numerics",
        default=None,
        help="rexforge's load_model numerics (fast: the fast recurrence kernels; default: the "
        "reference kernels)",
    )
    args = parser.parse_args()

    import tirex2

    import rexforge
    from rexforge.config_tirex2 import TiRex2Config
    from rexforge.kernels.registry import kernel_name

    config = TiRex2Config.from_name(args.preset, dropout=0.0)
    rows, load = [], [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_official_folder(reference_network(config), config, Path(tmp) / "model")
        reference = tirex2.load_model(str(folder), device="cpu")
        ours = rexforge.load_model(folder, **({"numerics": args.numerics} if args.numerics else {}))
        for batch in BATCHES:
            for context in CONTEXTS:
                rows.append(cell(reference, ours, batch, context, args.repeats))
                load.append(os.getloadavg()[0])
                print(rows[-1], f"load {load[-1]:.2f}", flush=True)

    lines = [
        f"# TiRex-2 forecasting speed: rexforge vs tirex-2 ({args.preset}, CPU)",
        "",
        f"Random weights in the official layout, univariate random walks, horizon {HORIZON}, "
        f"median of {args.repeats} calls after a warm-up call; rexforge kernels "
        f"{dict((k, kernel_name(f)) for k, f in ours.model.kernels.items())}; torch threads "
        f"{torch.get_num_threads()}. Load average (1 min) from {min(load):.2f} to "
        f"{max(load):.2f} during the run (2 shared cores).",
        "",
        "| batch | context | tirex-2 (s) | rexforge (s) | tirex-2 / rexforge | max deviation "
        "(std) | max deviation (relative) | differenced rows |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['batch']} | {r['context']} | {r['tirex2_s']:.3f} | {r['rexforge_s']:.3f} | "
            f"{r['ratio']:.2f}x | {r['max_deviation_in_std']:.1e} | "
            f"{r['max_deviation_relative']:.1e} | {r['differenced_rows']} |"
        )
    markdown = "\n".join(lines) + "\n"
    stem = write_result(
        "bench_forecast_tirex2",
        markdown,
        {"preset": args.preset, "repeats": args.repeats, "load_average": load, "rows": rows},
        folder=args.output_dir,
    )
    print(markdown)
    print(f"wrote {stem}.md/.json")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
