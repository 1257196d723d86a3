"""The Lightning ``.ckpt`` files a training run writes (``runs/x/checkpoints/*.ckpt``).

The one place that knows their layout: the checksum their writer (``train.checkpointing``'s
``AtomicCheckpointIO``) stamps in and every reader verifies, ``read_training_checkpoint`` (the
raw dict, for resuming and averaging) and ``model_from_training_payload`` (the network at that
step as a ``Checkpoint``, through ``io.checkpoint.read_checkpoint``). Lightning itself is not
needed to read them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rexforge.errors import CheckpointError, ConfigError
from rexforge.io.checkpoint import (
    Checkpoint,
    check_weights,
    read_checkpoint,
    state_dict_digest,
)
from rexforge.io.official import REXFORGE_META_KEY, torch_load_safely
from rexforge.registry import family_of

# In a training checkpoint's rexforge entry: sha256 of its whole Lightning state dict (named
# apart from an official file's state_dict_sha256, which covers the official names).
TRAINING_SHA_KEY = "training_state_dict_sha256"


def with_training_checksum(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """A copy of a Lightning checkpoint dict with the checksum of its weights recorded, as
    ``check_training_checksum`` verifies it; one without a state dict is returned as is
    (ddp_spawn also saves bare weights)."""
    if "state_dict" not in checkpoint:
        return checkpoint
    meta = dict(checkpoint.get(REXFORGE_META_KEY) or {})
    meta[TRAINING_SHA_KEY] = state_dict_digest(checkpoint["state_dict"])
    return {**checkpoint, REXFORGE_META_KEY: meta}


def read_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning ``.ckpt`` loaded without running code, its weights checksum verified."""
    path = Path(path)
    checkpoint = torch_load_safely(path)
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} is not a training checkpoint (no mapping inside)")
    check_training_checksum(path, checkpoint)
    return checkpoint


def is_training_payload(obj: Any) -> bool:
    """Whether a loaded ``.ckpt`` is a rexforge training checkpoint (Lightning's layout, with
    the module's ``model_config`` and ``train_config`` as hyper-parameters)."""
    hp = obj.get("hyper_parameters") if isinstance(obj, dict) else None
    return isinstance(hp, dict) and "model_config" in hp and "train_config" in hp


def check_training_checksum(path: Path, obj: dict) -> None:
    """Refuse a training checkpoint whose weights differ from the checksum written with them."""
    expected = (obj.get(REXFORGE_META_KEY) or {}).get(TRAINING_SHA_KEY)
    if expected and expected != state_dict_digest(obj.get("state_dict") or {}):
        raise CheckpointError(
            f"{path}: weights do not match their recorded checksum (corrupt file)"
        )


def model_from_training_payload(path: Path, obj: dict) -> Checkpoint:
    """The network of a training checkpoint at its step, as a model."""
    check_training_checksum(path, obj)
    hp = obj["hyper_parameters"]
    train = dict(hp.get("train_config") or {})
    state_dict = {
        name.removeprefix("model."): tensor
        for name, tensor in (obj.get("state_dict") or {}).items()
        if name.startswith("model.")
    }
    if any(".lora_" in name for name in state_dict):
        raise CheckpointError(
            f"{path} is a LoRA training checkpoint: it holds the adapters without the base "
            "weights; load the run's final/ folder (adapters merged) instead"
        )
    try:
        family = family_of(hp["model_config"])
        config = family.config_class.from_dict(hp["model_config"])
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    check_weights(config, state_dict, str(path))
    derived = train.get("derived_from_nxai_weights")
    if derived is None:  # written before runs recorded it
        derived = _base_derived_from_nxai(train)
    metadata = {
        **family.notice(bool(derived)),
        "steps": int(obj.get("global_step") or 0),
        "mode": train.get("mode"),
        "base_checkpoint": train.get("base_checkpoint"),
        "base_sha256": train.get("base_sha256"),
        "train_config": train,
        "data": _run_data(path),
    }
    return Checkpoint(config, state_dict, metadata, str(path))


def _base_derived_from_nxai(train: dict) -> bool:
    """Provenance of a training checkpoint that does not record it: a run from scratch owes
    nothing to NXAI's weights; a fine-tune inherits its base's flag when the base can still be
    read, and otherwise keeps the notice."""
    base = train.get("base_checkpoint")
    if train.get("mode") == "scratch" or base is None:
        return False
    try:
        return bool(read_checkpoint(base).metadata.get("derived_from_nxai_weights", True))
    except CheckpointError:
        return True


def _run_data(path: Path) -> Any:
    """The ``data`` entry of the run's ``config.yaml`` (``runs/x/checkpoints/step.ckpt`` ->
    ``runs/x/config.yaml``), or None."""
    import yaml

    run_config = path.resolve().parent.parent / "config.yaml"
    if path.resolve().parent.name != "checkpoints" or not run_config.is_file():
        return None
    try:
        return (yaml.safe_load(run_config.read_text()) or {}).get("data")
    except (OSError, yaml.YAMLError, AttributeError):
        return None
