"""Synthetic series driven by covariates with known effects, for training TiRex-2.

Each draw is a ``VariateSeries`` with one target, one past covariate and one known-future
covariate:

    base[t]   = season (period 7, 12 or 24) + AR(1) noise (std 1)
    past[t]   = a smooth AR(1) indicator (std 1)                       known up to now only
    future[t] = events (0/1 runs of 1-6 steps, ~8% of steps) or a smooth AR(1) driver
                (std 1), half of the draws each                       known ahead
    target[t] = level + scale * (base[t] + b_p * past[t - lag] + b_f * future[t])

with |b_f| in [2, 5] and |b_p| in [0.5, 2] (random signs), lag 1..4. The effects are in
``meta`` (``future_effect``, ``past_effect``, ``past_lag``), so that "the model uses the
covariate" is measurable: a forecast given the covariates can be much better than one from
the target alone only by reading them (the events are unpredictable from the target's past).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from rexforge.data.multivariate import VariateSeries
from rexforge.data.streams import stream_rng

_PERIODS = (7, 12, 24)


def covariate_driven(
    rng: np.random.Generator, length: int, *, signs: str = "random"
) -> tuple[np.ndarray, dict]:
    """One draw: rows [3, length] (target, past covariate, future covariate) and its effects.

    signs: ``"random"`` (each effect's sign drawn: the model must read it from the context,
    what pretraining teaches) or ``"positive"`` (one domain where a covariate always pushes the
    target up, as promotions do sales: what a fine-tune can learn as a rule)."""
    steps = np.arange(length)
    period = int(rng.choice(_PERIODS))
    phase = rng.uniform(0, 2 * np.pi)
    season = rng.uniform(0.3, 1.5) * np.sin(2 * np.pi * steps / period + phase)
    base = season + _ar1(rng, length, rng.uniform(0.0, 0.8))
    past = _ar1(rng, length, rng.uniform(0.85, 0.98))
    events = rng.random() < 0.5
    future = _events(rng, length) if events else _ar1(rng, length, rng.uniform(0.7, 0.95))
    lag = int(rng.integers(1, 5))
    past_sign, future_sign = rng.choice([-1.0, 1.0], size=2)
    if signs == "positive":
        past_sign = future_sign = 1.0
    past_effect = past_sign * rng.uniform(0.5, 2.0)
    future_effect = future_sign * rng.uniform(2.0, 5.0)
    lagged = np.concatenate([np.zeros(lag), past[:-lag]])
    level, scale = rng.uniform(-20.0, 100.0), np.exp(rng.uniform(-1.0, 3.0))
    target = level + scale * (base + past_effect * lagged + future_effect * future)
    info = {
        "future_effect": float(future_effect),
        "future_kind": "events" if events else "driver",
        "past_effect": float(past_effect),
        "past_lag": lag,
        "period": period,
        "scale": float(scale),
    }
    return np.stack([target, past, future]), info


def _ar1(rng: np.random.Generator, length: int, phi: float) -> np.ndarray:
    """A stationary AR(1) path with unit marginal std."""
    shocks = rng.standard_normal(length) * np.sqrt(1.0 - phi * phi)
    out = np.empty(length)
    out[0] = rng.standard_normal()
    for t in range(1, length):
        out[t] = phi * out[t - 1] + shocks[t]
    return out


def _events(rng: np.random.Generator, length: int) -> np.ndarray:
    """0/1 indicator: runs of 1..6 steps starting at ~2% of the steps."""
    out = np.zeros(length)
    for start in np.flatnonzero(rng.random(length) < 0.02):
        out[start : start + int(rng.integers(1, 7))] = 1.0
    return out


# The random stream of this generator (``data.synthetic``'s ``_STREAMS`` numbering).
STREAM = 6


def iter_covariate_driven(
    seed: int, length: int = 1024, *, signs: str = "random"
) -> Iterator[VariateSeries]:
    """Endless ``VariateSeries`` ``"covariate-<i>"``; draw i uses the generator keyed
    ``(seed, 0, STREAM, i)``, so a draw does not depend on how many came before."""
    for i in itertools.count():
        rows, info = covariate_driven(stream_rng(seed, 0, STREAM, i), length, signs=signs)
        yield VariateSeries(f"covariate-{i}", rows[:1], rows[1:2], rows[2:3], meta=info)
