"""Export a Lightning training checkpoint of a rexforge run (e.g. the best-validation one) as
a model folder (config.json + model.safetensors) and an official-layout model.ckpt.

    python scripts/export_training_checkpoint.py runs/x/checkpoints/best.ckpt runs/x/best

Metadata comes from the run's own export (``<run>/final``, when present) with the step and the
reason for the choice added. Full-model checkpoints only (LoRA checkpoints hold adapters only).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rexforge.config import TiRexConfig
from rexforge.io.checkpoint import Checkpoint, read_checkpoint, write_folder, write_official
from rexforge.train.checkpointing import read_training_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--selected-by", default="lowest validation loss of the run")
    args = parser.parse_args()
    raw = read_training_checkpoint(args.checkpoint)
    hp = raw["hyper_parameters"]
    if hp["train_config"].get("mode") == "lora":
        raise SystemExit(
            "error: LoRA training checkpoints hold adapters only; use the run's final/"
        )
    config = TiRexConfig.from_dict(hp["model_config"])
    state = {k[len("model.") :]: v for k, v in raw["state_dict"].items() if k.startswith("model.")}
    final = args.checkpoint.parent.parent / "final"
    metadata = dict(read_checkpoint(final).metadata) if (final / "config.json").is_file() else {}
    metadata.update(
        steps=int(raw["global_step"]),
        selected_checkpoint=f"{args.checkpoint.name} (step {raw['global_step']}; {args.selected_by})",
    )
    metadata.pop("metrics", None)  # those were measured on the final weights
    ckpt = Checkpoint(config, state, metadata)
    write_folder(args.output, ckpt)
    write_official(args.output / "model.ckpt", ckpt)
    print(f"exported step {raw['global_step']} of {args.checkpoint} -> {args.output}")


if __name__ == "__main__":
    main()
