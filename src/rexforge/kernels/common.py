"""Layout, numerics modes and the pointwise sLSTM cell shared by every kernel.

Every kernel has the signature::

    kernel(wx, state, recurrent_kernel, bias, numerics) -> (h, final_state)

with the checkpoint's parameter layout (so a checkpoint never depends on the kernel):

    wx                [B, S, 4, NH, DH]  input projections per step, gate slots in the order the
                                         cell reads them: (i, f, z, o)
    state             [4, B, NH * DH] or None   (y, c, n, m); None = all zeros
    recurrent_kernel  [NH, DH, 4 * DH]   per head, output laid out (gate slot, DH)
    bias              [NH * 4 * DH]      laid out (NH, gate slot, DH)
    h                 [B, S, NH, DH]     hidden output of every step
    final_state       [4, B, NH * DH]

``numerics`` is one of:

* ``"official"``: the official CPU operations themselves, in bf16 (``kernels.official``); the
  same bits as tirex-ts on every CPU, at the official speed. Kernels never see it:
  ``TiRexModel`` runs ``kernels.official.slstm_official`` in this mode.
* ``"bf16"``: the official rounding emulated in fp32 arithmetic (the input projections, the
  recurrent weights, the recurrent matmul result and all four states are rounded to bfloat16,
  the gate arithmetic is fp32), far faster than bf16 arithmetic on CPUs without native bf16.
  Bit-exact against the official cell where torch's bf16 matmul sums like an fp32 matmul
  (CPUs with avx512_bf16); elsewhere a few roundings flip (see ``kernels.official``).
* ``"fp32"``: no rounding.
* ``"fast"`` (model-level, never passed to a kernel): the recurrence in ``"fp32"`` and the
  projections in the fastest kernels this CPU has (``kernels.fast``); within a stated bound of
  the exact modes, not bit-exact.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Numerics = Literal["official", "bf16", "fp32", "fast"]
# "fast" is a model-level mode (``kernels.fast``): its recurrence runs a kernel in "fp32".
NUMERICS: tuple[str, ...] = ("official", "bf16", "fp32", "fast")


def round_bf16_(x: torch.Tensor) -> torch.Tensor:
    """Round fp32 values to the nearest bfloat16 values (ties to even), in place.

    A round trip through the bf16 dtype. Measured with torch 2.13 on one core (benchmarks/
    results/bf16_rounding-*): 4-6x faster than rounding on the int32 bit pattern (shift, and,
    add, mask) at every size, with vectorised (AVX2, AVX-512) and scalar ATen kernels alike;
    both give the same bits for finite values (tested).
    """
    return x.copy_(x.to(torch.bfloat16))


def round_bf16(x: torch.Tensor) -> torch.Tensor:
    """Round fp32 values to the nearest bfloat16 value, keeping fp32 (a new tensor)."""
    return x.to(torch.bfloat16).to(x.dtype)  # differentiable: rounding acts as the identity


def maybe_round(x: torch.Tensor, numerics: str) -> torch.Tensor:
    return round_bf16(x) if numerics == "bf16" else x


# What a registered kernel computes; "official" is run by ``kernels.official`` instead.
KERNEL_NUMERICS: tuple[str, ...] = ("bf16", "fp32")


def check_numerics(numerics: str, allowed: tuple[str, ...] = KERNEL_NUMERICS) -> None:
    if numerics == "official" and "official" not in allowed:
        raise ValueError(
            "numerics='official' runs rexforge.kernels.official.slstm_official, not a "
            "registered kernel"
        )
    if numerics == "fast" and "fast" not in allowed:
        raise ValueError("numerics='fast' is a model mode; its recurrence kernel runs 'fp32'")
    if numerics not in allowed:
        raise ValueError(f"numerics must be one of {allowed}, got {numerics!r}")


def needs_grad(*tensors: torch.Tensor | None) -> bool:
    """Whether autograd will record a kernel call on these inputs (None entries allowed)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def initial_state(batch: int, width: int, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros(4, batch, width, dtype=torch.float32, device=like.device)


def slstm_pointwise(
    raw: torch.Tensor,  # [B, 4, NH*DH] pre-activations, slots (i, f, z, o)
    c: torch.Tensor,  # [B, NH*DH]
    n: torch.Tensor,  # [B, NH*DH]
    m: torch.Tensor,  # [B, NH*DH]
    fresh: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of the stabilised exponential-gating cell (xLSTM paper, eqs. 8-17).

    ``fresh`` is true on the first step from an all-zero state: the stabiliser m then starts at
    the input-gate pre-activation instead of max(i, log f + m).
    """
    i_raw, f_raw, z_raw, o_raw = raw.unbind(dim=1)
    # The clamp keeps logsigmoid away from subnormal results for very open forget gates.
    log_f_plus_m = m + F.logsigmoid(torch.clamp(f_raw, max=15.0))
    m_new = i_raw if fresh else torch.maximum(i_raw, log_f_plus_m)
    # The official min(exp(x), 1), written exp(min(x, 0)): the same value for every x, but on
    # the fresh step x = log f - i can be large enough for exp(x) to overflow, and autograd's
    # clamp-then-exp backward would then multiply a zero gradient by inf (NaN in every
    # parameter below, as seen with large trained gate pre-activations).
    i_gate = torch.exp(torch.clamp(i_raw - m_new, max=0.0))
    f_gate = torch.exp(torch.clamp(log_f_plus_m - m_new, max=0.0))
    c_new = f_gate * c + i_gate * torch.tanh(z_raw)
    n_new = f_gate * n + i_gate
    h_new = torch.sigmoid(o_raw) * c_new / n_new
    return h_new, c_new, n_new, m_new
