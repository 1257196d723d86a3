"""TiRex-2 past its horizon cap: the median rollout (``rollout="median"``) on synthetic seasonal
series, window by window, beside seasonal naive.

    python benchmarks/tirex2_rollout.py [--preset tirex2-small] [--series 16] [--windows 3]

The released TiRex-2 forecasts at most ``future_len`` = 320 steps per pass; further steps come
from feeding the median back as context. No trained TiRex-2 weights exist here, so the network
has random weights (seeded): the numbers test the rollout's mechanics (does the forecast stay
finite and continuous at each cap, how do its error and band width change from window to
window, what does it cost), not TiRex-2's accuracy. Per window of ``future_len`` steps:

* MASE of the median and of seasonal naive (period 24), scaled by the in-sample seasonal
  naive error of each series; their ratio;
* the 80% band's width (0.9 minus 0.1 quantile) over the series' in-sample scale;
* the jump into each window: ``|median[k] - median[k - 1]|`` at its first step k (for the
  first window: from the last context value), over the median ``|median[t] - median[t - 1]|``
  inside the windows (1 = an ordinary step). The first window's jump is what the network does
  at any forecast start; a larger jump at the caps would be the rollout's own seam.

Times are medians of 3 calls after a warm-up call; the machine is shared, so the load average
is written with them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import median_time  # noqa: E402
from benchmarks.results_writer import write_result  # noqa: E402

PERIOD = 24


def seasonal_series(count: int, length: int, seed: int) -> np.ndarray:
    """[count, length]: daily-like cycles (period 24) with a slow trend and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    amplitude = rng.uniform(1.0, 3.0, (count, 1))
    phase = rng.uniform(0, 2 * np.pi, (count, 1))
    slope = rng.uniform(-0.002, 0.002, (count, 1))
    noise = rng.normal(0, 0.3, (count, length))
    return 10 + amplitude * np.sin(2 * np.pi * t / PERIOD + phase) + slope * t + noise


def random_forecaster(preset: str, seed: int):
    from rexforge.forecast.tirex2_api import TiRex2Forecaster
    from rexforge.registry import create_model

    torch.manual_seed(seed)
    return TiRex2Forecaster(create_model(preset))


def window_rows(quantiles, actual, history, cap: int) -> list[dict]:
    """Per window of ``cap`` steps: MASE of the model and of seasonal naive, band width, and the
    jump at the window's first step. quantiles [N, Q, H], actual [N, H], history [N, T]."""
    median = quantiles[:, quantiles.shape[1] // 2]  # [N, H]
    horizon = actual.shape[1]
    scale = np.abs(history[:, PERIOD:] - history[:, :-PERIOD]).mean(1)  # [N]
    repeats = -(-horizon // PERIOD)
    naive = np.tile(history[:, -PERIOD:], repeats)[:, :horizon]
    steps = np.abs(np.diff(median, axis=1))  # [N, H - 1]; steps[:, k - 1] enters step k
    inner = np.delete(steps, [k - 1 for k in range(cap, horizon, cap)], axis=1)
    typical = np.median(inner, axis=1)  # [N]
    entry = np.abs(median[:, 0] - history[:, -1])  # [N]: the step into the first window
    rows = []
    for start in range(0, horizon, cap):
        part = slice(start, min(start + cap, horizon))
        model_mase = float(np.mean(np.abs(median[:, part] - actual[:, part]).mean(1) / scale))
        naive_mase = float(np.mean(np.abs(naive[:, part] - actual[:, part]).mean(1) / scale))
        width = quantiles[:, -1, part] - quantiles[:, 0, part]
        into = entry if start == 0 else steps[:, start - 1]
        jump = float(np.median(into / typical))
        rows.append(
            {
                "steps": f"{start + 1}-{part.stop}",
                "mase_model": model_mase,
                "mase_seasonal_naive": naive_mase,
                "ratio": model_mase / naive_mase,
                "band_width": float(np.mean(width.mean(1) / scale)),
                "jump_into_window": jump,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="tirex2-small")
    parser.add_argument("--series", type=int, default=16)
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--windows", type=int, default=3, help="horizon = windows x future_len")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    model = random_forecaster(args.preset, args.seed)
    cap = model.config.future_len
    horizon = args.windows * cap
    data = seasonal_series(args.series, args.context + horizon, args.seed + 1)
    history, actual = data[:, : args.context], data[:, args.context :]
    contexts = [torch.tensor(row, dtype=torch.float32) for row in history]

    load_before = os.getloadavg()[0]
    single_s, one_window = median_time(
        lambda: model.forecast(contexts, cap, output_type="numpy"), repeats=3
    )
    rollout_s, rolled = median_time(
        lambda: model.forecast(contexts, horizon, rollout="median", output_type="numpy"),
        repeats=3,
    )
    load_after = os.getloadavg()[0]
    quantiles = np.concatenate(rolled)  # [N, Q, H]
    first_equal = bool(np.array_equal(quantiles[..., :cap], np.concatenate(one_window)))
    rows = window_rows(quantiles, actual, history, cap)
    finite = bool(np.isfinite(quantiles).all())

    lines = [
        "# TiRex-2 median rollout past the horizon cap",
        "",
        f"{args.preset} with random weights (seed {args.seed}), {args.series} synthetic "
        f"seasonal series (period {PERIOD}), context {args.context}, horizon {horizon} = "
        f"{args.windows} windows of future_len {cap}. Random weights: this measures the "
        "rollout's mechanics, not TiRex-2's accuracy.",
        "",
        "| steps | MASE model | MASE seasonal naive | ratio | 80% band / scale | jump into window |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        jump = f"{row['jump_into_window']:.2f}"
        lines.append(
            f"| {row['steps']} | {row['mase_model']:.3f} | {row['mase_seasonal_naive']:.3f} | "
            f"{row['ratio']:.2f} | {row['band_width']:.3f} | {jump} |"
        )
    lines += [
        "",
        f"All forecasts finite: {finite}. First window equal to the capped forecast: "
        f"{first_equal}. Time: one window {single_s:.2f} s, {args.windows} windows "
        f"{rollout_s:.2f} s ({rollout_s / single_s:.2f}x); load average {load_before:.2f} "
        f"before, {load_after:.2f} after (2 cores, shared).",
    ]
    if any(row["band_width"] < 0 for row in rows):
        lines.append(
            "A negative band width: the untrained network's 0.9 quantile lies below its 0.1 "
            "quantile (nothing orders the quantiles of random weights)."
        )
    markdown = "\n".join(lines) + "\n"
    payload = {
        "preset": args.preset,
        "series": args.series,
        "context": args.context,
        "horizon": horizon,
        "future_len": cap,
        "windows": rows,
        "finite": finite,
        "first_window_equals_capped": first_equal,
        "seconds_one_window": single_s,
        "seconds_rollout": rollout_s,
        "load_average": [load_before, load_after],
    }
    stem = write_result("tirex2_rollout", markdown, payload, folder=args.output_dir)
    print(markdown)
    print(f"wrote {stem}.md/.json")


if __name__ == "__main__":
    main()
