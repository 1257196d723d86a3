"""The TiRex family: ``TiRexConfig`` and its presets, ``TiRexModel``, the official checkpoint
layout and ``TiRexForecaster``, registered with ``rexforge.registry``.

Importing this module imports no torch: the network, the key renaming and the forecaster are
imported when first used, so listing presets stays as cheap as ``import rexforge``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from rexforge.config import PRESETS, TiRexConfig
from rexforge.registry import ModelFamily, register_family

FAMILY_NAME = "tirex"
# The ``format`` a rexforge folder's config.json names (``io.checkpoint.write_folder``).
FOLDER_FORMAT = "rexforge-tirex"


def build_tirex(config: TiRexConfig, kernel: str = "auto", numerics: str = "bf16"):
    """A randomly initialised ``TiRexModel`` for ``config``."""
    from rexforge.model.tirex import TiRexModel

    return TiRexModel(config, kernel=kernel, numerics=numerics)


def tirex_checkpoint_filter(state_dict: Mapping[str, Any], config: TiRexConfig) -> dict:
    """Raw TiRex weights -> ``TiRexModel`` key names. Pure: the input is not changed.

    Accepts a whole official payload (``{"hyper_parameters", "state_dict"}``, unwrapped here)
    or its state dict, with or without the released ``block_stack.`` prefix. ``config`` is
    part of the filter signature; TiRex's names do not depend on it.
    """
    from rexforge.io.official import from_official

    inner = state_dict.get("state_dict")
    if isinstance(inner, Mapping):
        state_dict = inner
    return from_official(dict(state_dict))


def is_tirex(raw: Any) -> bool:
    """Whether ``raw`` is a TiRex checkpoint payload, its ``hyper_parameters``, a rexforge
    folder's config.json document, or a flat ``TiRexConfig.to_dict()``."""
    if not isinstance(raw, Mapping):
        return False
    if raw.get("format") == FOLDER_FORMAT:
        return True
    if isinstance(raw.get("hyper_parameters"), Mapping):
        return is_tirex(raw["hyper_parameters"])
    if isinstance(raw.get("model"), Mapping):
        return is_tirex(raw["model"])
    if isinstance(raw.get("model_config"), Mapping):
        return is_tirex(raw["model_config"])
    # block_kwargs (the sLSTM stack) is what only a TiRex config holds.
    return isinstance(raw.get("block_kwargs"), Mapping)


def describe_tirex(config: TiRexConfig) -> list[tuple[str, str]]:
    """``rexforge info``'s rows on the architecture: (label, text)."""
    b = config.block_kwargs
    rows = [
        (
            "architecture",
            f"{b.num_blocks} sLSTM blocks, width {b.embedding_dim}, {b.num_heads} heads, "
            f"FFN {b.ffn_dim}, patch {config.input_patch_size}, "
            f"{config.num_quantiles} quantiles, context {config.train_ctx_len}",
        )
    ]
    if b.extra:
        rows.append(("unused keys", f"{', '.join(sorted(b.extra))} (kept, not interpreted)"))
    return rows


TIREX = register_family(
    ModelFamily(
        name=FAMILY_NAME,
        config_class=TiRexConfig,
        # One factory per preset: a fresh config every call, so callers may change it.
        presets={name: partial(TiRexConfig.from_name, name) for name in PRESETS},
        build=build_tirex,
        checkpoint_filter=tirex_checkpoint_filter,
        detect=is_tirex,
        forecaster="rexforge.forecast.api:TiRexForecaster",
        describe=describe_tirex,
        training="rexforge.train.tirex_family:TiRexTraining",
    )
)
