"""Shared helpers for benchmark scripts: machine description, timing, result files."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine_info() -> dict:
    import torch

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("tirex", "rexforge", "numpy", "lightning"):
        try:
            from importlib.metadata import version

            versions[name] = version({"tirex": "tirex-ts"}.get(name, name))
        except Exception:  # noqa: BLE001 - optional package
            pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "versions": versions,
        "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    }


def median_time(fn, repeats: int, warmup: int = 1) -> tuple[float, object]:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` calls, and the
    result of the last call."""
    for _ in range(warmup):
        fn()
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def fp32_matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """This machine's fp32 matmul throughput in GFLOP/s, measured now."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    t, _ = median_time(lambda: a @ b, repeats)
    return 2 * n**3 / t / 1e9


def write_result(name: str, payload: dict, markdown: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.date.today().isoformat()
    base = RESULTS / f"{name}-cpu-{platform.node() or 'machine'}-{stamp}"
    payload = {"command": " ".join([Path(sys.executable).name, *sys.argv]), **payload}
    base.with_suffix(".json").write_text(json.dumps(payload, indent=2) + "\n")
    base.with_suffix(".md").write_text(markdown)
    return base
