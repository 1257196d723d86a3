"""Grow a trained model deeper without changing what it computes (depth up-scaling).

``deepen`` turns the weights of an ``n``-block model into those of a ``k * n``-block one: each
block is followed by ``k - 1`` copies of itself whose residual branches start switched off (the
sLSTM group norm's gain ``1 + weight`` is 0 and the feed-forward down projection is 0), so every
copy is an identity map at first and the deeper model forecasts exactly like the original. The
copies' gates, recurrent kernels and up projections are the trained ones, and the two switched
off tensors still get gradients (their inputs are not zero), so continued training turns the
copies on from a useful start (block expansion, as in LLaMA Pro, Wu et al. 2024).

Pure functions on configs and state dicts: no I/O (``rexforge grow`` reads and writes).
"""

from __future__ import annotations

import dataclasses
import re

import torch

from rexforge.config import TiRexConfig
from rexforge.errors import ConfigError

_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+)$")
# The two tensors that end a block's residual branches, and the value that switches each off.
_SWITCHED_OFF = {"slstm_layer.group_norm.weight": -1.0, "ffn.proj_down.weight": 0.0}


def deepen(
    config: TiRexConfig, state_dict: dict[str, torch.Tensor], factor: int
) -> tuple[TiRexConfig, dict[str, torch.Tensor]]:
    """``(config, state_dict)`` of the model with every block followed by ``factor - 1``
    identity-initialised copies: block ``i`` becomes blocks ``factor * i`` (the original) to
    ``factor * i + factor - 1`` (copies). Other weights are kept as they are."""
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ConfigError(f"deepen: factor must be an integer >= 1, got {factor!r}")
    blocks = config.block_kwargs.num_blocks
    grown: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        match = _BLOCK_KEY.match(key)
        if match is None:
            grown[key] = tensor.clone()
            continue
        index, name = int(match.group(1)), match.group(2)
        if index >= blocks:
            raise ConfigError(f"deepen: weight {key} names block {index} of a {blocks}-block model")
        for copy in range(factor):
            value = tensor.clone()
            if copy and name in _SWITCHED_OFF:
                value.fill_(_SWITCHED_OFF[name])
            grown[f"blocks.{factor * index + copy}.{name}"] = value
    block_kwargs = dataclasses.replace(config.block_kwargs, num_blocks=blocks * factor)
    return dataclasses.replace(config, block_kwargs=block_kwargs), grown
