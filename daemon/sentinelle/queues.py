"""Bounded queues between stages, with an explicit overflow policy.

Two policies, chosen per edge of the pipeline:

* :class:`SampleQueue` — the entry of the pipeline.  OPC-UA callbacks cannot
  wait, so when the daemon falls behind the *oldest* samples are dropped and
  counted (``samples_dropped_total{reason="queue_overflow"}``): fresh data is
  worth more than stale data to a live detector, and nothing is lost silently.
  Capacity is counted in samples, items are chunks (one per OPC-UA publish
  response) so that the per-sample cost of queueing stays near zero.
* Between later stages a plain ``asyncio.Queue(maxsize)`` blocks the producer:
  back-pressure instead of loss, since those stages only ever wait on compute.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from .records import Sample

CLOSED: list[Sample] = []
"""Returned by :meth:`SampleQueue.get` once the queue is closed and empty."""


async def end_of_stream(queue: asyncio.Queue[Any]) -> None:
    """Put the ``None`` that ends a stage's output — but never wait for room when the stage is cancelled.

    A stage cancelled at the end of the shutdown grace runs its ``finally`` with a
    full outbox whose consumer is cancelled too: an ``await put`` there would hang
    the stop for good (issue 15: the daemon never exited after SIGTERM).
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(None)
        return
    await queue.put(None)


class SampleQueue:
    """Drop-oldest queue of sample chunks, bounded by the number of samples.

    >>> q = SampleQueue(capacity=3, on_drop=lambda n: print("dropped", n))
    >>> q.put_nowait([Sample("a", 1.0, 1.0), Sample("a", 2.0, 2.0)])
    >>> q.put_nowait([Sample("a", 3.0, 3.0), Sample("a", 4.0, 4.0)])
    dropped 2
    >>> len(q)
    2
    """

    def __init__(self, capacity: int, on_drop: Callable[[int], None]) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._on_drop = on_drop
        self._chunks: collections.deque[tuple[float, Sequence[Sample]]] = collections.deque()
        self.received_at = 0.0
        """Monotonic time at which the chunk last returned by :meth:`get` was put (for latency)."""
        self._size = 0
        self._ready = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return self._size

    def put_nowait(self, chunk: Sequence[Sample]) -> None:
        if self._closed or not chunk:
            return
        self._chunks.append((time.monotonic(), chunk))
        self._size += len(chunk)
        dropped = 0
        while self._size > self.capacity and len(self._chunks) > 1:
            _, old = self._chunks.popleft()
            self._size -= len(old)
            dropped += len(old)
        if self._size > self.capacity:
            # One chunk larger than the whole queue: keep its newest part.
            at, only = self._chunks.popleft()
            excess = self._size - self.capacity
            self._chunks.append((at, only[excess:]))
            self._size -= excess
            dropped += excess
        if dropped:
            self._on_drop(dropped)
        self._ready.set()

    async def get(self) -> Sequence[Sample]:
        """The oldest chunk; :data:`CLOSED` once closed and drained."""
        while not self._chunks:
            if self._closed:
                return CLOSED
            self._ready.clear()
            await self._ready.wait()
        self.received_at, chunk = self._chunks.popleft()
        self._size -= len(chunk)
        return chunk

    async def get_within(self, timeout_s: float) -> Sequence[Sample] | None:
        """Like :meth:`get`, but None when nothing arrives within the timeout."""
        if self._chunks or self._closed:
            return await self.get()
        try:
            async with asyncio.timeout(timeout_s):
                return await self.get()
        except TimeoutError:
            return None

    def close(self) -> None:
        """No more puts; readers drain what is left, then get :data:`CLOSED`."""
        self._closed = True
        self._ready.set()
