"""The six heads on tiny random-weight embeddings: they learn a task the embeddings separate
(fast vs slow sines; the period as a regression target), save atomically and load back to
equal predictions, and refuse bad use with one error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rexforge
from rexforge.classification import TirexGBMClassifier, TirexLinearClassifier, TirexRFClassifier
from rexforge.errors import InputError
from rexforge.regression import TirexGBMRegressor, TirexLinearRegressor, TirexRFRegressor

pytest.importorskip("sklearn")

STEPS = 64


def sines(n: int, seed: int, fast_labels=(0, 1)):
    """Noisy sines [n, 1, STEPS] of random phase: label 1 has period 6, label 0 period 24."""
    rng = np.random.default_rng(seed)
    t = np.arange(STEPS)
    labels = np.arange(n) % 2
    x = [
        np.sin(2 * np.pi * t / (6 if lab else 24) + rng.uniform(0, 2 * np.pi))
        + rng.normal(0, 0.1, STEPS)
        for lab in labels
    ]
    y = np.where(labels == 1, fast_labels[1], fast_labels[0])
    return torch.tensor(np.array(x), dtype=torch.float32)[:, None], torch.tensor(y)


def periods(n: int, seed: int):
    """Noisy sines whose log period (periods of 4 to 24 steps) is the target."""
    rng = np.random.default_rng(seed)
    t = np.arange(STEPS)
    period = rng.uniform(4, 24, n)
    x = [
        np.sin(2 * np.pi * t / p + rng.uniform(0, 6.3)) + rng.normal(0, 0.1, STEPS) for p in period
    ]
    return torch.tensor(np.array(x), dtype=torch.float32)[:, None], torch.tensor(
        np.log(period)
    ).float()


@pytest.fixture(scope="module")
def tiny_model(tiny_ckpt):
    return rexforge.load_model(tiny_ckpt, numerics="official")


LINEAR_FIT = dict(max_epochs=80, lr=1e-2, batch_size=16, patience=80, seed=0)
CLASSIFIERS = [
    (TirexLinearClassifier, LINEAR_FIT),
    (TirexRFClassifier, dict(n_estimators=40, random_state=0)),
    (TirexGBMClassifier, dict(n_estimators=40, random_state=0, min_child_samples=5, verbose=-1)),
]
REGRESSORS = [
    (TirexLinearRegressor, LINEAR_FIT),
    (TirexRFRegressor, dict(n_estimators=40, random_state=0)),
    (TirexGBMRegressor, dict(n_estimators=80, random_state=0, min_child_samples=5, verbose=-1)),
]


@pytest.mark.parametrize("cls, kwargs", CLASSIFIERS, ids=lambda v: getattr(v, "__name__", ""))
def test_classifier_learns_and_round_trips(cls, kwargs, tiny_model, tmp_path):
    if cls is TirexGBMClassifier:
        pytest.importorskip("lightgbm")
    x_train, y_train = sines(80, seed=0, fast_labels=(3, 7))  # labels need not be 0..C-1
    x_test, y_test = sines(40, seed=1, fast_labels=(3, 7))
    head = cls(model=tiny_model, **kwargs)
    head.fit((x_train, y_train))
    predicted = head.predict(x_test)
    assert predicted.dtype == torch.long and predicted.shape == (40,)
    accuracy = (predicted == y_test).float().mean().item()
    assert accuracy >= 0.95, accuracy
    proba = head.predict_proba(x_test)
    assert proba.shape == (40, 2)
    torch.testing.assert_close(proba.sum(dim=1).double(), torch.ones(40, dtype=torch.float64))
    path = tmp_path / "head.bin"
    head.save_model(path)
    assert [p.name for p in tmp_path.iterdir()] == ["head.bin"]  # no temporary file left
    loaded = cls.load_model(path, model=tiny_model)
    assert torch.equal(loaded.predict(x_test), predicted)
    assert torch.equal(loaded.predict_proba(x_test), proba)


@pytest.mark.parametrize("cls, kwargs", REGRESSORS, ids=lambda v: getattr(v, "__name__", ""))
def test_regressor_learns_and_round_trips(cls, kwargs, tiny_model, tmp_path):
    if cls is TirexGBMRegressor:
        pytest.importorskip("lightgbm")
    x_train, y_train = periods(120, seed=0)
    x_test, y_test = periods(40, seed=1)
    # Random tiny weights carry the period weakly; the augmented embedding (differences and
    # piece statistics) carries it well enough for every head.
    head = cls(model=tiny_model, data_augmentation=True, **kwargs)
    head.fit((x_train, y_train))
    predicted = head.predict(x_test)
    # Official shapes: the linear regressor returns [B, 1], the tree ensembles [B].
    assert predicted.shape == ((40, 1) if cls is TirexLinearRegressor else (40,))
    mse = ((predicted.reshape(-1) - y_test) ** 2).mean().item()
    # R^2 > 0.5 (RidgeCV on these embeddings reaches 0.84, a random forest 0.80).
    assert mse < 0.5 * y_test.var().item(), (mse, y_test.var().item())
    path = tmp_path / "head.bin"
    head.save_model(path)
    loaded = cls.load_model(path, model=tiny_model)
    assert torch.equal(loaded.predict(x_test), predicted)


def test_saved_head_records_its_model(tiny_ckpt, tmp_path):
    x, y = sines(40, seed=0)
    head = TirexRFClassifier(model=str(tiny_ckpt), n_estimators=10, random_state=0)
    head.fit((x, y))
    head.save_model(tmp_path / "rf.joblib")
    loaded = TirexRFClassifier.load_model(tmp_path / "rf.joblib")  # no model: the recorded one
    assert loaded.emb_model.model_source == str(tiny_ckpt)
    assert torch.equal(loaded.predict_proba(x), head.predict_proba(x))


def test_linear_head_with_validation_data_and_dropout(tiny_model):
    x, y = sines(60, seed=0)
    x_val, y_val = sines(20, seed=2)
    head = TirexLinearClassifier(model=tiny_model, dropout=0.1, **LINEAR_FIT)
    metrics = head.fit((x, y), val_data=(x_val, y_val))
    assert set(metrics) == {"train_loss", "val_loss"}
    assert metrics["val_loss"] < 0.3  # cross-entropy of a near-perfect separation
    assert isinstance(head.head, torch.nn.Sequential)


def test_unfitted_and_bad_use_are_one_error(tiny_model, tmp_path):
    x, y = sines(10, seed=0)
    with pytest.raises(InputError, match="not fitted"):
        TirexLinearClassifier(model=tiny_model).predict(x)
    with pytest.raises(InputError, match="not fitted"):
        TirexRFRegressor(model=tiny_model).predict(x)
    with pytest.raises(InputError, match="10 series but 9 targets"):
        TirexRFClassifier(model=tiny_model).fit((x, y[:9]))
    with pytest.raises(ValueError, match="lr must be positive"):
        TirexLinearRegressor(model=tiny_model, lr=0)
    with pytest.raises(InputError, match="saved model not found"):
        TirexRFClassifier.load_model(tmp_path / "missing.joblib", model=tiny_model)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="not a readable saved head"):
        TirexLinearClassifier.load_model(tmp_path / "junk.pt", model=tiny_model)
