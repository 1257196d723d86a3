"""The reference recurrence compiled by ``torch.compile`` (Inductor), for training.

Inductor unrolls the time loop of ``reference.reference_loop`` and fuses each step's ~20
pointwise operations, forward and backward (AOTAutograd derives the backward), into
generated C++: per step one matmul plus a few fused loops instead of dozens of tensor ops.
Measured on tirex-1m cell shapes (batch 8, 16 steps, 4 heads of 32; one core): forward +
backward 1.5 ms against 4.5 ms for ``cpu_fused`` and 15.6 ms for the autograd reference.

Trade-offs, and why ``get_kernel("auto")`` never picks it:
* each new input shape compiles once, ~30-70 s on a 2-core CPU (Inductor caches the result
  on disk, so a resumed run compiles faster): worth it for a training run of thousands of
  steps with fixed window shapes, not for forecasting, where latency counts;
* ``numerics="bf16"`` (the official inference numerics) runs the bit-exact ``cpu_fused``
  kernel: generated code may contract multiply-adds, and the bf16 recurrence amplifies such
  last-bit differences; fp32 results agree with the reference to rounding (tested).
"""

from __future__ import annotations

import functools
import shutil

import torch

from rexforge.kernels.common import check_numerics
from rexforge.kernels.fused_cpu import slstm_fused_cpu
from rexforge.kernels.reference import prepare_inputs, reference_loop


@functools.cache
def _compiled_loop():
    return torch.compile(reference_loop, dynamic=False)


def slstm_compiled_cpu(
    wx: torch.Tensor,
    state: torch.Tensor | None,
    recurrent_kernel: torch.Tensor,
    bias: torch.Tensor,
    numerics: str = "bf16",
) -> tuple[torch.Tensor, torch.Tensor]:
    """sLSTM recurrence; see ``kernels.common`` for the signature and layout."""
    check_numerics(numerics)
    if numerics == "bf16":
        return slstm_fused_cpu(wx, state, recurrent_kernel, bias, numerics)
    return _compiled_loop()(*prepare_inputs(wx, state, recurrent_kernel, bias, "fp32"))


def _unavailable() -> str | None:
    if shutil.which("c++") or shutil.which("g++") or shutil.which("clang++"):
        return None
    return "torch.compile's CPU backend needs a C++ compiler (install g++)"


def _register() -> None:
    from rexforge.kernels.registry import register_kernel

    register_kernel(
        "cpu_compiled",
        slstm_compiled_cpu,
        priority=-10,  # below torch_ref: "auto" must never start a minute-long compilation
        unavailable_reason=_unavailable,
        description="torch.compile of the reference loop (training; compiles once per shape)",
    )


_register()
