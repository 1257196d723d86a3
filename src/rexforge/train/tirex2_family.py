"""TiRex-2's training hooks (``train.family.TrainingFamily``).

Objective: one forward pass over a batch of windows (``train.tirex2_data``: every window's
variates laid out over [context | future_len] as the forecaster lays them out), then the
pinball loss of the targets' quantiles over the next H steps, the forecast the model makes,
in units of each target's context scale (the model's own scaler: a loss that does not depend
on the series' level or size). Targets only: covariates are inputs, never scored.

Only the forecast window is scored. Scoring the context positions too (each forecasting the
next context patch, as TiRex trains; leak-free, since targets run forwards only) was measured
on tirex2-test, 200 steps from scratch on positive-effect covariate-driven series: scaled MAE
with covariates 0.768 vs 0.742 for the forecast window alone, at 1.4x the step time; so no.

Masking: the future of every target is masked (all NaN) as at inference, and contiguous patch
masking (``train.masking``, the TiRex paper's augmentation, ``--mask-max-start-prob``) hides
random runs of the targets' context patches, so the model learns to forecast across gaps and to
lean on the covariates where the target is missing.

Export: the official TiRex-2 folder (``io.tirex2_folder``), which tirex-2 0.4.0 loads.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import torch

from rexforge.errors import ConfigError
from rexforge.kernels.tirex2 import recurrence_kernels
from rexforge.train.family import TrainingFamily, TrainingWindows, ValidationForecasts
from rexforge.train.loss import pinball_loss

# |value - loc| / scale above which a truth value counts as missing (as train.objective does
# for TiRex: hundreds of context stds away is no learnable signal, only a huge gradient).
MAX_SCALED_VALUE = 50.0

# LoRA: every projection of the time mixers (mLSTM q/k/v, gates and output; sLSTM gates;
# the bidirectional combination; the gated feed-forward) and of the variate mixers
# (attention WQ/WK/WV/WO, feed-forward). The shared cell appears once, as fwd_cell.
LORA_TARGETS = (
    "stack.*.time_mixer.fwd_cell.q",
    "stack.*.time_mixer.fwd_cell.k",
    "stack.*.time_mixer.fwd_cell.v",
    "stack.*.time_mixer.fwd_cell.ogate_preact",
    "stack.*.time_mixer.fwd_cell.igate_preact",
    "stack.*.time_mixer.fwd_cell.fgate_preact",
    "stack.*.time_mixer.fwd_cell.out_proj",
    "stack.*.time_mixer.fwd_cell.[fizo]gate",
    "stack.*.time_mixer.combination",
    "stack.*.time_mixer.ffn.proj_*",
    "stack.*.variate_mixer.attn.W[QKVO]",
    "stack.*.variate_mixer.ffn.w[io]",
)


class TiRex2Training(TrainingFamily):
    name = "tirex2"
    embedding_prefixes = ("input_patch_embedding.",)
    head_prefixes = ("stack_out_norm.", "output_patch_embedding.")
    lora_targets = LORA_TARGETS

    def block_prefix(self, index: int) -> str:
        return f"stack.{index}."

    def num_blocks(self, config) -> int:
        return config.num_blocks

    def patch_size(self, config) -> int:
        return config.input_patch_size

    def default_context(self, config) -> int:
        return config.context_len

    def training_config(self, config, settings):
        problems = []
        for name in ("context_truncation_prob", "context_outlier_prob", "context_shorten_prob"):
            if getattr(settings, name) > 0:
                flag = "--" + name.replace("_", "-")
                problems.append(f"{flag} applies to TiRex training, not TiRex-2")
        if settings.prediction_length > config.future_len:
            problems.append(
                f"--horizon {settings.prediction_length} is longer than the model's forecast "
                f"window (future_len {config.future_len})"
            )
        if settings.compile:
            problems.append("--compile trains TiRex models only")
        try:
            recurrence_kernels(settings.kernel, None)
        except ConfigError as exc:
            problems.append(f"--kernel: {exc}")
        if problems:
            raise ConfigError("TiRex-2 training: " + "; ".join(problems))
        # The forecaster pads or cuts every context to context_len: the trained model forecasts
        # from the context it trained on.
        return replace(config, context_len=settings.context_length)

    def build(self, config, settings) -> torch.nn.Module:
        from rexforge.model.tirex2 import TiRex2Model

        slstm, mlstm = recurrence_kernels(settings.kernel, None)
        return TiRex2Model(config, slstm_kernel=slstm, mlstm_kernel=mlstm)

    def reinitialise(self, model, seed: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model.reset_parameters()

    # -- data ------------------------------------------------------------------------------
    def series_lengths(self, train_series) -> list[int]:
        from rexforge.train.tirex2_data import as_items

        return [len(item) for item in as_items(train_series)]

    def windows(
        self, train_series, settings, config, validation, skip_short, validation_context=None
    ) -> TrainingWindows:
        from rexforge.data.sampler import WindowSampler
        from rexforge.train.auto import validation_windows_per_series
        from rexforge.train.loop import check_lengths
        from rexforge.train.tirex2_data import (
            HoldoutItems,
            ItemWindowDataset,
            WindowLayout,
            as_items,
            collate_holdout,
            collate_windows,
            observed_steps,
        )

        H, C = settings.prediction_length, settings.context_length
        items = as_items(train_series)
        steps = [observed_steps(item) for item in items]
        kept, _ = check_lengths(
            steps, [i.item_id for i in items], H, H, validation, skip_short, settings.partial_future
        )
        kept_ids = {id(x) for x in kept}
        items = [item for item, x in zip(items, steps) if id(x) in kept_ids]
        lengths = [len(item) for item in items]
        held_out = validation_windows_per_series(lengths, H, settings.validation_windows or 1)
        if validation:
            train_items = [item.slice(0, len(item) - k * H) for item, k in zip(items, held_out)]
        else:
            train_items = items
        sampler = WindowSampler(
            [observed_steps(item) for item in train_items],
            C,
            H,
            partial_future=settings.partial_future,
            series_weight_power=settings.series_weight_power,
        )
        layout = WindowLayout(C, H, config.future_len, config.tta_diff)
        make_stream = functools.partial(
            _item_stream, ItemWindowDataset, sampler, train_items, layout
        )
        val = HoldoutItems(items, H, validation_context or C, held_out) if validation else None
        return TrainingWindows(
            sampler, val, len(items), make_stream, collate_windows, collate_holdout
        )

    # -- objective -------------------------------------------------------------------------
    def loss_function(self, model, settings):
        return functools.partial(share_loss, model)

    def validation_forecasts(self, model, batch, horizon: int, rollout: str):
        from rexforge.forecast.tirex2_api import TiRex2Forecaster

        forecasts = TiRex2Forecaster(model).predict(batch["series"], horizon)
        q = torch.cat(forecasts).transpose(1, 2)  # [N, Q, H] -> [N, H, Q]
        y = batch["truth"]  # [N, H]
        levels = model.config.quantiles
        normed = pinball_loss(
            (q.transpose(1, 2) / batch["norm"][:, None, None])[:, None],  # [N, 1, Q, H]
            (y / batch["norm"][:, None])[:, None],  # [N, 1, H]
            levels,
        )
        return ValidationForecasts(y, q, batch["scale"], normed)

    def batch_size_of(self, batch) -> int:
        return int(batch["group_ids"].max()) + 1 if batch["group_ids"].numel() else 0


def _item_stream(dataset_class, sampler, items, layout, seed: int, batch_size: int):
    return dataset_class(sampler, items, layout, seed=seed, batch_size=batch_size)


def window_loss(model, batch: dict, masking=None, generator: torch.Generator | None = None):
    """Mean pinball loss of the targets' next H steps for a batch of ``collate_windows``
    windows, in units of each target's context scale. ``masking`` (a ``MaskingConfig``) with a
    CPU ``generator`` masks random runs of the targets' context patches (training)."""
    return forecast_loss(model, mask_context(model.config, batch, masking, generator))


def share_loss(model, batch: dict, masking, generator, share=None):
    """The family's training loss (``TrainingFamily.loss_function``): the whole (global)
    batch masked as one process masks it, then the loss of this rank's windows and its
    weight (``RankShare``), or of all of them (``share`` None, weight None)."""
    batch = mask_context(model.config, batch, masking, generator)
    if share is None:
        return forecast_loss(model, batch), None
    valid_all = (~torch.isnan(scaled_truth(model.config, batch))).sum()
    own = own_windows(batch, share)
    valid_own = (~torch.isnan(scaled_truth(model.config, own))).sum()
    return forecast_loss(model, own), share.weight(valid_own, valid_all)


def mask_context(config, batch: dict, masking, generator) -> dict:
    """``batch`` with random runs of the targets' context patches set to NaN (contiguous
    patch masking); unchanged without ``masking``."""
    from rexforge.train.masking import contiguous_patch_mask

    if masking is None or masking.max_start_prob <= 0:
        return batch
    P = config.input_patch_size
    inputs, targets = batch["inputs"], batch["target_mask"]
    BV, L = inputs.shape
    C = L - config.future_len
    rows = targets.nonzero().squeeze(-1).cpu()  # [BT]
    hidden = contiguous_patch_mask(
        len(rows), C // P, generator, max_start_prob=masking.max_start_prob, max_run=masking.max_run
    )  # [BT, C/P] bool
    steps = torch.zeros(BV, L, dtype=torch.bool)
    steps[rows, :C] = hidden.repeat_interleave(P, dim=1)
    return {**batch, "inputs": inputs.masked_fill(steps.to(inputs.device), torch.nan)}


def own_windows(batch: dict, share) -> dict:
    """The rows of ``share``'s windows (``group_ids`` renumbered from 0)."""
    windows = int(batch["group_ids"].max()) + 1 if batch["group_ids"].numel() else 0
    rows = share.rows(windows)
    group_ids = batch["group_ids"]
    keep = (group_ids >= rows.start) & (group_ids < rows.stop)  # [BV]
    return {
        "inputs": batch["inputs"][keep],
        "truth": batch["truth"][keep[batch["target_mask"]]],  # truth rows: the targets'
        "group_ids": group_ids[keep] - rows.start,
        "target_mask": batch["target_mask"][keep],
    }


def context_scale(config, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(loc, scale) [BT, 1] of the targets as the model's scaler computes them from what it
    was given (the context, masked)."""
    from rexforge.model.tirex2.scaling import scale_series

    given = batch["inputs"][batch["target_mask"]]
    _, scale = scale_series(given, config.scaler_eps, False, config.scaler_binaryaware)
    return scale.loc, scale.scale


def scaled_truth(config, batch: dict, scale=None) -> torch.Tensor:
    """[BT, H] the targets' truth in units of their context scale (``context_scale``, or
    ``scale``); NaN where missing or implausibly far."""
    loc, unit = scale if scale is not None else context_scale(config, batch)
    y = (batch["truth"] - loc) / unit  # [BT, H]
    return torch.where(y.abs() > MAX_SCALED_VALUE, torch.nan, y)


def forecast_loss(model, batch: dict) -> torch.Tensor:
    """Mean pinball loss of the targets' forecasts over the next H steps (scaled units)."""
    c = model.config
    P = c.input_patch_size
    inputs, targets = batch["inputs"], batch["target_mask"]
    C, H = inputs.shape[1] - c.future_len, batch["truth"].shape[1]
    quantiles = model(inputs, batch["group_ids"], targets)  # [BV, Q, L]
    # Output step j forecasts input step j + P: steps C .. C+H-1 are outputs C-P .. C-P+H-1.
    forecast = quantiles[targets][..., C - P : C - P + H]  # [BT, Q, H]
    loc, unit = context_scale(c, batch)  # [BT, 1]
    predicted = (forecast.float() - loc[:, None]) / unit[:, None]  # [BT, Q, H]
    y = scaled_truth(c, batch, (loc, unit))
    return pinball_loss(predicted[:, None], y[:, None], c.quantiles)
