"""sLSTM block: RMSNorm -> sLSTM layer -> residual, RMSNorm -> gated feed-forward -> residual.

Module and parameter names follow the official checkpoint, so that state dicts map one to one.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from rexforge.config import BlockConfig


def apply_layer(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """How a block runs its ``nn.Linear`` layers by default: the layer itself. With
    ``numerics="fast"`` the model passes ``kernels.fast.FastProjections`` instead (same
    signature), which runs them through the kernels the CPU does fastest."""
    return layer(x)


class RMSNorm(nn.Module):
    # The official model uses eps 1e-6 whatever block_kwargs["norm_eps"] says (1e-5).
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return normed.to(x.dtype) * self.weight


class HeadwiseLinear(nn.Module):
    """Block-diagonal projection: each head maps its own DH inputs to DH outputs, no bias."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.weight = nn.Parameter(torch.empty(num_heads, head_dim, head_dim))  # [NH, out, in]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *lead, E = x.shape
        x = x.reshape(*lead, self.num_heads, E // self.num_heads)  # [..., NH, DH]
        return torch.einsum("...hi,hoi->...ho", x, self.weight)  # [..., NH, DH]


class MultiHeadGroupNorm(nn.Module):
    """Group norm with one group per head, no bias, scaled by (1 + weight) as officially."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        # Zero-initialised because the effective gain is 1 + weight.
        self.weight = nn.Parameter(torch.zeros(dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, S, NH, DH = h.shape
        out = F.group_norm(h.reshape(B * S, NH * DH), NH, weight=1.0 + self.weight)
        return out.reshape(B, S, NH * DH)


class SLSTMCellParams(nn.Module):
    """Holds the recurrent weights in the checkpoint layout; the recurrence is a kernel."""

    def __init__(self, config: BlockConfig):
        super().__init__()
        NH, DH = config.num_heads, config.head_dim
        # [NH, DH, 4*DH]: per head, outputs laid out (gate slot i,f,z,o; DH)
        self._recurrent_kernel_ = nn.Parameter(torch.empty(NH, DH, 4 * DH))
        # [NH*4*DH] laid out (NH, gate slot, DH); slot 1 is the forget gate
        self._bias_ = nn.Parameter(torch.empty(NH * 4 * DH))


class SLSTMLayer(nn.Module):
    def __init__(self, config: BlockConfig):
        super().__init__()
        E, NH = config.embedding_dim, config.num_heads
        # The official layer concatenates its projections as (fgate, igate, zgate, ogate) while
        # the cell reads the slots as (i, f, z, o): the module *named* fgate feeds the input
        # gate and igate the forget gate. We keep the names (they are the checkpoint's keys)
        # and the crossing (it is what the trained weights mean); see GATE_SLOT_MODULES.
        self.fgate = HeadwiseLinear(E, NH)
        self.igate = HeadwiseLinear(E, NH)
        self.zgate = HeadwiseLinear(E, NH)
        self.ogate = HeadwiseLinear(E, NH)
        self.slstm_cell = SLSTMCellParams(config)
        self.group_norm = MultiHeadGroupNorm(E, NH)

    # Module feeding each cell slot (i, f, z, o), in slot order.
    GATE_SLOT_MODULES = ("fgate", "igate", "zgate", "ogate")

    def gate_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Input projections for all steps: x [B, S, E] -> wx [B, S, 4, NH, DH]."""
        return torch.stack([getattr(self, name)(x) for name in self.GATE_SLOT_MODULES], dim=2)

    def gate_inputs_fused(self, x: torch.Tensor) -> torch.Tensor:
        """``gate_inputs`` as one batched matmul over the four gates' stacked weights instead of
        four einsums and a stack (numerics="fast": a few operations fewer per block, which is
        what a batch-1 forward is made of; sums in another order than ``gate_inputs``)."""
        B, S, E = x.shape
        NH = self.fgate.num_heads
        weights = torch.stack([getattr(self, n).weight for n in self.GATE_SLOT_MODULES], dim=1)
        # [NH, 4, out, in] -> [NH, in, 4*out]; x [B*S, NH, DH] -> [NH, B*S, DH]
        weights = weights.transpose(2, 3).transpose(1, 2).reshape(NH, E // NH, -1)
        wx = torch.bmm(x.reshape(B * S, NH, E // NH).transpose(0, 1), weights)
        # [NH, B*S, 4*DH] -> [B, S, 4, NH, DH]
        return wx.reshape(NH, B, S, 4, E // NH).permute(1, 2, 3, 0, 4)

    def forward(
        self, x: torch.Tensor, state: torch.Tensor | None, kernel, numerics: str, fused=False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        wx = self.gate_inputs_fused(x) if fused else self.gate_inputs(x)  # [B, S, 4, NH, DH]
        cell = self.slstm_cell
        h, state = kernel(wx, state, cell._recurrent_kernel_, cell._bias_, numerics)
        return self.group_norm(h), state  # [B, S, E], [4, B, E]


class FeedForward(nn.Module):
    """SwiGLU-style gated MLP: silu(W_gate x) * (W_up x) -> W_down."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.proj_up_gate = nn.Linear(dim, hidden, bias=False)
        self.proj_up = nn.Linear(dim, hidden, bias=False)
        self.proj_down = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor, project=apply_layer) -> torch.Tensor:
        gated = F.silu(project(x, self.proj_up_gate)) * project(x, self.proj_up)
        return project(gated, self.proj_down)


def stepping_one_token_at_a_time(kernel, step_states: list[torch.Tensor]):
    """``kernel`` run one step per call, appending the state after every step to
    ``step_states`` (each [4, B, E]); same signature and results as ``kernel`` otherwise.

    Only the recurrence steps one at a time: the input projections ``wx`` [B, S, 4, NH, DH]
    stay computed for all steps at once, as in a full forward pass (per-token projections
    would run matrix-vector kernels whose summation order changes the last bits)."""

    def step_by_step(wx, state, recurrent_kernel, bias, numerics):
        hs = []  # each [B, 1, NH, DH]
        for t in range(wx.shape[1]):
            h, state = kernel(wx[:, t : t + 1], state, recurrent_kernel, bias, numerics)
            hs.append(h)
            step_states.append(state)
        return torch.cat(hs, dim=1), state  # [B, S, NH, DH], [4, B, E]

    return step_by_step


class SLSTMBlock(nn.Module):
    def __init__(self, config: BlockConfig):
        super().__init__()
        self.norm_slstm = RMSNorm(config.embedding_dim)
        self.slstm_layer = SLSTMLayer(config)
        self.norm_ffn = RMSNorm(config.embedding_dim)
        self.ffn = FeedForward(config.embedding_dim, config.ffn_dim)

    def forward(
        self,
        x: torch.Tensor,
        state: torch.Tensor | None,
        kernel,
        numerics: str,
        project=apply_layer,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # x: [B, S, E]; state: [4, B, E] or None; numerics: the kernel's ("bf16" or "fp32")
        fused = project is not apply_layer  # numerics="fast"
        y, state = self.slstm_layer(self.norm_slstm(x), state, kernel, numerics, fused)
        x = x + y
        x = x + self.ffn(self.norm_ffn(x), project)
        return x, state

    def forward_with_step_states(
        self, x: torch.Tensor, kernel, numerics: str, project=apply_layer
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``forward`` from a zero state, also returning the state after every step.

        x [B, S, E] -> (output [B, S, E], S states [4, B, E]: the k-th after k + 1 steps)."""
        step_states: list[torch.Tensor] = []
        stepping = stepping_one_token_at_a_time(kernel, step_states)
        x, _ = self.forward(x, None, stepping, numerics, project)
        return x, step_states
