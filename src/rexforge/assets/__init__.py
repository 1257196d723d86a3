"""Files shipped inside the package: the starter model and sample data."""

from __future__ import annotations

from pathlib import Path

from rexforge.errors import CheckpointError

ASSETS = Path(__file__).resolve().parent
STARTER_DIR = ASSETS / "starter"
SAMPLE_DATA = ASSETS / "sample_data.csv"


def resolve_starter(source):
    """``source``, or the bundled starter's folder when ``source`` is the name ``"starter"``
    (the one place that name is resolved)."""
    return starter_model_path() if str(source) == "starter" else source


def starter_model_path() -> Path:
    """Folder of the bundled starter model (config.json + model.safetensors)."""
    if not (STARTER_DIR / "config.json").is_file():
        raise CheckpointError(
            "the bundled starter model is not part of this install; pass --model PATH"
        )
    return STARTER_DIR
