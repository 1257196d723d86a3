"""Copy a rexforge model folder with another context (``train_ctx_len``), weights unchanged.

    python scripts/set_context.py src/rexforge/assets/starter /tmp/starter-ctx256 256

Forecasting pads or cuts every series to ``train_ctx_len`` steps; this measures how a model
does at a context it did not train at (the model card's context-robustness rows). The copy's
``train_config`` metadata is dropped, so that loading it does not warn about the mismatch.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path


def main() -> None:
    if len(sys.argv) != 4:
        raise SystemExit("usage: set_context.py SOURCE_FOLDER TARGET_FOLDER STEPS")
    source, target, steps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    if not (source / "config.json").is_file():
        raise SystemExit(f"error: {source / 'config.json'} not found")
    shutil.copytree(source, target, dirs_exist_ok=True)
    document = json.loads((target / "config.json").read_text())
    document["model"]["train_ctx_len"] = steps
    document.get("metadata", {}).pop("train_config", None)
    (target / "config.json").write_text(json.dumps(document, indent=2))
    print(f"{target}: train_ctx_len {steps}")


if __name__ == "__main__":
    main()
