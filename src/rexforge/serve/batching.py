"""Merge concurrent forecast requests into one forward pass.

Requests go onto an asyncio queue; one worker task takes the first, keeps gathering for up to
``max_wait_s`` or until ``max_batch_series`` series are waiting, groups what it got by
``ForecastKey`` (requests can only share a forward pass when they ask for the same horizon,
rollout and quantile levels), runs each group's forecast in a thread so the event loop keeps
accepting requests, and hands every request its own rows of the result.

Only one forecast runs at a time: torch already spreads one forward pass over all cores, and
requests that arrive meanwhile simply form the next batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForecastKey:
    """What requests must agree on to be forecast together."""

    prediction_length: int
    rollout: str | None  # None: the model has no rollout option
    quantile_levels: tuple[float, ...] | None


# (series, key) -> (quantiles [B, H, Q], mean [B, H]) as numpy arrays; runs in a thread.
ForecastFunction = Callable[[list[np.ndarray], ForecastKey], tuple[np.ndarray, np.ndarray]]


@dataclass
class _PendingRequest:
    series: list[np.ndarray]
    key: ForecastKey
    future: asyncio.Future


class ForecastBatcher:
    """Queue + one worker; ``start`` and ``stop`` run inside the server's event loop."""

    def __init__(self, forecast: ForecastFunction, max_wait_s: float, max_batch_series: int):
        self._forecast = forecast
        self._max_wait_s = max_wait_s
        self._max_batch_series = max_batch_series
        self._queue: asyncio.Queue[_PendingRequest] | None = None
        self._worker: asyncio.Task | None = None
        # How many forecasts ran and how many requests they served: tests and logs read them.
        self.forward_passes = 0
        self.requests_served = 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._work(), name="rexforge-forecast-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        while self._queue is not None and not self._queue.empty():
            _resolve(self._queue.get_nowait().future, error=RuntimeError("server shutting down"))

    async def submit(
        self, series: list[np.ndarray], key: ForecastKey
    ) -> tuple[np.ndarray, np.ndarray]:
        """Forecast ``series``, possibly together with other requests; raises what the
        forecast raised for this request."""
        if self._queue is None or self._worker is None or self._worker.done():
            raise RuntimeError("the forecast worker is not running")
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_PendingRequest(series, key, future))
        return await future

    async def _work(self) -> None:
        while True:
            batch = await self._gather()
            for key, group in _group_by_key(batch).items():
                try:
                    await self._run_group(key, group)
                except Exception as exc:
                    # A bug here must fail these requests, not the worker: with the worker
                    # gone every later request would fail too.
                    logger.exception("forecast worker error")
                    for request in group:
                        _resolve(request.future, error=exc)

    async def _gather(self) -> list[_PendingRequest]:
        """The first waiting request plus whatever arrives within the wait, up to the cap."""
        assert self._queue is not None
        batch = [await self._queue.get()]
        count = len(batch[0].series)
        deadline = asyncio.get_running_loop().time() + self._max_wait_s
        while count < self._max_batch_series:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                # Cancelling Queue.get on timeout loses no item: items leave the queue only
                # when get returns.
                item = (
                    self._queue.get_nowait()
                    if remaining <= 0
                    else await asyncio.wait_for(self._queue.get(), remaining)
                )
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                break
            batch.append(item)
            count += len(item.series)
        return batch

    async def _run_group(self, key: ForecastKey, group: list[_PendingRequest]) -> None:
        series = [s for request in group for s in request.series]
        try:
            quantiles, mean = await asyncio.to_thread(self._forecast, series, key)
        except Exception as exc:
            if len(group) == 1:
                _resolve(group[0].future, error=exc)
                return
            # One bad request must not fail the others it was batched with: retry alone.
            logger.debug("batched forecast failed (%s); retrying its requests one by one", exc)
            for request in group:
                await self._run_group(key, [request])
            return
        self.forward_passes += 1
        self.requests_served += len(group)
        start = 0
        for request in group:
            stop = start + len(request.series)
            _resolve(request.future, result=(quantiles[start:stop], mean[start:stop]))
            start = stop


def _group_by_key(batch: Sequence[_PendingRequest]) -> dict[ForecastKey, list[_PendingRequest]]:
    groups: dict[ForecastKey, list[_PendingRequest]] = {}
    for request in batch:
        groups.setdefault(request.key, []).append(request)
    return groups


def _resolve(future: asyncio.Future, result=None, error: BaseException | None = None) -> None:
    # A client that disconnected has its request's future cancelled already.
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
