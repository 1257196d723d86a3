"""Embeddings of time series from a TiRex model (``TiRexEmbedding``, the official class's
public interface) and of series of different lengths (``embed_series``).

Imported lazily, so that the ``rexforge embed`` command module loads without torch.
"""

from __future__ import annotations

__all__ = ["TiRexEmbedding", "as_batch", "embed_series"]


def __getattr__(name):
    if name in ("TiRexEmbedding", "as_batch"):
        from rexforge.embedding import tirex_embedding

        return getattr(tirex_embedding, name)
    if name == "embed_series":
        from rexforge.embedding.series import embed_series

        return embed_series
    raise AttributeError(f"module 'rexforge.embedding' has no attribute {name!r}")
