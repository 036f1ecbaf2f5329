"""The stop is bounded (issue 15, item 6): a sink whose close never returns cannot hang the daemon."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from sentinelle.app import Daemon
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent
from sentinelle.settings import load_settings

pytestmark = pytest.mark.asyncio


class NeverFlushes:
    """A sink whose close waits forever, like a Kafka sink whose broker never acknowledges."""

    name = "never"

    def __init__(self) -> None:
        self.cancelled = False

    async def start(self) -> None:
        pass

    async def send(self, events: Sequence[AlertEvent]) -> None:
        pass

    async def close(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


class Counts:
    """A sink that closes at once and remembers it."""

    name = "counts"

    def __init__(self) -> None:
        self.closed = False

    async def start(self) -> None:
        pass

    async def send(self, events: Sequence[AlertEvent]) -> None:
        pass

    async def close(self) -> None:
        self.closed = True


async def test_a_sink_that_never_flushes_is_abandoned_at_the_shutdown_deadline() -> None:
    grace = 0.5
    settings = load_settings(
        tags=[{"name": "a.x", "asset": "a", "node_id": "ns=2;s=a.x", "source": "plant"}],
        sources=[{"name": "plant", "url": "opc.tcp://127.0.0.1:1/unused"}],
        kafka={"enabled": False},
        prometheus={"enabled": False},
        forecast={"forecaster": "naive"},
        daemon={"shutdown_timeout_s": grace},
    )
    hanging, other = NeverFlushes(), Counts()
    metrics = Metrics(CollectorRegistry())
    daemon = Daemon(settings, metrics, sinks=[other, hanging], sources=[])
    stop = asyncio.Event()
    await daemon.start()
    serving = asyncio.create_task(daemon.serve(stop))
    await asyncio.sleep(0)
    t0 = time.monotonic()
    stop.set()
    async with asyncio.timeout(10):
        await serving
    took = time.monotonic() - t0
    assert hanging.cancelled
    assert other.closed  # the sink after the hanging one still closes
    assert took < grace + 1.0, f"stop took {took:.2f} s"
    assert daemon.alert_events_dropped() == 0


async def test_closing_after_the_grace_period_has_a_deadline_too() -> None:
    """aclose() is what runs after the grace period is exceeded (and after a failed start): bounded as well."""
    settings = load_settings(
        kafka={"enabled": False},
        prometheus={"enabled": False},
        forecast={"forecaster": "naive"},
        daemon={"shutdown_timeout_s": 0.3},
    )
    hanging = NeverFlushes()
    daemon = Daemon(settings, Metrics(CollectorRegistry()), sinks=[hanging], sources=[])
    await daemon.start()
    t0 = time.monotonic()
    async with asyncio.timeout(10):
        await daemon.aclose()
    assert hanging.cancelled
    assert time.monotonic() - t0 < 0.3 + 0.5 + 0.3


async def test_dropped_alert_events_are_summed_over_sinks() -> None:
    settings = load_settings(kafka={"enabled": False}, prometheus={"enabled": False}, forecast={"forecaster": "naive"})
    metrics = Metrics(CollectorRegistry())
    daemon = Daemon(settings, metrics, sinks=[], sources=[])
    metrics.sink_dropped.labels("kafka").inc(3)
    metrics.sink_dropped.labels("jsonl").inc(2)
    assert daemon.alert_events_dropped() == 5


async def test_a_cancelled_stage_does_not_wait_for_room_to_end_its_stream() -> None:
    """A stage cancelled at the end of the grace must not block on its full outbox (nobody reads it)."""
    from sentinelle.queues import end_of_stream

    outbox: asyncio.Queue[int | None] = asyncio.Queue(maxsize=1)
    outbox.put_nowait(1)  # full, and its consumer is gone
    started = asyncio.Event()

    async def stage() -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            await end_of_stream(outbox)

    task = asyncio.create_task(stage())
    await started.wait()
    task.cancel()
    async with asyncio.timeout(2):
        await asyncio.wait([task])
    assert task.cancelled()

    # Not cancelled: the end of the stream waits for room as before (back-pressure, nothing lost).
    drained = asyncio.Queue[int | None](maxsize=1)
    drained.put_nowait(1)
    putter = asyncio.create_task(end_of_stream(drained))
    await asyncio.sleep(0)
    assert not putter.done()
    assert drained.get_nowait() == 1
    async with asyncio.timeout(2):
        await putter
    assert drained.get_nowait() is None


class FirstSendHangs:
    """A sink whose first send never returns (the sink stage is stuck on it); later sends are recorded."""

    name = "first-hangs"

    def __init__(self) -> None:
        self.calls = 0
        self.got: list[str] = []

    async def start(self) -> None:
        pass

    async def send(self, events: Sequence[AlertEvent]) -> None:
        self.calls += 1
        if self.calls == 1:
            await asyncio.Event().wait()
        self.got.extend(e.event_id for e in events)

    async def close(self) -> None:
        pass


def _event(i: int) -> AlertEvent:
    return AlertEvent(
        "opened", f"a/a.x/limit_high/{i}", "limit_high", "a", "a.x", "critical", 1.0, 1.0, None,
        1.0, 2.0, 1.0, 0.0, 1.5, "", "test",
    )  # fmt: skip


async def test_alert_events_still_queued_at_the_deadline_are_handed_to_the_sinks() -> None:
    settings = load_settings(
        kafka={"enabled": False},
        prometheus={"enabled": False},
        forecast={"forecaster": "naive"},
        daemon={"shutdown_timeout_s": 0.3},
    )
    sink = FirstSendHangs()
    daemon = Daemon(settings, Metrics(CollectorRegistry()), sinks=[sink], sources=[])
    stop = asyncio.Event()
    await daemon.start()
    serving = asyncio.create_task(daemon.serve(stop))
    for i in range(3):
        await daemon.alert_q.put([_event(i)])
    while sink.calls == 0:
        await asyncio.sleep(0.01)
    stop.set()
    async with asyncio.timeout(10):
        await serving
    # The first batch was being sent when the grace ran out; the other two were still queued.
    assert sink.got == [_event(1).event_id, _event(2).event_id]
    assert daemon.alert_events_dropped() == 0


async def test_the_process_exits_without_waiting_for_a_forecast_still_running() -> None:
    """A model forecast of a backlog can outlive the bounded stop on its worker thread: do not join it."""
    import subprocess
    import sys

    script = (
        "import threading, time\n"
        "from sentinelle.cli import _exit_now_if_compute_lingers\n"
        "threading.Thread(target=time.sleep, args=(60,), name='sentinelle-forecast_0').start()\n"
        "raise SystemExit(_exit_now_if_compute_lingers(75))\n"
    )
    t0 = time.monotonic()
    r = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 75, r.stderr
    assert time.monotonic() - t0 < 20
    assert "sentinelle-forecast_0" in r.stderr
