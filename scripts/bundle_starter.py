"""Copy a finished run's exported model into the package as the bundled starter model.

    python scripts/bundle_starter.py runs/starter-1m-v2/best --card MODEL_CARD.md

The source is a model folder (config.json + model.safetensors) or a run folder (its final/).

Writes src/rexforge/assets/starter/{config.json, model.safetensors, MODEL_CARD.md}. The model
card (written by hand from the run and its benchmark results) states the data, the recipe,
the command that reproduces it and its
zero-shot results.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "rexforge" / "assets" / "starter"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", type=Path, help="model folder, or run folder with final/")
    parser.add_argument("--card", type=Path, default=None, help="Markdown model card to copy")
    args = parser.parse_args()
    final = args.source if (args.source / "config.json").is_file() else args.source / "final"
    for name in ("config.json", "model.safetensors"):
        if not (final / name).is_file():
            raise SystemExit(f"error: {final / name} not found (did the run finish?)")
    TARGET.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(final / name, TARGET / name)
    if args.card is not None:
        shutil.copy2(args.card, TARGET / "MODEL_CARD.md")
    size = (TARGET / "model.safetensors").stat().st_size
    meta = json.loads((TARGET / "config.json").read_text())["metadata"]
    print(f"bundled {final} -> {TARGET} ({size / 1e6:.1f} MB); metadata keys: {sorted(meta)}")


if __name__ == "__main__":
    main()
