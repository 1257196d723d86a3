"""Peak memory of forecasting many short series from one long CSV: streamed vs loaded whole.

    python benchmarks/bench_memory.py                         # 10k, 50k, 100k series x 50 steps
    python benchmarks/bench_memory.py --sizes 10000 --whole-up-to 0

For each size a long CSV (``item_id,timestamp,target``, daily, ``--length`` steps per series)
is generated in a temporary folder, and each measurement runs in a fresh process (one torch
thread) that loads a random-weight checkpoint of ``--preset`` and forecasts every series:

* ``stream``: ``forecast_csv_streaming`` (what ``rexforge forecast --stream`` runs);
* ``whole``:  ``load_series`` + ``forecast_series`` + one CSV write (the default path), for
  sizes up to ``--whole-up-to``, to show what streaming saves.

Peak RSS is the child's ``resource.getrusage(RUSAGE_SELF).ru_maxrss``; "setup" is the peak
after imports and model loading, before any data is read. Results go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine_info  # noqa: E402
from benchmarks.results_writer import write_result  # noqa: E402

CHILD = """
import json, resource, sys, time
import torch
torch.set_num_threads(1)
from rexforge import load_model
from rexforge.data.sources import load_series
from rexforge.forecast.frames import forecast_csv_streaming, forecast_series
mode, ckpt, data, out, horizon = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
model = load_model(ckpt)
model.forecast([[1.0, 2.0, 3.0]], 1)  # padding-state cache, first-call costs
setup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if mode == "stream":
    series = forecast_csv_streaming(model, data, horizon, out).series
else:
    loaded = load_series(data)
    forecast_series(model, loaded, horizon).to_csv(out, index=False)
    series = len(loaded)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("RESULT " + json.dumps({"setup_kib": setup, "peak_kib": peak, "seconds": seconds, "series": series}))
"""


def write_csv(path: Path, n_series: int, length: int, seed: int = 0) -> None:
    """A long CSV, written in blocks of series so that generating it needs little memory."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2024-01-01", periods=length, freq="D").strftime("%Y-%m-%d")
    t = np.arange(length)
    with open(path, "w") as handle:
        handle.write("item_id,timestamp,target\n")
        for start in range(0, n_series, 5000):
            count = min(5000, n_series - start)
            periods = rng.uniform(4, 30, (count, 1))
            values = 10 + np.sin(2 * np.pi * t / periods) + rng.normal(0, 0.2, (count, length))
            frame = pd.DataFrame(
                {
                    "item_id": np.repeat([f"s{start + i}" for i in range(count)], length),
                    "timestamp": np.tile(stamps, count),
                    "target": values.reshape(-1).round(4),
                }
            )
            frame.to_csv(handle, header=False, index=False)


def measure(mode: str, ckpt: Path, data: Path, out: Path, horizon: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(ckpt), str(data), str(out), str(horizon)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{proc.stderr[-3000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result["output_mib"] = out.stat().st_size / 2**20
    out.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--length", type=int, default=50, help="steps per series")
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--preset", default="tirex-test")
    parser.add_argument("--whole-up-to", type=int, default=50_000, help="largest whole-load run")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    from rexforge.config import TiRexConfig
    from tests.conftest import write_official_checkpoint

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        ckpt = write_official_checkpoint(tmp / "model.ckpt", TiRexConfig.from_name(args.preset))
        for size in args.sizes:
            data = tmp / f"series-{size}.csv"
            start = time.perf_counter()
            write_csv(data, size, args.length)
            print(f"{size} series: CSV {data.stat().st_size / 2**20:.0f} MiB "
                  f"in {time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
            modes = ["stream"] + (["whole"] if size <= args.whole_up_to else [])
            for mode in modes:
                result = measure(mode, ckpt, data, tmp / "out.csv", args.horizon)
                row = {
                    "series": size,
                    "mode": mode,
                    "input_mib": round(data.stat().st_size / 2**20, 1),
                    "output_mib": round(result["output_mib"], 1),
                    "setup_mib": round(result["setup_kib"] / 1024, 1),
                    "peak_mib": round(result["peak_kib"] / 1024, 1),
                    "above_setup_mib": round((result["peak_kib"] - result["setup_kib"]) / 1024, 1),
                    "seconds": round(result["seconds"], 1),
                }
                assert result["series"] == size, result
                rows.append(row)
                print(row, flush=True)
            data.unlink()

    info = machine_info()
    info["load_average_before"] = load_before
    md = [
        f"# Peak memory: forecasting many short series from one CSV ({args.preset}, CPU)\n",
        f"Children use 1 torch thread. 1-minute load average before the run: {load_before:.2f} "
        f"(other work competes for the {info['cores']} cores when it is near or above 1).  ",
        f"Data: daily series of {args.length} steps, horizon {args.horizon}; streaming with the "
        "defaults chunk_rows=200000, chunk_series=10000.\n",
        "Peak RSS of a fresh process (`ru_maxrss`); setup = peak after imports and loading the "
        "model, before the data is read; above setup = what the data and the forecasts cost.\n",
        "| series | mode | input MiB | output MiB | setup MiB | peak MiB | above setup MiB | s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        md.append(
            f"| {r['series']:,} | {r['mode']} | {r['input_mib']} | {r['output_mib']} | "
            f"{r['setup_mib']} | {r['peak_mib']} | {r['above_setup_mib']} | {r['seconds']} |"
        )
    base = write_result(
        "bench_memory", "\n".join(md) + "\n", {"rows": rows, "machine": info, "args": vars(args)}
    )
    print(f"wrote {base}.md")


if __name__ == "__main__":
    main()
