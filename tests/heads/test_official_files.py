"""Heads saved by the official package load in rexforge and predict the same, and the other
way round (both built on the same random weights, served as "NX-AI/TiRex" from a hub cache
the test builds, offline)."""

from __future__ import annotations

import pytest
import torch

import rexforge.classification as ours_classification
import rexforge.regression as ours_regression
from tests.heads.test_heads import periods, sines
from tests.hub_cache import add_to_cache, use_offline_cache

official_classification = pytest.importorskip("tirex.models.classification")
official_regression = pytest.importorskip("tirex.models.regression")


@pytest.fixture
def nxai_tirex_cached(tmp_path, monkeypatch, tiny_ckpt):
    add_to_cache(tmp_path / "hub", "NX-AI/TiRex", {"model.ckpt": tiny_ckpt})
    use_offline_cache(monkeypatch, tmp_path / "hub")


LINEAR = dict(max_epochs=20, lr=1e-2, batch_size=16, seed=0)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("TirexLinearClassifier", LINEAR),
        ("TirexRFClassifier", dict(n_estimators=10, random_state=0)),
    ],
)
def test_official_classifier_file_loads_in_rexforge(nxai_tirex_cached, tmp_path, name, kwargs):
    x, y = sines(40, seed=0)
    official = getattr(official_classification, name)(**kwargs)
    official.fit((x, y))
    official.save_model(str(tmp_path / "head"))
    ours = getattr(ours_classification, name).load_model(tmp_path / "head")
    torch.testing.assert_close(ours.predict_proba(x).double(), official.predict_proba(x).double())
    assert torch.equal(ours.predict(x), official.predict(x))


def test_rexforge_linear_regressor_file_loads_in_the_official_package(nxai_tirex_cached, tmp_path):
    x, y = periods(40, seed=0)
    ours = ours_regression.TirexLinearRegressor(**LINEAR)
    ours.fit((x, y))
    ours.save_model(tmp_path / "head.pt")
    official = official_regression.TirexLinearRegressor.load_model(str(tmp_path / "head.pt"))
    torch.testing.assert_close(official.predict(x), ours.predict(x))
