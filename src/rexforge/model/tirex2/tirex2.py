"""The TiRex-2 network: variates [BV, T] -> quantiles [BV, Q, N * P] at every patch position.

    series -> scale (mean/std, arcsinh) -> patches [BV, N, P] -> tokens [BV, N, 2P]
           -> input_patch_embedding (residual MLP 2P -> F -> E)
           -> num_blocks x MultivariateBlock:
                time_mixer    (bidirectional mLSTM or sLSTM over N, per variate)
                variate_mixer (attention over the variates of a series, per position)
           -> stack_out_norm -> output_patch_embedding (residual MLP E -> h -> Q*P)
           -> unpatch, unscale

Each row of the input is one variate; ``group_ids`` says which rows form one series and
``target_mask`` which rows are its targets (the rest are covariates). No I/O, no padding to
the context length, no rollout (that is the forecaster's job), no training code.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from rexforge.config_tirex2 import TiRex2Config
from rexforge.kernels.registry import get_kernel
from rexforge.model.tirex2.attention import VariateMixer
from rexforge.model.tirex2.layers import HeadwiseLayerNorm, ResidualMLP, RMSNorm
from rexforge.model.tirex2.scaling import (
    patch_series,
    patch_tokens,
    scale_series,
    unscale_quantiles,
)
from rexforge.model.tirex2.xlstm import BidirectionalXLSTM, MLSTMCell, SLSTMCell


class MultivariateBlock(nn.Module):
    def __init__(self, config: TiRex2Config, time_mixer: str):
        super().__init__()
        self.time_mixer = BidirectionalXLSTM(config, time_mixer)
        self.variate_mixer = VariateMixer(config)

    def forward(self, x, reverse_rows, group_ids, target_mask, kernels) -> torch.Tensor:
        x = self.time_mixer(x, reverse_rows, kernels)  # [BV, N, E], mixing along N
        x = self.variate_mixer(x.transpose(0, 1), group_ids, target_mask)  # [N, BV, E]
        return x.transpose(0, 1)  # [BV, N, E]


class TiRex2Model(nn.Module):
    """TiRex-2 at any size. ``slstm_kernel``/``mlstm_kernel`` name the recurrences in the
    kernel registry (kinds ``tirex2_slstm``/``tirex2_mlstm``)."""

    def __init__(
        self, config: TiRex2Config, slstm_kernel: str = "auto", mlstm_kernel: str = "auto"
    ):
        super().__init__()
        self.config = config
        self.kernels = {
            "slstm": get_kernel(slstm_kernel, kind="tirex2_slstm"),
            "mlstm": get_kernel(mlstm_kernel, kind="tirex2_mlstm"),
        }
        c = config
        E, P = c.embedding_dim, c.input_patch_size
        self.input_patch_embedding = ResidualMLP(2 * P, c.input_ff_dim, E, c.act_func, c.dropout)
        # The official "LayerNorm" here is RMS-style, like the "rmsnorm" choice (see RMSNorm).
        self.stack_out_norm = (
            nn.Identity() if c.stack_out_norm == "none" else RMSNorm(E, c.stack_out_norm_eps)
        )
        self.stack = nn.ModuleList(MultivariateBlock(c, mixer) for mixer in c.time_mixers)
        self.output_patch_embedding = ResidualMLP(
            E, c.head_hidden_dim, c.num_quantiles * c.output_patch_size, c.act_func, c.dropout
        )
        self.reset_parameters()

    def forward(
        self,
        series: torch.Tensor,
        group_ids: torch.Tensor | None = None,
        target_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """series [BV, T] (NaN = missing) -> quantiles [BV, Q, N * P] in data units, N = ceil(T/P).

        Position n's quantiles forecast patch n + 1. group_ids [BV]: rows with equal ids are
        one series (None: every row attends to every other). target_mask [BV] bool (None:
        every row is a target). A covariate runs backwards in time too when it is known in
        the future: not all-NaN over the last ``future_len`` steps.
        """
        c = self.config
        if target_mask is None:
            target_mask = torch.ones(series.shape[0], dtype=torch.bool, device=series.device)
        reverse_rows = self._reverse_rows(series, target_mask)
        scaled, scale = scale_series(series, c.scaler_eps, c.scaler_arcsinh, c.scaler_binaryaware)
        tokens = patch_tokens(patch_series(scaled, c.input_patch_size))  # [BV, N, 2P]
        x = self.input_patch_embedding(tokens)  # [BV, N, E]
        for block in self.stack:
            x = block(x, reverse_rows, group_ids, target_mask, self.kernels)
        x = F.dropout(self.stack_out_norm(x), c.dropout, self.training)
        out = self.output_patch_embedding(x)  # [BV, N, Q*P]
        BV, N, _ = out.shape
        out = out.reshape(BV, N, c.num_quantiles, c.output_patch_size).transpose(1, 2)
        out = out.reshape(BV, c.num_quantiles, N * c.output_patch_size)  # [BV, Q, N*P]
        return unscale_quantiles(out, scale, c.scaler_arcsinh)

    def _reverse_rows(self, series: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
        """Indices of the covariate rows that also run backwards in time.

        With a series at least ``future_len`` long, those with a value in the last
        ``future_len`` steps (future-known covariates); in a shorter one, every covariate."""
        covariate = ~target_mask
        if series.shape[-1] >= self.config.future_len:
            has_future = ~torch.isnan(series[:, -self.config.future_len :]).all(dim=-1)
            covariate = covariate & has_future
        return covariate.nonzero().squeeze(-1)

    def reset_parameters(self) -> None:
        """Random initialisation for training from scratch (the xLSTM recipe).

        Linear layers: PyTorch's default; sLSTM gate projections: normal, std sqrt(2/(5E));
        sLSTM recurrent kernel: zeros; sLSTM forget-gate bias: a per-unit power-law spread that
        gets longer memories in deeper blocks; mLSTM gate projections: zero weights, forget
        bias linspace 3..6 (long memory at start), input bias normal(0, 0.1); norms: unit gain.
        """
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()
            elif isinstance(module, (RMSNorm, HeadwiseLayerNorm)):
                nn.init.ones_(module.weight)
        with torch.no_grad():
            for index, block in enumerate(self.stack):
                cell = block.time_mixer.fwd_cell
                if isinstance(cell, MLSTMCell):
                    _init_mlstm_gates(cell)
                elif isinstance(cell, SLSTMCell):
                    _init_slstm(cell, self.config.embedding_dim, index, len(self.stack))


def _init_mlstm_gates(cell: MLSTMCell) -> None:
    nn.init.zeros_(cell.fgate_preact.weight)
    cell.fgate_preact.bias.copy_(torch.linspace(3.0, 6.0, cell.num_heads))
    nn.init.zeros_(cell.igate_preact.weight)
    nn.init.normal_(cell.igate_preact.bias, mean=0.0, std=0.1)


def _init_slstm(cell: SLSTMCell, E: int, block_index: int, num_blocks: int) -> None:
    for name in cell.GATE_SLOT_MODULES:
        nn.init.normal_(getattr(cell, name).weight, mean=0.0, std=math.sqrt(2 / (5 * E)))
    nn.init.zeros_(cell._recurrent_kernel_)
    nn.init.zeros_(cell._bias_)
    DH = cell._bias_.shape[-1]
    depth = block_index / (num_blocks - 1) if num_blocks > 1 else 0.0
    units = torch.arange(DH) / max(DH - 1, 1)
    cell._bias_[:, 1, :] = 5.0 - 12.0 * units ** (0.3 + 1.3 * depth)  # slot 1: forget gate


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (each shared tensor once, as ``model.parameters()`` yields them)."""
    return sum(p.numel() for p in model.parameters())
