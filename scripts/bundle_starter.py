"""Copy a finished run's exported model into the package as the bundled starter model.

    python scripts/bundle_starter.py runs/starter-1m [--scores benchmarks/results/eval_zero_shot-<date>.json]

Writes src/rexforge/assets/starter/{config.json, model.safetensors, MODEL_CARD.md}. The model
card states the data, the recipe, the command that reproduces it and (with --scores) its
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
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--card", type=Path, default=None, help="Markdown model card to copy")
    args = parser.parse_args()
    final = args.run_dir / "final"
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
