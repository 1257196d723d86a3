"""Export a Lightning training checkpoint of a rexforge run (e.g. the best-validation one) as
a model folder (config.json + model.safetensors) and an official-layout model.ckpt.

    python scripts/export_training_checkpoint.py runs/x/checkpoints/best.ckpt runs/x/best
    python scripts/export_training_checkpoint.py runs/x/checkpoints/step-0*.ckpt runs/x/avg \
        --selected-by "average of the last three checkpoints"

Several checkpoints are averaged uniformly (same architecture required).

Metadata comes from the run's own export (``<run>/final``, when present) with the step and the
reason for the choice added. Full-model checkpoints only (LoRA checkpoints hold adapters only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rexforge.errors import CheckpointError, RexforgeError
from rexforge.io.checkpoint import Checkpoint, read_checkpoint, write_export
from rexforge.train.checkpointing import average_state_dicts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "checkpoints", type=Path, nargs="+", help="one .ckpt, or several to average"
    )
    parser.add_argument("output", type=Path)
    parser.add_argument("--selected-by", default="lowest validation loss of the run")
    args = parser.parse_args()
    # read_checkpoint reads a run's training checkpoints as models (LoRA ones are refused:
    # they hold adapters only).
    try:
        models = [read_checkpoint(path) for path in args.checkpoints]
        configs = [m.config for m in models]
        if any(c != configs[0] for c in configs[1:]):
            raise CheckpointError("the checkpoints to average have different architectures")
    except RexforgeError as exc:
        # Bad input: one error line and exit status 2, as the rexforge command does.
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    states = [m.state_dict for m in models]
    steps = [int(m.metadata.get("steps") or 0) for m in models]
    config, state = configs[0], average_state_dicts(states)
    final = args.checkpoints[0].parent.parent / "final"
    # The run's own export describes it best (data, metrics); a run in progress has none yet.
    done = (final / "config.json").is_file()
    metadata = dict(read_checkpoint(final).metadata if done else models[0].metadata)
    names = ", ".join(f"{p.name} (step {s})" for p, s in zip(args.checkpoints, steps))
    metadata.update(
        steps=max(steps),
        selected_checkpoint=f"{'average of ' if len(steps) > 1 else ''}{names}; {args.selected_by}",
    )
    metadata.pop("metrics", None)  # those were measured on the final weights
    ckpt = Checkpoint(config, state, metadata)
    write_export(args.output, ckpt)
    print(f"exported {names} -> {args.output}")


if __name__ == "__main__":
    main()
