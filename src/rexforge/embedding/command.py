"""``rexforge embed``: one embedding row per series of a CSV/Parquet file.

The file is read as ``rexforge forecast`` reads it (long or wide). The output holds
``item_id`` and ``emb_0 ... emb_{D-1}``, as CSV or Parquet by its suffix, written atomically.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Literal

from rexforge.errors import InputError
from rexforge.forecast.command import SourceOptions

logger = logging.getLogger(__name__)

OUTPUT_SUFFIXES = (".csv", ".parquet")


def embed(
    *,
    data: Path,
    output: Path,
    model: str = "starter",
    source: SourceOptions,
    data_augmentation: bool = False,
    batch_size: int = 512,
    numerics: Literal["official", "bf16", "fp32", "fast"] = "official",
) -> int:
    """Write one TiRex embedding per series of a file.

    Args:
        data: CSV or Parquet file, long or wide
        output: .csv or .parquet to write
        model: checkpoint file/folder, hub id (NX-AI/TiRex) or 'starter'
        source: how to read --data
        data_augmentation: append the embedding of first differences and piece statistics
            (series of one length only)
        batch_size: series per forward pass
        numerics: official: the official embeddings on any CPU; bf16/fp32/fast: faster
    """
    from rexforge.data.problems import format_problems
    from rexforge.embedding import TiRexEmbedding, embed_series
    from rexforge.forecast.api import load_model
    from rexforge.forecast.command import load_source

    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"--output must end in .csv or .parquet, got {output.name}")
    if output.is_dir():
        raise InputError(f"--output {output} is a directory; give a file path")
    if batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {batch_size}")
    report = load_source(data, source)
    if report.problems:
        raise InputError(f"{data}: {format_problems(report.problems)}")
    from rexforge.registry import require_family

    forecaster = load_model(model, numerics=numerics)
    require_family(forecaster.config, "tirex", "rexforge embed", model)
    embedding = TiRexEmbedding(
        device="cpu", data_augmentation=data_augmentation, batch_size=batch_size, model=forecaster
    )
    vectors = embed_series(embedding, [s.target for s in report.series])  # [N, D]
    _write(output, [s.item_id for s in report.series], vectors)
    logger.info("wrote %d embeddings of %d values to %s", len(vectors), vectors.shape[1], output)
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
