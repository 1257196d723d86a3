"""Synthetic training series: KernelSynth and TSMixup (Ansari et al., 2024, "Chronos", sec. 4).

**KernelSynth** draws a Gaussian-process path whose kernel is a random composition of 1-5
kernels from a bank (linear, RBF, periodic, rational quadratic, white noise, constant), joined
by random ``+`` or ``*``. Time is normalised to [0, 1], so a periodic kernel with period
``p / 1024`` repeats every ``p`` steps of a 1024-step series.

*Speed choice:* the GP is sampled exactly (Cholesky) on at most ``max_gp_points`` (1024) points,
~10-30 ms; a longer series is the linear interpolation of that path. Periods are set relative to
the 1024-point grid, so they stretch with the series (as Chronos' fixed-1024 generator would when
resampled); white noise above 1024 points is smoothed by the interpolation. Random Fourier
features would avoid the cap but cannot represent the linear and white-noise kernels exactly.

**TSMixup** mixes k ~ U{1..K} real series: each is cropped to a common random length and
divided by its mean absolute value, then combined with Dirichlet(alpha) weights.

**Seasonal-trend series** (``seasonal_trend``) are the kind of business series M-competition-
style data is made of and that GP draws rarely give: a positive level with a (possibly damped)
trend, a seasonal profile of period 4, 7, 12, 24 or 52 applied additively or multiplicatively,
a drifting level (random walk) and AR(1) noise, on a random length of 16..1024 steps. The
design follows ETS models and the ForecastPFN prior (Dooley et al., 2023); the parameters are
ours, chosen so that trend, season and noise each dominate some of the draws.

Two short-series generators (8..160 steps, yearly/quarterly/monthly) aim at what the two above
miss: ``persistent_trend`` (growth large next to the noise, which carries on) and ``trend_cycle``
(a steady drift plus a cycle that reverts to it: the whole series' slope predicts, the last few
changes do not). ``stable_season`` (quarterly/monthly, 12..240 steps) holds a fixed season, a
steady drift and white noise: the season is best estimated over all cycles, not copied from
the last one.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rexforge.data.series import TimeSeries
from rexforge.data.streams import ResumableStream, stream_rng
from rexforge.errors import InputError

_GP_GRID = 1024  # the normalisation length the periodic kernels are defined against


@dataclass(frozen=True)
class Kernel:
    """One bank kernel: ``kind`` in {linear, rbf, periodic, rq, white, constant} and a parameter.

    Parameters follow scikit-learn's kernels used by Chronos: linear = DotProduct(sigma_0),
    rbf = RBF(length_scale), periodic = ExpSineSquared(1, periodicity), rq =
    RationalQuadratic(alpha), white = WhiteKernel(noise_level), constant = ConstantKernel(1).
    """

    kind: str
    param: float = 1.0

    def profile(self, dist: np.ndarray) -> np.ndarray:
        """A stationary kernel's value at distances ``dist`` (any shape); not for ``linear``."""
        if self.kind == "rbf":
            return np.exp(-0.5 * (dist / self.param) ** 2)
        if self.kind == "periodic":
            return np.exp(-2.0 * np.sin(np.pi * dist / self.param) ** 2)
        if self.kind == "rq":
            return (1.0 + dist**2 / (2.0 * self.param)) ** (-self.param)
        if self.kind == "white":
            return np.where(dist == 0, self.param, 0.0)
        if self.kind == "constant":
            return np.ones_like(dist)
        raise ValueError(f"kernel {self.kind!r} is not stationary or unknown")

    def matrix(self, t: np.ndarray, lag_index: np.ndarray) -> np.ndarray:
        """Gram matrix ``[N, N]`` on a uniform grid ``t [N]``; ``lag_index[i, j] = |i - j|``.

        Every kernel but ``linear`` depends only on ``|t_i - t_j|``, which on a uniform grid
        takes N values: evaluate those N and gather (Toeplitz), ~10x faster than N^2 exps/sines.
        """
        if self.kind == "linear":
            return self.param**2 + np.outer(t, t)
        return self.profile(t - t[0])[lag_index]

    def __str__(self) -> str:
        if self.kind == "periodic":
            return f"periodic({self.param * _GP_GRID:g})"
        return f"{self.kind}({self.param:g})"


# The Chronos bank: periods in steps of common seasonalities (hourly 24/48/96/168, daily 7/14/30/
# 60/365/730, weekly 4/26/52, monthly 4/6/12, quarterly 4/40, yearly 10), normalised by 1024.
_PERIODS = (24, 48, 96, 168, 336, 672, 7, 14, 30, 60, 365, 730, 4, 26, 52, 6, 12, 40, 10)
KERNEL_BANK: tuple[Kernel, ...] = (
    *(Kernel("periodic", p / _GP_GRID) for p in _PERIODS),
    Kernel("linear", 0.0),
    Kernel("linear", 1.0),
    Kernel("linear", 10.0),
    Kernel("rbf", 0.1),
    Kernel("rbf", 1.0),
    Kernel("rbf", 10.0),
    Kernel("rq", 0.1),
    Kernel("rq", 1.0),
    Kernel("rq", 10.0),
    Kernel("white", 0.1),
    Kernel("white", 1.0),
    Kernel("constant", 1.0),
)


def random_kernel(rng: np.random.Generator, max_kernels: int = 5) -> tuple[list[Kernel], list[str]]:
    """1..max_kernels bank kernels (with replacement) and the ``+``/``*`` joining each pair."""
    count = int(rng.integers(1, max_kernels + 1))
    kernels = [KERNEL_BANK[i] for i in rng.integers(0, len(KERNEL_BANK), size=count)]
    ops = [str(op) for op in rng.choice(["+", "*"], size=count - 1)]
    return kernels, ops


def describe_kernel(kernels: Sequence[Kernel], ops: Sequence[str]) -> str:
    """E.g. ``"rbf(0.1) * periodic(24) + white(0.1)"`` (applied left to right)."""
    parts = [str(kernels[0])]
    for op, k in zip(ops, kernels[1:]):
        parts += [op, str(k)]
    return " ".join(parts)


def kernel_synth(
    rng: np.random.Generator,
    length: int = 1024,
    *,
    max_kernels: int = 5,
    max_gp_points: int = 1024,
) -> tuple[np.ndarray, str]:
    """One KernelSynth series: ``(values float64 [length], kernel description)``."""
    if length < 2 or max_gp_points < 2:
        raise InputError(f"kernel_synth: length and max_gp_points must be >= 2, got {length}")
    kernels, ops = random_kernel(rng, max_kernels)
    n = min(length, max_gp_points)
    t = np.linspace(0.0, 1.0, n)
    lag_index = _lag_index(n)
    gram = kernels[0].matrix(t, lag_index)
    for op, k in zip(ops, kernels[1:]):
        gram = (operator.add if op == "+" else operator.mul)(gram, k.matrix(t, lag_index))
    path = _sample_gp(rng, gram)
    if n < length:
        path = np.interp(np.linspace(0.0, 1.0, length), t, path)
    return path, describe_kernel(kernels, ops)


@functools.lru_cache(maxsize=4)
def _lag_index(n: int) -> np.ndarray:
    """``|i - j|`` for ``i, j < n`` as int32 ``[n, n]`` (cached: the grid size rarely changes)."""
    steps = np.arange(n, dtype=np.int32)
    index = np.abs(steps[:, None] - steps[None, :])
    index.flags.writeable = False
    return index


def _sample_gp(rng: np.random.Generator, gram: np.ndarray) -> np.ndarray:
    """One zero-mean draw with covariance ``gram`` ``[N, N]``.

    Sums and products of these kernels are positive semi-definite but often numerically
    singular (constant, linear, long periods), so a growing jitter is added until Cholesky works.
    """
    scale = float(np.mean(np.diag(gram))) or 1.0
    eye = np.eye(len(gram))
    for jitter in (1e-6, 1e-4, 1e-2):
        try:
            lower = np.linalg.cholesky(gram + jitter * scale * eye)
            return lower @ rng.standard_normal(len(gram))
        except np.linalg.LinAlgError:
            continue
    # Last resort (not seen in practice: the 1e-2 jitter makes any PSD sum/product definite):
    # eigen-decomposition with negative eigenvalues from rounding clipped. Seconds, not ms.
    values, vectors = np.linalg.eigh(gram)
    return vectors @ (np.sqrt(np.clip(values, 0.0, None)) * rng.standard_normal(len(gram)))


def tsmixup(
    rng: np.random.Generator,
    series: Sequence[np.ndarray],
    *,
    max_components: int = 3,
    min_length: int = 128,
    max_length: int = 2048,
    alpha: float = 1.5,
) -> tuple[np.ndarray, list[int]]:
    """One TSMixup series: ``(values float64 [L], indices of the mixed series)``.

    ``L`` ~ U[min_length, max_length], capped by the shortest chosen series; each component is a
    random crop of length ``L`` divided by its mean |value| (so no series dominates by scale).
    A NaN in any component is NaN in the mix: a missing value cannot be half-observed.
    """
    if not series:
        raise InputError("tsmixup: no series to mix")
    if not 1 <= min_length <= max_length:
        raise InputError(
            f"tsmixup: need 1 <= min_length <= max_length, got {min_length}, {max_length}"
        )
    k = int(rng.integers(1, max_components + 1))
    chosen = [int(i) for i in rng.integers(0, len(series), size=k)]
    arrays = [np.asarray(series[i], dtype=np.float64).reshape(-1) for i in chosen]
    shortest = min(len(a) for a in arrays)
    length = min(int(rng.integers(min_length, max_length + 1)), shortest)
    weights = rng.dirichlet(np.full(k, alpha))
    mix = np.zeros(length)
    for w, a in zip(weights, arrays):
        start = int(rng.integers(0, len(a) - length + 1))
        crop = a[start : start + length]
        scale = np.nanmean(np.abs(crop)) if not np.isnan(crop).all() else np.nan
        mix += w * crop / (scale if np.isfinite(scale) and scale > 0 else 1.0)
    return mix, chosen


def _length_and_period(
    rng: np.random.Generator, name: str, min_length: int, max_length: int, periods: tuple
) -> tuple[int, int]:
    """A log-uniform length in [min_length, max_length] and a period drawn from
    ``periods`` ((period, weight) pairs); ``name`` labels the error for bad lengths."""
    if not 2 <= min_length <= max_length:
        raise InputError(
            f"{name}: need 2 <= min_length <= max_length, got {min_length}, {max_length}"
        )
    length = int(np.exp(rng.uniform(np.log(min_length), np.log(max_length + 1))))
    length = min(max(length, min_length), max_length)
    values, weights = zip(*periods)
    return length, int(rng.choice(values, p=np.asarray(weights) / sum(weights)))


def _season_profile(
    rng: np.random.Generator, t: np.ndarray, period: int, harmonics: int
) -> np.ndarray:
    """A random periodic profile over steps ``t`` [L]: up to ``harmonics`` sine harmonics
    (amplitude ~ 1/k), zero mean over whole periods, largest |value| 1; zeros for period 1."""
    season = np.zeros(len(t))
    if period > 1:
        for k in range(1, min(harmonics, period // 2) + 1):
            amp = rng.normal(0.0, 1.0 / k)
            season += amp * np.sin(2 * np.pi * k * t / period + rng.uniform(0, 2 * np.pi))
        season /= max(np.abs(season).max(), 1e-9)
    return season


def _ar1(shocks: np.ndarray, phi: float) -> np.ndarray:
    """AR(1) path x_i = phi x_{i-1} + shocks_i from x_0 = shocks_0 ([L]; a plain loop: the
    series here are at most ~1000 steps, < 1 ms)."""
    noise = np.zeros(len(shocks))
    for i in range(len(shocks)):
        noise[i] = (phi * noise[i - 1] if i else 0.0) + shocks[i]
    return noise


# (period, weight): quarterly, weekly-of-daily, monthly, hourly, weekly data; 1 = no season.
_SEASONAL_PERIODS = ((1, 0.2), (4, 0.2), (12, 0.3), (7, 0.1), (24, 0.1), (52, 0.1))


def seasonal_trend(
    rng: np.random.Generator, *, min_length: int = 16, max_length: int = 1024
) -> tuple[np.ndarray, str]:
    """One seasonal-trend series: ``(values float64 [L], description)``, ``L`` log-uniform.

    y_t = level_t * trend_t * season_t * exp(noise_t) (multiplicative) or
    level_t * trend_t + amplitude * season_t + noise_t (additive), level_t a random walk in logs.
    """
    length, period = _length_and_period(
        rng, "seasonal_trend", min_length, max_length, _SEASONAL_PERIODS
    )
    t = np.arange(length, dtype=np.float64)

    # Trend as growth per step in log space: +-2% per step at most, often near zero; damped
    # trends flatten out with phi^t (Gardner's damped trend).
    growth = rng.normal(0.0, 0.004) if rng.random() < 0.8 else rng.normal(0.0, 0.015)
    damping = rng.uniform(0.9, 1.0) if rng.random() < 0.3 else 1.0
    cumulative = np.cumsum(damping ** (t + 1)) if damping < 1.0 else t + 1
    log_trend = growth * cumulative

    # Season: a random periodic profile from 1..3 harmonics, zero mean, unit max amplitude.
    season = _season_profile(rng, t, period, harmonics=3)
    strength = rng.uniform(0.0, 0.5)

    level_walk = np.cumsum(rng.normal(0.0, rng.uniform(0.0, 0.03), size=length))
    phi, sigma = rng.uniform(0.0, 0.9), rng.uniform(0.005, 0.15)
    shocks = rng.normal(0.0, sigma * np.sqrt(1 - phi**2), size=length)
    noise = _ar1(shocks, phi)

    level = np.exp(rng.uniform(0.0, 8.0))  # scale varies over decades, as real data does
    multiplicative = rng.random() < 0.6
    if multiplicative:
        values = level * np.exp(log_trend + level_walk + noise) * (1.0 + strength * season)
    else:
        base = level * np.exp(log_trend + level_walk)
        values = base + level * (strength * season + noise)
    kind = "mul" if multiplicative else "add"
    return values, (
        f"{kind} period={period} growth={growth:.4f} damping={damping:.3f} "
        f"season={strength:.2f} ar={phi:.2f} noise={sigma:.3f}"
    )


# (period, weight) for persistent_trend: yearly, quarterly, monthly data.
_TREND_PERIODS = ((1, 0.5), (4, 0.3), (12, 0.2))


def persistent_trend(
    rng: np.random.Generator, *, min_length: int = 8, max_length: int = 160
) -> tuple[np.ndarray, str]:
    """One short series whose trend carries on: ``(values float64 [L], description)``.

    Yearly and quarterly business data (sales, arrivals, output) mostly keep growing or shrinking
    at a steady rate with noise small next to the trend. ``seasonal_trend`` draws growth too small
    for a 20-step series to show it, and a model trained on such series forecasts trending short
    series flat. Here the growth per step is drawn as a multiple (signal-to-noise ratio, 0.3..5)
    of the noise, so that over a short series the trend stands out; 70% of series grow.

    Shapes: log-linear growth (``exp(g t)``), linear growth (``1 + g t``), or a random walk with
    drift ``g``; 20% of trends are damped, 20% change slope once (the future follows the last
    slope); periods 4 and 12 add a multiplicative season of strength up to 0.3.
    """
    length, period = _length_and_period(
        rng, "persistent_trend", min_length, max_length, _TREND_PERIODS
    )
    t = np.arange(length, dtype=np.float64)

    sigma = np.exp(rng.uniform(np.log(0.005), np.log(0.1)))  # noise per step, in logs
    ratio = np.exp(rng.uniform(np.log(0.3), np.log(5.0)))
    growth = ratio * sigma * (1.0 if rng.random() < 0.7 else -1.0)
    # Slope per step, [L]: damped (phi^t) or with one break, after which the new slope holds.
    slope = np.full(length, growth)
    shape = "steady"
    if rng.random() < 0.2:
        slope *= rng.uniform(0.85, 0.99) ** t
        shape = "damped"
    elif rng.random() < 0.25 and length >= 8:
        at = int(rng.integers(length // 4, 3 * length // 4 + 1))
        slope[at:] = growth * rng.uniform(-0.5, 2.0)
        shape = f"break@{at}"

    kind = str(rng.choice(["log", "linear", "walk"], p=[0.45, 0.25, 0.3]))
    phi = rng.uniform(0.0, 0.7)
    shocks = rng.normal(0.0, sigma, size=length)
    if kind == "walk":  # drift plus accumulated shocks: the path wanders, the drift persists
        log_path = np.cumsum(slope + shocks)
    else:
        noise = _ar1(shocks * np.sqrt(1 - phi**2), phi)
        trend = np.cumsum(slope)
        if kind == "linear":
            # growth in units of the starting level; keep it away from zero and sign changes
            log_path = np.log(np.maximum(1.0 + trend, 0.05)) + noise
        else:
            log_path = trend + noise
    strength = rng.uniform(0.0, 0.3) if period > 1 else 0.0
    season = _season_profile(rng, t, period, harmonics=2)
    level = np.exp(rng.uniform(0.0, 10.0))
    values = level * np.exp(log_path) * (1.0 + strength * season)
    return values, (
        f"{kind} period={period} growth={growth:.4f} {shape} noise={sigma:.3f} ar={phi:.2f} "
        f"season={strength:.2f}"
    )


def trend_cycle(
    rng: np.random.Generator, *, min_length: int = 8, max_length: int = 160
) -> tuple[np.ndarray, str]:
    """One short series: a steady trend plus a cycle that reverts to it (``(values float64 [L],
    description)``).

    In yearly and quarterly business data (visitors, sales) a year's jump or fall is mostly
    undone later while the long-run growth carries on, so the slope over the whole series
    predicts the future and the last few changes do not. A model trained only on random walks
    and persistent trends follows the last changes instead. Here the log series is a drift
    (0.05..1.5 times the cycle's size per step, 70% growing; log-linear or linear in level) plus
    a stationary AR(2) cycle (sometimes oscillating, std 0.01..0.15 in logs), in 30% of series a
    one-off shock that decays away, and for periods 4 and 12 a season of 0.02..0.9 in logs (as
    strong as tourism data's; smooth or with a free value per slot). Monthly series are at
    least 36 steps long.
    """
    length, period = _length_and_period(rng, "trend_cycle", min_length, max_length, _TREND_PERIODS)
    if period == 12:
        length = max(length, min(36, max_length))
    t = np.arange(length, dtype=np.float64)

    sigma = np.exp(rng.uniform(np.log(0.01), np.log(0.15)))  # the cycle's std, in logs
    ratio = np.exp(rng.uniform(np.log(0.05), np.log(1.5)))
    growth = ratio * sigma * (1.0 if rng.random() < 0.7 else -1.0)

    # AR(2) cycle c_t = phi1 c_{t-1} + phi2 c_{t-2} + e_t; phi1 + phi2 <= 0.95 and phi2 >= -0.7
    # keep it stationary. 50 burn-in steps start it from its stationary distribution.
    phi1 = rng.uniform(0.2, 1.3)
    phi2 = rng.uniform(-0.7, min(0.0, 0.95 - phi1))
    burn_in = 50
    shocks = rng.normal(0.0, 1.0, size=length + burn_in)
    cycle = np.zeros(length + burn_in)
    for i in range(2, length + burn_in):
        cycle[i] = phi1 * cycle[i - 1] + phi2 * cycle[i - 2] + shocks[i]
    cycle = cycle[burn_in:]
    cycle *= sigma / max(cycle.std(), 1e-9)

    shock = np.zeros(length)
    if rng.random() < 0.3:
        at = int(rng.integers(0, length))
        size, decay = rng.normal(0.0, 3.0 * sigma), rng.uniform(0.3, 0.8)
        shock[at:] = size * decay ** (t[at:] - at)

    # Season in logs, 0.02..0.9 times a unit profile: up to the +-50% swings of tourism data.
    # Half the profiles are smooth (two harmonics), half set each slot freely (a December peak,
    # a one-quarter dip), which smooth profiles cannot draw.
    strength = np.exp(rng.uniform(np.log(0.02), np.log(0.9))) if period > 1 else 0.0
    if period > 1 and rng.random() < 0.5:
        slots = rng.normal(0.0, 1.0, size=period)
        slots -= slots.mean()
        season = slots[t.astype(np.int64) % period] / max(np.abs(slots).max(), 1e-9) * strength
    else:
        season = _season_profile(rng, t, period, harmonics=2) * strength
    level = np.exp(rng.uniform(0.0, 10.0))
    kind = "log" if rng.random() < 0.6 else "linear"
    trend = growth * t if kind == "log" else np.log(np.maximum(1.0 + growth * t, 0.05))
    values = level * np.exp(trend + cycle + shock + season)
    return values, (
        f"{kind} period={period} growth={growth:.4f} cycle={sigma:.3f} ar=({phi1:.2f},{phi2:.2f}) "
        f"season={strength:.2f}"
    )


# (period, weight) for stable_season: quarterly and monthly data.
_STABLE_SEASON_PERIODS = ((4, 0.5), (12, 0.5))


def stable_season(
    rng: np.random.Generator, *, min_length: int = 12, max_length: int = 240
) -> tuple[np.ndarray, str]:
    """One series with a fixed season, a steady drift and white noise (``(values float64 [L],
    description)``), quarterly or monthly, at least three seasons long.

    Seasonal naive copies the last season, noise and all; the best forecast averages the season
    over every cycle seen and carries the drift on. Models trained on evolving seasons and
    random-walk levels (``seasonal_trend``, most real data) shrink a season that is only a few
    noise widths strong towards flat and barely extrapolate drift under a season. In noise
    units: the season's std is 0.3..5 (log-uniform), the drift 0.05..2 per year (70% growing),
    the noise white or slightly autocorrelated (AR(1), phi < 0.4); half the profiles are smooth
    (harmonics), half set each slot freely. The series is ``level * exp(u)`` (60%) or
    ``level * (1 + u)`` with ``u`` those components times 0.01..0.15.
    """
    length, period = _length_and_period(
        rng, "stable_season", min_length, max_length, _STABLE_SEASON_PERIODS
    )
    length = max(length, min(3 * period, max_length))
    t = np.arange(length, dtype=np.float64)

    season_std = np.exp(rng.uniform(np.log(0.3), np.log(5.0)))
    if rng.random() < 0.5:
        slots = rng.normal(0.0, 1.0, size=period)
        profile = slots[t.astype(np.int64) % period]
    else:
        profile = _season_profile(rng, t, period, harmonics=3)
    one_cycle = profile[:period] - profile[:period].mean()
    profile = (profile - profile[:period].mean()) / max(one_cycle.std(), 1e-9) * season_std

    per_year = np.exp(rng.uniform(np.log(0.05), np.log(2.0))) * (
        1.0 if rng.random() < 0.7 else -1.0
    )
    phi = rng.uniform(0.0, 0.4)
    noise = _ar1(rng.normal(0.0, np.sqrt(1.0 - phi**2), size=length), phi)
    units = per_year / period * t + profile + noise  # [L], in noise standard deviations

    size = np.exp(rng.uniform(np.log(0.01), np.log(0.15)))  # one noise std, relative
    level = np.exp(rng.uniform(0.0, 10.0))
    multiplicative = rng.random() < 0.6
    values = level * (np.exp(size * units) if multiplicative else 1.0 + size * units)
    kind = "mul" if multiplicative else "add"
    return values, (
        f"{kind} period={period} season={season_std:.2f} drift/year={per_year:.3f} "
        f"ar={phi:.2f} noise={size:.3f}"
    )


# Random stream of each generator's draws under one seed: distinct, so that two generators
# used together never consume the same random numbers. Fixed numbers: changing one changes
# that generator's series for every seed.
_STREAMS = {
    "kernelsynth": 0,
    "seasonal": 1,
    "trend": 2,
    "cycle": 3,
    "tsmixup": 4,
    "stable": 5,
    "covariate": 6,  # data.synthetic_covariates
}


def _iter_draws(seed: int, prefix: str, meta_key: str, draw: Callable) -> Iterator[TimeSeries]:
    """Endless ``TimeSeries`` ``"<prefix>-<i>"`` from ``draw(rng) -> (values, info)``; draw ``i``
    uses the generator keyed ``(seed, 0, _STREAMS[prefix], i)``."""
    stream = _STREAMS[prefix]
    for i in itertools.count():
        values, info = draw(stream_rng(seed, 0, stream, i))
        yield TimeSeries(f"{prefix}-{i}", values, meta={meta_key: info})


def iter_persistent_trend(
    seed: int, *, min_length: int = 8, max_length: int = 160
) -> Iterator[TimeSeries]:
    """Endless ``persistent_trend`` ``TimeSeries`` (``"trend-<i>"``, description in meta)."""
    draw = functools.partial(persistent_trend, min_length=min_length, max_length=max_length)
    return _iter_draws(seed, "trend", "components", draw)


def iter_trend_cycle(
    seed: int, *, min_length: int = 8, max_length: int = 160
) -> Iterator[TimeSeries]:
    """Endless ``trend_cycle`` ``TimeSeries`` (``"cycle-<i>"``, description in meta)."""
    draw = functools.partial(trend_cycle, min_length=min_length, max_length=max_length)
    return _iter_draws(seed, "cycle", "components", draw)


def iter_stable_season(
    seed: int, *, min_length: int = 12, max_length: int = 240
) -> Iterator[TimeSeries]:
    """Endless ``stable_season`` ``TimeSeries`` (``"stable-<i>"``, description in meta)."""
    draw = functools.partial(stable_season, min_length=min_length, max_length=max_length)
    return _iter_draws(seed, "stable", "components", draw)


def iter_seasonal_trend(
    seed: int, *, min_length: int = 16, max_length: int = 1024
) -> Iterator[TimeSeries]:
    """Endless ``seasonal_trend`` ``TimeSeries`` (``"seasonal-<i>"``, description in meta)."""
    draw = functools.partial(seasonal_trend, min_length=min_length, max_length=max_length)
    return _iter_draws(seed, "seasonal", "components", draw)


def iter_kernel_synth(
    seed: int, length: int = 1024, *, max_kernels: int = 5, max_gp_points: int = 1024
) -> Iterator[TimeSeries]:
    """Endless KernelSynth ``TimeSeries`` (``item_id`` ``"kernelsynth-<i>"``, kernel in meta)."""

    def draw(rng):
        return kernel_synth(rng, length, max_kernels=max_kernels, max_gp_points=max_gp_points)

    return _iter_draws(seed, "kernelsynth", "kernel", draw)


def iter_tsmixup(seed: int, series: Sequence[np.ndarray], **kwargs) -> Iterator[TimeSeries]:
    """Endless TSMixup ``TimeSeries`` (``meta["sources"]`` lists the mixed series' indices)."""
    return _iter_draws(seed, "tsmixup", "sources", lambda rng: tsmixup(rng, series, **kwargs))


class SyntheticDataset(ResumableStream):
    """``IterableDataset`` of ``{"target": float32 [L]}`` from ``make(rng) -> values``.

    Sample ``i`` uses its own generator keyed by ``(seed, epoch, rank, i)``, so the stream is
    deterministic, independent of worker count and resumable (see ``ResumableStream``).
    Variable-length outputs (TSMixup) need ``DataLoader(batch_size=None)`` or a windowing step.
    """

    def __init__(self, make: Callable[[np.random.Generator], np.ndarray], *, seed: int, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.make = make

    def sample(self, i: int) -> dict[str, torch.Tensor]:
        values = self.make(stream_rng(self.seed, self.epoch, self.rank, i))
        return {"target": torch.from_numpy(np.asarray(values, dtype=np.float32))}


def kernel_synth_dataset(
    *, seed: int, length: int = 1024, max_kernels: int = 5, **stream_kwargs
) -> SyntheticDataset:
    """A ``SyntheticDataset`` of fixed-length KernelSynth series (batchable as is)."""
    make = functools.partial(_kernel_synth_values, length=length, max_kernels=max_kernels)
    return SyntheticDataset(make, seed=seed, **stream_kwargs)


def tsmixup_dataset(
    series: Sequence[np.ndarray], *, seed: int, mix_kwargs: dict | None = None, **stream_kwargs
) -> SyntheticDataset:
    """A ``SyntheticDataset`` of TSMixup mixes of ``series`` (lengths vary)."""
    make = functools.partial(_tsmixup_values, series=series, **(mix_kwargs or {}))
    return SyntheticDataset(make, seed=seed, **stream_kwargs)


# Module-level (not lambdas) so datasets pickle into DataLoader worker processes.
def _kernel_synth_values(rng: np.random.Generator, *, length: int, max_kernels: int) -> np.ndarray:
    return kernel_synth(rng, length, max_kernels=max_kernels)[0]


def _tsmixup_values(rng: np.random.Generator, *, series, **kwargs) -> np.ndarray:
    return tsmixup(rng, series, **kwargs)[0]
