"""The TiRex network: tokens [B, N, 2P] -> quantiles of the next patch at every position.

    tokens -> input_patch_embedding (residual MLP 2P -> F -> E)
           -> num_blocks x SLSTMBlock
           -> out_norm (RMSNorm)
           -> output_patch_embedding (residual MLP E -> F -> Q*P)

No I/O, no padding or rollout logic (that is ``rexforge.forecast``), no training code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from rexforge.config import TiRexConfig
from rexforge.kernels.common import NUMERICS, check_numerics
from rexforge.kernels.official import slstm_official
from rexforge.kernels.registry import get_kernel, kernel_name
from rexforge.model.slstm import RMSNorm, SLSTMBlock, apply_layer
from rexforge.model.tokenizer import masked_tokens


class ResidualMLP(nn.Module):
    """out = W_out relu(W_hidden x) + W_res x, all with bias."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.hidden_layer = nn.Linear(in_dim, hidden_dim)
        self.output_layer = nn.Linear(hidden_dim, out_dim)
        self.residual_layer = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor, project=apply_layer) -> torch.Tensor:
        hidden = F.relu(project(x, self.hidden_layer))
        return project(hidden, self.output_layer) + project(x, self.residual_layer)


class ModelOutput(NamedTuple):
    quantiles: torch.Tensor  # [B, N_out, Q, P] in the scaled space
    states: list[torch.Tensor] | None  # per block [4, B, E] after the last position
    hidden: torch.Tensor | None  # [B, N, E] last block output before out_norm (if asked)


class TiRexModel(nn.Module):
    """TiRex at any size. ``kernel`` names the sLSTM recurrence (see ``rexforge.kernels``);
    ``numerics`` is ``"official"`` (the official CPU operations: tirex-ts' bits on any CPU),
    ``"bf16"`` (its rounding emulated in fp32, fast), ``"fp32"`` (see ``kernels.common``) or
    ``"fast"`` (fp32 recurrence, projections in the fastest kernels this CPU has, chosen
    when the model is built: ``kernels.fast``; ``kernel="auto"`` then takes the plan's)."""

    def __init__(self, config: TiRexConfig, kernel: str = "auto", numerics: str = "bf16"):
        super().__init__()
        check_numerics(numerics, NUMERICS)
        self.config = config
        self.numerics = numerics
        self.projections = None  # kernels.fast.FastProjections when numerics == "fast"
        if numerics == "fast":
            from rexforge.kernels.fast import FastProjections, choose_fast_plan

            self.projections = FastProjections(choose_fast_plan())
            kernel = self.projections.plan.slstm_kernel if kernel == "auto" else kernel
        self.kernel = get_kernel(kernel)
        b = config.block_kwargs
        P, E, Fdim = config.input_patch_size, b.embedding_dim, config.input_ff_dim
        self.input_patch_embedding = ResidualMLP(2 * P, Fdim, E)
        self.blocks = nn.ModuleList(SLSTMBlock(b) for _ in range(b.num_blocks))
        self.out_norm = RMSNorm(E)
        self.output_patch_embedding = ResidualMLP(E, Fdim, config.num_quantiles * P)
        self.reset_parameters()

    @property
    def kernel_name(self) -> str:
        return kernel_name(self.kernel)

    @property
    def kernel_numerics(self) -> str:
        """What the recurrence kernel computes in: "fast" keeps the recurrence in fp32."""
        return "fp32" if self.numerics == "fast" else self.numerics

    @property
    def project(self):
        """How the embedding, feed-forward and head layers run (``slstm.apply_layer``)."""
        return self.projections if self.projections is not None else apply_layer

    def set_kernel(self, kernel: str) -> None:
        self.kernel = get_kernel(kernel)

    def reset_parameters(self, seed: int | None = None) -> None:
        """Random initialisation for training from scratch (the official code publishes none).

        Linear layers: PyTorch's default; head-wise gate projections and the recurrent kernel:
        normal with std 1/sqrt(DH); gate biases 0 except the forget-gate slot, which gets a
        spread of positive values (long memory at start, as in xLSTM); norms: unit gain.
        """
        if seed is not None:
            # Linear layers draw from the global generator: seed it without disturbing callers.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self._init_weights(torch.Generator().manual_seed(seed))
        else:
            self._init_weights(None)

    def _init_weights(self, gen: torch.Generator | None) -> None:
        b = self.config.block_kwargs
        NH, DH = b.num_heads, b.head_dim
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()
        with torch.no_grad():
            for block in self.blocks:
                layer = block.slstm_layer
                for name in layer.GATE_SLOT_MODULES:
                    getattr(layer, name).weight.normal_(0.0, DH**-0.5, generator=gen)
                cell = layer.slstm_cell
                cell._recurrent_kernel_.normal_(0.0, DH**-0.5, generator=gen)
                bias = torch.zeros(NH, 4, DH)
                # Forget slot (1): linspace 3..6 spreads memory time-scales over the units.
                bias[:, 1, :] = torch.linspace(3.0, 6.0, DH)
                cell._bias_.copy_(bias.reshape(-1))
                layer.group_norm.weight.zero_()
                block.norm_slstm.weight.fill_(1.0)
                block.norm_ffn.weight.fill_(1.0)
            self.out_norm.weight.fill_(1.0)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, N, 2P] -> [B, N, E]."""
        return self.input_patch_embedding(tokens, self.project)

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [B, N, E] (before out_norm) -> quantiles [B, N, Q, P]."""
        B, N, _ = hidden.shape
        out = self.output_patch_embedding(self.out_norm(hidden), self.project)  # [B, N, Q*P]
        return out.reshape(B, N, self.config.num_quantiles, self.config.output_patch_size)

    def forward(
        self,
        tokens: torch.Tensor,
        states: list[torch.Tensor] | None = None,
        last_n: int | None = None,
        return_hidden: bool = False,
        kernel: Callable | None = None,
    ) -> ModelOutput:
        """Run the network.

        tokens  [B, N, 2P]
        states  optional per-block initial states [4, B, E] (None = start from zeros)
        last_n  apply the head only to the last ``last_n`` positions (None = all)
        kernel  a recurrence function for this call only (default: the model's ``kernel``)
        Returns quantiles [B, N_out, Q, P] (scaled space) and the final per-block states.
        """
        kernel = self.kernel if kernel is None else kernel
        if self.numerics == "official":
            kernel = slstm_official  # no other arrangement of the work gives the same bits
        x = self.embed(tokens)  # [B, N, E]
        new_states = []
        for i, block in enumerate(self.blocks):
            state = None if states is None else states[i]
            x, state = block(x, state, kernel, self.kernel_numerics, self.project)
            new_states.append(state)
        hidden_for_head = x if last_n is None else x[:, -last_n:]
        return ModelOutput(self.head(hidden_for_head), new_states, x if return_hidden else None)

    @torch.no_grad()
    def masked_prefix_states(self, num_tokens: int) -> list[list[torch.Tensor] | None]:
        """Per-block states after k = 0..``num_tokens`` fully masked tokens (all-NaN patches:
        the padding before a short context). Index k holds one state [4, 1, E] per block after
        k masked tokens; index 0 is None (zero states, as ``forward`` reads None).

        A masked token is the same for every series, so these states are too: a padded window
        can start at its first observed patch from the state after its padding. They equal,
        bit for bit, the states of ``forward`` over the padded window: every block runs over
        all ``num_tokens`` positions at once and only its recurrence steps one token at a
        time. Not for ``numerics="official"``, whose forecasts run the whole padded window.
        """
        tokens = masked_tokens(1, num_tokens, self.config.input_patch_size, self.out_norm.weight)
        x = self.embed(tokens)  # [1, K, E]
        per_block = []  # [block][k] -> state [4, 1, E] after k + 1 tokens
        for block in self.blocks:
            x, step_states = block.forward_with_step_states(
                x, self.kernel, self.kernel_numerics, self.project
            )
            per_block.append(step_states)
        after_k = [list(states_of_step) for states_of_step in zip(*per_block)]
        return [None, *after_k]

    def block_outputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [B, N, 2P] -> the output of every block [B, N, L, E] (before out_norm), from
        zero states: what embeddings are made of."""
        kernel = slstm_official if self.numerics == "official" else self.kernel
        x = self.embed(tokens)  # [B, N, E]
        outputs = []
        for block in self.blocks:
            x, _ = block(x, None, kernel, self.kernel_numerics, self.project)
            outputs.append(x)
        return torch.stack(outputs, dim=-2)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
