"""TiRex-2's time mixers: a bidirectional xLSTM block around an mLSTM or an sLSTM cell.

    x -> RMSNorm -> cell forwards over every variate
                 -> cell backwards over the covariates that are known in the future
      -> per covariate: combination(concat(forward, backward)); targets keep the forward output
      -> + x -> RMSNorm -> gated feed-forward -> + residual

Module and parameter names follow the official checkpoint. The recurrences themselves are
kernels (``rexforge.kernels.tirex2``), passed in by the network.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from rexforge.config_tirex2 import TiRex2Config
from rexforge.model.slstm import FeedForward, HeadwiseLinear
from rexforge.model.tirex2.layers import HeadwiseLayerNorm, RMSNorm

# xLSTM defaults the official network keeps: norm eps inside the blocks, the soft cap of the
# mLSTM gate pre-activations, and the chunk size and eps of its chunkwise kernel.
XLSTM_NORM_EPS = 1e-6
GATE_SOFT_CAP = 15.0
MLSTM_CHUNK_SIZE = 64
MLSTM_EPS = 1e-6


def soft_cap(x: torch.Tensor, cap: float) -> torch.Tensor:
    """cap * tanh(x / cap): ~x for |x| << cap, never beyond +-cap."""
    return cap * torch.tanh(x / cap)


class MLSTMCell(nn.Module):
    """mLSTM layer (xLSTM 7B style): projections -> chunkwise mLSTM -> per-head layer norm ->
    output gate -> out_proj. x [B, S, E] -> [B, S, E]."""

    def __init__(self, E: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        qk_dim = E // 2  # the official qk_dim_factor 0.5
        self.q = nn.Linear(E, qk_dim, bias=False)
        self.k = nn.Linear(E, qk_dim, bias=False)
        self.v = nn.Linear(E, E, bias=False)
        self.ogate_preact = nn.Linear(E, E, bias=False)
        self.igate_preact = nn.Linear(E, num_heads)  # one scalar gate per head and step
        self.fgate_preact = nn.Linear(E, num_heads)
        self.multihead_norm = HeadwiseLayerNorm(num_heads, E // num_heads, XLSTM_NORM_EPS)
        self.out_proj = nn.Linear(E, E, bias=False)

    def forward(self, x: torch.Tensor, mlstm_kernel) -> torch.Tensor:
        B, S, E = x.shape
        NH = self.num_heads

        def heads(t: torch.Tensor) -> torch.Tensor:  # [B, S, NH*D] -> [B, NH, S, D]
            return t.reshape(B, S, NH, -1).transpose(1, 2)

        i = soft_cap(self.igate_preact(x), GATE_SOFT_CAP).transpose(1, 2)  # [B, NH, S]
        f = soft_cap(self.fgate_preact(x), GATE_SOFT_CAP).transpose(1, 2)  # [B, NH, S]
        h = mlstm_kernel(
            heads(self.q(x)),
            heads(self.k(x)),
            heads(self.v(x)),
            i,
            f,
            chunk_size=MLSTM_CHUNK_SIZE,
            eps=MLSTM_EPS,
        )  # [B, NH, S, DV]
        h = self.multihead_norm(h.transpose(1, 2))  # [B, S, E]
        return self.out_proj(torch.sigmoid(self.ogate_preact(x)) * h)


class SLSTMCell(nn.Module):
    """sLSTM layer: head-wise gate projections -> sLSTM recurrence -> per-head layer norm.
    x [B, S, E] -> [B, S, E]."""

    def __init__(self, E: int, num_heads: int):
        super().__init__()
        NH, DH = num_heads, E // num_heads
        # [NH, DH_in, 4 gate slots (i, f, z, o), DH_out]
        self._recurrent_kernel_ = nn.Parameter(torch.zeros(NH, DH, 4, DH))
        # The official layer also exposes this same tensor as "recurrent_kernel", so its state
        # dict holds both names; registering the alias keeps strict loading of its weights.
        self.recurrent_kernel = self._recurrent_kernel_
        self._bias_ = nn.Parameter(torch.zeros(NH, 4, DH))  # [NH, gate slot, DH]
        # As in TiRex, the module *named* fgate feeds the cell's input-gate slot and igate its
        # forget-gate slot (the official layer stacks f, i, z, o; the cell reads i, f, z, o).
        self.fgate = HeadwiseLinear(E, NH)
        self.igate = HeadwiseLinear(E, NH)
        self.zgate = HeadwiseLinear(E, NH)
        self.ogate = HeadwiseLinear(E, NH)
        self.group_norm = HeadwiseLayerNorm(NH, DH, eps=1e-6)

    GATE_SLOT_MODULES = ("fgate", "igate", "zgate", "ogate")  # feeding slots (i, f, z, o)

    def forward(self, x: torch.Tensor, slstm_kernel) -> torch.Tensor:
        wx = torch.stack([getattr(self, name)(x) for name in self.GATE_SLOT_MODULES], dim=2)
        h = slstm_kernel(wx, self._recurrent_kernel_, self._bias_)  # [B, S, NH, DH]
        return self.group_norm(h)  # [B, S, E]


class BidirectionalXLSTM(nn.Module):
    """The time mixer of one block; ``cell_type`` is "mlstm" or "slstm"."""

    def __init__(self, config: TiRex2Config, cell_type: str):
        super().__init__()
        E = config.embedding_dim
        self.cell_type = cell_type
        self.dropout = config.dropout
        self.norm_lstm = RMSNorm(E, XLSTM_NORM_EPS)
        if cell_type == "mlstm":
            self.fwd_cell = MLSTMCell(E, config.num_heads)
        else:
            self.fwd_cell = SLSTMCell(E, config.num_slstm_heads)
        # Both directions share one cell. The official block keeps it under both names, so its
        # state dict holds every cell weight twice (fwd_cell.* and rev_cell.*); so does ours.
        self.rev_cell = self.fwd_cell
        self.combination = nn.Linear(2 * E, E, bias=False)
        self.norm_ffn = RMSNorm(E, XLSTM_NORM_EPS)
        self.ffn = FeedForward(E, config.ffn_dim)

    def forward(self, x: torch.Tensor, reverse_rows: torch.Tensor, kernels: dict) -> torch.Tensor:
        """x [BV, L, E]; reverse_rows [R] indices of the rows (variates) that also run
        backwards in time. Returns [BV, L, E]."""
        kernel = kernels[self.cell_type]
        x_norm = self.norm_lstm(x)
        forward = self.fwd_cell(x_norm, kernel)  # [BV, L, E]
        mixed = forward
        if reverse_rows.numel() > 0:
            backward_in = torch.flip(x_norm[reverse_rows], dims=(1,))  # [R, L, E], time reversed
            backward = torch.flip(self.rev_cell(backward_in, kernel), dims=(1,))
            both = torch.cat((forward[reverse_rows], backward), dim=-1)  # [R, L, 2E]
            combined = F.dropout(self.combination(both), self.dropout, self.training)
            mixed = forward.index_copy(0, reverse_rows, combined)
        x = x + mixed
        return x + self.ffn(self.norm_ffn(x))
