"""``rexforge embed``: one embedding row per series of a CSV/Parquet file.

The file is read as ``rexforge forecast`` reads it (long or wide). The output holds
``item_id`` and ``emb_0 ... emb_{D-1}``, as CSV or Parquet by its suffix, written atomically.
"""

from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path

from rexforge.errors import InputError

logger = logging.getLogger(__name__)

OUTPUT_SUFFIXES = (".csv", ".parquet")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rexforge.forecast.command import add_source_arguments

    parser.add_argument(
        "--model",
        default="starter",
        help="checkpoint file/folder, hub id (NX-AI/TiRex) or 'starter' (default)",
    )
    parser.add_argument(
        "--data", type=Path, required=True, help="CSV or Parquet file, long or wide"
    )
    parser.add_argument("--output", type=Path, required=True, help=".csv or .parquet to write")
    add_source_arguments(parser)
    parser.add_argument(
        "--data-augmentation",
        action="store_true",
        help="append the embedding of first differences and piece statistics (series of one "
        "length only)",
    )
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument(
        "--numerics",
        choices=("official", "bf16", "fp32", "fast"),
        default="official",
        help="official (default): the official embeddings on any CPU; bf16/fp32/fast: faster",
    )


def run(args: argparse.Namespace) -> int:
    from rexforge.data.problems import format_problems
    from rexforge.embedding import TiRexEmbedding, embed_series
    from rexforge.forecast.api import load_model
    from rexforge.forecast.command import load_source

    if args.output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"--output must end in .csv or .parquet, got {args.output.name}")
    if args.output.is_dir():
        raise InputError(f"--output {args.output} is a directory; give a file path")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    report = load_source(args)
    if report.problems:
        raise InputError(f"{args.data}: {format_problems(report.problems)}")
    embedding = TiRexEmbedding(
        device="cpu",
        data_augmentation=args.data_augmentation,
        batch_size=args.batch_size,
        model=load_model(args.model, numerics=args.numerics),
    )
    vectors = embed_series(embedding, [s.target for s in report.series])  # [N, D]
    _write(args.output, [s.item_id for s in report.series], vectors)
    logger.info(
        "wrote %d embeddings of %d values to %s", len(vectors), vectors.shape[1], args.output
    )
    return 0


def _write(path: Path, item_ids: list[str], vectors) -> None:
    import pandas as pd

    from rexforge.io.atomic import atomic_write_bytes, atomic_write_text

    frame = pd.DataFrame(vectors, columns=[f"emb_{i}" for i in range(vectors.shape[1])])
    frame.insert(0, "item_id", item_ids)
    if path.suffix.lower() == ".csv":
        atomic_write_text(path, frame.to_csv(index=False))
        return
    try:
        import pyarrow  # noqa: F401
    except ModuleNotFoundError:
        raise InputError("writing Parquet needs pyarrow: pip install 'rexforge[parquet]'") from None
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    atomic_write_bytes(path, buffer.getvalue())
