"""``rexforge export``: write a model in another format (ONNX, NXAI's ``tirex.onnx`` interface)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rexforge.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="checkpoint file or folder, hub id, or 'starter'")
    parser.add_argument(
        "--format", default="onnx", help="output format; only 'onnx' (the default) for now"
    )
    parser.add_argument("--output", type=Path, required=True, help="file to write (.onnx)")
    parser.add_argument(
        "--optimize",
        action="store_true",
        help="run the exporter's graph optimiser: a smaller file, 3x the export time "
        "(impractical for tirex-35m on a small CPU)",
    )


def run(args: argparse.Namespace) -> int:
    from rexforge.io.onnx_export import FORMATS, check_output_path, export_onnx

    if args.format not in FORMATS:
        raise InputError(f"unknown export format {args.format!r}; known: {', '.join(FORMATS)}")
    check_output_path(args.output)
    path = export_onnx(args.model, args.output, optimize=args.optimize)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB): input 'context' [batch, length]")
    return 0
