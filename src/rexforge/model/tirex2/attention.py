"""TiRex-2's variate mixer: attention across the variates of each series, at every position.

    x [L, BV, E] -> RMSNorm -> multi-head attention over BV -> + x
                 -> RMSNorm -> MLP (4E)                     -> + residual

Attention is restricted to variates of the same series (equal group id), and covariates do
not attend to targets (information flows from covariates to targets only). A series with a
single variate has nothing to mix: its rows skip the whole block, residuals included.
Parameter names follow the official checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from rexforge.config_tirex2 import TiRex2Config
from rexforge.model.tirex2.layers import MLP, RMSNorm

NORM_EPS = 1e-6


class VariateAttention(nn.Module):
    """Multi-head attention with RMS-normalised queries and keys; no biases."""

    def __init__(self, E: int, num_heads: int, dropout: float, use_qk_norm: bool):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = E // num_heads
        self.dropout = dropout
        self.use_qk_norm = use_qk_norm
        self.WK = nn.Linear(E, E, bias=False)
        self.WQ = nn.Linear(E, E, bias=False)
        self.WV = nn.Linear(E, E, bias=False)
        self.WO = nn.Linear(E, E, bias=False)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
        """x [L, V, E] (attention runs over V); allowed [V, V] bool (query, key) or None."""
        L, V, E = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:  # [L, V, E] -> [L, NH, V, DH]
            return t.reshape(L, V, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.WQ(x)), heads(self.WK(x)), heads(self.WV(x))
        if self.use_qk_norm:
            # No learned gain, and torch's default eps (the dtype's machine epsilon).
            q = F.rms_norm(q, (self.head_dim,))
            k = F.rms_norm(k, (self.head_dim,))
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=allowed,
            dropout_p=self.dropout if self.training else 0.0,
            scale=self.head_dim**-0.5,
        )  # [L, NH, V, DH]
        out = self.WO(out.transpose(1, 2).reshape(L, V, E))
        return F.dropout(out, self.dropout, self.training)


class VariateMixer(nn.Module):
    def __init__(self, config: TiRex2Config):
        super().__init__()
        E = config.embedding_dim
        self.norm_attn = RMSNorm(E, NORM_EPS)
        self.attn = VariateAttention(E, config.num_heads, config.dropout, config.use_qk_norm)
        self.norm_ffn = RMSNorm(E, NORM_EPS)
        self.ffn = MLP(E, 4 * E, config.act_func, config.dropout)

    def forward(
        self, x: torch.Tensor, group_ids: torch.Tensor | None, target_mask: torch.Tensor
    ) -> torch.Tensor:
        """x [L, BV, E]; group_ids [BV] (None: all variates attend to each other);
        target_mask [BV] bool. Returns [L, BV, E]."""
        if group_ids is None:
            return self._mix(x, None)
        _, group_index, group_sizes = torch.unique(
            group_ids, return_inverse=True, return_counts=True
        )
        shared = group_sizes[group_index] > 1  # [BV] rows of multivariate series
        if not bool(shared.any()):
            return x
        groups, is_target = group_ids[shared], target_mask[shared]
        same_group = groups[:, None] == groups[None, :]  # [V', V'] (query, key)
        covariate_to_target = ~is_target[:, None] & is_target[None, :]
        mixed = self._mix(x[:, shared], same_group & ~covariate_to_target)
        return x.index_copy(1, shared.nonzero().squeeze(-1), mixed)

    def _mix(self, x: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.norm_attn(x), allowed)
        return x + self.ffn(self.norm_ffn(x))
