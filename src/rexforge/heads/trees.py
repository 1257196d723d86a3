"""Tree ensembles on frozen TiRex embeddings: random forests (scikit-learn) and gradient
boosting (LightGBM), for classification and regression, with the official public interface.

Saved files are joblib files with the official keys (``head``, ``data_augmentation``,
``compile``, ``batch_size`` and the boosting settings) plus rexforge's entry, written
atomically. Like any pickle, load only files you trust.
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
    load_joblib,
    require,
    save_joblib,
    split_train_val,
)


class TreeHead(EmbeddingHead):
    """A fitted estimator (``head``) on embeddings; subclasses build it."""

    # Settings (besides the embedding ones) that save_model records and load_model restores.
    SAVED_SETTINGS: tuple[str, ...] = ()

    def _check_fitted(self) -> None:
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        try:
            check_is_fitted(self.head)
        except NotFittedError:
            raise InputError("the head is not fitted: call fit() first") from None

    def _features(self, x) -> np.ndarray:
        self._check_fitted()
        return self._compute_embeddings(as_batch(x))

    @torch.inference_mode()
    def fit(self, train_data) -> None:
        """Fit the estimator on the embeddings of ``train_data`` = (X [N, V, T], y [N])."""
        x, y = check_pair(train_data)
        self.head.fit(self._compute_embeddings(as_batch(x)), as_numpy_targets(y))

    def save_model(self, path) -> None:
        """Save the fitted estimator and the settings (not the TiRex weights), atomically."""
        self._check_fitted()
        payload = {
            "data_augmentation": self.data_augmentation,
            "compile": self._compile,
            "batch_size": self.batch_size,
            **{name: getattr(self, name) for name in self.SAVED_SETTINGS},
            "head": self.head,
            REXFORGE_KEY: self._rexforge_info(),
        }
        save_joblib(path, payload)

    @classmethod
    def load_model(cls, path, model=None):
        """A head saved by ``save_model`` (rexforge's or the official one's); ``model``
        overrides the embedding model recorded in the file."""
        payload = load_joblib(path)
        head = cls(
            data_augmentation=payload["data_augmentation"],
            compile=payload["compile"],
            batch_size=payload["batch_size"],
            model=cls._saved_model(payload, model),
            **{name: payload[name] for name in cls.SAVED_SETTINGS if name in payload},
        )
        head.head = payload["head"]
        if hasattr(head, "random_state"):
            head.random_state = getattr(head.head, "random_state", None)
        return head


class ClassifierOutputs:
    """``predict`` / ``predict_proba`` of a fitted scikit-learn style classifier head."""

    EXTRA = "classification"  # the pip extra that installs the estimators

    @torch.inference_mode()
    def predict(self, x) -> torch.Tensor:
        """Class labels [B] (long)."""
        return torch.from_numpy(np.asarray(self.head.predict(self._features(x)))).long()

    @torch.inference_mode()
    def predict_proba(self, x) -> torch.Tensor:
        """Class probabilities [B, num_classes], columns in sorted label order."""
        return torch.from_numpy(self.head.predict_proba(self._features(x)))


class RegressorOutputs:
    EXTRA = "regression"

    @torch.inference_mode()
    def predict(self, x) -> torch.Tensor:
        """Predicted values [B] (float32)."""
        return torch.from_numpy(np.asarray(self.head.predict(self._features(x)))).float()


class BoostedHead(TreeHead):
    """LightGBM with early stopping on a validation set (given, or split from the data)."""

    SAVED_SETTINGS = ("early_stopping_rounds", "min_delta", "val_split_ratio")

    def _setup_boosting(self, early_stopping_rounds, min_delta, val_split_ratio, lgbm_kwargs):
        self.early_stopping_rounds = early_stopping_rounds
        self.min_delta = min_delta
        self.val_split_ratio = val_split_ratio
        # Also seeds the train/validation split, as officially.
        self.random_state = lgbm_kwargs.get("random_state")

    @torch.inference_mode()
    def fit(self, train_data, val_data=None) -> None:
        """Fit on ``train_data``; stop early on ``val_data`` or, if None, on a
        ``val_split_ratio`` share split from ``train_data``."""
        lightgbm = require("lightgbm", self.EXTRA)
        x, y = check_pair(train_data)
        x = as_batch(x)
        if val_data is None:
            (x, y), (x_val, y_val) = split_train_val(
                (x, y), self.val_split_ratio, getattr(self, "stratify", False), self.random_state
            )
        else:
            x_val, y_val = check_pair(val_data, "val_data")
        callbacks = None
        if self.early_stopping_rounds is not None:
            callbacks = [
                lightgbm.early_stopping(
                    stopping_rounds=self.early_stopping_rounds, min_delta=self.min_delta
                )
            ]
        val_features = self._compute_embeddings(as_batch(x_val))
        self.head.fit(
            self._compute_embeddings(x),
            as_numpy_targets(y),
            eval_set=[(val_features, as_numpy_targets(y_val))],
            callbacks=callbacks,
        )


class TirexRFClassifier(ClassifierOutputs, TreeHead):
    """scikit-learn's ``RandomForestClassifier(**rf_kwargs)`` on frozen TiRex embeddings."""

    def __init__(
        self,
        data_augmentation: bool = False,
        device: str | None = None,
        compile: bool = False,
        batch_size: int = 512,
        *,
        model=None,
        **rf_kwargs,
    ) -> None:
        # Built first: bad arguments fail before the embedding model loads.
        head = require("sklearn.ensemble", self.EXTRA).RandomForestClassifier(**rf_kwargs)
        super().__init__(data_augmentation, device, compile, batch_size, model)
        self.head = head


class TirexRFRegressor(RegressorOutputs, TreeHead):
    """scikit-learn's ``RandomForestRegressor(**rf_kwargs)`` on frozen TiRex embeddings."""

    def __init__(
        self,
        data_augmentation: bool = False,
        device: str | None = None,
        compile: bool = False,
        batch_size: int = 512,
        *,
        model=None,
        **rf_kwargs,
    ) -> None:
        head = require("sklearn.ensemble", self.EXTRA).RandomForestRegressor(**rf_kwargs)
        super().__init__(data_augmentation, device, compile, batch_size, model)
        self.head = head


class TirexGBMClassifier(ClassifierOutputs, BoostedHead):
    """LightGBM's ``LGBMClassifier(**lgbm_kwargs)`` on frozen TiRex embeddings, with early
    stopping on a (by default stratified) validation split."""

    SAVED_SETTINGS = (*BoostedHead.SAVED_SETTINGS, "stratify")

    def __init__(
        self,
        data_augmentation: bool = False,
        device: str | None = None,
        compile: bool = False,
        batch_size: int = 512,
        early_stopping_rounds: int | None = 10,
        min_delta: float = 0.0,
        val_split_ratio: float = 0.2,
        stratify: bool = True,
        *,
        model=None,
        **lgbm_kwargs,
    ) -> None:
        head = require("lightgbm", self.EXTRA).LGBMClassifier(**lgbm_kwargs)
        super().__init__(data_augmentation, device, compile, batch_size, model)
        self._setup_boosting(early_stopping_rounds, min_delta, val_split_ratio, lgbm_kwargs)
        self.stratify = stratify
        self.head = head


class TirexGBMRegressor(RegressorOutputs, BoostedHead):
    """LightGBM's ``LGBMRegressor(**lgbm_kwargs)`` on frozen TiRex embeddings, with early
    stopping on a validation split."""

    def __init__(
        self,
        data_augmentation: bool = False,
        device: str | None = None,
        compile: bool = False,
        batch_size: int = 512,
        early_stopping_rounds: int | None = 10,
        min_delta: float = 0.0,
        val_split_ratio: float = 0.2,
        *,
        model=None,
        **lgbm_kwargs,
    ) -> None:
        head = require("lightgbm", self.EXTRA).LGBMRegressor(**lgbm_kwargs)
        super().__init__(data_augmentation, device, compile, batch_size, model)
        self._setup_boosting(early_stopping_rounds, min_delta, val_split_ratio, lgbm_kwargs)
        self.head = head
