"""WindowSampler: exact window sets, proportional sampling, and the resumable torch stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from rexforge.data.sampler import WindowDataset, WindowSampler
from rexforge.errors import InputError


def brute_force_windows(series, c, h, min_context=1, min_future=1):
    """Every valid (series_idx, end), straight from the definition."""
    out = set()
    for s, x in enumerate(series):
        for end in range(0, len(x) - h + 1):
            ctx = x[max(0, end - c) : end]
            fut = x[end : end + h]
            if (~np.isnan(ctx)).sum() >= min_context and (~np.isnan(fut)).sum() >= min_future:
                out.add((s, end))
    return out


TINY = [
    np.arange(6.0),
    np.array([1.0, 2.0]),  # too short for h=2 plus one context step: no windows
    np.array([np.nan, np.nan, 3.0, np.nan, 5.0, 6.0, np.nan, np.nan, 9.0]),
    np.arange(3.0),
]


@pytest.mark.parametrize(
    ("c", "h", "min_context", "min_future"),
    [(3, 2, 1, 1), (4, 1, 2, 1), (2, 2, 2, 2), (5, 3, 1, 0), (1, 1, 1, 1)],
)
def test_every_valid_window_is_reachable_and_nothing_else(c, h, min_context, min_future):
    sampler = WindowSampler(TINY, c, h, min_context=min_context, min_future=min_future)
    enumerated = [sampler.locate(i) for i in range(sampler.num_windows)]
    assert len(set(enumerated)) == len(enumerated)  # no window counted twice
    assert set(enumerated) == brute_force_windows(TINY, c, h, min_context, min_future)
    assert sampler.window_counts.sum() == sampler.num_windows
    for s, end in enumerated:
        assert end + h <= len(TINY[s])  # the future stays inside the series


def test_window_contents_and_padding():
    sampler = WindowSampler([np.arange(6.0)], context_length=4, prediction_length=2)
    assert sampler.num_windows == 4  # ends 1..4
    context, future = sampler.window(0, 2)
    np.testing.assert_array_equal(context, [np.nan, np.nan, 0, 1])
    np.testing.assert_array_equal(future, [2, 3])
    context, future = sampler[sampler.num_windows - 1]
    np.testing.assert_array_equal(context, [0, 1, 2, 3])
    np.testing.assert_array_equal(future, [4, 5])
    with pytest.raises(IndexError):
        sampler.locate(4)


def test_partial_future_windows_run_past_the_end_nan_padded():
    series = [np.arange(10.0), np.array([np.nan, 1.0, 2.0, np.nan])]
    strict = WindowSampler(series[:1], context_length=8, prediction_length=6)
    assert strict.num_windows == 4  # ends 1..4: the whole future inside
    sampler = WindowSampler(series, context_length=8, prediction_length=32, partial_future=True)
    # series 0: ends 1..9 (one observed step of future at least); series 1: ends 2 (future
    # [2, nan]) only, end 3 would have no observed future and end 1 no observed context.
    assert sampler.window_counts.tolist() == [9, 1]
    context, future = sampler.window(0, 7)
    np.testing.assert_array_equal(context, [np.nan, 0, 1, 2, 3, 4, 5, 6])
    assert future.shape == (32,)
    np.testing.assert_array_equal(future[:3], [7, 8, 9])
    assert np.isnan(future[3:]).all()
    assert [sampler.locate(i) for i in range(10)][-1] == (1, 2)
    with pytest.raises(InputError, match="no training windows"):
        WindowSampler([np.arange(5.0)], context_length=8, prediction_length=32)


@pytest.mark.parametrize("power, share_short", [(1.0, 1 / 101), (0.5, 1 / 11), (0.0, 0.5)])
def test_series_weight_power_shifts_draws_to_short_series(power, share_short):
    # 100 windows in the long series, 1 in the short one (context 1, horizon 1).
    series = [np.arange(101.0), np.arange(2.0)]
    sampler = WindowSampler(series, 1, 1, series_weight_power=power)
    assert sampler.window_counts.tolist() == [100, 1]
    idx = sampler.sample_indices(np.random.default_rng(0), 200_000)
    assert idx.min() >= 0 and idx.max() < sampler.num_windows
    short = (idx == 100).mean()
    assert abs(short - share_short) < 0.01
    # within the long series the windows stay uniform
    counts = np.bincount(idx[idx < 100], minlength=100)
    assert counts.min() > 0.8 * counts.mean() and counts.max() < 1.2 * counts.mean()
    with pytest.raises(InputError, match="series_weight_power"):
        WindowSampler(series, 1, 1, series_weight_power=1.5)


def test_sampling_frequency_is_proportional_to_window_counts():
    series = [np.ones(10), np.ones(40), np.ones(160)]
    sampler = WindowSampler(series, context_length=8, prediction_length=4)
    assert list(sampler.window_counts) == [6, 36, 156]
    draws = sampler.sample_indices(np.random.default_rng(0), 20_000)
    per_series = np.bincount([sampler.locate(int(i))[0] for i in draws], minlength=3)
    expected = 20_000 * sampler.window_counts / sampler.num_windows
    chi2 = float(((per_series - expected) ** 2 / expected).sum())
    assert chi2 < 13.8  # chi-square, 2 degrees of freedom, p = 0.001
    # Uniform over windows, too: each window of series 0 is drawn about 20000/198 ~ 101 times.
    per_window = np.bincount(draws, minlength=sampler.num_windows)
    assert per_window.min() > 55 and per_window.max() < 155


def test_draw_and_time_series_input():
    from rexforge.data.series import TimeSeries

    series = [TimeSeries("a", np.arange(10.0)), TimeSeries("b", np.arange(100.0, 120.0))]
    contexts_a, futures_a = WindowSampler(series, 4, 2, seed=3).draw(50)
    contexts_b, futures_b = WindowSampler(series, 4, 2, seed=3).draw(50)
    assert contexts_a.shape == (50, 4) and futures_a.shape == (50, 2)
    np.testing.assert_array_equal(contexts_a, contexts_b)
    # Every future continues its context by one step (the series are ramps).
    np.testing.assert_array_equal(futures_a[:, 0], contexts_a[:, -1] + 1)


def test_no_windows_is_an_error():
    with pytest.raises(InputError, match="no training windows"):
        WindowSampler([np.ones(2)], 4, 2)
    with pytest.raises(InputError, match="min_context must be in"):
        WindowSampler([np.ones(20)], 4, 2, min_context=5)


def make_dataset(**kwargs) -> WindowDataset:
    rng = np.random.default_rng(1)
    series = [rng.normal(size=n) for n in (30, 50, 80)]
    sampler = WindowSampler(series, context_length=16, prediction_length=4)
    return WindowDataset(sampler, seed=kwargs.pop("seed", 7), **kwargs)


def contexts(samples) -> np.ndarray:
    return np.stack([s["context"].numpy() for s in samples])


def test_stream_dtypes_shapes_and_determinism():
    a = make_dataset(samples_per_epoch=50)
    samples = list(a)
    assert len(samples) == 50
    assert samples[0]["context"].dtype == torch.float32 and samples[0]["context"].shape == (16,)
    assert samples[0]["future"].shape == (4,)
    np.testing.assert_array_equal(contexts(samples), contexts(make_dataset(samples_per_epoch=50)))
    other_seed = contexts(make_dataset(seed=8, samples_per_epoch=50))
    other_rank = contexts(make_dataset(rank=1, samples_per_epoch=50))
    assert not np.array_equal(contexts(samples), other_seed, equal_nan=True)
    assert not np.array_equal(contexts(samples), other_rank, equal_nan=True)
    a.set_epoch(1)
    assert not np.array_equal(contexts(samples), contexts(list(a)), equal_nan=True)


def test_resume_mid_epoch_continues_exactly():
    full = contexts(list(make_dataset(samples_per_epoch=3000)))
    first = make_dataset(samples_per_epoch=3000)
    iterator = iter(first)
    for _ in range(1234):  # crosses a block boundary of the window-index generator
        next(iterator)
    state = first.state_dict()
    assert state == {"seed": 7, "epoch": 0, "drawn": 1234}
    resumed = make_dataset(samples_per_epoch=3000)
    resumed.load_state_dict(state)
    np.testing.assert_array_equal(contexts(list(resumed)), full[1234:])
    with pytest.raises(InputError, match="seed 7"):
        make_dataset(seed=8).load_state_dict(state)


def test_workers_see_the_same_stream_and_resume():
    batch = 4
    reference = contexts(list(make_dataset(samples_per_epoch=40)))
    dataset = make_dataset(samples_per_epoch=40, batch_size=batch)
    loader = DataLoader(dataset, batch_size=batch, num_workers=2)
    got = torch.cat([b["context"] for b in loader]).numpy()
    np.testing.assert_array_equal(got, reference)  # independent of the worker count
    dataset.load_state_dict({"seed": 7, "epoch": 0, "drawn": 12})
    loader = DataLoader(dataset, batch_size=batch, num_workers=2)
    got = torch.cat([b["context"] for b in loader]).numpy()
    np.testing.assert_array_equal(got, reference[12:])


def test_worker_resume_needs_whole_batches(monkeypatch):
    # Pretend to be worker 0 of 2 in-process: a real worker's error costs seconds of shutdown.
    from types import SimpleNamespace

    import rexforge.data.streams as streams

    reference = contexts(list(make_dataset(samples_per_epoch=40)))
    monkeypatch.setattr(streams, "get_worker_info", lambda: SimpleNamespace(id=0, num_workers=2))
    dataset = make_dataset(samples_per_epoch=40, batch_size=4)
    dataset.load_state_dict({"epoch": 0, "drawn": 8})
    # Worker 0 makes the global batches 2, 4, 6, 8 (worker 1 makes 3, 5, 7, 9).
    expected = [i for b in (2, 4, 6, 8) for i in range(4 * b, 4 * b + 4)]
    np.testing.assert_array_equal(contexts(list(dataset)), reference[expected])
    dataset.load_state_dict({"epoch": 0, "drawn": 13})
    with pytest.raises(InputError, match="not a multiple of batch_size 4"):
        next(iter(dataset))
