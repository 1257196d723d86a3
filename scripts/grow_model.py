"""Write a deeper copy of a model that forecasts exactly like it (``rexforge.model.grow.deepen``).

    python scripts/grow_model.py runs/starter-1m-v3/step6000 runs/starter-2m-v3x2 --factor 2

The output folder (config.json + model.safetensors, and an official-layout model.ckpt) keeps the
source's metadata, the NXAI notice included, and records what it was grown from; continue
training it with ``rexforge finetune --model OUTPUT --mode full``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rexforge.errors import RexforgeError
from rexforge.io.checkpoint import Checkpoint, read_checkpoint, write_export
from rexforge.model.grow import deepen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="anything rexforge.load_model reads")
    parser.add_argument("output", type=Path, help="folder to write")
    parser.add_argument("--factor", type=int, default=2, help="blocks per original block")
    args = parser.parse_args()
    try:
        source = read_checkpoint(args.source)
        config, state = deepen(source.config, source.state_dict, args.factor)
    except RexforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    metadata = dict(source.metadata)
    metadata["grown_from"] = (
        f"{args.source} ({source.config.block_kwargs.num_blocks} blocks; every block followed by "
        f"{args.factor - 1} identity-initialised copies)"
    )
    ckpt = Checkpoint(config, state, metadata)
    write_export(args.output, ckpt)
    print(f"wrote {args.output}: {config.block_kwargs.num_blocks} blocks")


if __name__ == "__main__":
    main()
