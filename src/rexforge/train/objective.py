"""One batch of windows -> one training loss (every patch position trains at once).

From ``context`` [B, C] and ``future`` [B, H] (C and H multiples of the patch size P):

1. ``x = cat(context, future)`` [B, T = C + H], N = T / P patches.
2. Scale with the mean/std of the *context* only (``standard_scale``), as inference does: the
   future must not leak into the scale the model sees.
3. Inputs are patches 0 .. N-2, targets patches 1 .. N-1: position k forecasts patch k + 1.
   The model is causal (a recurrence), so ONE forward pass trains all N-1 positions, from
   short histories (left padding is NaN -> masked tokens) to the full context and into the
   future part, where inputs beyond the context are future values the model has not yet
   forecast (teacher forcing).
4. Contiguous patch masking replaces random runs of input tokens by the masked token, so the
   model also learns to forecast across masked patches; future masking masks every future input
   of a share of the windows, exactly what a multi-patch forecast feeds the model.
5. NaN-masked pinball loss at every position over the quantile levels.

Because every position is trained, the loss also teaches early positions (short contexts);
their scale uses the whole context's statistics, a mild look-ahead in the scale that Chronos'
training shares, and which keeps one forward per batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from rexforge.model.tokenizer import patch_tokens, standard_scale
from rexforge.train.loss import next_patch_targets, pinball_loss
from rexforge.train.masking import apply_patch_mask, contiguous_patch_mask
from rexforge.train.settings import MASK_MAX_RUN, MASK_MAX_START_PROB, TrainConfig

# |scaled value| above which training treats an observation as missing (see window_loss).
MAX_SCALED_VALUE = 50.0


@dataclass(frozen=True)
class MaskingConfig:
    """Contiguous patch masking settings (see ``rexforge.train.masking``); off when
    ``max_start_prob`` is 0. ``truncate_prob``: the share of windows whose context is cut to a
    random shorter length (see ``truncate_contexts``); 0 = off.

    Training builds it from its ``TrainConfig`` (``from_settings``); the defaults here, for
    direct use of ``window_loss``, are ``TrainConfig``'s patch masking and no other
    augmentation."""

    max_start_prob: float = MASK_MAX_START_PROB
    max_run: int = MASK_MAX_RUN
    truncate_prob: float = 0.0
    # Shortest kept context (None = one patch) and whether the kept length is drawn uniformly
    # or log-uniformly (more very short contexts, as yearly competition series have).
    truncate_min_length: int | None = None
    truncate_log_uniform: bool = False
    # Share of windows whose model inputs get one or two one-off outliers (see
    # ``inject_outliers``) while the targets stay clean; 0 = off.
    outlier_prob: float = 0.0
    # Share of windows whose future input patches are all masked (see ``mask_future``); 0 = off.
    future_prob: float = 0.0
    # Share of batches whose contexts lose leading patches (see ``drop_leading_patches``).
    shorten_prob: float = 0.0

    @classmethod
    def from_settings(cls, settings: TrainConfig) -> MaskingConfig:
        """The augmentations ``settings`` asks for (its ``mask_*``, ``context_*`` and
        ``future_mask_prob`` options)."""
        return cls(
            max_start_prob=settings.mask_max_start_prob,
            max_run=settings.mask_max_run,
            truncate_prob=settings.context_truncation_prob,
            truncate_min_length=settings.context_truncation_min_length,
            truncate_log_uniform=settings.context_truncation_log_uniform,
            outlier_prob=settings.context_outlier_prob,
            future_prob=settings.future_mask_prob,
            shorten_prob=settings.context_shorten_prob,
        )


def truncate_contexts(
    context: torch.Tensor,
    prob: float,
    patch_size: int,
    generator: torch.Generator | None,
    *,
    min_length: int | None = None,
    log_uniform: bool = False,
) -> torch.Tensor:
    """Cut a random share ``prob`` of the contexts [B, C] to a random length, by setting the
    steps before it to NaN (what a short series looks like after the forecaster's left
    padding). Windows from long series then also teach the model to forecast from a few
    observations, as competition data (yearly series of 15-20 points) asks it to.

    The kept length is uniform in [min_length, C] (default min_length: one patch), or
    log-uniform there with ``log_uniform`` (then as many contexts keep 8-16 steps as 256-512).
    """
    B, C = context.shape
    low = patch_size if min_length is None else max(1, min_length)
    if prob <= 0 or low >= C:
        return context
    cut = torch.rand(B, generator=generator) < prob  # [B]
    if log_uniform:
        u = torch.rand(B, generator=generator)
        keep = torch.exp(math.log(low) + u * (math.log(C + 1) - math.log(low))).long()
        keep = keep.clamp(low, C)
    else:
        keep = torch.randint(low, C + 1, (B,), generator=generator)  # [B]
    steps = torch.arange(C)[None, :]  # [1, C]
    drop = cut[:, None] & (steps < (C - keep)[:, None])  # [B, C]
    return torch.where(drop, torch.nan, context)


def inject_outliers(
    context: torch.Tensor, prob: float, generator: torch.Generator | None
) -> torch.Tensor:
    """One-off outliers in a random share ``prob`` of the contexts [B, C]: a new tensor.

    Real series hold one-off events (a strike, a quarter of SARS, a flood) that do not carry
    on; a model that has never seen one lowers its level, flattens its season and widens its
    band after each. Per chosen window, 1 or 2 events, each a run of 1..3 steps starting at a
    random observed step, shifted by 2..8 context standard deviations (downwards 70% of the
    time). Training feeds the shifted context to the model and scores it on the clean values,
    so it learns to look through such events (denoising). NaN steps stay NaN.
    """
    B, C = context.shape
    if prob <= 0:
        return context
    x = context.float()
    observed = ~torch.isnan(x)  # [B, C]
    count = observed.sum(1, keepdim=True).clamp(min=1)  # [B, 1]
    mean = torch.where(observed, x, 0.0).sum(1, keepdim=True) / count
    std = torch.where(observed, (x - mean) ** 2, 0.0).sum(1, keepdim=True).div(count).sqrt()
    chosen = torch.rand(B, 1, generator=generator) < prob  # [B, 1]
    shift = torch.zeros_like(x)
    steps = torch.arange(C)[None, :]  # [1, C]
    first_observed = observed.float().argmax(1, keepdim=True)  # [B, 1]
    for event in range(2):
        happens = chosen & (torch.rand(B, 1, generator=generator) < (1.0 if event == 0 else 0.5))
        u = torch.rand(B, 1, generator=generator)
        start = first_observed + (u * (C - first_observed)).long()  # [B, 1] in the observed part
        length = torch.randint(1, 4, (B, 1), generator=generator)
        size = 2.0 + 6.0 * torch.rand(B, 1, generator=generator)
        sign = torch.where(torch.rand(B, 1, generator=generator) < 0.7, -1.0, 1.0)
        run = happens & (steps >= start) & (steps < start + length)  # [B, C]
        shift = shift + torch.where(run, sign * size * std, 0.0)
    return x + shift  # NaN + shift stays NaN


def window_loss(
    model: torch.nn.Module,
    context: torch.Tensor,
    future: torch.Tensor,
    *,
    masking: MaskingConfig | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean pinball loss of ``model`` on a batch of windows.

    context [B, C], future [B, H] (NaN = missing), C and H multiples of P. ``masking`` with a
    CPU ``generator`` applies CPM to the input tokens (training); None = no masking (validation).
    """
    tokens, targets = window_tokens(
        context, future, model.config.input_patch_size, masking=masking, generator=generator
    )
    return tokens_loss(model, tokens, targets)


def tokens_loss(
    model: torch.nn.Module,
    tokens: torch.Tensor,
    targets: torch.Tensor,
    kernel: Callable | None = None,
) -> torch.Tensor:
    """Mean pinball loss of the model's quantiles for tokens [B, N, 2P] against targets [B, N, P].

    Free of random draws and data-dependent branches, so ``torch.compile`` can take it whole
    (``kernel`` then names a recurrence it can trace, e.g. the reference loop).
    """
    quantiles = model(tokens, kernel=kernel).quantiles  # [B, N, Q, P]
    return pinball_loss(quantiles.float(), targets, model.config.quantiles)


def window_tokens(
    context: torch.Tensor,
    future: torch.Tensor,
    P: int,
    *,
    masking: MaskingConfig | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows -> model inputs and targets: truncation and masking (when ``masking``), scaling by
    the context, patching. Returns tokens [B, N-1, 2P] and targets [B, N-1, P] (N = (C+H)/P,
    C the context length after ``drop_leading_patches``)."""
    if masking is not None and masking.shorten_prob > 0:
        context = drop_leading_patches(context, masking.shorten_prob, P, generator)
    B, C = context.shape
    if C % P or future.shape[1] % P:
        raise ValueError(f"context ({C}) and future ({future.shape[1]}) must be multiples of {P}")
    if masking is not None and masking.truncate_prob > 0:
        context = truncate_contexts(
            context.float(),
            masking.truncate_prob,
            P,
            generator,
            min_length=masking.truncate_min_length,
            log_uniform=masking.truncate_log_uniform,
        )
    seen = context  # what the model reads; the targets always come from the clean values
    if masking is not None and masking.outlier_prob > 0:
        seen = inject_outliers(context, masking.outlier_prob, generator)
    # loc, scale [B, 1] from the context the model reads only, as at inference: the future must
    # not leak into it, and an outlier inflates it there as it would in real data.
    scale = standard_scale(seen.float())

    def scaled(values: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, T]
        out = (torch.cat((values, future), dim=1).float() - scale.loc) / scale.scale
        # A value hundreds of context-stds away (a series that was flat and then jumps, e.g.
        # intermittent demand or cumulative counts starting at zero: the scale is ~1e-5) carries
        # no learnable signal in the scaled space but would dominate the loss and the gradient.
        # Such values are treated as missing, in inputs and targets alike.
        return torch.where(out.abs() > MAX_SCALED_VALUE, torch.nan, out)

    clean = scaled(context)
    inputs, targets = next_patch_targets(clean, P)  # [B, N-1, P] each
    if seen is not context:
        inputs, _ = next_patch_targets(scaled(seen), P)
    tokens = patch_tokens(inputs)  # [B, N-1, 2P]
    if masking is not None and masking.max_start_prob > 0:
        mask = contiguous_patch_mask(
            B,
            tokens.shape[1],
            generator,
            max_start_prob=masking.max_start_prob,
            max_run=masking.max_run,
        )
        tokens = apply_patch_mask(tokens, mask)
    if masking is not None and masking.future_prob > 0:
        tokens, targets = mask_future(tokens, targets, C // P, masking.future_prob, generator)
    return tokens, targets


def drop_leading_patches(
    context: torch.Tensor, prob: float, patch_size: int, generator: torch.Generator | None
) -> torch.Tensor:
    """With probability ``prob``, ``context`` [B, C] without its first k patches, k ~ U{1..N-1}
    (N = C / patch_size), the same k for every row (one tensor shape per batch).

    Forecasting pads every context with empty patches up to ``train_ctx_len``, and the
    recurrent state moves on each of them: a model that only ever ran over N positions
    forecasts a short series after exactly the padding it trained with, and falls apart after
    less (the starter's held-out Tourism WQL went from 0.146 at 512 steps to 0.231 at 320).
    Dropping leading patches trains it at every length: short series with fewer empty patches
    before them, long ones with a shorter context."""
    N = context.shape[1] // patch_size
    if N < 2 or float(torch.rand(1, generator=generator)) >= prob:
        return context
    k = int(torch.randint(1, N, (1,), generator=generator))
    return context[:, k * patch_size :]


def mask_future(
    tokens: torch.Tensor,
    targets: torch.Tensor,
    context_patches: int,
    prob: float,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn a random share ``prob`` of the windows into what the exact multi-patch rollout
    feeds the model: tokens [B, M, 2P] and targets [B, M, P] -> new tokens and targets.

    Token k is input patch k and position k forecasts patch k + 1, so tokens ``context_patches``
    .. M-1 are the future patches fed back by teacher forcing. In a chosen window they are
    masked, so position ``context_patches - 1 + j`` forecasts future patch j + 1 through j
    masked patches, as TiRex's rollout appends one masked patch per patch past the first.

    That rollout also re-cuts its window to the model's context, so the masked patches take
    the place of the *oldest* context patches: future patch j + 1 is forecast at the same
    position as patch 1, from j fewer context patches. A recurrence can count positions from
    the start of its input, and a model that only ever met masked future patches after a whole
    context learns that a masked patch before that position means "no data" (it forecast the
    context mean there). So a chosen window also loses ``s ~ U{0..F-1}`` leading patches (F =
    future patches): its tokens and targets move ``s`` positions to the front and the freed
    end positions are masked tokens without targets (the loss ignores them).
    """
    B, M = tokens.shape[:2]
    future_patches = M - context_patches + 1
    if prob <= 0 or future_patches < 2:
        return tokens, targets
    chosen = torch.rand(B, 1, generator=generator) < prob  # [B, 1]
    shift = torch.randint(0, future_patches, (B, 1), generator=generator)  # [B, 1]
    shift = torch.where(chosen, shift, 0)
    pos = torch.arange(M)[None, :]  # [1, M]
    source = (pos + shift).clamp(max=M - 1)  # [B, M]: position i reads position i + s
    tokens = tokens.gather(1, source[..., None].expand(-1, -1, tokens.shape[-1]))
    targets = targets.gather(1, source[..., None].expand(-1, -1, targets.shape[-1]))
    freed = pos >= M - shift  # [B, M]: past the moved window
    targets = targets.masked_fill(freed[..., None], torch.nan)
    future = chosen & (pos >= context_patches - shift)  # [B, M]: the moved future inputs
    return apply_patch_mask(tokens, future | freed), targets
