"""What every head on TiRex embeddings shares: the frozen embedding model, turning inputs into
embeddings, the train/validation split, atomic saving and the optional dependencies.

A head is fitted on ``(X, y)`` with X [N, V, T] series (tensor or array) and y [N] labels or
targets. Saved files hold the head and the embedding settings, not the TiRex weights: loading
rebuilds the embedding from the model recorded at save time (or the one passed).
"""

from __future__ import annotations

import importlib
import pickle
from typing import Any

import numpy as np
import torch

from rexforge.embedding import TiRexEmbedding
from rexforge.errors import ConfigError, InputError
from rexforge.io.atomic import atomic_open

# Key under which saved heads keep what only rexforge writes (the official loaders ignore it).
REXFORGE_KEY = "rexforge"


def require(module: str, extra: str):
    """Import an optional dependency, or end with one error naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        package = {"sklearn": "scikit-learn"}.get(module.split(".")[0], module.split(".")[0])
        raise ConfigError(f"this head needs {package}: pip install 'rexforge[{extra}]'") from None


def as_numpy_targets(y) -> np.ndarray:
    """Labels or targets [N] as a numpy array."""
    if isinstance(y, torch.Tensor):
        return y.detach().cpu().numpy()
    return np.asarray(y)


def check_pair(data, what: str = "train_data") -> tuple[Any, Any]:
    """``(X, y)`` with as many targets as series."""
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise InputError(f"{what} must be a pair (X, y)")
    x, y = data
    if len(x) != len(y):
        raise InputError(f"{what}: {len(x)} series but {len(y)} targets")
    if len(x) == 0:
        raise InputError(f"{what} holds no series")
    return x, y


def split_train_val(
    data: tuple[Any, Any], val_split_ratio: float, stratify: bool, seed: int | None
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """Shuffle and split ``(X, y)`` into train and validation parts (``val_split_ratio`` of
    the series for validation, class proportions kept when ``stratify``)."""
    train_test_split = require("sklearn.model_selection", "classification").train_test_split
    x, y = check_pair(data)
    if not 0 < val_split_ratio < 1:
        raise ConfigError(f"val_split_ratio must be in (0, 1), got {val_split_ratio}")
    try:
        train_idx, val_idx = train_test_split(
            np.arange(len(x)),
            test_size=val_split_ratio,
            random_state=seed,
            shuffle=True,
            stratify=as_numpy_targets(y) if stratify else None,
        )
    except ValueError as exc:  # e.g. a class with one member cannot be stratified
        raise InputError(f"cannot split train_data for validation: {exc}") from None
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


class EmbeddingHead:
    """Holds the frozen ``TiRexEmbedding`` (``emb_model``) and its settings."""

    def __init__(
        self,
        data_augmentation: bool = False,
        device: str | None = None,
        compile: bool = False,
        batch_size: int = 512,
        model=None,
    ) -> None:
        if device is None:
            device = "cuda:0" if torch.cuda.is_available() else "cpu"
        self.device = device
        self._compile = compile
        self.batch_size = batch_size
        self.data_augmentation = data_augmentation
        self.emb_model = TiRexEmbedding(
            device=device,
            data_augmentation=data_augmentation,
            batch_size=batch_size,
            compile=compile,
            model=model,
        )

    def _compute_embeddings(self, x) -> np.ndarray:
        """x [N, V, T] -> embeddings [N, D] float32."""
        self.emb_model.eval()
        return self.emb_model(x).cpu().numpy()

    def _rexforge_info(self, **extra) -> dict:
        """What rexforge adds to a saved file: where the embedding model came from."""
        source = self.emb_model.model_source
        return {"model": None if source is None else str(source), **extra}

    @staticmethod
    def _saved_model(payload: dict, model):
        """The embedding model to rebuild a saved head with: the one passed, else the one
        recorded at save time, else the default."""
        if model is not None:
            return model
        return (payload.get(REXFORGE_KEY) or {}).get("model")


def save_joblib(path, payload: dict) -> None:
    """Write ``payload`` with joblib, atomically (temporary file, then rename)."""
    import joblib

    with atomic_open(path, "wb") as handle:
        joblib.dump(payload, handle)


def load_joblib(path) -> dict:
    import joblib

    try:
        payload = joblib.load(path)
    except FileNotFoundError:
        raise InputError(f"saved model not found: {path}") from None
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError) as exc:
        raise InputError(f"{path} is not a readable saved head: {type(exc).__name__}") from None
    if not isinstance(payload, dict) or "head" not in payload:
        raise InputError(f"{path} is not a saved TiRex head (no 'head' entry)")
    return payload


def save_torch(path, payload: dict) -> None:
    """Write ``payload`` with torch.save, atomically."""
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)


def load_torch(path) -> dict:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"saved model not found: {path}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path} is not a readable saved head: {reason}") from None
    if not isinstance(payload, dict) or "head_state_dict" not in payload:
        raise InputError(f"{path} is not a saved linear TiRex head (no 'head_state_dict')")
    return payload
