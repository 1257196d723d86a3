"""The TiRex-2 family: ``TiRex2Config`` and its presets, ``TiRex2Model`` and the official
checkpoint layout (``config.json`` + ``model.safetensors``), registered with
``rexforge.registry``, with ``TiRex2Forecaster`` (``rexforge.forecast.tirex2_api``) as its
forecaster.

Importing this module imports no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from rexforge.config_tirex2 import PRESETS, TiRex2Config
from rexforge.errors import CheckpointError
from rexforge.registry import ModelFamily, register_family

FAMILY_NAME = "tirex2"
# The ``format`` a rexforge folder's config.json would name for this family.
FOLDER_FORMAT = "rexforge-tirex2"

# The official network reaches some tensors under two state-dict names, and its safetensors
# files store only one name of each pair (safetensors refuses shared storage): each bi-
# directional block keeps one cell as fwd_cell and rev_cell, and each sLSTM cell exposes its
# recurrent kernel as _recurrent_kernel_ and recurrent_kernel. Our network has the same
# aliases, so the filter only fills in the missing name of each pair.
ALIAS_PAIRS = ((".fwd_cell.", ".rev_cell."), ("._recurrent_kernel_", ".recurrent_kernel"))


def build_tirex2(config: TiRex2Config, slstm_kernel: str = "auto", mlstm_kernel: str = "auto"):
    """A randomly initialised ``TiRex2Model`` for ``config``."""
    from rexforge.model.tirex2 import TiRex2Model

    return TiRex2Model(config, slstm_kernel=slstm_kernel, mlstm_kernel=mlstm_kernel)


def tirex2_checkpoint_filter(state_dict: Mapping[str, Any], config: TiRex2Config) -> dict:
    """Official TiRex-2 weights -> ``TiRex2Model`` key names. Pure: the input is not changed.

    The names are the official ones; this restores the alias names a safetensors file leaves
    out (see ``ALIAS_PAIRS``) and unwraps a ``{"state_dict": ...}`` container. Two names of
    one pair holding different values make the checkpoint ambiguous: ``CheckpointError``.
    """
    inner = state_dict.get("state_dict")
    filtered = dict(inner if isinstance(inner, Mapping) else state_dict)
    for _ in range(2):  # twice: an sLSTM kernel may need both kinds of alias
        for key, value in list(filtered.items()):
            for name, alias in ALIAS_PAIRS:
                for a, b in ((name, alias), (alias, name)):
                    if a in key:
                        _add_alias(filtered, key, key.replace(a, b), value)
    return filtered


def _add_alias(state_dict: dict, key: str, alias: str, value: Any) -> None:
    if alias not in state_dict:
        state_dict[alias] = value
    elif state_dict[alias] is not value and not _same_values(state_dict[alias], value):
        raise CheckpointError(
            f"TiRex-2 weights hold different values for {key!r} and {alias!r}, which name "
            "one tensor of the network"
        )


def _same_values(a: Any, b: Any) -> bool:
    import torch

    return a.shape == b.shape and bool(torch.equal(a, b))


def is_tirex2(raw: Any) -> bool:
    """Whether ``raw`` is an official TiRex-2 ``config.json`` document, a rexforge TiRex-2
    folder's config document, or a flat ``TiRex2Config.to_dict()``."""
    if not isinstance(raw, Mapping):
        return False
    if raw.get("format") == FOLDER_FORMAT:
        return True
    if isinstance(raw.get("model"), Mapping):
        return is_tirex2(raw["model"])
    # The templates-and-recipe block stack is what only a TiRex-2 config holds.
    stack = raw.get("stack_config")
    if isinstance(stack, Mapping):
        return isinstance(stack.get("templates"), Mapping) and "recipe" in stack
    return "time_mixers" in raw and "embedding_dim" in raw


def write_tirex2_folder(path, ckpt):
    """Save a TiRex-2 ``Checkpoint`` as an official folder (``rexforge.io.tirex2_folder``)."""
    from rexforge.io.tirex2_folder import write_official_folder

    return write_official_folder(path, ckpt)


def describe_tirex2(config: TiRex2Config) -> list[tuple[str, str]]:
    """``rexforge info``'s rows on the architecture: (label, text)."""
    recipe = "".join(mixer[0] for mixer in config.time_mixers)  # e.g. "msmsms..."
    return [
        (
            "architecture",
            f"{config.num_blocks} blocks (time mixers {recipe}, m = mLSTM, s = sLSTM, each "
            f"with variate attention), width {config.embedding_dim}, {config.num_heads} heads, "
            f"patch {config.input_patch_size}, {config.num_quantiles} quantiles, context "
            f"{config.context_len}, horizon {config.future_len}",
        )
    ]


TIREX2 = register_family(
    ModelFamily(
        name=FAMILY_NAME,
        config_class=TiRex2Config,
        presets={name: partial(TiRex2Config.from_name, name) for name in PRESETS},
        build=build_tirex2,
        checkpoint_filter=tirex2_checkpoint_filter,
        detect=is_tirex2,
        forecaster="rexforge.forecast.tirex2_api:TiRex2Forecaster",
        describe=describe_tirex2,
        write_folder=write_tirex2_folder,
        training="rexforge.train.tirex2_family:TiRex2Training",
        notice_metadata="rexforge.io.tirex2_folder:tirex2_notice",
    )
)
