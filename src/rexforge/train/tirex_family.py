"""TiRex's training hooks (``train.family.TrainingFamily``): univariate windows, the
next-patch pinball loss of ``train.objective`` at every position, validation through
``forecast.engine``'s rollout, export as a rexforge folder plus the official ``model.ckpt``."""

from __future__ import annotations

import functools
from dataclasses import replace

import torch

from rexforge.train.family import TrainingFamily, TrainingWindows, ValidationForecasts
from rexforge.train.settings import DEFAULT_TARGETS, round_up


class TiRexTraining(TrainingFamily):
    name = "tirex"
    embedding_prefixes = ("input_patch_embedding.",)
    head_prefixes = ("out_norm.", "output_patch_embedding.")
    lora_targets = DEFAULT_TARGETS

    def block_prefix(self, index: int) -> str:
        return f"blocks.{index}."

    def num_blocks(self, config) -> int:
        return config.block_kwargs.num_blocks

    def patch_size(self, config) -> int:
        return config.input_patch_size

    def training_config(self, config, settings):
        # Forecasting pads (NaN) or cuts every context to train_ctx_len, and the sLSTM state
        # moves on every padded patch too: the model must forecast with the padding it trains
        # with. (The starter, trained on 512-step windows but exported with 1024, scored 5%
        # worse in MASE on Tourism until its train_ctx_len was set to 512.)
        return replace(config, train_ctx_len=settings.context_length)

    def default_context(self, config) -> int:
        return config.train_ctx_len

    def build(self, config, settings) -> torch.nn.Module:
        from rexforge.model.tirex import TiRexModel

        return TiRexModel(config, kernel=settings.kernel, numerics="fp32")

    def reinitialise(self, model, seed: int) -> None:
        model.reset_parameters(seed)

    # -- data ------------------------------------------------------------------------------
    def series_lengths(self, train_series) -> list[int]:
        from rexforge.train.loop import as_arrays

        return [len(x) for x in as_arrays(train_series)[0]]

    def windows(
        self, train_series, settings, config, validation, skip_short, validation_context=None
    ) -> TrainingWindows:
        from rexforge.data.sampler import WindowDataset, WindowSampler
        from rexforge.train.auto import validation_windows_per_series
        from rexforge.train.datamodule import HoldoutWindows
        from rexforge.train.loop import as_arrays, check_lengths

        patch_size = config.input_patch_size
        train_future = round_up(settings.prediction_length, patch_size)
        arrays, names = as_arrays(train_series)
        H = settings.prediction_length
        arrays, names = check_lengths(
            arrays, names, H, train_future, validation, skip_short, settings.partial_future
        )
        lengths = [len(x) for x in arrays]
        held_out = validation_windows_per_series(lengths, H, settings.validation_windows or 1)
        train_arrays = (
            [x[: len(x) - k * H] for x, k in zip(arrays, held_out)] if validation else arrays
        )
        sampler = WindowSampler(
            train_arrays,
            settings.context_length,
            train_future,
            partial_future=settings.partial_future,
            series_weight_power=settings.series_weight_power,
        )
        val = (
            HoldoutWindows(
                arrays, validation_context or settings.context_length, H, train_future, held_out
            )
            if validation
            else None
        )

        # A partial of a module-level class, not a closure: ddp_spawn pickles the datamodule.
        make_stream = functools.partial(WindowDataset, sampler)
        return TrainingWindows(sampler, val, len(arrays), make_stream)

    # -- objective -------------------------------------------------------------------------
    def loss_function(self, model, settings):
        """``window_tokens`` eagerly (random draws, data-dependent cuts), then ``tokens_loss``,
        through ``torch.compile`` when the ``compile`` setting is on."""
        from rexforge.train.objective import tokens_loss, window_tokens

        if settings.compile:
            from rexforge.kernels.reference import slstm_torch_ref

            # The reference recurrence: plain tensor ops that Inductor unrolls and fuses.
            compute = torch.compile(
                functools.partial(tokens_loss, model, kernel=slstm_torch_ref), dynamic=False
            )
        else:
            compute = functools.partial(tokens_loss, model)
        P = model.config.input_patch_size

        def loss(batch, masking, generator, share=None):
            tokens, targets = window_tokens(
                batch["context"], batch["future"], P, masking=masking, generator=generator
            )  # the whole (global) batch, masked as one process masks it
            if share is None:
                return compute(tokens, targets), None
            valid_all = (~torch.isnan(targets)).sum()
            rows = share.rows(tokens.shape[0])
            tokens, targets = tokens[rows], targets[rows]
            return compute(tokens, targets), share.weight((~torch.isnan(targets)).sum(), valid_all)

        return loss

    def validation_forecasts(self, model, batch, horizon: int, rollout: str):
        from rexforge.forecast.engine import PadStateCache, forecast_quantiles
        from rexforge.train.objective import window_loss

        context = batch["context"][:, -model.config.train_ctx_len :]  # the model's own context
        loss = window_loss(model, context, batch["future"])
        q = forecast_quantiles(model, batch["context"], horizon, PadStateCache(), rollout=rollout)
        return ValidationForecasts(batch["future"][:, :horizon], q, batch["mase_scale"], loss)

    def batch_size_of(self, batch) -> int:
        return batch["context"].shape[0]
