"""Writing TiRex-2 models in the official on-disk layout, the one ``tirex2.load_model`` reads:

* ``config.json``: the official document (``TiRex2Config.to_official``) and nothing else, since
  tirex-2 passes every key of it to its network's constructor;
* ``model.safetensors``: the weights under the official names, one name per shared tensor
  (safetensors refuses shared storage; readers restore the alias names, see
  ``rexforge.families.tirex2.ALIAS_PAIRS``). rexforge's metadata (version, notice, where the
  weights come from, a checksum of the tensors) rides in the file's string header, which
  tirex-2 ignores;
* ``NOTICE`` when the weights derive from NXAI's.

Reading is ``rexforge.io.checkpoint.read_checkpoint``: the family registry recognises the
document, and the header's metadata comes back with the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from rexforge.errors import CheckpointError
from rexforge.io.atomic import atomic_write_bytes, atomic_write_text

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
NOTICE_FILE = "NOTICE"

TIREX2_NOTICE = (
    "Built with technology from NXAI. TiRex-2 (architecture and checkpoint format) is NXAI "
    "GmbH's, published in the tirex-2 package under the Apache License 2.0; rexforge "
    "re-implements it. TiRex-2 weights are NXAI GmbH's, under their own licence."
)

# Of each pair of names that reach one tensor, the file keeps the first; these are the
# second names (ALIAS_PAIRS in rexforge.families.tirex2), which readers fill back in.
_ALIAS_OF = ((".rev_cell.", ".fwd_cell."), (".recurrent_kernel", "._recurrent_kernel_"))


def official_tensors(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors a ``model.safetensors`` stores: every name except the aliases, as contiguous
    CPU tensors. Pure. An alias whose kept name is absent is a ``CheckpointError`` (dropping
    it would lose the tensor)."""
    kept = {}
    for key, tensor in state_dict.items():
        canonical = key
        for alias, name in _ALIAS_OF:
            canonical = canonical.replace(alias, name)
        if canonical == key:
            kept[key] = tensor.detach().cpu().contiguous()
        elif canonical not in state_dict:
            raise CheckpointError(f"TiRex-2 weights hold {key!r} but not {canonical!r}")
    return kept


def tirex2_metadata(metadata: dict[str, Any], derived_from_nxai_weights: bool) -> dict[str, Any]:
    """``metadata`` completed with rexforge's version and the TiRex-2 notice."""
    from rexforge import __version__

    return {
        "rexforge_version": __version__,
        "notice": TIREX2_NOTICE,
        **metadata,
        "derived_from_nxai_weights": bool(derived_from_nxai_weights),
    }


def tirex2_notice(derived_from_nxai_weights: bool) -> dict[str, Any]:
    """The notice metadata of a TiRex-2 model (the family registry's ``notice_metadata``)."""
    return tirex2_metadata({}, derived_from_nxai_weights)


def write_official_folder(folder: str | Path, ckpt) -> Path:
    """Write ``ckpt`` (a ``Checkpoint`` whose config is a ``TiRex2Config``) as an official
    TiRex-2 folder; returns the folder. Weights are written first and ``config.json`` last,
    each atomically, so an interrupted save never leaves a config beside other weights."""
    from safetensors.torch import save

    from rexforge.io.checkpoint import state_dict_digest

    folder = Path(folder)
    if folder.suffix in (".ckpt", ".pt", ".onnx", ".safetensors"):
        raise CheckpointError(
            f"{folder}: a TiRex-2 model is saved as a folder ({CONFIG_FILE} + {WEIGHTS_FILE}), "
            "not a single file; give a folder path"
        )
    folder.mkdir(parents=True, exist_ok=True)
    tensors = official_tensors(ckpt.state_dict)
    derived = ckpt.metadata.get("derived_from_nxai_weights", False)
    meta = tirex2_metadata(dict(ckpt.metadata), derived)
    meta["state_dict_sha256"] = state_dict_digest(tensors)
    # The safetensors header holds str -> str only: every value as JSON, decoded on reading.
    header = {key: json.dumps(value) for key, value in meta.items()}
    atomic_write_bytes(folder / WEIGHTS_FILE, save(tensors, metadata=header))
    atomic_write_text(folder / CONFIG_FILE, json.dumps(ckpt.config.to_official(), indent=2) + "\n")
    if derived:
        atomic_write_text(folder / NOTICE_FILE, _notice_text())
    return folder


def _notice_text() -> str:
    return (
        f"{TIREX2_NOTICE}\n\nThese weights derive from NXAI's TiRex-2 weights and keep their "
        "licence; see the model card of the repository they came from.\n"
    )
