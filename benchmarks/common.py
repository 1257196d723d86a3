"""Shared helpers for benchmark scripts: machine description, git state, timing.

Result files are written by ``benchmarks.results_writer``."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Environment caps that make this machine's libraries behave like a CPU with fewer vector
# extensions: oneDNN (torch's bf16 matmuls), ATen's vectorised kernels and MKL (fp32 gemm).
# "avx2" stands for the many CPUs without AVX-512/avx512_bf16 (laptops, older servers), where
# the official bf16 recurrent matmul is much slower than on a CPU with native bf16.
ISA_CAPS = {
    "native": {},
    "avx2": {
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    },
}


def apply_isa_cap(name: str) -> None:
    """Re-execute this script with the environment of ``ISA_CAPS[name]`` unless it is set
    (the libraries read it once, when they load)."""
    env = ISA_CAPS[name]
    if any(os.environ.get(key) != value for key, value in env.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **env})


def forward_flops(config, patches: int, head_patches: int) -> int:
    """Matmul FLOPs of one series through the network: ``patches`` patches through the
    embedding and every block, ``head_patches`` through the output head."""
    P, b = config.input_patch_size, config.block_kwargs
    E, hidden, Q = b.embedding_dim, config.input_ff_dim, config.num_quantiles
    embed = 2 * (2 * P * hidden + hidden * E + 2 * P * E)
    # gate projections (4 head-wise DHxDH per head), recurrent matmul, gated feed-forward
    block = 2 * (4 * E * b.head_dim + E * 4 * b.head_dim + 3 * E * b.ffn_dim)
    head = 2 * (
        E * hidden + hidden * Q * config.output_patch_size + E * Q * config.output_patch_size
    )
    return patches * (embed + b.num_blocks * block) + head_patches * head


def machine_info() -> dict:
    import torch

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(
                line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("tirex", "rexforge", "numpy", "lightning"):
        try:
            from importlib.metadata import version

            versions[name] = version({"tirex": "tirex-ts"}.get(name, name))
        except Exception:  # noqa: BLE001 - optional package
            pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "")
    except OSError:
        pass
    return {
        "cpu": cpu,
        "native_bf16": "avx512_bf16" in flags.split() or "amx_bf16" in flags.split(),
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "isa_cap": {k: os.environ[k] for k in ISA_CAPS["avx2"] if k in os.environ},
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "versions": versions,
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
    }


def git_state() -> dict:
    """The checkout's short commit and whether it has uncommitted changes."""

    def run(*args: str) -> str:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent
        )
        return out.stdout.strip()

    return {
        "commit": run("rev-parse", "--short", "HEAD"),
        "dirty": bool(run("status", "--porcelain")),
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


def memory_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
    """This machine's copy bandwidth in GB/s (bytes read + written), measured now: what a
    GEMV that streams its weights from memory can at best read them at."""
    import torch

    src = torch.empty(megabytes * 2**20 // 4)
    dst = torch.empty_like(src)
    t, _ = median_time(lambda: dst.copy_(src), repeats)
    return 2 * src.numel() * 4 / t / 1e9


def load_average() -> str:
    """The 1/5/15-minute load averages (other processes share the cores)."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def fp32_matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """This machine's fp32 matmul throughput in GFLOP/s, measured now."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    t, _ = median_time(lambda: a @ b, repeats)
    return 2 * n**3 / t / 1e9
