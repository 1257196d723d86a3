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

from rexforge.kernels.common import needs_grad
from rexforge.kernels.tirex2 import slstm_tirex2_torch_ref


@functools.cache
def _library() -> ctypes.CDLL:
    from rexforge.kernels.native_cpu import compiled_library, slstm_cell_source

    # TiRex-2's cell: the forget gate uncapped, the normaliser floored at 1.
    source = slstm_cell_source("tirex2_slstm_cell_step", None, 1.0)
    lib = compiled_library(source, "tirex2_slstm_cell")
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
    from rexforge.kernels.native_cpu import run_cell_steps

    B, S, G, NH, DH = wx.shape
    wx_h, R_h, b_h = _head_major(wx, recurrent_kernel, bias)
    cnm = wx_h.new_zeros(3, NH, B, DH)  # (c, n, m), updated in place by the cell
    y = wx_h.new_zeros(NH, B, DH)
    h_all = run_cell_steps(_library().tirex2_slstm_cell_step, wx_h, R_h, b_h, cnm, y, True)
    return h_all.permute(2, 0, 1, 3)  # [B, S, NH, DH]


def _needs_reference(wx, recurrent_kernel, bias) -> bool:
    grad = needs_grad(wx, recurrent_kernel, bias)
    return grad or wx.device.type != "cpu" or wx.dtype != torch.float32


def slstm_tirex2_native_cpu(
    wx: torch.Tensor, recurrent_kernel: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """TiRex-2's sLSTM through the compiled cell; layout in ``kernels.tirex2``."""
    if _needs_reference(wx, recurrent_kernel, bias):
        return slstm_tirex2_torch_ref(wx, recurrent_kernel, bias)
    return _forward_native(wx, recurrent_kernel, bias)


def native_unavailable_reason() -> str | None:
    from rexforge.kernels.native_cpu import load_failure

    return load_failure(_library)


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
