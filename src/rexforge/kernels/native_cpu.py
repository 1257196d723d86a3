"""An fp32 sLSTM kernel whose pointwise cell is one compiled C loop per step.

Why: profiled on tirex-35m (2-core AVX2 EPYC), the torch-op cell costs ~25 tensor operations
per step; at batch 1 each is a few microseconds of dispatch, at batch 32 each is a pass over
[NH, B, 4, DH] in memory. Together they were ~70% of the recurrence at batch 32, context 2048,
and ~80% of it at batch 1. Here each step is one ``torch.bmm`` (the recurrent matmul, MKL)
plus one call into a ~40-line C function that reads the step's pre-activations once and
writes the new state once, with the transcendental functions vectorised (glibc's libmvec).

The C source is compiled once per machine with the system C compiler (``-O3 -march=native
-ffast-math``; ~0.2 s) into the user cache and loaded with ctypes: no torch headers, no build
step at install. Without a C compiler the kernel is unavailable (the registry says so).

Same signature and layout as every kernel (``kernels.common``), fp32 numerics only: the cell is
the same stabilised exponential gating in a different but equivalent arrangement (logsigmoid
and sigmoid in their overflow-free forms, tanh through exp), so it agrees with ``torch_ref``
to fp32 rounding, not bit for bit. With ``numerics="bf16"`` or when gradients are needed it
runs ``cpu_fused`` (bit-exact bf16 emulation, hand-written backward).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from rexforge.kernels.common import check_numerics, needs_grad
from rexforge.kernels.fused_cpu import slstm_fused_cpu


def slstm_cell_source(function: str, forget_cap: float | None, normaliser_floor: float | None):
    """C source of one step of an sLSTM cell for every (head, series), named ``function``:
    reads the input projections wx [NH, B, 4, DH], the recurrent product ry [NH, B, 4, DH] and
    the bias [NH, 4, DH]; updates c, n, m [NH, B, DH] in place and writes y [NH, B, DH]. Gate
    slots (i, f, z, o) as in ``kernels.common``. The families differ in two places: TiRex caps
    the forget pre-activation (``forget_cap`` 15), TiRex-2 floors n (``normaliser_floor`` 1).
    Every exp argument is <= 0 and every division is by n > 0 (or >= 1), so -ffast-math (which
    assumes finite values) never meets an infinity for finite inputs."""
    f_raw = "w[DH + d] + r[DH + d] + bh[DH + d]"
    if forget_cap is not None:
        f_raw = f"fminf({f_raw}, {forget_cap:.1f}f)"
    n_new = "f_gate * nr[d] + i_gate"
    if normaliser_floor is not None:
        n_new = f"fmaxf({n_new}, {normaliser_floor:.1f}f)"
    return (
        _CELL_TEMPLATE.replace("FUNCTION", function).replace("F_RAW", f_raw).replace("N_NEW", n_new)
    )


_CELL_TEMPLATE = r"""
#include <math.h>
#include <stdint.h>

void FUNCTION(const float *restrict wx, const float *restrict ry, const float *restrict bias,
              float *restrict c, float *restrict n, float *restrict m, float *restrict y,
              int64_t NH, int64_t B, int64_t DH, int fresh) {
    for (int64_t h = 0; h < NH; h++) {
        const float *bh = bias + h * 4 * DH;
        for (int64_t b = 0; b < B; b++) {
            const int64_t row = h * B + b;
            const float *w = wx + row * 4 * DH, *r = ry + row * 4 * DH;
            float *cr = c + row * DH, *nr = n + row * DH, *mr = m + row * DH;
            float *yr = y + row * DH;
#pragma omp simd
            for (int64_t d = 0; d < DH; d++) {
                float i_raw = w[d] + r[d] + bh[d];
                float f_raw = F_RAW;
                float z_raw = w[2 * DH + d] + r[2 * DH + d] + bh[2 * DH + d];
                float o_raw = w[3 * DH + d] + r[3 * DH + d] + bh[3 * DH + d];
                /* logsigmoid(f) = min(f, 0) - log(1 + exp(-|f|)) */
                float log_f = fminf(f_raw, 0.0f) - log1pf(expf(-fabsf(f_raw)));
                float log_f_plus_m = mr[d] + log_f;
                float m_new = fresh ? i_raw : fmaxf(i_raw, log_f_plus_m);
                float i_gate = expf(fminf(i_raw - m_new, 0.0f));
                float f_gate = expf(fminf(log_f_plus_m - m_new, 0.0f));
                float ez = expf(-2.0f * fabsf(z_raw));
                float tanh_z = copysignf((1.0f - ez) / (1.0f + ez), z_raw);
                float eo = expf(-fabsf(o_raw));
                float sigmoid_o = (o_raw >= 0.0f ? 1.0f : eo) / (1.0f + eo);
                float c_new = f_gate * cr[d] + i_gate * tanh_z;
                float n_new = N_NEW;
                cr[d] = c_new;
                nr[d] = n_new;
                mr[d] = m_new;
                yr[d] = sigmoid_o * c_new / n_new;
            }
        }
    }
}
"""


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "rexforge" / "native"


def _compile_flags() -> list[str]:
    flags = ["-O3", "-ffast-math", "-fopenmp-simd", "-fPIC"]
    if platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64"):
        flags.append(
            "-march=native" if platform.machine().lower() in ("x86_64", "amd64") else "-mcpu=native"
        )
    return flags


@functools.cache
def _library() -> ctypes.CDLL:
    """The compiled cell, built on first use (once per machine, compiler and source)."""
    lib = compiled_library(slstm_cell_source("slstm_cell_step", 15.0, None), "slstm_cell")
    lib.slstm_cell_step.restype = None
    lib.slstm_cell_step.argtypes = [ctypes.c_void_p] * 7 + [ctypes.c_int64] * 3 + [ctypes.c_int]
    return lib


@functools.cache
def compiled_library(source: str, stem: str) -> ctypes.CDLL:
    """``source`` (C, no headers beyond libc/libm) compiled once per machine, compiler and
    source into the user cache as ``<stem>-<hash>.so``, and loaded. Raises RuntimeError
    without a C compiler or when compiling fails. Also used by ``kernels.tirex2_slstm_cpu``."""
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C compiler found (set CC or install gcc)")
    flags = _compile_flags()
    libs = ["-lmvec", "-lm"] if platform.system() == "Linux" else ["-lm"]
    key = hashlib.sha256("\n".join([source, compiler, *flags, _cpu_flags()]).encode())
    target = _cache_dir() / f"{stem}-{key.hexdigest()[:16]}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            _build(source, stem, compiler, flags, libs, Path(tmp))
            os.replace(Path(tmp) / f"{stem}.so", target)  # atomic: racing builders agree
    return ctypes.CDLL(str(target))


def _build(
    source_text: str, stem: str, compiler: str, flags: list[str], libs: list[str], folder: Path
) -> None:
    """Compile, then link in a separate step: linked with -ffast-math, GCC adds a start-up
    routine (crtfastmath) that sets flush-to-zero for the whole process, which would change
    every other computation's subnormal numbers as soon as this library loads."""
    source, obj = folder / f"{stem}.c", folder / f"{stem}.o"
    source.write_text(source_text)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([compiler, *args], capture_output=True, text=True)

    done = run(*flags, "-c", str(source), "-o", str(obj))
    if done.returncode == 0:
        link = ["-shared", str(obj), "-o", str(folder / f"{stem}.so")]
        done = run(*link, *libs)
        if done.returncode != 0 and "-lmvec" in libs:  # a libc without libmvec: scalar maths
            done = run(*link, "-lm")
    if done.returncode != 0:
        raise RuntimeError(f"compiling {stem} failed: {done.stderr.strip()[:300]}")


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return next((line for line in handle if line.startswith("flags")), "")
    except OSError:
        return platform.processor()


@torch.no_grad()
def _forward_native(wx, state, R, b):
    B, S, G, NH, DH = wx.shape
    wx_h = wx.float().permute(1, 3, 0, 2, 4).contiguous()  # [S, NH, B, 4, DH]
    cnm = wx_h.new_zeros(3, NH, B, DH)  # (c, n, m), updated in place by the cell
    y = wx_h.new_zeros(NH, B, DH)
    if state is not None:
        # [4, B, NH*DH] -> [4, NH, B, DH]
        head_major = state.float().reshape(4, B, NH, DH).transpose(1, 2)
        y.copy_(head_major[0])
        cnm.copy_(head_major[1:])
    fresh = bool((cnm[1] == 0).all())
    cell = _library().slstm_cell_step
    h_all = run_cell_steps(cell, wx_h, R.float().contiguous(), b.float(), cnm, y, fresh)
    h = h_all.permute(2, 0, 1, 3)  # [B, S, NH, DH]
    last = h_all[-1] if S else y  # [NH, B, DH]
    final = torch.cat((last.unsqueeze(0), cnm)).transpose(1, 2).reshape(4, B, NH * DH)
    return h, final


def run_cell_steps(cell, wx_h, R_h, bias, cnm, y, fresh: bool) -> torch.Tensor:
    """The recurrence, step by step: one ``bmm`` of the last output with the recurrent kernel,
    then one call of the compiled ``cell``. wx_h [S, NH, B, 4, DH] and R_h [NH, DH, 4*DH]
    contiguous fp32; cnm [3, NH, B, DH] (c, n, m) is updated in place; y [NH, B, DH] is the
    output before the first step; ``fresh``: the state is empty (m starts at the first i).
    Returns every step's output [S, NH, B, DH]."""
    S, NH, B, G, DH = wx_h.shape
    bias = bias.contiguous()
    h_all = wx_h.new_empty(S, NH, B, DH)
    ry = wx_h.new_empty(NH, B, G * DH)
    c_ptr, n_ptr, m_ptr = (cnm[k].data_ptr() for k in range(3))
    wx_step, h_step = NH * B * G * DH * 4, NH * B * DH * 4  # bytes per step
    wx_ptr, h_ptr, ry_ptr = wx_h.data_ptr(), h_all.data_ptr(), ry.data_ptr()
    for t in range(S):
        torch.bmm(y, R_h, out=ry)  # [NH, B, DH] @ [NH, DH, 4*DH]
        y = h_all[t]
        cell(wx_ptr + t * wx_step, ry_ptr, bias.data_ptr(), c_ptr, n_ptr, m_ptr,
             h_ptr + t * h_step, NH, B, DH, int(fresh and t == 0))  # fmt: skip
    return h_all


def slstm_native_cpu(
    wx: torch.Tensor,
    state: torch.Tensor | None,
    recurrent_kernel: torch.Tensor,
    bias: torch.Tensor,
    numerics: str = "fp32",
) -> tuple[torch.Tensor, torch.Tensor]:
    """sLSTM recurrence; see ``kernels.common`` for the signature and layout."""
    check_numerics(numerics)
    grad = needs_grad(wx, state, recurrent_kernel, bias)
    if numerics != "fp32" or grad or wx.device.type != "cpu":
        return slstm_fused_cpu(wx, state, recurrent_kernel, bias, numerics)
    return _forward_native(wx, state, recurrent_kernel, bias)


def unavailable_reason() -> str | None:
    return load_failure(_library)


def load_failure(load: Callable[[], object]) -> str | None:
    """Why ``load`` (a compiled library's loader) fails here, or None when it loads: a
    kernel's ``unavailable_reason``. Also used by ``kernels.tirex2_slstm_cpu``."""
    try:
        load()
    except (RuntimeError, OSError) as error:
        return f"{error}"
    return None


def _register() -> None:
    from rexforge.kernels.registry import register_kernel

    register_kernel(
        "cpu_native",
        slstm_native_cpu,
        # Below cpu_fused: "auto" keeps the bit-exact kernel; numerics="fast" asks for this one.
        priority=5,
        unavailable_reason=unavailable_reason,
        description="fp32: one bmm + one compiled C cell per step (built once with cc)",
    )


_register()
