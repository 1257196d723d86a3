"""Synthetic probes: how much of a fixed season and a drift a model keeps, what one outlier does.

Each cell draws series ``y_t = 100 + slope * t + season_t + noise_t`` with white unit noise, a
season of period 4 (horizon 8) or 12 (horizon 18) whose std is ``season`` noise widths (a free
value per slot), and a drift of ``growth * U(0, 1)`` noise widths per year, for a history of
``length`` steps. The best forecast averages the season over all cycles and carries the drift
on; seasonal naive copies the last cycle, noise and all. Per cell (256 series), the mean over
series of MAE / in-sample seasonal-naive MAE (MASE terms) of:

* ``snaive`` (seasonal naive) and ``truth`` (the noise-free continuation: the floor),
* ``regression`` (least squares on time and season dummies over the history: what a
  well-specified classical model reaches),
* each model's median forecast; plus, per model, the median over series of the std of its
  first forecast season over the true season's std (``season kept``, 1 = all of it) and of its
  forecast level gain over the true one (``drift kept``, cells with growth only).

A second table asks what one one-off outlier does: quarterly series (length 80, a season of 3
noise widths, drift 0.3 per step) forecast once as drawn and once with a single step 10 to 19
steps before the end pushed 5 context stds down (a strike, a quarter of SARS). Per model: the
MAE of the median forecast on both, the median level shift (in context stds) and the mean 80%
interval width on both. A model that looks through the event changes little.

No real data: this is a capability check, not a zero-shot result. ``stable_season``
(``--stable-synth``) trains on a family like this one, so models trained with it are tested in
distribution here.

    python benchmarks/synthetic_probe.py --model starter
    python benchmarks/synthetic_probe.py --model old=starter --model new=runs/x/final
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine_info  # noqa: E402
from benchmarks.results_writer import write_result  # noqa: E402

PERIODS = {4: 8, 12: 18}  # period -> horizon (the M3 quarterly / monthly horizons)
LENGTHS = (40, 100)
SEASONS = (0.5, 1.0, 2.0)
GROWTHS = (0.0, 1.0)


def draw_cell(rng, count: int, period: int, horizon: int, length: int, season: float, growth):
    """``(history [N, L], future [N, H], truth [N, H], true season std [N], true gain [N])``."""
    t = np.arange(length + horizon)
    slots = rng.normal(size=(count, period))
    slots = (slots - slots.mean(1, keepdims=True)) / slots.std(1, keepdims=True) * season
    profile = slots[np.arange(count)[:, None], t % period]  # [N, L + H]
    slope = growth * rng.uniform(0.0, 1.0, size=(count, 1)) / period  # noise widths per step
    clean = 100.0 + slope * t + profile
    values = clean + rng.normal(size=clean.shape)
    # True level gain of the first forecast season over the last observed one: a year's drift.
    gain = slope[:, 0] * period
    return values[:, :length], values[:, length:], clean[:, length:], slots.std(1), gain


def regression_forecast(history: np.ndarray, period: int, horizon: int) -> np.ndarray:
    """Least squares on (time, season dummies) per series: [N, H]."""
    length = history.shape[1]
    t = np.arange(length + horizon)
    design = np.c_[t, np.eye(period)[t % period]]  # [L + H, 1 + period]
    coef = np.linalg.lstsq(design[:length], history.T, rcond=None)[0]  # [1 + period, N]
    return (design[length:] @ coef).T


def mase_terms(forecast, future, history, period) -> float:
    scale = np.abs(history[:, period:] - history[:, :-period]).mean(1)
    return float(np.mean(np.abs(forecast - future).mean(1) / scale))


def probe(models: dict, seed: int, count: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for period, horizon in PERIODS.items():
        for length in LENGTHS:
            for season in SEASONS:
                for growth in GROWTHS:
                    history, future, truth, season_std, gain = draw_cell(
                        rng, count, period, horizon, length, season, growth
                    )
                    # [N, H]: the last cycle repeated (np.resize would run across rows).
                    snaive = np.tile(history[:, -period:], (1, -(-horizon // period)))[:, :horizon]
                    row = {
                        "period": period,
                        "length": length,
                        "season": season,
                        "growth": growth,
                        "snaive": mase_terms(snaive, future, history, period),
                        "truth": mase_terms(truth, future, history, period),
                        "regression": mase_terms(
                            regression_forecast(history, period, horizon), future, history, period
                        ),
                        "models": {},
                    }
                    for name, model in models.items():
                        quantiles, _ = model.forecast(
                            history, prediction_length=horizon, output_type="numpy"
                        )
                        median = quantiles[:, :, model.config.quantiles.index(0.5)]
                        first = median[:, :period]
                        level = history[:, -period:].mean(1)
                        entry = {
                            "mase": mase_terms(median, future, history, period),
                            "season_kept": float(np.median(first.std(1) / season_std)),
                        }
                        if growth > 0:
                            entry["drift_kept"] = float(
                                np.median(first.mean(1) - level) / np.median(gain)
                            )
                        row["models"][name] = entry
                    rows.append(row)
    return rows


def outlier_effect(models: dict, seed: int, count: int) -> dict:
    """Forecasts with and without one 5-std dip in the recent history (see the docstring)."""
    rng = np.random.default_rng(seed + 1)
    length, horizon, period = 80, 8, 4
    t = np.arange(length + horizon)
    slots = rng.normal(size=(count, period)) * 3.0
    values = 100.0 + 0.3 * t + slots[np.arange(count)[:, None], t % period]
    values = values + rng.normal(size=values.shape)
    history, future = values[:, :length], values[:, length:]
    std = history.std(axis=1)
    dipped = history.copy()
    at = rng.integers(length - 19, length - 9, size=count)
    dipped[np.arange(count), at] -= 5.0 * std
    out = {}
    for name, model in models.items():
        median = model.config.quantiles.index(0.5)
        row = {}
        for label, context in (("clean", history), ("dipped", dipped)):
            quantiles, _ = model.forecast(context, prediction_length=horizon, output_type="numpy")
            row[f"mae_{label}"] = float(np.abs(quantiles[:, :, median] - future).mean())
            row[f"width_{label}"] = float((quantiles[:, :, -1] - quantiles[:, :, 0]).mean())
            row[f"median_{label}"] = quantiles[:, :, median]
        shift = (row.pop("median_dipped") - row.pop("median_clean")).mean(axis=1) / std
        row["level_shift"] = float(np.median(shift))
        out[name] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        default=None,
        help="NAME=PATH or PATH (anything rexforge.load_model reads); repeatable",
    )
    parser.add_argument("--count", type=int, default=256, help="series per cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="synthetic_probe")
    args = parser.parse_args()
    import torch

    import rexforge

    torch.manual_seed(0)
    specs = args.model or ["starter"]
    models = {}
    for spec in specs:
        name, _, path = spec.partition("=") if "=" in spec else (spec, "", spec)
        models[name] = rexforge.load_model(path)
    rows = probe(models, args.seed, args.count)
    outliers = outlier_effect(models, args.seed, args.count)
    info = machine_info()
    names = list(models)
    header = "| period | length | season | growth | snaive | truth | regression | " + " | ".join(
        f"{n} MASE | {n} season kept | {n} drift kept" for n in names
    )
    lines = [
        "# Synthetic probes: fixed season + steady drift + white noise; one one-off outlier\n",
        f"{args.count} series per cell, seed {args.seed}. MASE terms (mean over series of MAE / "
        "in-sample seasonal-naive MAE; lower is better); `season kept` / `drift kept`: median "
        "share of the true season's std / of the true level gain in the model's first forecast "
        "season (1 = all of it).\n",
        header + " |",
        "|" + "---:|" * (7 + 3 * len(names)),
    ]
    for r in rows:
        cells = [
            f"{r['period']}",
            f"{r['length']}",
            f"{r['season']:.1f}",
            f"{r['growth']:.1f}",
            f"{r['snaive']:.3f}",
            f"{r['truth']:.3f}",
            f"{r['regression']:.3f}",
        ]
        for n in names:
            m = r["models"][n]
            drift = f"{m['drift_kept']:.2f}" if "drift_kept" in m else "-"
            cells += [f"{m['mase']:.3f}", f"{m['season_kept']:.2f}", drift]
        lines.append("| " + " | ".join(cells) + " |")
    means = {n: float(np.mean([r["models"][n]["mase"] for r in rows])) for n in names}
    reference = {k: float(np.mean([r[k] for r in rows])) for k in ("snaive", "truth", "regression")}
    lines.append(
        "\nMean over cells: "
        + ", ".join(f"{k} {v:.3f}" for k, v in {**reference, **means}.items())
        + "\n"
    )
    lines += [
        "One one-off outlier (5 stds down, 10-19 steps before the end):\n",
        "| model | MAE clean | MAE with outlier | level shift (stds) | 80% width clean "
        "| 80% width with outlier |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {n} | {r['mae_clean']:.3f} | {r['mae_dipped']:.3f} | {r['level_shift']:+.3f} "
        f"| {r['width_clean']:.2f} | {r['width_dipped']:.2f} |"
        for n, r in outliers.items()
    ]
    markdown = "\n".join(lines) + "\n"
    path = write_result(
        args.name,
        markdown,
        {
            "models": specs,
            "count": args.count,
            "seed": args.seed,
            "machine": info,
            "rows": rows,
            "outlier": outliers,
        },
    )
    print(markdown)
    print(f"wrote {path}.md / .json")


if __name__ == "__main__":
    main()
