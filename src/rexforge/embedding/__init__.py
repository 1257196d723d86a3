"""Embeddings of time series from a TiRex model (``TiRexEmbedding``, the official class's
public interface) and of series of different lengths (``embed_series``)."""

from __future__ import annotations

from rexforge.embedding.series import embed_series
from rexforge.embedding.tirex_embedding import TiRexEmbedding, as_batch

__all__ = ["TiRexEmbedding", "as_batch", "embed_series"]
