"""``rexforge grow``: write a deeper copy of a model that forecasts exactly like it
(``rexforge.model.grow.deepen``), to continue training with more capacity.

The output folder (config.json + model.safetensors, and an official-layout model.ckpt) keeps the
source's metadata, the NXAI notice included, and records what it was grown from; continue
training it with ``rexforge finetune --model OUTPUT --mode full``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="checkpoint file or folder, hub id, or 'starter'")
    parser.add_argument("--output", type=Path, required=True, help="folder to write")
    parser.add_argument("--factor", type=int, default=2, help="blocks per original block")


def run(args: argparse.Namespace) -> int:
    from rexforge.io.checkpoint import Checkpoint, write_export
    from rexforge.io.export_command import combined_checkpoint
    from rexforge.model.grow import deepen

    source = combined_checkpoint([args.model], None)
    config, state = deepen(source.config, source.state_dict, args.factor)
    metadata = dict(source.metadata)
    metadata["grown_from"] = (
        f"{args.model} ({source.config.block_kwargs.num_blocks} blocks; every block followed by "
        f"{args.factor - 1} identity-initialised copies)"
    )
    write_export(args.output, Checkpoint(config, state, metadata))
    print(f"wrote {args.output}: {config.block_kwargs.num_blocks} blocks")
    return 0
