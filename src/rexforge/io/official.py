"""The official TiRex checkpoint format (``model.ckpt``) and the key remapping to rexforge.

An official checkpoint is a torch-saved dict with ``hyper_parameters`` (``model_config`` +
``train_ctx_len``) and ``state_dict``; the released file prefixes the block-stack keys with
``block_stack.``. Our parameter names equal the official ones after that prefix is removed,
so the remap is one rename rule, applied by two pure functions.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from rexforge.config import TiRexConfig
from rexforge.errors import CheckpointError, ConfigError

BLOCK_STACK_PREFIX = "block_stack."
# Keys that live inside the official block stack (and carry the prefix in the released file).
_BLOCK_STACK_ROOTS = ("blocks.", "out_norm.")
# Where rexforge keeps its own metadata inside an official-layout checkpoint. tirex-ts reads
# only ``hyper_parameters`` and ``state_dict`` and ignores this entry.
REXFORGE_META_KEY = "rexforge"
LIGHTNING_VERSION_FOR_OFFICIAL = "2.5.0"


def from_official(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official state dict (with or without ``block_stack.``) -> rexforge names. Pure."""
    out = {}
    for key, value in state_dict.items():
        new_key = key[len(BLOCK_STACK_PREFIX) :] if key.startswith(BLOCK_STACK_PREFIX) else key
        if new_key in out:
            raise CheckpointError(f"state dict holds '{new_key}' twice (with and without prefix)")
        out[new_key] = value
    return out


def to_official(
    state_dict: dict[str, torch.Tensor], prefix: bool = True
) -> dict[str, torch.Tensor]:
    """rexforge state dict -> the released layout (block-stack keys prefixed). Pure."""
    if not prefix:
        return dict(state_dict)
    return {
        (BLOCK_STACK_PREFIX + k if k.startswith(_BLOCK_STACK_ROOTS) else k): v
        for k, v in state_dict.items()
    }


def torch_load_safely(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``: never runs code from the file."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory, not a checkpoint file") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    # torch files are zip archives ("PK\x03\x04") or, from old torch versions, raw pickles.
    if not (magic.startswith(b"PK") or magic[:1] == b"\x80"):
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or not a torch file): "
            "neither a torch archive nor a pickle"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "GLOBAL" in text or "global" in text:
            # weights_only refuses globals it does not know: a pickle that would run code.
            culprit = next((ln.strip() for ln in text.splitlines() if "GLOBAL" in ln), "")
            raise CheckpointError(
                f"{path} was refused: it contains objects other than tensors and plain data "
                f"(loading it could run code){': ' + culprit if culprit else ''}"
            ) from None
        first = (text.splitlines() or ["unpickling failed"])[0]
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or not a torch file): {first}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any failure to parse an untrusted file is reported alike
        # (truncated zip, garbage bytes, old pickle protocols: torch raises many types here)
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or not a torch file): {first}"
        ) from None


def parse_official(path: Path, obj: Any) -> tuple[TiRexConfig, dict[str, torch.Tensor], dict]:
    """What an official-layout ``.ckpt`` held (``obj``, from ``torch_load_safely``) as (config,
    state dict in rexforge names, metadata); ``path`` names the file in errors."""
    if not isinstance(obj, dict) or "state_dict" not in obj or "hyper_parameters" not in obj:
        keys = ", ".join(map(str, list(obj)[:6])) if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(
            f"{path} is not a TiRex checkpoint: expected 'hyper_parameters' and 'state_dict', "
            f"found {keys or 'nothing'}"
        )
    try:
        config = TiRexConfig.from_hyper_parameters(obj["hyper_parameters"])
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    state_dict = obj["state_dict"]
    if not isinstance(state_dict, dict) or not all(
        isinstance(v, torch.Tensor) for v in state_dict.values()
    ):
        raise CheckpointError(f"{path}: 'state_dict' is not a mapping of names to tensors")
    meta = dict(obj.get(REXFORGE_META_KEY) or {})
    return config, from_official(state_dict), meta


def official_payload(
    config: TiRexConfig, state_dict: dict[str, torch.Tensor], metadata: dict | None = None
) -> dict[str, Any]:
    """The dict an official ``model.ckpt`` holds, with rexforge metadata alongside."""
    payload = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": LIGHTNING_VERSION_FOR_OFFICIAL,
        "hyper_parameters": config.to_hyper_parameters(),
        "state_dict": to_official(
            {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
        ),
    }
    if metadata:
        payload[REXFORGE_META_KEY] = dict(metadata)
    return payload


def serialize_official(payload: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()
