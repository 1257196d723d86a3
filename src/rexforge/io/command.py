"""``rexforge info``: what a checkpoint holds."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="checkpoint file or folder, or 'starter'")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def run(args: argparse.Namespace) -> int:
    from rexforge.io.checkpoint import read_checkpoint

    path = args.path
    if path == "starter":
        from rexforge.assets import starter_model_path

        path = starter_model_path()
    ckpt = read_checkpoint(path)
    n_params = sum(int(t.numel()) for t in ckpt.state_dict.values())
    info = {
        "path": str(path),
        "parameters": n_params,
        "config": ckpt.config.to_dict(),
        "metadata": ckpt.metadata,
    }
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    b = ckpt.config.block_kwargs
    print(f"checkpoint   {path}")
    print(f"parameters   {n_params:,}")
    print(
        f"architecture {b.num_blocks} sLSTM blocks, width {b.embedding_dim}, {b.num_heads} heads, "
        f"FFN {b.ffn_dim}, patch {ckpt.config.input_patch_size}, "
        f"{ckpt.config.num_quantiles} quantiles, context {ckpt.config.train_ctx_len}"
    )
    print(f"rollout      {ckpt.metadata.get('default_rollout', 'exact')} (default of forecast)")
    if b.extra:
        print(f"unused keys  {', '.join(sorted(b.extra))} (kept, not interpreted)")
    for key in (
        "notice",
        "license",
        "derived_from_nxai_weights",
        "rexforge_version",
        "mode",
        "base_checkpoint",
    ):
        if key in ckpt.metadata:
            print(f"{key:<12} {ckpt.metadata[key]}")
    return 0
