"""Shared fixtures: random-weight checkpoints in the official format, built without rexforge's
own writer (plain ``torch.save`` of the official dict), so the loader is tested for real."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# torch.compile's on-disk cache is shared by every process of the user; two test runs at once
# (or a run under an ISA cap beside one without) have been seen to load each other's half-written
# kernels. Each run compiles into its own folder (the tests compile a few tiny shapes only).
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="rexforge-inductor-"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from rexforge.config import TiRexConfig  # noqa: E402


def random_state_dict(config: TiRexConfig, seed: int) -> dict[str, torch.Tensor]:
    """Random weights with official parameter names and shapes (rexforge names = official
    names without the ``block_stack.`` prefix): our initialisation plus noise on everything,
    so that no parameter is left at a symmetric value (norm gains of exactly 1, zero biases)."""
    from rexforge.model.tirex import TiRexModel

    model = TiRexModel(config, kernel="torch_ref")
    model.reset_parameters(seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    return {
        k: v + 0.02 * torch.randn(v.shape, generator=gen) for k, v in model.state_dict().items()
    }


def write_official_checkpoint(
    path: Path, config: TiRexConfig, seed: int = 0, prefix: bool = True
) -> Path:
    state = random_state_dict(config, seed)
    if prefix:
        state = {
            ("block_stack." + k if k.startswith(("blocks.", "out_norm.")) else k): v
            for k, v in state.items()
        }
    payload = {
        "epoch": 3,
        "global_step": 1000,
        "pytorch-lightning_version": "2.5.0",
        "hyper_parameters": config.to_hyper_parameters(),
        "state_dict": state,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    return write_official_checkpoint(
        tmp_path_factory.mktemp("tiny") / "model.ckpt", TiRexConfig.from_name("tirex-test"), seed=0
    )


@pytest.fixture(scope="session")
def full_ckpt(tmp_path_factory) -> Path:
    return write_official_checkpoint(
        tmp_path_factory.mktemp("full") / "model.ckpt", TiRexConfig.from_name("tirex-35m"), seed=0
    )


def make_context(lengths, seed=0, nan_gap_in=None, constant_in=None) -> list[np.ndarray]:
    """Sine + trend + noise series of the given lengths, optional NaN gap / constant series."""
    rng = np.random.default_rng(seed)
    out = []
    for i, n in enumerate(lengths):
        t = np.arange(n)
        x = 5 + 0.01 * t + 2 * np.sin(2 * np.pi * t / (12 + 5 * i)) + rng.normal(0, 0.5, n)
        out.append(x.astype(np.float32))
    if nan_gap_in is not None:
        x = out[nan_gap_in]
        x[len(x) // 3 : len(x) // 3 + max(3, len(x) // 5)] = np.nan
    if constant_in is not None:
        out[constant_in][:] = 3.25
    return out


def tolerance_scale(series: list[np.ndarray]) -> np.ndarray:
    """Per-series std of the observed values; constant series use the model's own scale rule."""
    stds = np.array([np.nanstd(x) for x in series])
    means = np.array([abs(np.nanmean(x)) for x in series])
    return np.where(stds > 0, stds, means + 1e-5)
