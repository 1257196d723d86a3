"""Linear heads on frozen TiRex embeddings: ``TirexLinearClassifier``, ``TirexLinearRegressor``.

Saved files are torch files with the official keys (``head_state_dict``, ``emb_dim``,
``num_classes`` / ``output_dim``, ``dropout``, ``train_config`` ...), plus rexforge's entry
(the embedding model, the class labels), written atomically.
"""

from __future__ import annotations

import numpy as np
import torch

from rexforge.embedding import as_batch
from rexforge.errors import InputError
from rexforge.heads.base import (
    REXFORGE_KEY,
    EmbeddingHead,
    as_numpy_targets,
    check_pair,
    load_torch,
    save_torch,
    split_train_val,
)
from rexforge.heads.training import (
    TrainConfig,
    TrainingMetrics,
    linear_layer,
    seed_everything,
    train_head,
)

# Constructor arguments that the saved train_config restores, with the official defaults.
_RESTORED = {
    "max_epochs": 10,
    "lr": 1e-4,
    "weight_decay": 0.01,
    "batch_size": 512,
    "val_split_ratio": 0.2,
    "patience": 7,
    "delta": 0.001,
    "log_every_n_steps": 5,
    "seed": None,
}


class LinearHead(EmbeddingHead, torch.nn.Module):
    """Shared by the linear classifier and regressor; ``TASK`` says which."""

    TASK = "classification"

    def _setup(self, dropout, train_settings: dict, model) -> None:
        torch.nn.Module.__init__(self)
        device = train_settings.pop("device")
        if device is None:
            device = "cuda:0" if torch.cuda.is_available() else "cpu"
        options = {name: train_settings.pop(name) for name in ("data_augmentation", "compile")}
        # Checked before the embedding model is loaded, which takes long.
        self.train_config = TrainConfig(device=device, task_type=self.TASK, **train_settings)
        EmbeddingHead.__init__(
            self, device=device, batch_size=train_settings["batch_size"], model=model, **options
        )
        self.dropout = dropout
        self.head: torch.nn.Module | None = None
        self.emb_dim: int | None = None

    # -- subclasses say how targets map to the head's outputs --------------------------------
    def _output_dim(self, y: np.ndarray) -> int:
        raise NotImplementedError

    def _targets(self, y: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    # -- fitting and predicting ---------------------------------------------------------------
    def fit(self, train_data, val_data=None) -> TrainingMetrics:
        """Fit the head on ``train_data`` = (X [N, V, T], y [N]); validation on ``val_data``
        or, if None, on a ``val_split_ratio`` share split from ``train_data``."""
        x, y = check_pair(train_data)
        x = as_batch(x)
        config = self.train_config
        if config.seed is not None:
            seed_everything(config.seed)
        out_dim = self._output_dim(as_numpy_targets(y))
        if val_data is None:
            (x, y), (x_val, y_val) = split_train_val(
                (x, y), config.val_split_ratio, config.stratify, config.seed
            )
        else:
            x_val, y_val = check_pair(val_data, "val_data")
        train = (self._embeddings(x), self._targets(as_numpy_targets(y)))
        val = (self._embeddings(as_batch(x_val)), self._targets(as_numpy_targets(y_val)))
        self.emb_dim = train[0].shape[-1]
        self.head = linear_layer(self.emb_dim, out_dim, self.dropout)
        return train_head(self.head, train, val, config)

    def forward(self, x) -> torch.Tensor:
        """x [B, V, T] -> the head's outputs [B, out_dim] (logits or values)."""
        if self.head is None:
            raise InputError("the head is not fitted: call fit() first")
        return self.head(self._embeddings(as_batch(x)).to(self.device))

    def _embeddings(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._compute_embeddings(x))

    # -- saving and loading --------------------------------------------------------------------
    def _payload(self) -> dict:
        if self.head is None:
            raise InputError("the head is not fitted: call fit() before save_model()")
        return {
            "head_state_dict": self.head.state_dict(),
            "data_augmentation": self.data_augmentation,
            "compile": self._compile,
            "emb_dim": self.emb_dim,
            "dropout": self.dropout,
            "train_config": self.train_config.to_dict(),
            REXFORGE_KEY: self._rexforge_info(),
        }

    def save_model(self, path) -> None:
        """Save the fitted head and its settings (not the TiRex weights), atomically."""
        save_torch(path, self._payload())

    @classmethod
    def _from_payload(cls, payload: dict, model, extra_args: dict):
        settings = payload.get("train_config") or {}
        restored = {name: settings.get(name, default) for name, default in _RESTORED.items()}
        head = cls(
            data_augmentation=payload["data_augmentation"],
            compile=payload["compile"],
            dropout=payload["dropout"],
            model=cls._saved_model(payload, model),
            **restored,
            **extra_args,
        )
        head.emb_dim = payload["emb_dim"]
        return head

    def _restore_head(self, payload: dict, out_dim: int) -> None:
        self.head = linear_layer(self.emb_dim, out_dim, self.dropout)
        self.head.load_state_dict(payload["head_state_dict"])
        self.to(self.device)


class TirexLinearClassifier(LinearHead):
    """A linear layer (optionally after dropout) on frozen TiRex embeddings, trained with
    cross-entropy. Labels may be any integers; ``predict`` returns them."""

    TASK = "classification"

    def __init__(
        self,
        data_augmentation: bool = False,
        device: str | None = None,
        compile: bool = False,
        max_epochs: int = 10,
        lr: float = 1e-4,
        weight_decay: float = 0.01,
        batch_size: int = 512,
        val_split_ratio: float = 0.2,
        stratify: bool = True,
        patience: int = 7,
        delta: float = 0.001,
        log_every_n_steps: int = 5,
        seed: int | None = None,
        class_weights: torch.Tensor | None = None,
        dropout: float | None = None,
        *,
        model=None,
    ) -> None:
        settings = dict(locals())
        for name in ("self", "dropout", "model", "__class__"):
            settings.pop(name, None)
        self._setup(dropout, settings, model)
        self.num_classes: int | None = None
        self.classes_: np.ndarray | None = None

    def _output_dim(self, y: np.ndarray) -> int:
        self.classes_ = np.unique(y)
        self.num_classes = len(self.classes_)
        return self.num_classes

    def _targets(self, y: np.ndarray) -> torch.Tensor:
        index = np.searchsorted(self.classes_, y)
        unknown = (index >= len(self.classes_)) | (
            self.classes_[np.minimum(index, len(self.classes_) - 1)] != y
        )
        if unknown.any():
            raise InputError(f"label {y[unknown][0]!r} is not among the training labels")
        return torch.from_numpy(index).long()

    @torch.no_grad()
    def predict(self, x) -> torch.Tensor:
        """Class labels [B] (long)."""
        self.eval()
        index = self.forward(x).argmax(dim=1).cpu().numpy()
        return torch.as_tensor(self.classes_[index]).long()

    @torch.no_grad()
    def predict_proba(self, x) -> torch.Tensor:
        """Class probabilities [B, num_classes], columns in sorted label order."""
        self.eval()
        return torch.softmax(self.forward(x), dim=1)

    def _payload(self) -> dict:
        payload = super()._payload()
        payload["num_classes"] = self.num_classes
        payload[REXFORGE_KEY]["classes"] = self.classes_.tolist()
        return payload

    @classmethod
    def load_model(cls, path, model=None) -> TirexLinearClassifier:
        """A classifier saved by ``save_model`` (rexforge's or the official one's);
        ``model`` overrides the embedding model recorded in the file."""
        payload = load_torch(path)
        settings = payload.get("train_config") or {}
        extra = {
            "stratify": settings.get("stratify", True),
            "class_weights": settings.get("class_weights"),
        }
        head = cls._from_payload(payload, model, extra)
        head.num_classes = payload["num_classes"]
        classes = (payload.get(REXFORGE_KEY) or {}).get("classes")
        head.classes_ = np.asarray(classes if classes is not None else range(head.num_classes))
        head._restore_head(payload, head.num_classes)
        return head


class TirexLinearRegressor(LinearHead):
    """A linear layer (optionally after dropout) on frozen TiRex embeddings, trained with
    mean squared error; ``predict`` returns [B, 1] as officially."""

    TASK = "regression"

    def __init__(
        self,
        data_augmentation: bool = False,
        device: str | None = None,
        compile: bool = False,
        max_epochs: int = 10,
        lr: float = 1e-4,
        weight_decay: float = 0.01,
        batch_size: int = 512,
        val_split_ratio: float = 0.2,
        patience: int = 7,
        delta: float = 0.001,
        log_every_n_steps: int = 5,
        seed: int | None = None,
        dropout: float | None = None,
        *,
        model=None,
    ) -> None:
        settings = dict(locals())
        for name in ("self", "dropout", "model", "__class__"):
            settings.pop(name, None)
        self._setup(dropout, {**settings, "class_weights": None}, model)
        self.output_dim: int | None = None

    def _output_dim(self, y: np.ndarray) -> int:
        self.output_dim = 1
        return 1

    def _targets(self, y: np.ndarray) -> torch.Tensor:
        # [N, 1], the head's output shape (a [N] target would broadcast to [N, N] in MSE).
        return torch.as_tensor(np.asarray(y, dtype=np.float32)).reshape(-1, 1)

    @torch.no_grad()
    def predict(self, x) -> torch.Tensor:
        """Predicted values [B, 1]."""
        self.eval()
        return self.forward(x)

    def _payload(self) -> dict:
        return {**super()._payload(), "output_dim": self.output_dim}

    @classmethod
    def load_model(cls, path, model=None) -> TirexLinearRegressor:
        """A regressor saved by ``save_model``; ``model`` overrides the recorded one."""
        payload = load_torch(path)
        head = cls._from_payload(payload, model, {})
        head.output_dim = payload.get("output_dim", 1)
        head._restore_head(payload, head.output_dim)
        return head
