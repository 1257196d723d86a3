"""Embeddings of univariate series of any lengths, one row per series."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from rexforge.errors import InputError


def embed_series(embedding, series: list[np.ndarray]) -> np.ndarray:
    """Embed each 1-D series of ``series`` with ``embedding`` (a ``TiRexEmbedding``):
    [len(series), D] float32, row i for series i.

    Series are embedded in groups of equal length, so that each row is what the official
    embedding gives for that series alone (padding to a common length would add patches to the
    average). The augmented embedding standardises its statistics over the batch and its size
    depends on the length, so it needs series of one length.
    """
    if not series:
        raise InputError("no series to embed")
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, values in enumerate(series):
        by_length[len(values)].append(i)
    if embedding.data_augmentation and len(by_length) > 1:
        raise InputError(
            "data augmentation needs series of one length; got lengths "
            f"{sorted(by_length)[:5]}{' ...' if len(by_length) > 5 else ''}"
        )
    rows: list[np.ndarray | None] = [None] * len(series)
    for indices in by_length.values():
        batch = torch.from_numpy(np.stack([np.asarray(series[i], np.float32) for i in indices]))
        vectors = embedding(batch.unsqueeze(1)).numpy()  # [n, D]
        for row, i in enumerate(indices):
            rows[i] = vectors[row]
    return np.stack(rows)
