"""The plain torch sLSTM recurrence: the truth every other kernel is checked against."""

from __future__ import annotations

import torch

from rexforge.kernels.common import (
    check_numerics,
    initial_state,
    maybe_round,
    slstm_pointwise,
)


def slstm_torch_ref(
    wx: torch.Tensor,
    state: torch.Tensor | None,
    recurrent_kernel: torch.Tensor,
    bias: torch.Tensor,
    numerics: str = "bf16",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step-by-step recurrence, differentiable by autograd. Layout in ``kernels.common``."""
    check_numerics(numerics)
    return reference_loop(*prepare_inputs(wx, state, recurrent_kernel, bias, numerics))


def prepare_inputs(wx, state, recurrent_kernel, bias, numerics: str) -> tuple:
    """The kernel arguments in the layout ``reference_loop`` takes, with the bf16 rounding of
    the inputs applied: ``(wx, (y, c, n, m), R, b, numerics, fresh, shape)``."""
    B, S, G, NH, DH = wx.shape
    width = NH * DH
    # No state: the all-zero start, known fresh without looking at values (a tensor check
    # would break a torch.compile graph of the whole model).
    known_fresh = state is None
    if state is None:
        state = initial_state(B, width, wx)
    # Gate-major layout [B, S, 4, NH*DH] so that slot g of the raw pre-activation is contiguous.
    wx = maybe_round(wx.float(), numerics).reshape(B, S, G, width)
    R = maybe_round(recurrent_kernel.float(), numerics)  # [NH, DH, 4*DH]
    # Bias (NH, 4, DH) -> (4, NH*DH), matching the gate-major pre-activations.
    b = bias.float().reshape(NH, G, DH).transpose(0, 1).reshape(1, G, width)

    y, c, n, m = (maybe_round(s.float(), numerics) for s in state.unbind(0))
    # The official cell treats the very first step from an all-zero normaliser specially.
    # Decided here, eagerly, so that the loop has no branch on tensor values.
    fresh = known_fresh or bool((n == 0).all())
    return wx, (y, c, n, m), R, b, numerics, fresh, (B, S, G, NH, DH)


def reference_loop(wx, state, R, b, numerics: str, fresh: bool, shape: tuple[int, ...]):
    """The time loop of ``slstm_torch_ref`` on prepared inputs: ``wx`` [B, S, 4, NH*DH],
    ``state`` = (y, c, n, m) each [B, NH*DH], ``R`` [NH, DH, 4*DH], ``b`` [1, 4, NH*DH].
    Branch-free in tensor values (``fresh`` is a Python bool), so ``torch.compile`` traces it
    as one graph (see ``kernels.compiled_cpu``)."""
    B, S, G, NH, DH = shape
    width = NH * DH
    y, c, n, m = state
    outputs = []
    for t in range(S):
        # Per-head recurrent matmul: [NH, B, DH] @ [NH, DH, 4*DH] -> [NH, B, 4*DH]
        ry = torch.bmm(y.reshape(B, NH, DH).transpose(0, 1), R)
        ry = maybe_round(ry, numerics)
        # [NH, B, 4, DH] -> [B, 4, NH, DH] -> [B, 4, NH*DH]
        ry = ry.reshape(NH, B, G, DH).permute(1, 2, 0, 3).reshape(B, G, width)
        raw = (wx[:, t] + ry) + b
        y, c, n, m = slstm_pointwise(raw, c, n, m, fresh)
        y, c, n, m = (maybe_round(s, numerics) for s in (y, c, n, m))
        fresh = False
        outputs.append(y)
    h = torch.stack(outputs, dim=1).reshape(B, S, NH, DH)
    return h, torch.stack((y, c, n, m))
