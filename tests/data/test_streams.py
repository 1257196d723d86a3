"""ResumableStream: how samples are split over workers, epochs and resumes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import rexforge.data.streams as streams
from rexforge.data.streams import ResumableStream, stream_rng
from rexforge.errors import InputError


class Counting(ResumableStream):
    """Yields the sample index itself, so the tests read the schedule directly."""

    def sample(self, i: int) -> int:
        return i


def as_worker(monkeypatch, worker: int, workers: int) -> None:
    info = SimpleNamespace(id=worker, num_workers=workers)
    monkeypatch.setattr(streams, "get_worker_info", lambda: info)


def test_workers_take_interleaved_whole_batches(monkeypatch):
    stream = Counting(seed=0, batch_size=3, samples_per_epoch=14)
    as_worker(monkeypatch, 0, 2)
    assert list(stream) == [0, 1, 2, 6, 7, 8, 12, 13]
    as_worker(monkeypatch, 1, 2)
    assert list(stream) == [3, 4, 5, 9, 10, 11]


def test_position_resume_and_epoch_reset():
    stream = Counting(seed=0, samples_per_epoch=5)
    iterator = iter(stream)
    assert [next(iterator), next(iterator)] == [0, 1]
    assert stream.state_dict() == {"seed": 0, "epoch": 0, "drawn": 2}
    assert list(iterator) == [2, 3, 4]
    assert stream.state_dict()["drawn"] == 0  # a finished pass starts over
    stream.load_state_dict({"epoch": 3, "drawn": 4})
    assert list(stream) == [4] and stream.epoch == 3
    stream.set_epoch(4)
    assert stream.state_dict() == {"seed": 0, "epoch": 4, "drawn": 0}


def test_endless_stream():
    stream = Counting(seed=1)
    iterator = iter(stream)
    assert [next(iterator) for _ in range(3)] == [0, 1, 2]


@pytest.mark.parametrize(
    "kwargs", [{"seed": -1}, {"seed": 0, "batch_size": 0}, {"seed": 0, "samples_per_epoch": 0}]
)
def test_bad_arguments(kwargs):
    with pytest.raises(InputError):
        Counting(**kwargs)


def test_stream_rng_keys_are_independent():
    # seed + rank arithmetic would make these two collide; hashing the key does not.
    a = stream_rng(0, 0, 1, 0).integers(0, 2**62)
    b = stream_rng(1, 0, 0, 0).integers(0, 2**62)
    assert a != b
    assert stream_rng(5, 1, 2, 3).random() == stream_rng(5, 1, 2, 3).random()
