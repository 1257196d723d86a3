"""ONNX export: export time, and onnxruntime forecast time against rexforge's own forecast.

    python benchmarks/onnx_export.py                # starter model and random tirex-35m
    python benchmarks/onnx_export.py --models starter --repeats 1

For each model the file is exported once (``export_onnx``, timed), then one patch (horizon 32)
is forecast for each batch size x context length with onnxruntime (CPU provider, as many
threads as torch) and with ``TiRexForecaster.forecast`` in fp32 and in the default bf16
numerics. Times are medians of ``--repeats`` runs after one warm-up; the table also gives the
largest deviation of the ONNX forecast from the fp32 one, in units of each series' std.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine_info, median_time  # noqa: E402
from benchmarks.results_writer import write_result  # noqa: E402


def model_path(name: str, folder: Path) -> str:
    """``starter``, or a random-weight checkpoint of a preset (the tests' official writer)."""
    if name == "starter":
        return "starter"
    from rexforge.config import TiRexConfig
    from tests.conftest import write_official_checkpoint

    return str(write_official_checkpoint(folder / f"{name}.ckpt", TiRexConfig.from_name(name)))


def series_batch(batch: int, length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    rows = [
        10 + np.sin(2 * np.pi * t / (12 + i)) + rng.normal(0, 0.3, length) for i in range(batch)
    ]
    return np.stack(rows).astype(np.float32)


def bench_model(name: str, args, folder: Path) -> list[dict]:
    from rexforge.forecast.api import load_model
    from rexforge.io.onnx_export import export_onnx, onnx_session

    path = model_path(name, folder)
    start = time.perf_counter()
    onnx_file = export_onnx(path, folder / f"{name}.onnx")
    export_s = time.perf_counter() - start
    session = onnx_session(onnx_file, threads=torch.get_num_threads())
    models = {numerics: load_model(path, numerics=numerics) for numerics in ("fp32", "bf16")}
    rows = []
    for batch in args.batches:
        for length in args.lengths:
            context = series_batch(batch, length)
            onnx_s, onnx_out = median_time(
                lambda c=context: session.run(["quantiles"], {"context": c})[0], args.repeats
            )
            row = {"model": name, "batch": batch, "length": length, "export_s": export_s}
            row["onnx_s"] = onnx_s
            for numerics, model in models.items():
                row[f"{numerics}_s"], out = median_time(
                    lambda m=model, c=context: m.forecast(c, 32, output_type="numpy")[0],
                    args.repeats,
                )
                if numerics == "fp32":
                    std = context.std(axis=1)
                    row["max_dev_std"] = float(
                        (np.abs(onnx_out - out).max(axis=(1, 2)) / std).max()
                    )
            row["file_mib"] = onnx_file.stat().st_size / 2**20
            print(row, flush=True)
            rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "# ONNX export: export time and onnxruntime forecast time",
        "",
        "One patch (horizon 32); medians of repeated runs after one warm-up. ONNX = onnxruntime "
        "CPU provider; fp32 / bf16 = `load_model(..., numerics=...).forecast`. Deviation = largest "
        "|ONNX - rexforge fp32| over a series, in units of its std.",
        "",
        "| model | export s | file MiB | batch | context | ONNX s | rexforge fp32 s | rexforge bf16 s | ONNX / fp32 | deviation |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['export_s']:.1f} | {r['file_mib']:.1f} | {r['batch']} | "
            f"{r['length']} | {r['onnx_s']:.4f} | {r['fp32_s']:.4f} | {r['bf16_s']:.4f} | "
            f"{r['onnx_s'] / r['fp32_s']:.2f}x | {r['max_dev_std']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["starter", "tirex-35m"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--lengths", nargs="+", type=int, default=[512, 2048])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    info = machine_info()
    versions = info["versions"]
    for package in ("onnx", "onnxruntime", "onnxscript"):
        versions[package] = __import__(package).__version__
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            rows += bench_model(name, args, Path(tmp))
            # Written after every model, so that a run stopped early keeps what it measured.
            payload = {"machine": info, "rows": rows}
            base = write_result("onnx_export", markdown(rows), payload)
            print(f"wrote {base}.md", flush=True)


if __name__ == "__main__":
    main()
