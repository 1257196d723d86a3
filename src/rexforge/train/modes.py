"""Fine-tune modes: each only decides which parameters train (and adds LoRA adapters).

    scratch  re-initialise every weight (``reset_parameters(seed)``), train all of them
    full     train every weight of the base model
    freeze   freeze the input embedding and the first ``freeze_blocks`` sLSTM blocks, or with
             ``head_only`` everything except ``out_norm`` and the output head
    lora     freeze the base, train low-rank adapters on ``lora_targets`` (see ``lora``)

The training loop is the same for all of them (``rexforge.train.loop``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch.nn as nn

from rexforge.errors import ConfigError
from rexforge.train.lora import DEFAULT_TARGETS, inject_lora
from rexforge.train.settings import LORA_ALPHA, LORA_RANK, MODES  # MODES re-exported

Mode = Literal["scratch", "full", "freeze", "lora"]

HEAD_PREFIXES = ("out_norm.", "output_patch_embedding.")


def apply_mode(
    model: nn.Module,
    mode: Mode,
    *,
    freeze_blocks: int = 0,
    head_only: bool = False,
    lora_rank: int = LORA_RANK,
    lora_alpha: float = LORA_ALPHA,
    lora_targets: Sequence[str] = DEFAULT_TARGETS,
    seed: int = 0,
) -> dict[str, int]:
    """Set ``requires_grad`` for ``mode`` in place; returns parameter counts
    ``{"trainable": n, "frozen": m}``."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    num_blocks = len(model.blocks)
    if mode == "scratch":
        model.reset_parameters(seed)
    if mode in ("scratch", "full"):
        model.requires_grad_(True)
    elif mode == "freeze":
        if head_only:
            for name, p in model.named_parameters():
                p.requires_grad_(name.startswith(HEAD_PREFIXES))
        else:
            if not 0 <= freeze_blocks <= num_blocks:
                raise ConfigError(
                    f"freeze_blocks must be in [0, {num_blocks}], got {freeze_blocks}"
                )
            frozen = ("input_patch_embedding.",) + tuple(
                f"blocks.{i}." for i in range(freeze_blocks)
            )
            for name, p in model.named_parameters():
                p.requires_grad_(not name.startswith(frozen))
    else:  # lora
        model.requires_grad_(False)
        inject_lora(model, lora_rank, lora_alpha, lora_targets, seed=seed)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    if trainable == 0:
        raise ConfigError(f"mode {mode!r} leaves no parameter to train")
    return {"trainable": trainable, "frozen": total - trainable}
