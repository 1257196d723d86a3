"""``TiRexEmbedding``: fixed-size vectors of time series from a TiRex model's hidden states,
the same vectors as the official ``tirex.models.embedding.TiRexEmbedding``.

For each variate of each series: the context is left-padded with NaN (or cut) to the model's
``train_ctx_len`` as for forecasting, every block's output is taken at each patch of the
series itself (padding patches dropped), and averaged over those patches: [L, E] per variate.
Each [E] vector is L2-normalised, the vectors are laid out layer-major, then variate, and the
whole row is layer-normalised: [B, L * V * E]. With ``data_augmentation`` the embedding of
the first differences comes first and standardised piece statistics last
(``rexforge.embedding.stats``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from rexforge.embedding.stats import piece_statistics, standardise_statistics
from rexforge.errors import InputError
from rexforge.forecast.engine import fit_window
from rexforge.io.hub import DEFAULT_HUB_MODEL
from rexforge.model.tokenizer import tokenize


class TiRexEmbedding(nn.Module):
    """Embeds series [B, V, T] (or [B, T], one variate) into [B, D] float32 on the CPU.

    The first four arguments are the official ones. ``model`` (rexforge only) is a path, hub
    id, ``"starter"`` or a loaded ``TiRexForecaster``; by default NXAI's ``"NX-AI/TiRex"``
    from the Hugging Face cache, as officially. ``numerics`` applies when ``model`` is loaded
    here: ``"official"`` (default) gives the official embeddings on any CPU; ``"bf16"`` is
    faster and close. ``compile`` is accepted for compatibility; with non-official numerics it
    selects the compiled recurrence kernel.
    """

    def __init__(
        self,
        device: str | None = None,
        data_augmentation: bool = False,
        batch_size: int = 512,
        compile: bool = False,
        *,
        model=None,
        numerics: str = "official",
    ) -> None:
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        if device is None:
            device = "cuda:0" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.data_augmentation = bool(data_augmentation)
        self.batch_size = batch_size
        self._compile = compile
        model = DEFAULT_HUB_MODEL if model is None else model
        self.forecaster = _load_forecaster(model, device, numerics, compile)
        # What saved heads record to rebuild this embedding: the name given, else the file.
        self.model_source = str(model) if isinstance(model, str | Path) else self.forecaster.source
        self.model = self.forecaster.model  # the network, registered so .to() moves it

    @property
    def embedding_dim_per_variate(self) -> int:
        """L * E: what each variate contributes (without augmentation)."""
        b = self.model.config.block_kwargs
        return b.num_blocks * b.embedding_dim

    def forward(self, data) -> torch.Tensor:
        data = as_batch(data)  # [B, V, T]
        embedding = self._embed(data)
        if self.data_augmentation:
            if data.shape[-1] < 2:
                raise InputError("data_augmentation needs series of at least 2 steps")
            differences = self._embed(torch.diff(data, dim=-1))
            statistics = standardise_statistics(piece_statistics(data))
            embedding = torch.cat((differences, embedding, statistics), dim=-1)
        return embedding

    @torch.no_grad()
    def _embed(self, data: torch.Tensor) -> torch.Tensor:
        """[B, V, T] -> [B, L * V * E]."""
        B, V, T = data.shape
        pooled = self._pooled_hidden(data.reshape(B * V, T))  # [B * V, L, E]
        pooled = F.normalize(pooled, p=2, dim=-1).reshape(B, V, *pooled.shape[1:])
        flat = pooled.transpose(1, 2).flatten(start_dim=1)  # [B, L, V, E] -> [B, L*V*E]
        return F.layer_norm(flat, (flat.shape[-1],))

    def _pooled_hidden(self, series: torch.Tensor) -> torch.Tensor:
        """series [N, T] -> every block's output averaged over the series' patches [N, L, E]."""
        config = self.model.config
        P, context = config.input_patch_size, config.train_ctx_len
        T = series.shape[-1]
        own_patches = -(-T // P)  # patches that hold some of the series (ceil)
        padding_patches = max(0, context - T) // P
        device = next(self.model.parameters()).device
        parts = []
        for batch in torch.split(series, self.batch_size):
            window = fit_window(batch.to(device=device, dtype=torch.float32), context)
            tokens, _ = tokenize(window, P)
            hidden = self.model.block_outputs(tokens)[:, padding_patches:]  # [b, N', L, E]
            parts.append(hidden[:, -own_patches:].mean(dim=1).cpu())
        return torch.cat(parts)


def as_batch(data) -> torch.Tensor:
    """Series as float32 [B, V, T]: a 3-D tensor/array as it is, a 2-D one as one variate."""
    if not isinstance(data, torch.Tensor):
        try:
            data = torch.from_numpy(np.asarray(data, dtype=np.float32))
        except (TypeError, ValueError):
            raise InputError(
                "data must be a numeric tensor or array [batch, variates, steps]"
            ) from None
    if data.dim() == 2:
        data = data.unsqueeze(1)
    if data.dim() != 3:
        raise InputError(
            f"data must be [batch, variates, steps] (or [batch, steps]), got shape "
            f"{tuple(data.shape)}"
        )
    if 0 in data.shape:
        raise InputError(f"data has an empty dimension: shape {tuple(data.shape)}")
    if data.is_complex():
        raise InputError("data holds complex numbers; pass real values")
    return data.detach().to(dtype=torch.float32)


def _load_forecaster(model, device: str, numerics: str, compile: bool):
    from rexforge.forecast.api import TiRexForecaster, load_model

    if isinstance(model, TiRexForecaster):
        return model
    kernel = "cpu_compiled" if compile and numerics != "official" else "auto"
    return load_model(
        model,
        device=device,
        kernel=kernel,
        numerics=numerics,
    )
