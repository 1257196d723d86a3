"""Batch forecasting of many short series on Ray Data and Spark, with 1 and then 2 workers,
beside ``forecast_df`` in one process.

    python benchmarks/bench_ray.py                          # 100k series, Ray and Spark
    python benchmarks/bench_ray.py --series 20000 --engines ray

Writes the synthetic long table (random walks of 24-72 steps) to Parquet once; each engine
reads it, forecasts every series with the starter model (``rexforge.scale``) and collects the
forecasts to the driver. Reports wall time (from reading the file to the collected result;
Ray's/Spark's own start-up not included, the workers' model loading included), series/s,
scaling efficiency (2-worker throughput / twice the 1-worker one), the peak RSS of each
worker process (sampled every 0.2 s) and of the driver, and whether the forecasts equal the
single-process ``forecast_df`` (1 torch thread, as each worker) to the bit. Workers share the
machine's cores with the driver and with whatever else runs there. Results go to
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.results_writer import write_result  # noqa: E402


def make_table(n_series: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(24, 73, n_series)
    return pd.DataFrame(
        {
            "item_id": np.repeat([f"s{i:07d}" for i in range(n_series)], lengths),
            "timestamp": np.concatenate([np.arange(n) for n in lengths]),
            "target": 50 + np.concatenate([rng.normal(size=n).cumsum() for n in lengths]),
        }
    )


class PeakRss:
    """Samples the RSS of this process's descendants whose command line names a worker."""

    def __init__(self, marker: str):
        import psutil

        self.psutil, self.marker, self.peaks = psutil, marker, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        me = self.psutil.Process()
        while not self._stop.wait(0.2):
            for proc in me.children(recursive=True):
                try:
                    if self.marker in " ".join(proc.cmdline()):
                        rss = proc.memory_info().rss
                        self.peaks[proc.pid] = max(self.peaks.get(proc.pid, 0), rss)
                except self.psutil.Error:
                    continue

    def worker_peaks_mib(self, top: int) -> list[float]:
        """The ``top`` largest per-process peaks (the forecasting workers; Ray also runs
        idle helper workers)."""
        return [round(v / 2**20) for v in sorted(self.peaks.values(), reverse=True)[:top]]


def run_ray(path: str, workers: int, args) -> tuple[pd.DataFrame, float, list[float]]:
    import ray

    from rexforge.scale.ray_data import forecast_dataset

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        with PeakRss("ray::") as rss:
            start = time.perf_counter()
            rows = ray.data.read_parquet(path)
            out = forecast_dataset(
                rows, args.model, args.horizon, batch_size=args.batch_size, workers=workers
            ).to_pandas()
            seconds = time.perf_counter() - start
        return out, seconds, rss.worker_peaks_mib(workers)
    finally:
        ray.shutdown()


def run_spark(path: str, workers: int, args) -> tuple[pd.DataFrame, float, list[float]]:
    from pyspark.sql import SparkSession

    from rexforge.scale.spark import forecast_spark

    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master(f"local[{workers}]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.shuffle.partitions", str(4 * workers))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        with PeakRss("pyspark.daemon") as rss:
            start = time.perf_counter()
            rows = spark.read.parquet(path)
            out = forecast_spark(
                rows, args.model, args.horizon, batch_size=args.batch_size
            ).toPandas()
            seconds = time.perf_counter() - start
        # pyspark.daemon forks the Python workers (the largest: they hold the model) from a
        # small daemon process
        return out, seconds, rss.worker_peaks_mib(workers)
    finally:
        spark.stop()


def run_single(table: pd.DataFrame, args) -> tuple[pd.DataFrame, float]:
    import torch

    import rexforge

    torch.set_num_threads(1)  # as one worker: the same sums, the same bits
    start = time.perf_counter()
    out = rexforge.load_model(args.model).forecast_df(
        table, args.horizon, batch_size=args.batch_size
    )
    return out, time.perf_counter() - start


def equal(got: pd.DataFrame, expected: pd.DataFrame) -> bool:
    got = got[list(expected.columns)].astype(expected.dtypes.to_dict())
    got = got.sort_values(["item_id", "timestamp"]).reset_index(drop=True)
    return bool(got.equals(expected.reset_index(drop=True)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--model", default="starter")
    parser.add_argument("--engines", nargs="+", default=["ray", "spark"])
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--note", default="", help="a line for the result file (e.g. the load)")
    args = parser.parse_args()

    table = make_table(args.series)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "long.parquet")
        table.to_parquet(path, index=False)
        expected, seconds = run_single(table, args)
        rows.append(("single process", 1, seconds, [], True))
        print(f"single process: {seconds:.1f} s", flush=True)
        runners = {"ray": run_ray, "spark": run_spark}
        for engine in args.engines:
            for workers in (1, 2):
                out, seconds, peaks = runners[engine](path, workers, args)
                same = equal(out, expected)
                rows.append((engine, workers, seconds, peaks, same))
                print(f"{engine} {workers}: {seconds:.1f} s, peaks {peaks} MiB, equal {same}")
    driver_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    markdown, payload = report(rows, args, len(table), driver_peak)
    stem = write_result("bench_ray", markdown, payload)
    print(markdown)
    print(f"wrote {stem}.md and .json")


def report(rows, args, n_rows: int, driver_peak_mib: float) -> tuple[str, dict]:
    lines = [
        "# Batch forecasting on Ray Data and Spark, 1 and 2 workers",
        "",
        f"{args.series} series (random walks of 24-72 steps, {n_rows} rows), horizon "
        f"{args.horizon}, model {args.model}, batch {args.batch_size}. Wall time from reading "
        "the Parquet file to the forecasts collected on the driver (engine start-up excluded, "
        "the workers' model loading included). Peak RSS per worker sampled every 0.2 s. "
        "'equal': the forecasts equal single-process forecast_df (1 torch thread) to the bit.",
    ]
    if args.note:
        lines += ["", args.note]
    lines += [
        "",
        "| engine | workers | seconds | series/s | scaling efficiency | peak RSS per worker (MiB) | equal |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    payload = {"args": vars(args), "rows": n_rows, "driver_peak_rss_mib": driver_peak_mib}
    runs, one_worker = [], {}
    for engine, workers, seconds, peaks, same in rows:
        rate = args.series / seconds
        if workers == 1:
            one_worker[engine] = rate
        efficiency = rate / (2 * one_worker[engine]) if workers == 2 else None
        shown = "" if efficiency is None else f"{efficiency:.2f}"
        lines.append(
            f"| {engine} | {workers} | {seconds:.1f} | {rate:.0f} | {shown} | "
            f"{', '.join(map(str, peaks)) or 'driver'} | {same} |"
        )
        runs.append(
            {
                "engine": engine,
                "workers": workers,
                "seconds": seconds,
                "series_per_s": rate,
                "scaling_efficiency": efficiency,
                "peak_rss_mib": peaks,
                "equal_to_single_process": same,
            }
        )
    lines += ["", f"Driver peak RSS: {driver_peak_mib:.0f} MiB."]
    payload["runs"] = runs
    return "\n".join(lines) + "\n", payload


if __name__ == "__main__":
    main()
