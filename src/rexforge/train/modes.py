"""Fine-tune modes: each only decides which parameters train (and adds LoRA adapters).

    scratch  re-initialise every weight (from ``seed``), train all of them
    full     train every weight of the base model
    freeze   freeze the input embedding and the first ``freeze_blocks`` blocks, or with
             ``head_only`` everything except the output norm and head
    lora     freeze the base, train low-rank adapters on ``lora_targets`` (see ``lora``;
             None: the family's projections)

Which names are the embedding, the blocks, the head and the projections is the model
family's (``train.family``: TiRex ``blocks.*``, TiRex-2 ``stack.*``). The training loop is the
same for all of them (``rexforge.train.loop``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch.nn as nn

from rexforge.errors import ConfigError
from rexforge.train.family import training_family
from rexforge.train.lora import inject_lora
from rexforge.train.settings import LORA_ALPHA, LORA_RANK, MODES  # MODES re-exported

Mode = Literal["scratch", "full", "freeze", "lora"]


def apply_mode(
    model: nn.Module,
    mode: Mode,
    *,
    freeze_blocks: int = 0,
    head_only: bool = False,
    lora_rank: int = LORA_RANK,
    lora_alpha: float = LORA_ALPHA,
    lora_targets: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, int]:
    """Set ``requires_grad`` for ``mode`` in place; returns parameter counts
    ``{"trainable": n, "frozen": m}``. ``model`` is a network of a registered family (its
    ``config`` names the family)."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    family = training_family(model)
    num_blocks = family.num_blocks(model.config)
    if mode == "scratch":
        family.reinitialise(model, seed)
    if mode in ("scratch", "full"):
        model.requires_grad_(True)
    elif mode == "freeze":
        if head_only:
            for name, p in model.named_parameters():
                p.requires_grad_(name.startswith(family.head_prefixes))
        else:
            if not 0 <= freeze_blocks <= num_blocks:
                raise ConfigError(
                    f"freeze_blocks must be in [0, {num_blocks}], got {freeze_blocks}"
                )
            frozen = family.embedding_prefixes + tuple(
                family.block_prefix(i) for i in range(freeze_blocks)
            )
            for name, p in model.named_parameters():
                p.requires_grad_(not name.startswith(frozen))
    else:  # lora
        model.requires_grad_(False)
        targets = lora_targets or family.lora_targets
        inject_lora(model, lora_rank, lora_alpha, targets, seed=seed)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    if trainable == 0:
        raise ConfigError(f"mode {mode!r} leaves no parameter to train")
    return {"trainable": trainable, "frozen": total - trainable}
