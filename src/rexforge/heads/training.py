"""Training a linear layer on frozen embeddings, as the official linear heads train.

The embeddings of the training and validation series are computed once; then AdamW on the
head only, cross-entropy (classification, optional class weights) or mean squared error
(regression), mini-batches shuffled each epoch, and early stopping once the validation loss
has not improved by ``delta`` for ``patience`` epochs.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TypedDict

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from rexforge.errors import ConfigError

logger = logging.getLogger(__name__)


class TrainingMetrics(TypedDict):
    train_loss: float
    val_loss: float


@dataclass
class TrainConfig:
    """The official linear heads' training settings (same names, same checks)."""

    max_epochs: int
    log_every_n_steps: int
    device: str
    lr: float
    weight_decay: float
    class_weights: torch.Tensor | None
    task_type: str
    patience: int
    delta: float
    seed: int | None
    batch_size: int
    val_split_ratio: float
    stratify: bool = False

    def __post_init__(self) -> None:
        positive = ("max_epochs", "log_every_n_steps", "lr", "batch_size", "patience")
        problems = [f"{name} must be positive" for name in positive if not getattr(self, name) > 0]
        problems += [
            f"{n} must be non-negative" for n in ("weight_decay", "delta") if getattr(self, n) < 0
        ]
        if not 0 < self.val_split_ratio < 1:
            problems.append("val_split_ratio must be in (0, 1)")
        if self.task_type not in ("classification", "regression"):
            problems.append("task_type must be 'classification' or 'regression'")
        if self.stratify and self.task_type == "regression":
            problems.append("stratify=True is not valid for regression")
        if problems:
            raise ConfigError("; ".join(problems))

    def to_dict(self) -> dict:
        return asdict(self)


class EarlyStopping:
    """Stop once the validation loss has not beaten the best by ``delta`` for ``patience``
    epochs in a row."""

    def __init__(self, patience: int, delta: float) -> None:
        self.patience, self.delta = patience, delta
        self.best, self.waited = float("inf"), 0

    def should_stop(self, val_loss: float) -> bool:
        if val_loss < self.best - self.delta:
            self.best, self.waited = val_loss, 0
            return False
        self.waited += 1
        return self.waited >= self.patience


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed(seed)


def train_head(
    head: torch.nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    config: TrainConfig,
) -> TrainingMetrics:
    """Fit ``head`` on embeddings: train/val are (embeddings [N, D], targets [N] class indices
    or [N, 1] values). Returns the last epoch's mean train and validation loss."""
    device = config.device
    head.to(device)
    weights = None if config.class_weights is None else torch.as_tensor(config.class_weights)
    if config.task_type == "classification":
        loss_fn = torch.nn.CrossEntropyLoss(weight=None if weights is None else weights.to(device))
    else:
        loss_fn = torch.nn.MSELoss()
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    train_loader = DataLoader(TensorDataset(*train), batch_size=config.batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(*val), batch_size=config.batch_size)
    stopper = EarlyStopping(config.patience, config.delta)
    train_loss = val_loss = float("nan")
    for epoch in range(config.max_epochs):
        train_loss = _train_epoch(head, train_loader, loss_fn, optimizer, device)
        val_loss = _validation_loss(head, val_loader, loss_fn, device)
        if epoch % config.log_every_n_steps == 0:
            logger.info("epoch %d: train loss %.6f, val loss %.6f", epoch + 1, train_loss, val_loss)
        if stopper.should_stop(val_loss):
            logger.info("early stopping after epoch %d", epoch + 1)
            break
    return {"train_loss": train_loss, "val_loss": val_loss}


def _train_epoch(head, loader, loss_fn, optimizer, device) -> float:
    head.train()
    losses = []
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(head(x.to(device)), y.to(device))
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    return torch.stack(losses).mean().item()


@torch.no_grad()
def _validation_loss(head, loader, loss_fn, device) -> float:
    head.eval()
    losses = [loss_fn(head(x.to(device)), y.to(device)) for x, y in loader]
    return torch.stack(losses).mean().item()


def linear_layer(in_dim: int, out_dim: int, dropout: float | None) -> torch.nn.Module:
    """A linear layer, after dropout when ``dropout`` is set (the official head layout, so
    state dicts are interchangeable)."""
    layer = torch.nn.Linear(in_dim, out_dim)
    return torch.nn.Sequential(torch.nn.Dropout(p=dropout), layer) if dropout else layer
