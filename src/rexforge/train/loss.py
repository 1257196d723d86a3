"""NaN-masked pinball (quantile) loss of next-patch forecasts, in the per-series scaled space."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def next_patch_targets(scaled: torch.Tensor, patch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a scaled series into model inputs and next-patch targets.

    scaled [B, T] (T = N * P, NaN = missing) -> ``(inputs [B, N-1, P], targets [B, N-1, P])``
    where ``targets[:, k]`` is patch ``k + 1``: the patch that position ``k`` forecasts.
    """
    B, T = scaled.shape
    if T % patch_size or 2 * patch_size > T:
        raise ValueError(f"length {T} must be a multiple of {patch_size} with at least 2 patches")
    patches = scaled.reshape(B, T // patch_size, patch_size)  # [B, N, P]
    return patches[:, :-1], patches[:, 1:]


def pinball_loss(
    predictions: torch.Tensor, targets: torch.Tensor, quantiles: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """Mean pinball loss over every (valid target, quantile level) pair.

    predictions [B, N, Q, P], targets [B, N, P] (NaN = no target), quantiles [Q].
    For level q and error d = y - yhat the loss is max(q d, (q - 1) d). NaN targets add
    nothing to the sum nor to the count; with no valid target the loss is 0 (still attached to
    the graph, so a batch of padding does not break backward).
    """
    q = torch.as_tensor(quantiles, dtype=predictions.dtype, device=predictions.device)
    q = q.reshape(1, 1, -1, 1)  # [1, 1, Q, 1]
    valid = ~torch.isnan(targets)  # [B, N, P]
    diff = torch.nan_to_num(targets, nan=0.0).unsqueeze(2) - predictions  # [B, N, Q, P]
    loss = torch.maximum(q * diff, (q - 1.0) * diff)
    loss = loss * valid.unsqueeze(2)
    count = valid.sum() * predictions.shape[2]
    return loss.sum() / count.clamp(min=1)
