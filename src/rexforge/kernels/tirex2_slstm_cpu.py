"""A faster TiRex-2 sLSTM kernel for CPU inference: a compiled C cell per step.

Same signature and layout as ``tirex2.slstm_tirex2_torch_ref`` (kind ``tirex2_slstm``). The
reference's step costs ~20 tensor operations on [B, 4, NH, DH] plus a transpose of the
recurrent product; at batch 1 each is a few microseconds of dispatch, so the cell, not the
matmul, is most of the time. So, as for TiRex (``kernels.native_cpu``), ``cpu_native`` runs
per step one ``torch.bmm`` (the per-head recurrent matmul, head-major so it needs no
transposes) and one call into a C function that reads the step's pre-activations once and
writes the new state once. It is built with the system C compiler by
``native_cpu.compiled_library`` (cached per machine) and is unavailable without one. fp32, with
the transcendental functions in overflow-free forms (logsigmoid, sigmoid, tanh through exp of
a non-positive number): equal to the reference to fp32 rounding, not bit for bit.

A torch-only head-major loop with in-place cell operations (TiRex's ``cpu_fused`` recipe) was
tried and dropped: on TiRex-2 82m shapes it measured no faster than the reference, since both
are ~20 dispatched operations per step.

It is an fp32 inference kernel: when a gradient is needed (training), or the tensors are not
fp32 on the CPU, it runs the reference (whose backward is autograd's).
"""

from __future__ import annotations

import ctypes
import functools

import torch

from rexforge.kernels.tirex2 import slstm_tirex2_torch_ref

# One step of TiRex-2's cell for every (head, series): reads the input projections
# wx [NH, B, 4, DH], the recurrent product ry [NH, B, 4, DH] and the bias [NH, 4, DH]; updates
# c, n, m [NH, B, DH] in place and writes y [NH, B, DH]. Gate slots (i, f, z, o). Differs from
# TiRex's cell in two places: the forget pre-activation is not clamped, and n is floored at 1.
# Every exp argument is <= 0 and every division is by n >= 1, so -ffast-math (which assumes
# finite values) never meets an infinity for finite inputs.
_CELL_SOURCE = r"""
#include <math.h>
#include <stdint.h>

void tirex2_slstm_cell_step(const float *restrict wx, const float *restrict ry,
                            const float *restrict bias, float *restrict c, float *restrict n,
                            float *restrict m, float *restrict y, int64_t NH, int64_t B,
                            int64_t DH, int fresh) {
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
                float f_raw = w[DH + d] + r[DH + d] + bh[DH + d];
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
                float n_new = fmaxf(f_gate * nr[d] + i_gate, 1.0f);
                cr[d] = c_new;
                nr[d] = n_new;
                mr[d] = m_new;
                yr[d] = sigmoid_o * c_new / n_new;
            }
        }
    }
}
"""


@functools.cache
def _library() -> ctypes.CDLL:
    from rexforge.kernels.native_cpu import compiled_library

    lib = compiled_library(_CELL_SOURCE, "tirex2_slstm_cell")
    lib.tirex2_slstm_cell_step.restype = None
    lib.tirex2_slstm_cell_step.argtypes = (
        [ctypes.c_void_p] * 7 + [ctypes.c_int64] * 3 + [ctypes.c_int]
    )  # fmt: skip
    return lib


def _head_major(wx, recurrent_kernel, bias):
    """The loop's layouts, each one copy for all steps: wx [B, S, 4, NH, DH] ->
    [S, NH, B, 4, DH]; recurrent kernel [NH, DH, 4, DH] -> [NH, DH, 4*DH]; bias [NH, 4, DH]."""
    NH, DH = recurrent_kernel.shape[0], recurrent_kernel.shape[1]
    wx_h = wx.float().permute(1, 3, 0, 2, 4).contiguous()
    R_h = recurrent_kernel.float().reshape(NH, DH, 4 * DH).contiguous()
    return wx_h, R_h, bias.float().contiguous()


@torch.no_grad()
def _forward_native(wx, recurrent_kernel, bias) -> torch.Tensor:
    B, S, G, NH, DH = wx.shape
    cell = _library().tirex2_slstm_cell_step
    wx_h, R_h, b_h = _head_major(wx, recurrent_kernel, bias)
    cnm = wx_h.new_zeros(3, NH, B, DH)  # (c, n, m), updated in place by the cell
    y = wx_h.new_zeros(NH, B, DH)
    h_all = wx_h.new_empty(S, NH, B, DH)
    ry = wx_h.new_empty(NH, B, G * DH)
    c_ptr, n_ptr, m_ptr = (cnm[k].data_ptr() for k in range(3))
    wx_step, h_step = NH * B * G * DH * 4, NH * B * DH * 4  # bytes per step
    wx_ptr, h_ptr, ry_ptr, b_ptr = wx_h.data_ptr(), h_all.data_ptr(), ry.data_ptr(), b_h.data_ptr()
    for t in range(S):
        torch.bmm(y, R_h, out=ry)  # [NH, B, DH] @ [NH, DH, 4*DH]
        y = h_all[t]
        cell(wx_ptr + t * wx_step, ry_ptr, b_ptr, c_ptr, n_ptr, m_ptr, h_ptr + t * h_step,
             NH, B, DH, int(t == 0))  # fmt: skip
    return h_all.permute(2, 0, 1, 3)  # [B, S, NH, DH]


def _needs_reference(wx, recurrent_kernel, bias) -> bool:
    wants_grad = torch.is_grad_enabled() and any(
        t.requires_grad for t in (wx, recurrent_kernel, bias)
    )
    return wants_grad or wx.device.type != "cpu" or wx.dtype != torch.float32


def slstm_tirex2_native_cpu(
    wx: torch.Tensor, recurrent_kernel: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """TiRex-2's sLSTM through the compiled cell; layout in ``kernels.tirex2``."""
    if _needs_reference(wx, recurrent_kernel, bias):
        return slstm_tirex2_torch_ref(wx, recurrent_kernel, bias)
    return _forward_native(wx, recurrent_kernel, bias)


def native_unavailable_reason() -> str | None:
    try:
        _library()
    except (RuntimeError, OSError) as error:
        return f"{error}"
    return None


def _register() -> None:
    from rexforge.kernels.registry import register_kernel

    register_kernel(
        "cpu_native",
        slstm_tirex2_native_cpu,
        # Below the reference: "auto" keeps tirex-2's numbers; numerics="fast" asks for this.
        priority=-10,
        unavailable_reason=native_unavailable_reason,
        kind="tirex2_slstm",
        description="fp32 inference: one bmm + one compiled C cell per step (built once with cc)",
    )


_register()
