"""Test helpers: a random-weight reference TiRex-2 (package ``tirex2`` 0.4.0) and its official
on-disk layout, ``config.json`` + ``model.safetensors``, as ``tirex2.load_model`` reads it.

The reference ships only the reading side of its safetensors format: the file stores one name
of each group of state-dict names that share a tensor (safetensors refuses shared storage),
and the reader restores the others. ``save_official_folder`` writes that layout, keeping the
first name of each group in sorted order.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rexforge.config_tirex2 import TiRex2Config

# Small enough to run in well under a second: width 32, two blocks (one mLSTM, one sLSTM),
# patch 4, context 32, future_len 8 (two output patches).
TINY = TiRex2Config.from_name("tirex2-test", dropout=0.0)


def reference_network(config: TiRex2Config = TINY, seed: int = 0):
    """The reference ``TiRex2`` on CPU with noise on every weight, so that no weight keeps a
    symmetric initial value (zero recurrent kernels, unit norm gains) that would hide a bug."""
    reference = pytest.importorskip("tirex2.model.tirex2")
    torch.manual_seed(seed)
    model = reference.TiRex2(**{**config.to_official(), "device": "cpu"}).eval()
    noise = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for parameter in model.parameters():  # a shared tensor is listed once
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=noise))
    return model


def save_official_folder(model, config: TiRex2Config, folder: Path) -> Path:
    """Write ``model`` (a reference ``TiRex2``) as ``config.json`` + ``model.safetensors``."""
    from safetensors.torch import save_file
    from tirex2._state_dict import shared_tensor_groups

    state = model.state_dict()
    dropped = {name for group in shared_tensor_groups(model) for name in group[1:]}
    tensors = {k: v.detach().contiguous() for k, v in state.items() if k not in dropped}
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config.to_official(), indent=2))
    return folder
