"""TiRex-2's two recurrences in plain torch: the references every faster kernel must match.

Registered as kind ``"tirex2_slstm"`` and ``"tirex2_mlstm"`` (see ``kernels.registry``).

sLSTM (kind ``tirex2_slstm``)::

    kernel(wx, recurrent_kernel, bias) -> h
    wx                [B, S, 4, NH, DH]  input projections, gate slots in the order the cell
                                         reads them: (i, f, z, o)
    recurrent_kernel  [NH, DH, 4, DH]    per head: input unit, gate slot, output unit
    bias              [NH, 4, DH]
    h                 [B, S, NH, DH]     hidden output of every step, from an all-zero state

  The cell is FlashRNN's sLSTM as TiRex-2 runs it, which differs from TiRex's in one place:
  the normaliser n is floored at 1 after every step (so the stabiliser-free ratio c / n can
  never blow up), and the forget pre-activation is not clamped before its log-sigmoid.

mLSTM (kind ``tirex2_mlstm``)::

    kernel(q, k, v, i, f, chunk_size=64, eps=1e-6) -> h
    q, k  [B, NH, S, DQK]    v  [B, NH, S, DV]    i, f  [B, NH, S] gate pre-activations
    h     [B, NH, S, DV]

  The chunkwise form of the mLSTM (xLSTM paper, eqs. 19-27): a matrix memory C and a
  normaliser n carried from chunk to chunk, and inside each chunk a causal, gate-weighted
  attention. The chunk size is part of the result, not only of the speed: the stabiliser m
  of each step is the chunkwise one (inter-chunk m carried from an initial 0, intra-chunk m
  a running max), and it enters the output through ``eps * exp(m)`` in the denominator.
  64 is what TiRex-2 uses on every device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rexforge.errors import ConfigError


def slstm_tirex2_torch_ref(
    wx: torch.Tensor, recurrent_kernel: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """TiRex-2's sLSTM recurrence, one step at a time from a zero state. Layout above."""
    B, S, G, NH, DH = wx.shape
    R = recurrent_kernel.reshape(NH, DH, G * DH)  # [NH, DH, 4*DH], slots laid out (gate, DH)
    y = c = n = m = wx.new_zeros(B, NH, DH)
    outputs = []
    for t in range(S):
        # Per-head recurrent matmul: [NH, B, DH] @ [NH, DH, 4*DH] -> [NH, B, 4*DH]
        ry = torch.bmm(y.transpose(0, 1), R)
        ry = ry.reshape(NH, B, G, DH).permute(1, 2, 0, 3)  # [B, 4, NH, DH]
        raw = wx[:, t] + ry + bias.transpose(0, 1)  # [B, 4, NH, DH]
        y, c, n, m = slstm_tirex2_pointwise(raw, c, n, m, fresh=t == 0)
        outputs.append(y)
    return torch.stack(outputs, dim=1)  # [B, S, NH, DH]


def slstm_tirex2_pointwise(
    raw: torch.Tensor,  # [B, 4, NH, DH] pre-activations, slots (i, f, z, o)
    c: torch.Tensor,  # [B, NH, DH]
    n: torch.Tensor,
    m: torch.Tensor,
    fresh: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of the stabilised exponential-gating cell (xLSTM paper, eqs. 8-17) with the
    normaliser floored at 1. ``fresh``: first step from the all-zero state, where the
    stabiliser starts at the input pre-activation."""
    i_raw, f_raw, z_raw, o_raw = raw.unbind(dim=1)
    log_f_plus_m = F.logsigmoid(f_raw) + m
    m_new = i_raw if fresh else torch.maximum(i_raw, log_f_plus_m)
    i_gate = torch.exp(i_raw - m_new)
    # Written exp(min(x, 0)): the same value wherever it matters. Only on the fresh step can
    # x exceed 0, and there f multiplies c = n = 0; unclamped, a large x would give inf * 0.
    f_gate = torch.exp(torch.clamp(log_f_plus_m - m_new, max=0.0))
    c_new = f_gate * c + i_gate * torch.tanh(z_raw)
    n_new = torch.clamp(f_gate * n + i_gate, min=1.0)
    h_new = torch.sigmoid(o_raw) * c_new / n_new
    return h_new, c_new, n_new, m_new


def mlstm_chunkwise_torch_ref(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    i: torch.Tensor,
    f: torch.Tensor,
    chunk_size: int = 64,
    eps: float = 1e-6,
) -> torch.Tensor:
    """The chunkwise mLSTM from a zero state. Layout above; the last chunk may be short."""
    B, NH, S, DQK = q.shape
    DV = v.shape[-1]
    q = q * DQK**-0.5
    log_f = F.logsigmoid(f)  # [B, NH, S]
    C = q.new_zeros(B, NH, DQK, DV)  # matrix memory at the start of the chunk
    n = q.new_zeros(B, NH, DQK)  # normaliser
    m = q.new_zeros(B, NH)  # stabiliser (log scale of C and n); the official start is 0
    outputs = []
    for start in range(0, S, chunk_size):
        chunk = slice(start, start + chunk_size)
        h, (C, n, m) = mlstm_chunk(
            q[:, :, chunk],
            k[:, :, chunk],
            v[:, :, chunk],
            i[:, :, chunk],
            log_f[:, :, chunk],
            (C, n, m),
            eps,
        )
        outputs.append(h)
    return torch.cat(outputs, dim=2)  # [B, NH, S, DV]


def mlstm_chunk(q, k, v, i, log_f, state, eps: float):
    """One chunk of L steps: q (already scaled), k [B, NH, L, DQK], v [B, NH, L, DV], i and
    log_f [B, NH, L], state (C [B, NH, DQK, DV], n [B, NH, DQK], m [B, NH]) at the chunk start.
    Returns h [B, NH, L, DV] and the state at the chunk end."""
    C, n, m = state
    L = q.shape[2]
    # b_t: log of the forget gates' product from the chunk start up to and including t.
    b = log_f.cumsum(dim=-1)  # [B, NH, L]

    # Outputs. Intra-chunk weight of step s seen from t >= s: log D_ts = b_t - b_s + i_s.
    causal = torch.ones(L, L, dtype=torch.bool, device=q.device).tril()
    log_d = (b[..., :, None] - b[..., None, :] + i[..., None, :]).masked_fill(~causal, -torch.inf)
    m_inter = b + m[..., None]  # [B, NH, L] log scale of the carried state seen from t
    m_t = torch.maximum(m_inter, log_d.amax(dim=-1))  # [B, NH, L]
    scores = (q @ k.transpose(-2, -1)) * torch.exp(log_d - m_t[..., None])  # [B, NH, L, L]
    q_inter = q * torch.exp(m_inter - m_t)[..., None]  # [B, NH, L, DQK]
    numerator = q_inter @ C + scores @ v  # [B, NH, L, DV]
    denominator = q_inter @ n[..., None] + scores.sum(dim=-1, keepdim=True)  # [B, NH, L, 1]
    # max(|q.n|, exp(-m)) is max(|true normaliser|, 1) in the stabilised scale.
    h = numerator / (torch.maximum(denominator.abs(), torch.exp(-m_t)[..., None]) + eps)

    # State at the chunk end: step s enters with log weight a_s = b_L - b_s + i_s.
    g = b[..., -1]  # [B, NH] log forget product over the whole chunk
    a = g[..., None] - b + i  # [B, NH, L]
    m_next = torch.maximum(g + m, a.amax(dim=-1))  # [B, NH]
    decay = torch.exp(g + m - m_next)  # [B, NH]
    k_weighted = k * torch.exp(a - m_next[..., None])[..., None]  # [B, NH, L, DQK]
    C = decay[..., None, None] * C + k_weighted.transpose(-2, -1) @ v
    n = decay[..., None] * n + k_weighted.sum(dim=-2)
    return h, (C, n, m_next)


# The fast CPU kernels of each recurrence, best first (kernels/tirex2_*_cpu.py).
FAST_KERNELS = {"tirex2_slstm": ("cpu_native",), "tirex2_mlstm": ("cpu_batched",)}


def recurrence_kernels(kernel: str, numerics: str | None) -> tuple[str, str]:
    """(sLSTM kernel, mLSTM kernel) for ``from_checkpoint``'s ``kernel`` and ``numerics``."""
    from rexforge.kernels.registry import list_kernels

    names = []
    for kind in ("tirex2_slstm", "tirex2_mlstm"):
        available = list_kernels(available_only=True, kind=kind)
        if kernel == "auto" and numerics == "fast":
            names.append(next((k for k in FAST_KERNELS[kind] if k in available), "auto"))
        elif kernel != "auto" and kernel not in list_kernels(kind=kind):
            names.append("auto")  # a kernel of the other recurrence (or unknown: see below)
        else:
            names.append(kernel)
    if kernel != "auto" and names == ["auto", "auto"]:
        known = sorted(
            set(list_kernels(kind="tirex2_slstm")) | set(list_kernels(kind="tirex2_mlstm"))
        )
        raise ConfigError(f"unknown TiRex-2 kernel {kernel!r}; known: {', '.join(known)}")
    return names[0], names[1]


def _register() -> None:
    from rexforge.kernels.registry import register_kernel

    register_kernel(
        "torch_ref",
        slstm_tirex2_torch_ref,
        kind="tirex2_slstm",
        description="plain torch loop, autograd backward; the reference",
    )
    register_kernel(
        "torch_ref",
        mlstm_chunkwise_torch_ref,
        kind="tirex2_mlstm",
        description="plain torch chunkwise form (chunk 64), autograd backward; the reference",
    )


_register()
