"""Files shipped inside the package: the starter models and sample data."""

from __future__ import annotations

from pathlib import Path

from rexforge.errors import CheckpointError

ASSETS = Path(__file__).resolve().parent
STARTER_DIR = ASSETS / "starter"
STARTER_TIREX2_DIR = ASSETS / "starter-tirex2"
SAMPLE_DATA = ASSETS / "sample_data.csv"
# Bundled model name -> its folder: "starter" (TiRex, tirex-1m) and "starter-tirex2"
# (TiRex-2, tirex2-small), each with its MODEL_CARD.md.
STARTERS = {"starter": STARTER_DIR, "starter-tirex2": STARTER_TIREX2_DIR}


def is_starter(source) -> bool:
    """Whether ``source`` names a bundled model (``"starter"``, ``"starter-tirex2"``)."""
    return str(source) in STARTERS


def resolve_starter(source):
    """``source``, or the bundled model's folder when ``source`` is one of the names in
    ``STARTERS`` (the one place those names are resolved)."""
    return starter_model_path(str(source)) if is_starter(source) else source


def starter_model_path(name: str = "starter") -> Path:
    """Folder of a bundled model (config.json + model.safetensors)."""
    folder = STARTERS[name]
    if not (folder / "config.json").is_file():
        raise CheckpointError(
            f"the bundled model {name!r} is not part of this install; pass --model PATH"
        )
    return folder
