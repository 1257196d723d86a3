"""``numerics="fast"``: the fastest arrangement this CPU allows, chosen once per process.

What a TiRex forward spends its time on (profiled on tirex-35m, 2-core AVX2 EPYC, see
benchmarks/results/bench_forecast-*):

* small batches (batch 1, context 128-512: 4-16 tokens): reading the ~140 MB of fp32 weights
  for the projections (a GEMV is limited by memory bandwidth, not arithmetic) and the ~25
  tensor operations per recurrence step;
* large batches (batch 32, context 2048): the feed-forward GEMMs (at the fp32 peak already)
  and the pointwise cell of the recurrence.

So the plan has three parts, each a registered kernel checked against the torch reference:

* the recurrence: ``cpu_native`` (one compiled C cell per step, fp32) where a C compiler is
  found, else ``cpu_fused`` in fp32. It stays fp32: the recurrence compounds rounding over
  every step, and its cost is the number of operations per step, not bytes or FLOPs;
* projections with many rows (GEMM): ``bf16`` operands where the CPU has bf16 dot products
  (avx512_bf16 / AMX) *and* they measure faster, else ``fp32``;
* projections with few rows (GEMV): ``int8x2_weight`` (two int8 levels: 2 bytes per weight
  instead of 4, ~0.04% error per layer) for row counts where it measures faster than the GEMM
  kernel, on weights too big for the cache (it needs ATen's fp16-activation int8 matmul to be
  vectorised: on AVX2 it is a scalar loop, ~10x slower than fp32, and is never picked there).
  One int8 level (``int8_weight``, 1 byte, bf16 activations: vectorised everywhere) is
  registered and tested but not picked: its ~0.75% error per layer moved WQL / MASE by up to
  0.8% on real data (benchmarks/results/numerics_accuracy-*), past the 0.5% this mode keeps.

The embedding, the feed-forward layers and the head go through the plan; the head-wise gate
projections (1 MB per block) stay fp32. Accuracy: benchmarks/numerics_accuracy.py and
tests/model/test_fast_numerics.py.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FastPlan:
    slstm_kernel: str  # registered sLSTM kernel, run in fp32
    gemm: str  # linear kernel for calls with more than gemv_max_rows rows
    gemv: str  # linear kernel for calls with at most gemv_max_rows rows
    gemv_max_rows: int
    notes: tuple[str, ...] = field(default=())  # what was detected and measured

    def linear_for(self, rows: int) -> str:
        return self.gemv if rows <= self.gemv_max_rows else self.gemm

    def describe(self) -> str:
        small = (
            f"{self.gemv} up to {self.gemv_max_rows} rows, {self.gemm} above"
            if self.gemv_max_rows > 0 and self.gemv != self.gemm
            else self.gemm
        )
        return f"recurrence {self.slstm_kernel} (fp32); projections {small}"


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as handle:
            line = next((line for line in handle if line.startswith("flags")), "")
    except OSError:
        return set()
    return set(line.split(":", 1)[-1].split())


def has_bf16_dot_products() -> bool:
    """avx512_bf16 or AMX, and not capped away by ``ONEDNN_MAX_CPU_ISA`` (which makes oneDNN,
    torch's bf16 GEMM, behave like an older CPU)."""
    flags = cpu_flags()
    if not flags & {"avx512_bf16", "amx_bf16"}:
        return False
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    return cap == "ALL" or "BF16" in cap or "AMX" in cap


def _best_times(fns: dict, repeats: int = 5) -> dict[str, float]:
    """Best wall time of each function, timed in turns so that a burst of load from other
    processes (shared cores) hits all of them alike."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


# Measurement shapes: the tirex-35m feed-forward projection (512 -> 1408). For GEMVs, several
# different weights (17 MB in fp32, beyond the private caches; the model streams 140 MB) so
# that the kernels are timed reading weights from far away, as in a forward pass.
_IN, _OUT, _GEMV_WEIGHTS, _GEMM_ROWS = 512, 1408, 6, 256
_GEMV_ROWS = (1, 4, 16, 32)
_GEMV_MIN_SPEEDUP = 1.25
GEMV_KERNEL = "int8x2_weight"


def _measure_gemv_rows(gemm: str) -> tuple[int, list[str]]:
    """The largest row count up to which ``GEMV_KERNEL`` is >= 1.25x faster than ``gemm``
    (0 if never), with the measured speed-ups."""
    from rexforge.kernels.registry import get_kernel, list_kernels

    if GEMV_KERNEL not in list_kernels(available_only=True, kind="linear"):
        return 0, [f"{GEMV_KERNEL} unavailable"]
    gen = torch.Generator().manual_seed(0)
    weights = [torch.randn(_OUT, _IN, generator=gen) for _ in range(_GEMV_WEIGHTS)]
    kernels = {name: get_kernel(name, kind="linear") for name in (gemm, GEMV_KERNEL)}
    packed = {name: [k.pack(w) for w in weights] for name, k in kernels.items()}
    best_rows, ratios = 0, []
    with torch.no_grad():
        for rows in _GEMV_ROWS:
            x = torch.randn(rows, _IN, generator=gen)
            times = _best_times(
                {
                    name: lambda k=k, p=packed[name], x=x: [k.apply(x, w, None) for w in p]
                    for name, k in kernels.items()
                },
                repeats=9,  # best of 9: a core shared with other processes stalls some runs
            )
            ratio = times[gemm] / times[GEMV_KERNEL]
            ratios.append(f"{rows}:{ratio:.2g}x")  # 2 significant digits: 0.04x, 1.3x
            if ratio < _GEMV_MIN_SPEEDUP:
                break
            best_rows = rows
    return best_rows, [f"{GEMV_KERNEL} vs {gemm} GEMV speed-up by rows {' '.join(ratios)}"]


def _bf16_gemm_speedup() -> float:
    from rexforge.kernels.linear import BF16, FP32

    gen = torch.Generator().manual_seed(0)
    w, x = torch.randn(_OUT, _IN, generator=gen), torch.randn(_GEMM_ROWS, _IN, generator=gen)
    wb = BF16.pack(w)
    with torch.no_grad():
        times = _best_times(
            {"fp32": lambda: FP32.apply(x, w, None), "bf16": lambda: BF16.apply(x, wb, None)}
        )
    return times["fp32"] / times["bf16"]


@functools.cache
def choose_fast_plan() -> FastPlan:
    """Detect and measure once per process (~0.1-0.3 s) and log the choice."""
    from rexforge.kernels.registry import list_kernels

    notes = []
    available = list_kernels(available_only=True)
    slstm = "cpu_native" if "cpu_native" in available else "cpu_fused"
    if slstm != "cpu_native":
        from rexforge.kernels.native_cpu import unavailable_reason

        notes.append(f"cpu_native unavailable: {unavailable_reason()}")
    gemm = "fp32"
    if has_bf16_dot_products():
        speedup = _bf16_gemm_speedup()
        notes.append(f"bf16 dot products: bf16 GEMM {speedup:.1f}x fp32")
        if speedup >= 1.2:
            gemm = "bf16"
    else:
        notes.append("no bf16 dot products (avx512_bf16/amx_bf16)")
    gemv_rows, gemv_notes = _measure_gemv_rows(gemm)
    plan = FastPlan(
        slstm_kernel=slstm,
        gemm=gemm,
        gemv=GEMV_KERNEL if gemv_rows else gemm,
        gemv_max_rows=gemv_rows,
        notes=tuple(notes + gemv_notes),
    )
    logger.debug("numerics='fast': %s (%s)", plan.describe(), "; ".join(plan.notes))
    return plan


class FastProjections:
    """Runs ``nn.Linear`` layers through a plan's linear kernels, with each layer's weight
    prepared (quantised, converted) once and re-prepared only when the weight changes."""

    def __init__(self, plan: FastPlan):
        self.plan = plan
        # (kernel name, id(weight)) -> (data_ptr, version, prepared weight)
        self._packed: dict[tuple[str, int], tuple[int, int, object]] = {}

    def __call__(self, x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
        """x [..., in] -> layer(x) [..., out], computed by the plan's kernel for x's rows."""
        if x.device.type != "cpu" or torch.is_grad_enabled() and layer.weight.requires_grad:
            return layer(x)  # the plan is for CPU inference; training keeps plain fp32
        name = self.plan.linear_for(x.numel() // max(x.shape[-1], 1))
        if name == "fp32":
            return layer(x)
        from rexforge.kernels.registry import get_kernel

        kernel = get_kernel(name, kind="linear")
        return kernel.apply(x, self._prepared(kernel, layer.weight), layer.bias)

    def _prepared(self, kernel, weight: torch.Tensor):
        key = (kernel.name, id(weight))
        stamp = (weight.data_ptr(), weight._version)
        cached = self._packed.get(key)
        if cached is None or cached[:2] != stamp:
            with torch.no_grad():
                cached = (*stamp, kernel.pack(weight.detach()))
            self._packed[key] = cached
        return cached[2]
