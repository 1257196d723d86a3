"""``resample_strategy="frequency"``: TiRex's long-period normalisation, as the official
forecaster computes it (same equations, same float32 operations, so forecasts are equal).

A series whose dominant period (from its FFT amplitude spectrum) is longer than
``TARGET_PERIOD`` steps is averaged down so that one period spans about ``TARGET_PERIOD``
steps; the factor is snapped to 1 or 1/k (k = 2..12). The model forecasts the coarse series
for ``ceil(horizon * factor)`` steps, and the forecast is linearly interpolated back to the
original resolution. Horizons under ``MIN_HORIZON`` and series shorter than
``2 * MAX_PERIOD`` are never resampled.
"""

from __future__ import annotations

import math

import torch

TARGET_PERIOD = 64  # steps one dominant period should span after downsampling
MIN_HORIZON = 100  # shorter horizons keep the original resolution
DEFAULT_HORIZON = 100  # the official horizon when none is given with resampling
# The official forecaster derives the longest period it looks for from its max context 2016.
OFFICIAL_MAX_CONTEXT = 2016
MAX_PERIOD = (OFFICIAL_MAX_CONTEXT // 1000) * 500  # 1000 steps
PEAK_HEIGHT = 0.1  # a peak must exceed this fraction of the spectrum's maximum
HARMONIC_RATIOS = (1.5, 2.5)  # two peaks this far apart are taken as harmonics
FRACTION_DENOMINATORS = range(2, 13)  # factors snap to 1 or 1/k for these k


def fill_gaps_linearly(x: torch.Tensor) -> torch.Tensor:
    """[T] -> [T]: NaNs replaced by linear interpolation, edge NaNs by the nearest value."""
    observed = ~torch.isnan(x)
    if observed.all():
        return x
    if not observed.any():
        return torch.zeros_like(x)
    positions = torch.arange(x.numel())
    known_at, known = positions[observed], x[observed]
    after = torch.searchsorted(known_at, positions)  # first known position >= each position
    right = after.clamp(max=known_at.numel() - 1)
    left = (after - 1).clamp(min=0)
    span = (known_at[right] - known_at[left]).to(x.dtype)
    fraction = (positions.to(x.dtype) - known_at[left].to(x.dtype)) / span.clamp(min=1)
    between = known[left] + (known[right] - known[left]) * fraction
    filled = torch.where(after == 0, known[right], between)  # before the first observation
    filled = torch.where(after == known_at.numel(), known[left], filled)  # after the last
    return torch.where(observed, x, filled)


def amplitude_spectrum(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[T] -> (frequencies [T//2+1] in cycles per step, one-sided Hann-windowed amplitude
    spectrum [T//2+1] divided by its maximum)."""
    n = x.numel()
    centred = fill_gaps_linearly(x)
    centred = centred - centred.mean()
    window = torch.hann_window(n, dtype=torch.float32)
    window_power = window.square().sum() / n
    amplitude = torch.fft.rfft(centred * window).abs() / (n * window_power.sqrt())
    # One-sided: every bin but DC (and Nyquist for even n) holds two conjugate halves.
    if n % 2 == 0:
        amplitude[1:-1] *= 2.0
    else:
        amplitude[1:] *= 2.0
    peak = amplitude.max()
    if peak > 0:
        amplitude = amplitude / peak
    return torch.fft.rfftfreq(n, d=1.0, dtype=torch.float32), amplitude


def spectral_peaks(freqs: torch.Tensor, spectrum: torch.Tensor) -> list[int]:
    """Indices of the (at most two) highest local maxima of ``spectrum`` [F] whose period is in
    [TARGET_PERIOD, MAX_PERIOD]; none when any prominent peak has a shorter period (the
    series already varies fast: keep its resolution)."""
    if spectrum.numel() < 5:
        return []
    spectrum = spectrum * (freqs >= 1 / MAX_PERIOD).to(spectrum.dtype)  # drop slow drifts
    centre = spectrum[1:-2]  # bins 1 .. F-3: the last two bins are never peaks
    is_peak = (centre > spectrum[:-3]) & (centre > spectrum[2:-1]) & (centre > PEAK_HEIGHT)
    candidates = [(int(i) + 1, float(h)) for i, h in zip(is_peak.nonzero()[:, 0], centre[is_peak])]
    periods = {i: 1.0 / float(freqs[i]) for i, _ in candidates if float(freqs[i]) > 0}
    if any(p < TARGET_PERIOD for p in periods.values()):
        return []
    kept = [(i, h) for i, h in candidates if TARGET_PERIOD <= periods.get(i, 0.0) <= MAX_PERIOD]
    kept.sort(key=lambda item: item[1], reverse=True)  # stable: ties keep frequency order
    return [i for i, _ in kept[:2]]


def snap_to_unit_fraction(factor: float) -> float:
    """The float32 value nearest ``factor`` among 1 and 1/k, k in FRACTION_DENOMINATORS."""
    denominators = torch.tensor(list(FRACTION_DENOMINATORS), dtype=torch.float32)
    choices = torch.cat([torch.ones(1), 1.0 / denominators])
    distance = (torch.tensor(factor, dtype=torch.float32) - choices).abs()
    return float(choices[int(distance.argmin())])


def downsampling_factor(series: torch.Tensor, horizon: int) -> float:
    """The factor (<= 1) by which ``series`` [T] is resampled; 1.0 means unchanged."""
    if horizon < MIN_HORIZON or series.numel() < 2 * MAX_PERIOD:
        return 1.0
    freqs, spectrum = amplitude_spectrum(series.float())
    peaks = spectral_peaks(freqs, spectrum)
    if not peaks:
        return 1.0
    chosen = float(freqs[peaks[0]])
    if len(peaks) == 2:
        low, high = sorted((float(freqs[peaks[0]]), float(freqs[peaks[1]])))
        if low > 0 and HARMONIC_RATIOS[0] <= high / low <= HARMONIC_RATIOS[1]:
            chosen = low  # of two harmonics, the fundamental (longer period) wins
    if not math.isfinite(chosen) or chosen <= 0:
        return 1.0
    factor = round(TARGET_PERIOD / (1.0 / chosen), 4)
    if not math.isfinite(factor) or factor <= 0:
        return 1.0
    return min(1.0, snap_to_unit_fraction(factor))


def window_mean_downsample(x: torch.Tensor, factor: float) -> torch.Tensor:
    """[T] -> [ceil(T * factor)]: NaN-ignoring means over windows of 1/factor steps centred on
    evenly spaced points of [0, T-1] (NaN where a window holds no observation)."""
    if factor <= 0 or factor == 1:
        return x.float()
    n = x.shape[-1]
    centres = torch.linspace(0, n - 1, math.ceil(n * factor))
    half_width = 0.5 * (1.0 / factor)
    first = torch.ceil(centres - half_width).long().clamp(0, n - 1)
    last = torch.floor(centres + half_width).long().clamp(0, n - 1)
    last = torch.maximum(last, first)
    x = x.float()
    observed = ~torch.isnan(x)
    # Running sums [T+1] with a leading 0: the sum over [a, b] is sums[b+1] - sums[a].
    zero = torch.zeros(1)
    sums = torch.cat([zero, torch.where(observed, x, torch.zeros_like(x)).cumsum(-1)])
    counts = torch.cat([zero, observed.float().cumsum(-1)])
    total = sums[last + 1] - sums[first]
    count = counts[last + 1] - counts[first]
    means = total / torch.where(count > 0, count, torch.ones_like(count))
    return torch.where(count > 0, means, torch.full_like(means, float("nan")))


def interpolate_upsample(x: torch.Tensor, rate: float) -> torch.Tensor:
    """[..., T] -> [..., ceil(T * rate)]: linear interpolation at evenly spaced points of
    [0, T-1] (rate > 1)."""
    n = x.shape[-1]
    points = torch.linspace(0, n - 1, math.ceil(n * rate))
    below, above = points.floor().long(), points.ceil().long()
    offset = points - below
    x_below, x_above = x[..., below].float(), x[..., above].float()
    between = (x_above - x_below) * offset + x_below
    return torch.where(below == above, x_below, between)


def downsample_batch(
    series: list[torch.Tensor], horizon: int
) -> tuple[list[torch.Tensor], list[float], int]:
    """Resample each series [T_i]; returns the resampled series, their factors and the horizon
    the batch is forecast for (the longest of the per-series ``ceil(horizon * factor)``)."""
    factors = [downsampling_factor(s, horizon) for s in series]
    resampled = [window_mean_downsample(s, f) for s, f in zip(series, factors)]
    coarse_horizon = max(math.ceil(horizon * f) for f in factors)
    return resampled, factors, coarse_horizon


def upsample_forecasts(quantiles: torch.Tensor, factors: list[float], horizon: int) -> torch.Tensor:
    """[B, H', Q] coarse forecasts -> [B, horizon, Q]: each row's first ceil(horizon * factor)
    steps interpolated back to the original resolution."""
    rows = []
    for row, factor in zip(quantiles, factors):
        coarse = row[: math.ceil(horizon * factor)].transpose(0, 1)  # [Q, H_i]
        fine = coarse if factor == 1 else interpolate_upsample(coarse, 1 / factor)
        rows.append(fine.transpose(0, 1)[:horizon])  # [horizon, Q]
    return torch.stack(rows)
