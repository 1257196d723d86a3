"""Forecasting with a TiRex network, numerically as the official package does it, only faster.

The official forecaster left-pads (or cuts) every context with NaN to ``train_ctx_len`` steps
and runs every patch through every block. A fully masked patch becomes the same token for
every series, so the recurrent states after k masked patches are the same for every series:
the model computes them (``TiRexModel.masked_prefix_states``), ``PadStateCache`` keeps them for
one set of weights, and each series starts at its first observed patch. Series in a batch are
grouped by where they start, so short ones cost little.
The head runs only on the positions that are returned.

Everything here works on float32 tensors [B, T] with NaN for missing values.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from rexforge.forecast.mixture import check_paths_levels, mixture_quantiles, path_levels
from rexforge.forecast.rollouts import ROLLOUTS
from rexforge.model.tirex import TiRexModel
from rexforge.model.tokenizer import (
    Scale,
    masked_tokens,
    patch_tokens,
    standard_scale,
    unscale,
)


class PadStateCache:
    """``TiRexModel.masked_prefix_states`` for k = 0..K masked tokens (K = the window's
    patches), computed once per set of weights."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._states: list[list[torch.Tensor] | None] = []

    @staticmethod
    def _weights_key(model: TiRexModel) -> tuple:
        # Parameter version counters change on every in-place update (optimizer steps,
        # load_state_dict), so a cache built for older weights is never reused.
        params = tuple((p.data_ptr(), p._version) for p in model.parameters())
        # numerics="fast": another projection plan gives other states.
        return (model.kernel, model.numerics, id(model.projections), params)

    def states(self, model: TiRexModel, k: int) -> list[torch.Tensor] | None:
        """Per-block states [4, 1, E] after ``k`` masked tokens (None for k = 0)."""
        key = self._weights_key(model)
        if key != self._key:
            self._key = key
            self._states = model.masked_prefix_states(
                model.config.train_ctx_len // model.config.input_patch_size
            )
        return self._states[k]


def first_observed_patch(window: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Index of the first patch holding any observed value, per row of ``window`` [B, T]
    (T a multiple of the patch size); all-NaN rows give the last patch index."""
    B, T = window.shape
    observed = ~torch.isnan(window).reshape(B, T // patch_size, patch_size).all(dim=-1)  # [B, N]
    any_obs = observed.any(dim=1)
    first = observed.float().argmax(dim=1)
    return torch.where(any_obs, first, torch.full_like(first, T // patch_size - 1))


def group_by_start(starts: list[int], num_patches: int) -> list[tuple[int, list[int]]]:
    """Group row indices so that each group runs from its smallest start.

    A row that starts later than its group's start pays for the extra masked steps; a new
    group pays a fixed overhead. Greedy on sorted starts: open a new group when the extra
    steps of the next row would exceed a quarter of the group's run length (at least 2).
    """
    order = sorted(range(len(starts)), key=lambda i: starts[i])
    groups: list[tuple[int, list[int]]] = []
    for i in order:
        s = starts[i]
        if groups:
            g_start, members = groups[-1]
            if s - g_start <= max(2, (num_patches - g_start) // 4):
                members.append(i)
                continue
        groups.append((s, [i]))
    return groups


def fit_window(context: torch.Tensor, length: int) -> torch.Tensor:
    """Left-pad with NaN or cut ``context`` [B, T] to exactly ``length`` steps."""
    B, T = context.shape
    if length <= T:
        return context[:, T - length :]
    pad = torch.full((B, length - T), float("nan"), dtype=context.dtype, device=context.device)
    return torch.cat((pad, context), dim=1)


class PatchForecast(NamedTuple):
    quantiles: torch.Tensor  # [B, Q, n*P] in the data's units
    states: list[torch.Tensor]  # per block [4, B, E] after the last token fed
    scale: Scale  # loc, scale [B, 1]


@torch.no_grad()
def forecast_next_patches(
    model: TiRexModel,
    context: torch.Tensor,
    cache: PadStateCache,
    new_patches: int = 1,
) -> PatchForecast:
    """Quantiles of the next ``new_patches`` patches after ``context`` [B, T].

    Returns [B, Q, new_patches * P] in the data's units, with the recurrent states after the
    last token. With ``new_patches`` > 1 the extra patches are fed as masked tokens (the
    official "accelerated rollout").
    """
    cfg = model.config
    P, L = cfg.input_patch_size, cfg.train_ctx_len
    N = L // P
    window = fit_window(context.float(), L)  # [B, L], exactly the official model input
    if model.numerics == "official":
        return _next_patches_whole_window(model, window, new_patches)
    scale = standard_scale(window)
    starts = first_observed_patch(window, P)
    B = window.shape[0]
    Q, E = cfg.num_quantiles, cfg.block_kwargs.embedding_dim
    out = torch.empty(B, new_patches, Q, P, dtype=torch.float32, device=window.device)
    states = [window.new_empty(4, B, E) for _ in model.blocks]
    scaled = (window - scale.loc) / scale.scale  # [B, L]
    for start, rows in group_by_start(starts.tolist(), N):
        idx = torch.tensor(rows, device=window.device)
        tokens = patch_tokens(scaled[idx, start * P :].reshape(len(rows), N - start, P))
        if new_patches > 1:
            extra = masked_tokens(len(rows), new_patches - 1, P, tokens)
            tokens = torch.cat((tokens, extra), dim=1)
        init = cache.states(model, start)
        if init is not None:
            init = [s.expand(-1, len(rows), -1).contiguous() for s in init]
        result = model(tokens, states=init, last_n=new_patches)
        out[idx] = result.quantiles
        for block_states, group_states in zip(states, result.states):
            block_states[:, idx] = group_states
    # [B, n, Q, P] -> [B, Q, n*P]
    flat = out.permute(0, 2, 1, 3).reshape(B, Q, new_patches * P)
    return PatchForecast(unscale(flat, scale), states, scale)


def _next_patches_whole_window(model: TiRexModel, window: torch.Tensor, new_patches: int):
    """``forecast_next_patches`` as the official forecaster computes it: every row runs the
    whole window [B, L] from a zero state (no padding-state cache, no grouping by start) and
    the head runs on every position, so every matrix product has the official shape."""
    P = model.config.input_patch_size
    B, L = window.shape
    scale = standard_scale(window)
    scaled = ((window - scale.loc) / scale.scale).reshape(B, L // P, P)
    tokens = patch_tokens(scaled)  # [B, N, 2P]
    if new_patches > 1:
        tokens = torch.cat((tokens, masked_tokens(B, new_patches - 1, P, tokens)), dim=1)
    result = model(tokens)
    out = result.quantiles[:, -new_patches:]  # [B, n, Q, P]
    flat = out.permute(0, 2, 1, 3).reshape(B, out.shape[2], new_patches * P)
    return PatchForecast(unscale(flat, scale), result.states, scale)


@torch.no_grad()
def forecast_quantiles(
    model: TiRexModel,
    context: torch.Tensor,
    prediction_length: int,
    cache: PadStateCache,
    patches_per_step: int = 1,
    rollout: str = "exact",
) -> torch.Tensor:
    """Autoregressive patch rollout. Returns [B, prediction_length, Q] in the data's units.

    * ``"exact"`` (default), as the official forecaster does it: for each further patch the
      context grows by one all-NaN patch (the model's own predictions are not fed back), is
      re-cut to ``train_ctx_len`` and re-scaled, and the model reruns on all of it:
      O(horizon x context). Nothing can be carried over between patches, because the window
      moves: each rerun starts after one padding patch fewer, and the states after k padding
      patches differ for every k.
    * ``"stateful"``: run the context once and carry the recurrent states forward, feeding one
      masked token per further patch: O(context + horizon). This is what the official
      "accelerated rollout" (``max_accelerated_rollout_steps``) computes, except that it never
      re-cuts the window; it differs from ``"exact"`` by the changed padding before the context
      (and, for series longer than the window, by the re-cut and re-scaling).
      ``patches_per_step`` has no effect here: feeding k masked tokens at once or one at a time
      gives the same states, so the stateful result is that of every ``patches_per_step``.
    * ``"median"``: forecast one patch, append its median to the context as if observed,
      forecast the next patch from that, and so on: O(horizon x context), like ``"exact"``.
      The model only ever sees observed contexts, so a model trained on one-patch futures stays
      in the inputs it knows; but each later patch is conditioned on one path (the median), so
      its quantile band leaves out the uncertainty of the patches before it and is too narrow.
      TiRex-2's forecaster feeds its median back past its horizon cap the same way.
    * ``"paths"``: as ``"median"``, but along one path per quantile level (9 for TiRex). At
      every further patch each path appends one of its own quantile curves, the paths taking
      the levels between them in a fixed shuffled order, so together they sample the earlier
      patches' uncertainty. A later patch's quantiles are those of the mixture of the paths'
      forecasts: the band widens as much as the model's forecast follows the fed-back values.
      Costs Q times ``"median"``.
    """
    if rollout not in ROLLOUTS:
        raise ValueError(f"rollout must be one of {ROLLOUTS}, got {rollout!r}")
    context = context.float()
    if rollout == "exact":
        return _rerun_rollout(model, context, prediction_length, cache, patches_per_step)
    if rollout == "median":
        return _median_rollout(model, context, prediction_length, cache)
    if rollout == "paths":
        return _paths_rollout(model, context, prediction_length, cache)
    P = model.config.input_patch_size
    remaining = math.ceil(prediction_length / P)
    first = forecast_next_patches(model, context, cache, 1)
    pieces = [first.quantiles]  # each [B, Q, P]
    states, scale = first.states, first.scale
    for _ in range(1, remaining):
        tokens = masked_tokens(context.shape[0], 1, P, context)
        result = model(tokens, states=states, last_n=1)
        states = result.states
        pieces.append(unscale(result.quantiles[:, 0], scale))  # [B, Q, P]
    return _joined(pieces, prediction_length)


def _rerun_rollout(model, context, prediction_length, cache, patches_per_step) -> torch.Tensor:
    P = model.config.input_patch_size
    remaining = math.ceil(prediction_length / P)
    pieces = []
    while remaining > 0:
        step = min(remaining, patches_per_step)
        pieces.append(forecast_next_patches(model, context, cache, new_patches=step).quantiles)
        remaining -= step
        if remaining > 0:
            # One NaN patch per patch just predicted, as the official rollout appends.
            nan_patch = torch.full(
                (context.shape[0], step * P),
                float("nan"),
                dtype=context.dtype,
                device=context.device,
            )
            context = torch.cat((context, nan_patch), dim=1)
    return _joined(pieces, prediction_length)


def _median_rollout(model, context, prediction_length, cache) -> torch.Tensor:
    P = model.config.input_patch_size
    median = model.config.median_index
    pieces = []  # each [B, Q, P]
    for _ in range(math.ceil(prediction_length / P)):
        patch = forecast_next_patches(model, context, cache, new_patches=1).quantiles
        pieces.append(patch)
        context = torch.cat((context, patch[:, median]), dim=1)
    return _joined(pieces, prediction_length)


def _paths_rollout(model, context, prediction_length, cache) -> torch.Tensor:
    P, Q = model.config.input_patch_size, model.config.num_quantiles
    check_paths_levels(model.config.quantiles)
    B = context.shape[0]
    first = forecast_next_patches(model, context, cache, new_patches=1).quantiles  # [B, Q, P]
    pieces = [first]
    paths = context.repeat_interleave(Q, dim=0)  # [B*Q, T]: path j of series b at row b*Q + j
    patch = first.repeat_interleave(Q, dim=0)  # [B*Q, Q, P]
    draws = path_levels(Q)
    rows = torch.arange(B * Q, device=context.device)
    for _ in range(1, math.ceil(prediction_length / P)):
        levels = next(draws).repeat(B).to(context.device)  # [B*Q]: path j of each series
        paths = torch.cat((paths, patch[rows, levels]), dim=1)
        # B rows at a time: the memory of one ordinary forward of this batch, not Q times it.
        patch = torch.cat(
            [forecast_next_patches(model, chunk, cache, 1).quantiles for chunk in paths.split(B)]
        )
        pieces.append(mixture_quantiles(patch.view(B, Q, Q, P), model.config.quantiles))
    return _joined(pieces, prediction_length)


def _joined(pieces: list[torch.Tensor], prediction_length: int) -> torch.Tensor:
    """Per-patch quantiles, each [B, Q, P], as one forecast [B, prediction_length, Q]."""
    quantiles = torch.cat(pieces, dim=-1)[..., :prediction_length]  # [B, Q, H]
    return quantiles.transpose(1, 2).contiguous()
