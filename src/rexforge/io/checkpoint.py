"""Load and save TiRex checkpoints in either format rexforge supports.

* official layout: one torch file (``model.ckpt``), what NXAI releases and ``tirex-ts`` loads;
* rexforge folder: ``config.json`` (architecture + metadata + checksum) and
  ``model.safetensors``, plus ``NOTICE`` when the weights derive from NXAI's;
* read only: the Lightning checkpoints a training run writes (``runs/x/checkpoints/*.ckpt``),
  so that a run's best or latest step forecasts, evaluates or fine-tunes before it is exported
  (``rexforge.io.training_checkpoint`` reads them; ``read_checkpoint`` hands such files to it).

Both writers are atomic and record a checksum of the weights that the readers verify; the
readers also refuse weights whose names or shapes do not fit the config they come with.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rexforge.config import TiRexConfig
from rexforge.errors import CheckpointError, ConfigError
from rexforge.io.atomic import atomic_write_bytes, atomic_write_text, sha256_file
from rexforge.io.hub import resolve_model_source
from rexforge.io.official import (
    official_payload,
    parse_official,
    serialize_official,
    torch_load_safely,
)

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
NOTICE_FILE = "NOTICE"
OFFICIAL_FILE = "model.ckpt"


@dataclass
class Checkpoint:
    """What a checkpoint holds: architecture, weights (rexforge names) and metadata."""

    config: TiRexConfig  # or another registered family's config (e.g. ``TiRex2Config``)
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""


def nxai_metadata(derived_from_nxai_weights: bool) -> dict[str, Any]:
    from rexforge import NXAI_NOTICE, __version__

    return {
        "rexforge_version": __version__,
        "license": "NXAI Community License Agreement",
        "notice": NXAI_NOTICE,
        "derived_from_nxai_weights": bool(derived_from_nxai_weights),
    }


def state_dict_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes of the tensors, in sorted key order."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


# -- reading --------------------------------------------------------------------------------
def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read an official ``.ckpt`` file, a rexforge folder, or a ``.safetensors`` file that has
    a ``config.json`` beside it, or a hub id (``"NX-AI/TiRex"``, see ``rexforge.io.hub``).
    Raises ``CheckpointError`` (``InputError`` for a hub id) with a one-line reason."""
    ckpt = _read_any(resolve_model_source(path))
    _warn_context_mismatch(ckpt)
    return ckpt


def _recorded_training_context(metadata: dict[str, Any]) -> Any:
    """The ``context_length`` of the training settings in ``metadata`` (None when absent): a
    second copy of the training context, which only files written before exports kept
    ``train_ctx_len`` alone hold (and training checkpoints, whose settings are their own)."""
    if metadata.get("finetune_kept") == "base":  # the guard exported the base, untrained
        return None
    train_config = metadata.get("train_config")
    return train_config.get("context_length") if isinstance(train_config, dict) else None


def _warn_context_mismatch(ckpt: Checkpoint) -> None:
    """Warn about a model that pads contexts to another length than it trained on (rexforge
    exports before train_ctx_len followed --context-length): every padded patch moves the
    recurrent state, so such a model forecasts short series from a state it never trained in.
    Only files that hold the training context twice can disagree; exports now hold it once."""
    trained = _recorded_training_context(ckpt.metadata)
    padded_to = getattr(ckpt.config, "train_ctx_len", None)  # TiRex's; TiRex-2 stores one copy
    if type(trained) is int and padded_to is not None and trained != padded_to:
        logger.warning(
            "%s trained on %d-step contexts but pads/cuts to train_ctx_len %d, which can cost "
            "accuracy; set train_ctx_len to %d in its config.json (or the model.ckpt "
            "hyper_parameters) to forecast as it trained",
            ckpt.source or "model",
            trained,
            ckpt.config.train_ctx_len,
            trained,
        )


def _read_any(path: Path) -> Checkpoint:
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        return _read_folder(path)
    if path.suffix == ".safetensors":
        return _read_folder(path.parent, weights=path)
    obj = torch_load_safely(path)
    # Imported here: the training-checkpoint reader builds on this module's Checkpoint.
    from rexforge.io.training_checkpoint import is_training_payload, model_from_training_payload

    if is_training_payload(obj):
        return model_from_training_payload(path, obj)
    config, state_dict, meta = parse_official(path, obj)
    expected = meta.get("state_dict_sha256")
    if expected and expected != state_dict_digest(state_dict):
        raise CheckpointError(
            f"{path}: weights do not match their recorded checksum (corrupt file)"
        )
    if "derived_from_nxai_weights" not in meta:
        # A file in the official layout without rexforge metadata: treat as NXAI's release.
        meta.update(nxai_metadata(True))
    check_weights(config, state_dict, str(path))
    return Checkpoint(config, state_dict, meta, str(path))


def _read_folder(folder: Path, weights: Path | None = None) -> Checkpoint:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config_path = folder / CONFIG_FILE
    weights = weights or folder / WEIGHTS_FILE
    if not config_path.is_file():
        if (folder / OFFICIAL_FILE).is_file():
            return read_checkpoint(folder / OFFICIAL_FILE)
        raise CheckpointError(f"{folder} holds no {CONFIG_FILE} (and no {OFFICIAL_FILE})")
    if not weights.is_file():
        raise CheckpointError(f"{folder} holds no {weights.name}")
    try:
        data = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{config_path} is not valid JSON: {exc}") from None
    family = _folder_family(data)
    if family is not None and family.name != "tirex":
        return _read_family_folder(folder, weights, data, family)
    if not isinstance(data, dict) or "model" not in data:
        raise CheckpointError(f"{config_path} is not a rexforge model config (no 'model' entry)")
    try:
        config = TiRexConfig.from_dict(data["model"])
    except ConfigError as exc:
        raise CheckpointError(f"{config_path}: {exc}") from None
    meta = dict(data.get("metadata") or {})
    expected = data.get("weights_sha256")
    if expected and expected != sha256_file(weights):
        raise CheckpointError(
            f"{weights}: file does not match its recorded sha256 (corrupt or changed)"
        )
    try:
        state_dict = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights} is not a readable safetensors file: {exc}") from None
    check_weights(config, state_dict, str(folder))
    return Checkpoint(config, state_dict, meta, str(folder))


def _folder_family(data: Any):
    """The registered family whose config document ``data`` is, or None if none (or several)
    claim it: such a document is then read, and refused, as a TiRex one."""
    from rexforge.registry import family_of

    try:
        return family_of(data)
    except ConfigError:
        return None


def _read_family_folder(folder: Path, weights: Path, data: dict, family) -> Checkpoint:
    """Another family's folder: its own config class reads ``data`` (an official document or
    a rexforge one with a ``model`` entry) and its ``checkpoint_filter`` renames the weights.
    The weights are checked against the config when the network is built (a strict load)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    document = data["model"] if isinstance(data.get("model"), dict) else data
    try:
        config = family.config_class.from_dict(document)
    except ConfigError as exc:
        raise CheckpointError(f"{folder / CONFIG_FILE}: {exc}") from None
    try:
        state_dict = load_file(str(weights))
        meta = dict(data.get("metadata") or {}) or _header_metadata(weights)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights} is not a readable safetensors file: {exc}") from None
    expected = meta.get("state_dict_sha256")
    if expected and expected != state_dict_digest(state_dict):
        raise CheckpointError(f"{weights}: weights do not match their recorded checksum")
    # An official folder without rexforge's metadata: the family's own release.
    meta.setdefault("derived_from_nxai_weights", True)
    state_dict = family.checkpoint_filter(state_dict, config)
    return Checkpoint(config, state_dict, meta, str(folder))


def _header_metadata(weights: Path) -> dict[str, Any]:
    """The metadata in a safetensors file's header, JSON values decoded ({} when none): where
    rexforge keeps it for families whose config.json must stay the official document."""
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as handle:
        header = handle.metadata() or {}
    return {key: _json_or_text(value) for key, value in header.items()}


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value  # a plain string another writer stored as it is


# -- writing --------------------------------------------------------------------------------
def _full_metadata(ckpt: Checkpoint) -> dict[str, Any]:
    meta = nxai_metadata(ckpt.metadata.get("derived_from_nxai_weights", False))
    meta.update(ckpt.metadata)
    return _without_second_context_copy(meta, ckpt.config)


def _without_second_context_copy(meta: dict[str, Any], config: TiRexConfig) -> dict[str, Any]:
    """The model config's ``train_ctx_len`` is the one stored copy of the context a model
    trained on (fit sets it to the training windows' length), so a training record's equal
    ``context_length`` is left out. A different one is kept: an older export's evidence that
    the model pads to another length than it trained on, which reading warns about."""
    if _recorded_training_context(meta) == config.train_ctx_len:
        train_config = {k: v for k, v in meta["train_config"].items() if k != "context_length"}
        meta = {**meta, "train_config": train_config}
    return meta


def _family_writer(ckpt: Checkpoint):
    """The writer of the official layout of ``ckpt``'s family, or None for TiRex (whose
    writers are this module's)."""
    from rexforge.registry import family_of

    return family_of(ckpt.config).write_folder


def distinct_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies of ``tensors``, a tensor reached under several names kept under
    the first of them in sorted order only (safetensors refuses shared storage)."""
    seen, out = set(), {}
    for name in sorted(tensors):
        tensor = tensors[name]
        key = (tensor.data_ptr(), tuple(tensor.shape), tensor.dtype)
        if key not in seen:
            seen.add(key)
            out[name] = tensor.detach().cpu().contiguous()
    return out


def write_official(path: str | Path, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` as an official-layout torch file that ``tirex-ts`` can load (another
    family's official layout, e.g. TiRex-2's folder, through the family's writer)."""
    writer = _family_writer(ckpt)
    if writer is not None:
        return writer(path, ckpt)
    path = Path(path)
    if path.is_dir():
        path = path / OFFICIAL_FILE
    meta = _full_metadata(ckpt)
    meta["state_dict_sha256"] = state_dict_digest(ckpt.state_dict)
    atomic_write_bytes(
        path, serialize_official(official_payload(ckpt.config, ckpt.state_dict, meta))
    )
    return path


def write_folder(folder: str | Path, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` as a rexforge folder (config.json + model.safetensors [+ NOTICE]).

    The weights are written first and ``config.json`` (which holds their sha256) last, each
    atomically, so an interrupted save never leaves a folder that loads with wrong weights.
    Another family's model is written in its official folder layout (its family's writer).
    """
    from safetensors.torch import save

    writer = _family_writer(ckpt)
    if writer is not None:
        return writer(folder, ckpt)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = _full_metadata(ckpt)
    tensors = {k: v.detach().cpu().contiguous() for k, v in ckpt.state_dict.items()}
    # safetensors metadata must be str -> str.
    st_meta = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in meta.items()}
    blob = save(tensors, metadata=st_meta)
    atomic_write_bytes(folder / WEIGHTS_FILE, blob)
    document = {
        "format": "rexforge-tirex",
        "model": ckpt.config.to_dict(),
        "metadata": meta,
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
    }
    atomic_write_text(folder / CONFIG_FILE, json.dumps(document, indent=2, sort_keys=False) + "\n")
    if meta.get("derived_from_nxai_weights"):
        atomic_write_text(folder / NOTICE_FILE, _notice_text())
    return folder


def _notice_text() -> str:
    from rexforge import NXAI_NOTICE

    return (
        f"{NXAI_NOTICE}\n\nThese weights derive from NXAI's TiRex weights and are distributed "
        "under the NXAI Community License Agreement (see the LICENSE file of rexforge).\n"
    )


def write_export(folder: str | Path, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` as a rexforge folder plus the official-layout ``OFFICIAL_FILE`` inside it
    (what a finished run and the export scripts leave: loadable by rexforge and by tirex-ts).
    Returns the path of the official file (another family's: its official folder)."""
    if _family_writer(ckpt) is not None:
        return write_folder(folder, ckpt)
    folder = write_folder(folder, ckpt)
    return write_official(folder / OFFICIAL_FILE, ckpt)


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    """Save in the format the path asks for: ``*.ckpt`` -> official file, else a folder."""
    path = Path(path)
    if path.suffix == ".ckpt":
        return write_official(path, ckpt)
    return write_folder(path, ckpt)


# -- building a model -----------------------------------------------------------------------
def weights_problems(
    expected: dict[str, tuple[int, ...]], state_dict: dict[str, torch.Tensor]
) -> list[str]:
    """Every missing, unexpected or mis-shaped key of ``state_dict`` against ``expected``
    (name -> shape), summarised in at most three phrases."""
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    shapes = [
        f"{k} {tuple(state_dict[k].shape)} != {tuple(shape)}"
        for k, shape in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s) e.g. {', '.join(missing[:3])}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} key(s) e.g. {', '.join(unexpected[:3])}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es) e.g. {'; '.join(shapes[:2])}")
    return problems


def check_weights(config: Any, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Refuse weights that do not fit ``config`` (any family's; another model's file, an
    edited config) before anything is built from them. The family's network is built on the
    ``meta`` device: shapes only, no memory, no initialisation cost."""
    from rexforge.registry import family_of

    with torch.device("meta"):
        network = family_of(config).build(config)
        expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    problems = weights_problems(expected, state_dict)
    if problems:
        raise CheckpointError(f"{source}: weights do not match the config: " + "; ".join(problems))


def load_state_dict_strict(
    model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str
) -> None:
    """Load strictly; every missing, unexpected or mis-shaped key is named in one error."""
    expected = model.state_dict()
    problems = weights_problems({k: tuple(v.shape) for k, v in expected.items()}, state_dict)
    if problems:
        raise CheckpointError(f"{source}: weights do not match the config: " + "; ".join(problems))
    with torch.no_grad():
        model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state_dict.items()})
