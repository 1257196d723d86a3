"""KernelSynth and TSMixup: kernel maths, GP sampling statistics, mixing, seeded streams."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from rexforge.data.streams import stream_rng
from rexforge.data.synthetic import (
    _STREAMS,
    KERNEL_BANK,
    Kernel,
    _lag_index,
    _sample_gp,
    iter_kernel_synth,
    iter_persistent_trend,
    iter_seasonal_trend,
    iter_stable_season,
    iter_trend_cycle,
    iter_tsmixup,
    kernel_synth,
    kernel_synth_dataset,
    persistent_trend,
    seasonal_trend,
    stable_season,
    trend_cycle,
    tsmixup,
    tsmixup_dataset,
)
from rexforge.errors import InputError


def test_kernel_values_match_definitions():
    t = np.array([0.0, 0.5, 1.0])
    lags = _lag_index(3)
    np.testing.assert_allclose(Kernel("rbf", 0.5).matrix(t, lags)[0, 1], np.exp(-0.5))
    np.testing.assert_allclose(Kernel("periodic", 0.5).matrix(t, lags)[0, 2], 1.0)  # 2 periods
    np.testing.assert_allclose(Kernel("periodic", 1.0).matrix(t, lags)[0, 1], np.exp(-2.0))
    np.testing.assert_allclose(Kernel("rq", 1.0).matrix(t, lags)[0, 2], 1 / 1.5)
    np.testing.assert_allclose(Kernel("linear", 1.0).matrix(t, lags)[1, 2], 1.5)
    np.testing.assert_array_equal(Kernel("white", 0.1).matrix(t, lags), 0.1 * np.eye(3))
    np.testing.assert_array_equal(Kernel("constant").matrix(t, lags), np.ones((3, 3)))
    # The Toeplitz gather equals the direct evaluation on all pairwise distances.
    grid = np.linspace(0, 1, 7)
    direct = Kernel("periodic", 0.3).profile(np.abs(grid[:, None] - grid[None, :]))
    np.testing.assert_allclose(Kernel("periodic", 0.3).matrix(grid, _lag_index(7)), direct)
    assert str(Kernel("periodic", 24 / 1024)) == "periodic(24)"
    kinds = {k.kind for k in KERNEL_BANK}
    assert kinds == {"periodic", "linear", "rbf", "rq", "white", "constant"}


def test_gp_samples_have_the_requested_covariance():
    t = np.linspace(0, 1, 6)
    gram = Kernel("rbf", 0.3).matrix(t, _lag_index(6))
    rng = np.random.default_rng(0)
    draws = np.stack([_sample_gp(rng, gram) for _ in range(4000)])
    np.testing.assert_allclose(np.cov(draws.T), gram, atol=0.08)


def test_singular_kernels_still_sample():
    t = np.linspace(0, 1, 50)
    d = _lag_index(50)
    rng = np.random.default_rng(0)
    constant = _sample_gp(rng, Kernel("constant").matrix(t, d))
    # A constant path, up to the 1e-6 relative jitter (noise std 1e-3).
    assert np.ptp(constant) < 1e-2 * max(1.0, abs(constant[0]))
    line = _sample_gp(rng, Kernel("linear", 0.0).matrix(t, d))  # a line through the origin
    np.testing.assert_allclose(line, line[-1] * t, atol=1e-2 * max(1.0, abs(line[-1])))


@pytest.mark.parametrize(("length", "gp_points"), [(64, 1024), (300, 300), (2048, 256)])
def test_kernel_synth_shapes_and_seed(length, gp_points):
    # Small GP grids keep this fast: a 1024-point Cholesky is ~50 ms alone but seconds when
    # BLAS threads fight other processes for the cores.
    values, kernel = kernel_synth(np.random.default_rng(3), length, max_gp_points=gp_points)
    assert values.shape == (length,) and np.isfinite(values).all()
    again, kernel_again = kernel_synth(np.random.default_rng(3), length, max_gp_points=gp_points)
    np.testing.assert_array_equal(values, again)
    assert kernel == kernel_again and kernel.split()[0].split("(")[0] in {
        k.kind for k in KERNEL_BANK
    }


def test_kernel_synth_stream_is_seeded():
    first = [s.target for s in itertools.islice(iter_kernel_synth(5, 128), 3)]
    again = [s.target for s in itertools.islice(iter_kernel_synth(5, 128), 3)]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])
    series = next(iter_kernel_synth(5, 128))
    assert series.item_id == "kernelsynth-0" and "kernel" in series.meta


def test_tsmixup_of_constants_is_one():
    # Mean scaling maps every positive constant series to 1, and convex weights keep it there.
    series = [np.full(300, 2.0), np.full(500, 5.0), np.full(400, 10.0)]
    rng = np.random.default_rng(0)
    for _ in range(20):
        mix, chosen = tsmixup(rng, series, max_components=3, min_length=50, max_length=1000)
        np.testing.assert_allclose(mix, 1.0)
        assert 1 <= len(chosen) <= 3
        assert 50 <= len(mix) <= min(len(series[i]) for i in chosen)


def test_tsmixup_single_component_is_scaled_crop():
    x = np.arange(1.0, 101.0)
    mix, chosen = tsmixup(np.random.default_rng(1), [x], max_components=1, min_length=10)
    assert chosen == [0]
    start = int(round(mix[0] * np.mean(np.abs(x[: len(mix)])))) - 1  # invert the scale
    crop = x[start : start + len(mix)]
    np.testing.assert_allclose(mix, crop / np.mean(crop))
    with pytest.raises(InputError, match="no series to mix"):
        tsmixup(np.random.default_rng(0), [])


def test_tsmixup_stream():
    series = [np.arange(1.0, 200.0), np.full(150, 3.0)]
    a = [s.target for s in itertools.islice(iter_tsmixup(9, series, min_length=20), 4)]
    b = [s.target for s in itertools.islice(iter_tsmixup(9, series, min_length=20), 4)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_synthetic_datasets_are_deterministic_across_workers():
    dataset = kernel_synth_dataset(seed=2, length=32, samples_per_epoch=8, batch_size=2)
    in_process = torch.stack([s["target"] for s in dataset])
    assert in_process.shape == (8, 32) and in_process.dtype == torch.float32
    with_workers = torch.cat(
        [b["target"] for b in DataLoader(dataset, batch_size=2, num_workers=2)]
    )
    torch.testing.assert_close(with_workers, in_process, rtol=0, atol=0)
    mixes = tsmixup_dataset(
        [np.ones(40)], seed=0, mix_kwargs={"min_length": 5}, samples_per_epoch=3
    )
    assert [tuple(m["target"].shape)[0] >= 5 for m in mixes] == [True] * 3


def test_seasonal_trend_series_have_their_stated_period():
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    first, info = seasonal_trend(rng_a, min_length=16, max_length=64)
    np.testing.assert_array_equal(first, seasonal_trend(rng_b, min_length=16, max_length=64)[0])
    assert 16 <= len(first) <= 64 and info.split()[0] in ("mul", "add")
    draws = list(itertools.islice(iter_seasonal_trend(0), 400))
    assert [d.item_id for d in draws[:2]] == ["seasonal-0", "seasonal-1"]
    lengths = np.array([len(d.target) for d in draws])
    assert lengths.min() >= 16 and lengths.max() <= 1024 and np.median(lengths) < 300
    assert all(np.isfinite(d.target).all() for d in draws)
    periods = [int(d.meta["components"].split("period=")[1].split()[0]) for d in draws]
    assert 0.2 < periods.count(12) / 400 < 0.4  # the monthly share (weight 0.3)
    # A long, strongly seasonal draw: its autocorrelation peaks at the stated period.
    for d, period in zip(draws, periods):
        season = float(d.meta["components"].split("season=")[1].split()[0])
        noise = float(d.meta["components"].split("noise=")[1])
        if period == 12 and season > 0.4 and noise < 0.03 and len(d.target) >= 240:
            x = np.diff(np.log(np.abs(d.target) + 1e-9))
            x = x - x.mean()
            acf = [np.dot(x[:-lag], x[lag:]) / np.dot(x, x) for lag in range(1, 25)]
            assert int(np.argmax(acf[:15])) + 1 == 12
            break
    else:
        pytest.fail("no long, strongly seasonal monthly draw among 400")


def test_seasonal_trend_rejects_bad_lengths():
    with pytest.raises(InputError, match="min_length"):
        seasonal_trend(np.random.default_rng(0), min_length=10, max_length=5)


def test_persistent_trend_series_keep_their_trend():
    a = persistent_trend(np.random.default_rng(5), min_length=8, max_length=40)
    b = persistent_trend(np.random.default_rng(5), min_length=8, max_length=40)
    np.testing.assert_array_equal(a[0], b[0])
    assert 8 <= len(a[0]) <= 40 and a[1].split()[0] in ("log", "linear", "walk")
    draws = list(itertools.islice(iter_persistent_trend(0), 600))
    assert [d.item_id for d in draws[:2]] == ["trend-0", "trend-1"]
    lengths = np.array([len(d.target) for d in draws])
    assert lengths.min() >= 8 and lengths.max() <= 160 and 20 < np.median(lengths) < 60
    assert all(np.isfinite(d.target).all() and (d.target > 0).all() for d in draws)
    growths = np.array([float(d.meta["components"].split("growth=")[1].split()[0]) for d in draws])
    assert 0.6 < (growths > 0).mean() < 0.8  # 70% grow
    # Steady, seasonless log-linear trends: the slope fitted to the first half of the series
    # predicts the second half's (same sign, similar size): the trend carries on.
    first, second = [], []
    for d in draws:
        info = d.meta["components"]
        if info.startswith("log period=1 ") and "steady" in info and len(d.target) >= 16:
            y = np.log(d.target)
            half = len(y) // 2
            first.append(np.polyfit(np.arange(half), y[:half], 1)[0])
            second.append(np.polyfit(np.arange(len(y) - half), y[half:], 1)[0])
    first, second = np.array(first), np.array(second)
    assert len(first) >= 30
    assert (np.sign(first) == np.sign(second)).mean() > 0.85
    assert np.corrcoef(first, second)[0, 1] > 0.8


def test_persistent_trend_rejects_bad_lengths():
    with pytest.raises(InputError, match="min_length"):
        persistent_trend(np.random.default_rng(0), min_length=1, max_length=5)


def test_trend_cycle_series_revert_to_their_trend():
    a = trend_cycle(np.random.default_rng(3), min_length=8, max_length=40)
    b = trend_cycle(np.random.default_rng(3), min_length=8, max_length=40)
    np.testing.assert_array_equal(a[0], b[0])
    draws = list(itertools.islice(iter_trend_cycle(0), 800))
    assert [d.item_id for d in draws[:2]] == ["cycle-0", "cycle-1"]
    lengths = [len(d.target) for d in draws]
    assert min(lengths) >= 8 and max(lengths) <= 160
    monthly = [len(d.target) for d in draws if " period=12 " in d.meta["components"]]
    assert len(monthly) > 100 and min(monthly) >= 36
    assert all(np.isfinite(d.target).all() and (d.target > 0).all() for d in draws)
    # What the generator is for: on the seasonless log-linear series, the change from the last
    # value to the mean of the next 4 follows the slope over the first part of the series; once
    # that slope is known, the last step's change adds nothing (the cycle undoes it): its
    # coefficient in a joint regression is negative.
    global_slope, last_step, ahead = [], [], []
    for d in draws:
        if d.meta["components"].startswith("log period=1 ") and len(d.target) >= 20:
            y = np.log(d.target)
            past = y[:-4]
            global_slope.append((past[-1] - past[0]) / (len(past) - 1))
            last_step.append(past[-1] - past[-2])
            ahead.append(y[-4:].mean() - past[-1])
    global_slope, last_step, ahead = map(np.array, (global_slope, last_step, ahead))
    assert len(ahead) >= 60
    assert np.corrcoef(global_slope, ahead)[0, 1] > 0.4
    design = np.c_[
        np.ones_like(ahead), global_slope / global_slope.std(), last_step / last_step.std()
    ]
    coef = np.linalg.lstsq(design, ahead / ahead.std(), rcond=None)[0]
    assert coef[1] > 0.5 and coef[2] < -0.1


def test_stable_season_rewards_averaging_the_season_over_all_cycles():
    a = stable_season(np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], stable_season(np.random.default_rng(5))[0])
    draws = list(itertools.islice(iter_stable_season(0), 600))
    assert [d.item_id for d in draws[:2]] == ["stable-0", "stable-1"]
    periods = np.array([int(d.meta["components"].split("period=")[1].split()[0]) for d in draws])
    assert set(periods) == {4, 12} and 0.4 < (periods == 4).mean() < 0.6
    lengths = np.array([len(d.target) for d in draws])
    assert lengths.max() <= 240 and (lengths >= 3 * periods).all()
    assert all(np.isfinite(d.target).all() for d in draws)
    # What the generator is for: a regression on time and season dummies over all earlier
    # cycles forecasts the last cycle better than seasonal naive (the cycle before it, plus
    # the drift seen over it), because the noise of one cycle does not repeat.
    ratios = []
    for d, period in zip(draws, periods):
        if not d.meta["components"].startswith("mul") or len(d.target) < 5 * period:
            continue
        y = np.log(d.target)
        past, last = y[:-period], y[-period:]
        t = np.arange(len(y))
        design = np.c_[t, np.eye(period)[t % period]]
        coef = np.linalg.lstsq(design[:-period], past, rcond=None)[0]
        regression = design[-period:] @ coef
        naive = past[-period:] + (past[-1] - past[0]) / (len(past) - 1) * period
        ratios.append(np.abs(regression - last).mean() / np.abs(naive - last).mean())
    assert len(ratios) >= 150
    assert np.median(ratios) < 0.85


def test_generators_draw_from_distinct_random_streams():
    # Under one seed, KernelSynth and TSMixup used to share stream 0: draw i of each consumed
    # the same random numbers.
    assert len(set(_STREAMS.values())) == len(_STREAMS)
    series = [np.sin(np.arange(300) / (3 + k)) for k in range(5)]
    mix = next(iter_tsmixup(0, series, min_length=20))
    same_stream = tsmixup(stream_rng(0, 0, _STREAMS["kernelsynth"], 0), series, min_length=20)
    own_stream = tsmixup(stream_rng(0, 0, _STREAMS["tsmixup"], 0), series, min_length=20)
    np.testing.assert_array_equal(mix.target, own_stream[0])
    assert not np.array_equal(mix.target, same_stream[0])
