"""The sLSTM recurrence as the official CPU path computes it, operation for operation.

``numerics="official"`` exists so that forecasts equal tirex-ts' on *any* CPU. The fast modes
emulate the official bf16 rounding in fp32 arithmetic; that is bit-exact only where torch's
bf16 matmul sums exactly like an fp32 matmul followed by one rounding (CPUs with native bf16
dot products). Elsewhere (AVX2-only CPUs) torch runs another bf16 matmul kernel, a few
recurrent products round differently, and 64 steps x 12 blocks amplify the flips to ~1e-2 of
a series' std. Here the recurrence runs the same torch operations, on tensors of the same
dtypes, shapes and strides, so the same ATen/oneDNN kernels run with the same summation order
and the same vector/tail split of every pointwise loop, whatever the CPU.

Signature and layout as every kernel (``kernels.common``); ``numerics`` must be "official".
Not in the kernel registry: ``TiRexModel`` runs it whenever its numerics are "official",
whatever kernel it was given, because no other arrangement of the work gives these bits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def slstm_official(
    wx: torch.Tensor,
    state: torch.Tensor | None,
    recurrent_kernel: torch.Tensor,
    bias: torch.Tensor,
    numerics: str = "official",
) -> tuple[torch.Tensor, torch.Tensor]:
    """sLSTM recurrence in bf16 storage with fp32 gate arithmetic, as the official cell."""
    if numerics != "official":
        raise ValueError(f"slstm_official runs numerics='official' only, got {numerics!r}")
    B, S, G, NH, DH = wx.shape
    E = NH * DH
    # [B, S, 4, NH, DH] -> [S, B, 4, NH, DH] (a strided view, as officially) -> bf16 [S, B, 4E]
    x = wx.permute(1, 0, 2, 3, 4).to(torch.bfloat16).view(S, B, -1)
    if state is None:
        state = torch.zeros(4, B, E, dtype=wx.dtype, device=wx.device)
    R = recurrent_kernel.to(torch.bfloat16)  # [NH, DH, 4*DH]
    # Bias (NH, 4, DH) -> gate-major (4, NH, DH), flat [4E].
    b = bias.to(torch.float32).reshape(NH, G, DH).permute(1, 0, 2).reshape(-1)
    states = state.to(torch.bfloat16).unbind(dim=0)  # 4 x [B, E]
    outputs = []
    for t in range(S):
        # [B, NH, 1, DH] @ [1, NH, DH, 4DH] -> [B, NH, 1, 4DH] -> gate-major [B, 4E]
        ry = (
            states[0]
            .reshape(B, NH, 1, -1)
            .matmul(R.unsqueeze(0))
            .reshape(B, NH, G, -1)
            .transpose(1, 2)
            .reshape(B, -1)
        )
        new = _pointwise(x[t].float(), ry.float(), b.float(), [s.float() for s in states])
        states = [s.to(dtype=torch.bfloat16) for s in new]
        outputs.append(states[0])
    h = torch.stack(outputs)  # [S, B, E] bf16
    # -> [B, S, NH, DH] fp32 (the group norm that follows copies it contiguous either way)
    h = h.view(S, B, NH, DH).permute(1, 0, 2, 3).to(wx.dtype)
    return h, torch.stack(states).to(wx.dtype)


def _pointwise(wx, ry, b, states):
    """One cell step on [B, 4E] pre-activation parts and 4 x [B, E] states (all fp32).

    Written to evaluate the same expressions in the same order as the official cell; the
    stabiliser's first-step rule is decided on the whole batch, every step, as officially.
    """
    y, c, n, m = states
    raw = wx + ry + b
    i_raw, f_raw, z_raw, o_raw = torch.unbind(raw.view(raw.shape[0], 4, -1), dim=1)
    log_f_plus_m = m + F.logsigmoid(torch.clamp(f_raw, max=15))
    m_new = torch.where(torch.all(n == 0.0), i_raw, torch.max(i_raw, log_f_plus_m))
    o_gate = torch.sigmoid(o_raw)
    i_gate = torch.minimum(torch.exp(i_raw - m_new), torch.ones_like(i_raw))
    f_gate = torch.minimum(torch.exp(log_f_plus_m - m_new), torch.ones_like(i_raw))
    z_gate = torch.tanh(z_raw)
    c_new = f_gate * c + i_gate * z_gate
    n_new = f_gate * n + i_gate
    h_new = o_gate * c_new / n_new
    return [h_new, c_new, n_new, m_new]
