"""The LightningModule: a thin shell around ``TiRexModel`` + ``window_loss``.

It builds the network from plain dicts (``save_hyperparameters``), so a Lightning checkpoint
rebuilds it; it owns no data logic beyond a counter of micro-batches, which seeds contiguous
patch masking (a pure function of the step: a resumed run masks exactly as an unbroken one).
"""

from __future__ import annotations

import logging

import lightning as L
import numpy as np
import torch

from rexforge.config import TiRexConfig
from rexforge.io.checkpoint import load_state_dict_strict
from rexforge.model.tirex import TiRexModel
from rexforge.train.datamodule import rank_rows
from rexforge.train.lora import lora_state_dict
from rexforge.train.modes import apply_mode
from rexforge.train.objective import MaskingConfig, tokens_loss, window_loss, window_tokens
from rexforge.train.settings import TrainConfig, lr_factor

logger = logging.getLogger(__name__)


class TiRexTrainingModule(L.LightningModule):
    """model_config: ``TiRexConfig.to_dict()``; train_config: ``TrainConfig.to_dict()``;
    base_state_dict: starting weights (None for ``scratch``), loaded before the mode applies."""

    def __init__(self, model_config: dict, train_config: dict, base_state_dict: dict | None = None):
        super().__init__()
        self.save_hyperparameters(ignore=["base_state_dict"])
        self.settings = TrainConfig.from_dict(train_config).validate()  # resolves defaults
        s = self.settings
        self.model = TiRexModel(
            TiRexConfig.from_dict(model_config), kernel=s.kernel, numerics="fp32"
        )
        if base_state_dict is not None:
            load_state_dict_strict(self.model, base_state_dict, s.base_checkpoint or "base weights")
        self.param_counts = apply_mode(
            self.model,
            s.mode,
            freeze_blocks=s.freeze_blocks,
            head_only=s.head_only,
            lora_rank=s.lora_rank,
            lora_alpha=s.lora_alpha,
            lora_targets=s.lora_targets,
            seed=s.seed,
        )
        self.masking = MaskingConfig.from_settings(s)
        self.micro_step = 0  # micro-batches trained so far (checkpointed)
        self.nonfinite_step: int | None = None  # optimizer step whose loss was NaN/inf
        self.nonfinite_batch: int | None = None  # its micro-batch index in the training stream
        # LoRA checkpoints hold only the adapters; the base comes from base_checkpoint again.
        self.strict_loading = s.mode != "lora"
        self._val_outputs: list[dict[str, np.ndarray]] = []
        self._compiled_loss = None  # built on the first training step when settings.compile
        self.val_unit_losses: np.ndarray | None = None  # [N] of the last validation, see below

    # -- training ------------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int):
        # batch: the global batch, which every rank draws (datamodule). Its masks are seeded by
        # (seed, micro-batch) alone, so every rank masks it as one process would; independent
        # of resume and worker count.
        key = self.settings.seed * 1_000_003 * 1_000_000_007 + self.micro_step
        gen = torch.Generator().manual_seed(key % (2**63))
        self.micro_step += 1
        tokens, targets = window_tokens(
            batch["context"],
            batch["future"],
            self.model.config.input_patch_size,
            masking=self.masking,
            generator=gen,
        )  # random draws and data-dependent cuts stay eager; the rest may be compiled
        tokens, targets, weight = self._own_rows(tokens, targets)
        loss = self.training_loss(tokens, targets)  # this rank's mean
        if not torch.isfinite(loss):
            # Skip this update (returning None) and stop: the weights stay the last good ones.
            self.nonfinite_step = self.global_step
            self.nonfinite_batch = self.micro_step - 1
            self.trainer.should_stop = True
            logger.error(
                "loss is %s at step %d (batch %d); stopping",
                loss.item(),
                self.global_step,
                self.nonfinite_batch,
            )
            return None
        self.log("train_loss", loss, prog_bar=True, batch_size=tokens.shape[0])
        self.log("lr", self.optimizers().param_groups[0]["lr"], batch_size=1)
        return loss if weight is None else loss * weight

    def _own_rows(self, tokens: torch.Tensor, targets: torch.Tensor):
        """This rank's rows of the global batch, and the weight of its mean loss (None: one
        process). DDP averages the ranks' gradients; weighting each rank's mean by
        W x (its valid targets) / (the batch's) makes that average the gradient of the global
        batch's mean loss, as in one process, also when NaN targets are spread unevenly."""
        world = self.trainer.world_size if self._trainer is not None else 1
        if world == 1:
            return tokens, targets, None
        rows = rank_rows(tokens.shape[0], self.global_rank, world)
        valid_all = (~torch.isnan(targets)).sum().clamp(min=1)
        tokens, targets = tokens[rows], targets[rows]
        weight = world * (~torch.isnan(targets)).sum() / valid_all
        return tokens, targets, weight

    def training_loss(self, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``tokens_loss``, through ``torch.compile`` when the ``compile`` setting is on."""
        if not self.settings.compile:
            return tokens_loss(self.model, tokens, targets)
        if self._compiled_loss is None:
            import functools

            from rexforge.kernels.reference import slstm_torch_ref

            # The reference recurrence: plain tensor ops that Inductor unrolls and fuses.
            self._compiled_loss = torch.compile(
                functools.partial(tokens_loss, self.model, kernel=slstm_torch_ref), dynamic=False
            )
        return self._compiled_loss(tokens, targets)

    # -- validation: loss on the held-out windows, plus WQL/MASE of real rollouts ----------
    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int):
        from rexforge.forecast.engine import PadStateCache, forecast_quantiles

        B = batch["context"].shape[0]
        loss = window_loss(self.model, batch["context"], batch["future"])
        self.log("val_loss", loss, prog_bar=True, batch_size=B, sync_dist=True)
        H = self.settings.prediction_length
        q = forecast_quantiles(
            self.model, batch["context"], H, PadStateCache(), rollout=self.settings.rollout
        )  # [B, H, Q]
        self._val_outputs.append(
            {
                "y": batch["future"][:, :H].double().cpu().numpy(),
                "q": q.double().cpu().numpy(),
                "scale": batch["mase_scale"].double().cpu().numpy(),
            }
        )

    def on_validation_epoch_end(self) -> None:
        from rexforge.eval.metrics import aggregate_metrics, series_metrics, series_statistics

        if not self._val_outputs:
            return
        y = np.concatenate([o["y"] for o in self._val_outputs])
        q = np.concatenate([o["q"] for o in self._val_outputs])
        scale = np.concatenate([o["scale"] for o in self._val_outputs])
        self._val_outputs.clear()
        levels = self.model.config.quantiles
        stats = series_statistics(y, q, q[..., levels.index(0.5)], levels)
        per_series, agg = series_metrics(stats, scale), aggregate_metrics(stats, scale)
        # Per held-out forecast: its pinball loss (mean over levels, summed over the horizon),
        # gathered from every rank, for the guard's paired comparison with zero-shot.
        units = torch.from_numpy(stats["pinball"].mean(-1))  # [N]
        self.val_unit_losses = self.all_gather(units).reshape(-1).double().cpu().numpy()
        # The mean MASE is the standard aggregate but a single series whose in-sample changes are
        # tiny next to its level (CPI in a hyperinflation, scale 1e-12) can dominate it by orders
        # of magnitude; the median over series shows what most series do.
        finite = per_series["mase"][np.isfinite(per_series["mase"])]
        agg["mase_median"] = float(np.median(finite)) if finite.size else float("nan")
        for name in ("wql", "mase", "mase_median", "coverage_80"):
            if np.isfinite(agg[name]):
                self.log(f"val_{name}", float(agg[name]), sync_dist=True)
            elif name == "wql":  # the guarded checkpoint choice needs it (an all-zero tail)
                self.log("val_wql", float("inf"), sync_dist=True)

    # -- optimizer -----------------------------------------------------------------------
    def configure_optimizers(self):
        s = self.settings
        trainable = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        # nanoGPT's rule: matrices (>= 2-D) decay; biases and norm gains do not.
        decay = [p for _, p in trainable if p.dim() >= 2]
        no_decay = [p for _, p in trainable if p.dim() < 2]
        logger.debug(
            "optimizer: %d decayed tensors (%d params), %d not decayed (%d params)",
            len(decay),
            sum(p.numel() for p in decay),
            len(no_decay),
            sum(p.numel() for p in no_decay),
        )
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": s.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=s.lr,
            betas=(s.beta1, s.beta2),
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, s.warmup_steps, s.max_steps, s.min_lr_ratio)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    # -- checkpoints ---------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["rexforge"] = {"micro_step": self.micro_step}
        if self.settings.mode == "lora":
            checkpoint["state_dict"] = {
                "model." + k: v for k, v in lora_state_dict(self.model).items()
            }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.micro_step = int(checkpoint.get("rexforge", {}).get("micro_step", 0))
