"""Small building blocks of TiRex-2: norms and MLPs. Parameter names follow the official
checkpoint, so that state dicts map one to one."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# Every norm of TiRex-2 outside the recurrent cells is TiRex's RMS norm (reduced in fp32, gain
# only), always built with an explicit eps: the official stack output norm is *called*
# LayerNorm but is T5's (no mean subtraction, no bias).
from rexforge.model.slstm import RMSNorm  # noqa: F401  (re-exported for the TiRex-2 blocks)


def activation(name: str) -> nn.Module:
    """A torch.nn activation by class name (the official config names one, e.g. "SiLU")."""
    return getattr(nn, name)()


class HeadwiseLayerNorm(nn.Module):
    """Layer norm within each head (mean and variance over DH), gain ``weight``, no bias:
    [B, S, NH, DH] -> [B, S, NH * DH]. (TiRex's sLSTM used 1 + weight; TiRex-2 uses weight.)"""

    def __init__(self, num_heads: int, head_dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_heads * head_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, S, NH, DH = h.shape
        h32 = h.float()
        centered = h32 - h32.mean(dim=-1, keepdim=True)
        normed = centered * torch.rsqrt(h32.var(dim=-1, keepdim=True, unbiased=False) + self.eps)
        return normed.to(h.dtype).reshape(B, S, NH * DH) * self.weight


class ResidualMLP(nn.Module):
    """out = dropout(W_out act(W_hidden x)) + W_res x, all with bias: the patch embedding and
    the output head."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, act: str, dropout: float):
        super().__init__()
        self.act = activation(act)
        self.dropout = dropout
        self.hidden_layer = nn.Linear(in_dim, hidden_dim)
        self.output_layer = nn.Linear(hidden_dim, out_dim)
        self.residual_layer = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.output_layer(self.act(self.hidden_layer(x)))
        return F.dropout(hidden, self.dropout, self.training) + self.residual_layer(x)


class MLP(nn.Module):
    """wo(dropout(act(wi x))), no biases: the attention block's feed-forward (width 4E)."""

    def __init__(self, dim: int, hidden: int, act: str, dropout: float):
        super().__init__()
        self.act = activation(act)
        self.dropout = dropout
        self.wi = nn.Linear(dim, hidden, bias=False)
        self.wo = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.wo(F.dropout(self.act(self.wi(x)), self.dropout, self.training))
