"""The LightningModule: a thin shell around a family's network and its training hooks.

It builds the network from plain dicts (``save_hyperparameters``), so a Lightning checkpoint
rebuilds it; the family (TiRex, TiRex-2) is the one its model config belongs to
(``rexforge.registry``), and everything that differs between families comes from that
family's hooks (``train.family``). It owns no data logic beyond a counter of micro-batches,
which seeds contiguous patch masking (a pure function of the step: a resumed run masks
exactly as an unbroken one).
"""

from __future__ import annotations

import logging

import lightning as L
import numpy as np
import torch

from rexforge.io.checkpoint import load_state_dict_strict
from rexforge.registry import family_of
from rexforge.train.family import RankShare
from rexforge.train.lora import lora_state_dict
from rexforge.train.modes import apply_mode
from rexforge.train.objective import MaskingConfig
from rexforge.train.settings import TrainConfig, lr_factor

logger = logging.getLogger(__name__)


class TrainingModule(L.LightningModule):
    """model_config: the family config's ``to_dict()``; train_config: ``TrainConfig.to_dict()``;
    base_state_dict: starting weights (None for ``scratch``), loaded before the mode applies."""

    def __init__(self, model_config: dict, train_config: dict, base_state_dict: dict | None = None):
        super().__init__()
        self.save_hyperparameters(ignore=["base_state_dict"])
        self.settings = TrainConfig.from_dict(train_config).validate()  # resolves defaults
        s = self.settings
        family = family_of(model_config)
        self.hooks = family.training_hooks
        self.model = self.hooks.build(family.config_class.from_dict(model_config), s)
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
        # LoRA checkpoints hold only the adapters; the base comes from base_checkpoint again.
        self.strict_loading = s.mode != "lora"
        self._val_outputs: list[dict[str, np.ndarray]] = []
        self._loss = None  # the family's loss function, built on the first training step
        self.val_unit_losses: np.ndarray | None = None  # [N] of the last validation, see below

    # -- training ------------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int):
        # batch: the global batch, which every rank draws (datamodule). Its masks are seeded by
        # (seed, micro-batch) alone, so every rank masks it as one process would; independent
        # of resume and worker count.
        key = self.settings.seed * 1_000_003 * 1_000_000_007 + self.micro_step
        gen = torch.Generator().manual_seed(key % (2**63))
        self.micro_step += 1
        if self._loss is None:  # (with settings.compile, the first call compiles)
            self._loss = self.hooks.loss_function(self.model, self.settings)
        world = self.trainer.world_size if self._trainer is not None else 1
        share = RankShare(self.global_rank, world) if world > 1 else None
        loss, weight = self._loss(batch, self.masking, gen, share)  # this rank's mean
        if not self._finite_everywhere(loss, world):
            # Skip this update and stop: the weights stay the last good ones. The step is read
            # back by the caller from callback_metrics, which also travel back from spawned
            # workers.
            step, micro_batch = self.global_step, self.micro_step - 1
            self.trainer.should_stop = True
            self.trainer.callback_metrics["nonfinite_step"] = torch.tensor(step)
            self.trainer.callback_metrics["nonfinite_batch"] = torch.tensor(micro_batch)
            if torch.isfinite(loss):
                logger.error("the loss is non-finite on another rank at step %d; stopping", step)
            else:
                where = f" on rank {self.global_rank} of {world}" if world > 1 else ""
                logger.error(
                    "loss is %s%s at step %d (batch %d); stopping",
                    loss.item(),
                    where,
                    step,
                    micro_batch,
                )
            return None if world == 1 else self._no_update()
        size = self.hooks.batch_size_of(batch) // world  # this rank's windows
        self.log("train_loss", loss, prog_bar=True, batch_size=size)
        self.log("lr", self.optimizers().param_groups[0]["lr"], batch_size=1)
        return loss if weight is None else loss * weight

    def _finite_everywhere(self, loss: torch.Tensor, world: int) -> bool:
        """Whether the loss is finite on every rank. All ranks must skip the update together:
        a rank that skipped alone would leave the others waiting in the gradient all-reduce."""
        finite = torch.isfinite(loss.detach()).float()
        if world > 1:
            finite = self.all_gather(finite).min()
        return bool(finite > 0)

    def _no_update(self) -> torch.Tensor:
        """A zero loss for every rank of a distributed run to step on, in place of the skipped
        update (Lightning refuses None there): zero gradients at learning rate zero leave the
        weights as they were, and the run stops after this step."""
        for group in self.optimizers().param_groups:
            group["lr"] = 0.0
        trainable = [p for p in self.parameters() if p.requires_grad]
        return torch.stack([p.sum() for p in trainable]).sum() * 0.0

    # -- validation: loss on the held-out windows, plus WQL/MASE of real rollouts ----------
    def validation_step(self, batch, batch_idx: int):
        H = self.settings.prediction_length
        out = self.hooks.validation_forecasts(self.model, batch, H, self.settings.rollout)
        N = out.y.shape[0]
        self.log("val_loss", out.loss, prog_bar=True, batch_size=N, sync_dist=True)
        self._val_outputs.append(
            {
                "y": out.y.double().cpu().numpy(),  # [N, H]
                "q": out.q.double().cpu().numpy(),  # [N, H, Q]
                "scale": out.scale.double().cpu().numpy(),  # [N]
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


# The name of the class before TiRex-2 trained through it (scripts and tests patch it).
TiRexTrainingModule = TrainingModule
