"""``rexforge grow``: write a deeper copy of a model that forecasts exactly like it
(``rexforge.model.grow.deepen``), to continue training with more capacity.

The output folder (config.json + model.safetensors, and an official-layout model.ckpt) keeps the
source's metadata, the NXAI notice included, and records what it was grown from; continue
training it with ``rexforge finetune --model OUTPUT --mode full``.
"""

from __future__ import annotations

from pathlib import Path


def grow(model: str, *, output: Path, factor: int = 2) -> int:
    """Write a deeper copy of a model that forecasts the same.

    Args:
        model: checkpoint file or folder, hub id, or 'starter'
        output: folder to write
        factor: blocks per original block
    """
    from rexforge.io.checkpoint import Checkpoint, write_export
    from rexforge.io.export_command import combined_checkpoint
    from rexforge.model.grow import deepen
    from rexforge.registry import require_family

    source = combined_checkpoint([model], None)
    require_family(source.config, "tirex", "rexforge grow", model)
    config, state = deepen(source.config, source.state_dict, factor)
    metadata = dict(source.metadata)
    metadata["grown_from"] = (
        f"{model} ({source.config.block_kwargs.num_blocks} blocks; every block followed by "
        f"{factor - 1} identity-initialised copies)"
    )
    write_export(output, Checkpoint(config, state, metadata))
    print(f"wrote {output}: {config.block_kwargs.num_blocks} blocks")
    return 0
