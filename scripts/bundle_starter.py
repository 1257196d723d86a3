"""Copy a finished run's exported model into the package as a bundled starter model.

    python scripts/bundle_starter.py runs/starter-1m-v2/best --card MODEL_CARD.md
    python scripts/bundle_starter.py runs/starter-tirex2/best --name starter-tirex2 --card CARD.md

The source is a model folder (config.json + model.safetensors) or a run folder (its final/).

Writes src/rexforge/assets/<name>/{config.json, model.safetensors, MODEL_CARD.md} (``--name``:
``starter``, the TiRex one, or ``starter-tirex2``). The model
card (written by hand from the run and its benchmark results) states the data, the recipe,
the command that reproduces it and its
zero-shot results.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "src" / "rexforge" / "assets"
NAMES = ("starter", "starter-tirex2")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", type=Path, help="model folder, or run folder with final/")
    parser.add_argument("--card", type=Path, default=None, help="Markdown model card to copy")
    parser.add_argument("--name", choices=NAMES, default="starter", help="which bundled model")
    args = parser.parse_args()
    target = ASSETS / args.name
    final = args.source if (args.source / "config.json").is_file() else args.source / "final"
    for name in ("config.json", "model.safetensors"):
        if not (final / name).is_file():
            raise SystemExit(f"error: {final / name} not found (did the run finish?)")
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(final / name, target / name)
    if args.card is not None:
        shutil.copy2(args.card, target / "MODEL_CARD.md")
    size = (target / "model.safetensors").stat().st_size
    # TiRex folders keep rexforge's metadata in config.json, TiRex-2 ones in the safetensors
    # header (config.json is the official document there): read it the way load_model does.
    from rexforge.io.checkpoint import read_checkpoint

    meta = read_checkpoint(target).metadata
    print(f"bundled {final} -> {target} ({size / 1e6:.1f} MB); metadata keys: {sorted(meta)}")


if __name__ == "__main__":
    main()
