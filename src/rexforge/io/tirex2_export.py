"""Write a TiRex-2 model in the official layout, which tirex-2 0.4.0's ``load_model`` reads:

    config.json         the official config document (``TiRex2Config.to_official``), nothing
                        else: the reference passes every top-level key to its constructor,
                        which refuses unknown ones (tested), so provenance cannot live there
    model.safetensors   the weights under the official names, each tensor that the network
                        shares under two names (``ALIAS_PAIRS`` of ``families.tirex2``) stored
                        once, under the first name in sorted order, as the reference stores them
    provenance.json     rexforge's metadata: licence and notice, base model and its sha256,
                        data, mode, training settings, steps, metrics (read back by
                        ``io.checkpoint``, so a loaded model keeps them)
    NOTICE              when the weights derive from NXAI's

Each file is written atomically; the weights first, ``config.json`` last.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rexforge.io.atomic import atomic_write_bytes, atomic_write_text

PROVENANCE_FILE = "provenance.json"
PROVENANCE_FORMAT = "rexforge-tirex2-provenance"


def distinct_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors, each shared one under its first name in sorted order only
    (safetensors refuses shared storage; readers restore the other names)."""
    seen, out = set(), {}
    for name in sorted(tensors):
        tensor = tensors[name]
        key = (tensor.data_ptr(), tuple(tensor.shape), tensor.dtype)
        if key not in seen:
            seen.add(key)
            out[name] = tensor.detach().cpu().contiguous()
    return out


def write_tirex2_folder(folder, config, state_dict: dict, metadata: dict) -> Path:
    """Write the folder described above; returns the path of ``model.safetensors``."""
    from safetensors.torch import save

    from rexforge.io.checkpoint import NOTICE_FILE, nxai_metadata

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {**nxai_metadata(metadata.get("derived_from_nxai_weights", False)), **metadata}
    weights = folder / "model.safetensors"
    atomic_write_bytes(weights, save(distinct_tensors(state_dict), metadata={"format": "pt"}))
    document = {"format": PROVENANCE_FORMAT, "metadata": meta}
    text = json.dumps(document, indent=2, default=str) + "\n"
    atomic_write_text(folder / PROVENANCE_FILE, text)
    if meta.get("derived_from_nxai_weights"):
        atomic_write_text(folder / NOTICE_FILE, _notice_text())
    atomic_write_text(folder / "config.json", json.dumps(config.to_official(), indent=2) + "\n")
    return weights


def read_provenance(folder: Path) -> dict | None:
    """The metadata of ``provenance.json`` in ``folder``, or None when there is none."""
    path = Path(folder) / PROVENANCE_FILE
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict) or document.get("format") != PROVENANCE_FORMAT:
        return None
    return dict(document.get("metadata") or {})


def _notice_text() -> str:
    from rexforge import NXAI_NOTICE

    return (
        f"{NXAI_NOTICE}\n\nThese weights derive from NXAI's TiRex-2 weights and are distributed "
        "under the NXAI Community License Agreement (see the LICENSE file of rexforge).\n"
    )
