"""LoRA adapters that leave every base parameter name untouched.

Each adapted module keeps its frozen ``weight`` and gains two parameters beside it,
``lora_A`` and ``lora_B``; a forward hook adds the low-rank update to the module's output:

    nn.Linear         weight [out, in]:         y += (alpha / r) * x A^T B^T
                      A [r, in], B [out, r]
    HeadwiseLinear    weight [NH, out, in]:     y_h += (alpha / r) * B_h A_h x_h  per head h
                      A [NH, r, in], B [NH, out, r]

B starts at zero, so an adapted model equals its base until trained. The state dict holds the
base keys unchanged plus ``<module>.lora_A/lora_B``: no renaming and no load shims (unlike
litgpt's ``lm_head.linear.weight``). ``merge_lora`` folds the update into ``weight`` and
removes the adapters, leaving a plain model that the official ``tirex`` loader reads.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence

import torch
import torch.nn as nn

from rexforge.errors import ConfigError
from rexforge.model.slstm import HeadwiseLinear
from rexforge.train.settings import LORA_ALPHA, LORA_RANK  # no torch there


def _delta(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    A, B = module.lora_A, module.lora_B
    if isinstance(module, HeadwiseLinear):
        *lead, E = x.shape
        xh = x.reshape(*lead, module.num_heads, E // module.num_heads)  # [..., NH, DH]
        low = torch.einsum("...hi,hri->...hr", xh, A)  # [..., NH, r]
        return torch.einsum("...hr,hor->...ho", low, B)  # [..., NH, DH]
    return (x @ A.t()) @ B.t()  # [..., out]


def _lora_hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
    # Module-level function (not a closure) so adapted models deepcopy and pickle.
    return output + module.lora_scaling * _delta(module, inputs[0]).to(output.dtype)


def find_targets(model: nn.Module, patterns: Sequence[str]) -> list[str]:
    """Names of Linear/HeadwiseLinear modules matching any glob in ``patterns``."""
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear | HeadwiseLinear)
        and any(fnmatch.fnmatchcase(name, p) for p in patterns)
    ]
    if not names:
        raise ConfigError(f"LoRA targets {list(patterns)} match no Linear layer of the model")
    return names


def inject_lora(
    model: nn.Module,
    rank: int = LORA_RANK,
    alpha: float = LORA_ALPHA,
    targets: Sequence[str] | None = None,
    seed: int = 0,
) -> list[str]:
    """Add adapters to every target module in place (``targets`` None: the projections of
    the model's family, ``TrainingFamily.lora_targets``); returns the adapted module names."""
    if rank < 1:
        raise ConfigError(f"lora_rank must be >= 1, got {rank}")
    if targets is None:
        from rexforge.train.family import training_family

        targets = training_family(model).lora_targets
    gen = torch.Generator().manual_seed(seed)
    names = find_targets(model, targets)
    for name in names:
        module = model.get_submodule(name)
        if hasattr(module, "lora_A"):
            raise ConfigError(f"{name} already has a LoRA adapter")
        w = module.weight
        if isinstance(module, HeadwiseLinear):
            nh, out_dim, in_dim = w.shape
            a_shape, b_shape = (nh, rank, in_dim), (nh, out_dim, rank)
        else:
            out_dim, in_dim = w.shape
            a_shape, b_shape = (rank, in_dim), (out_dim, rank)
        # Kaiming-uniform A (as nn.Linear / LoRA paper), zero B: the update starts at 0.
        bound = 1.0 / math.sqrt(in_dim)
        A = (torch.rand(a_shape, generator=gen) * 2 - 1) * bound
        module.lora_A = nn.Parameter(A.to(w.device, w.dtype))
        module.lora_B = nn.Parameter(torch.zeros(b_shape, device=w.device, dtype=w.dtype))
        module.lora_scaling = alpha / rank
        module.register_forward_hook(_lora_hook)
    return names


def lora_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if hasattr(m, "lora_A")]


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter weights only: ``<module>.lora_A`` / ``<module>.lora_B``."""
    return {
        k: v.detach().clone()
        for k, v in model.state_dict().items()
        if k.endswith((".lora_A", ".lora_B"))
    }


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight and remove it, in place; returns ``model``.

    Afterwards the state dict has exactly the base keys and forwards equal the adapted model's
    (up to float rounding of the merged product).
    """
    for _, module in lora_modules(model):
        A, B = module.lora_A, module.lora_B
        if isinstance(module, HeadwiseLinear):
            update = torch.einsum("hor,hri->hoi", B, A)  # [NH, out, in]
        else:
            update = B @ A  # [out, in]
        module.weight.add_(module.lora_scaling * update.to(module.weight.dtype))
        # Found by identity rather than a stored handle, so deep copies merge too.
        for key, hook in list(module._forward_hooks.items()):
            if hook is _lora_hook:
                del module._forward_hooks[key]
        del module.lora_A, module.lora_B, module.lora_scaling
    return model
