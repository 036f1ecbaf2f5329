"""Store and forward (sinks/spool.py) and the bounded stop, against real Kafka and against a silent broker.

Issue 15: alerts raised while Kafka is down must survive a stop and reach the
topic after the next start, once each by ``event_id``; a broker that accepts
connections and never answers must not hang the stop.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent
from sentinelle.settings import KafkaSettings
from sentinelle.sinks.kafka import KafkaSink

from .broker import kafka_pid

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

START = 1_700_000_000.0


def _metrics() -> Metrics:
    return Metrics(CollectorRegistry(auto_describe=True))


def _value(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.registry.get_sample_value(f"sentinelle_{name}", labels or {}) or 0.0


def _life(asset: str, n: int, first: int = 0) -> list[AlertEvent]:
    """Events ``first``… of one alert of ``asset``, each with its own sequence (so its own event_id)."""
    tag = f"{asset}.chw_temp_c"
    alert_id = f"{asset}/{tag}/forecast_residual/{int(START * 1000)}"
    return [
        AlertEvent(
            "opened" if i == 0 else "updated",
            alert_id,
            "forecast_residual",
            asset,
            tag,
            "warning",
            START,
            START + 30 * i,
            None,
            0.99,
            7.0 + i,
            5.0,
            4.8,
            5.2,
            "degC",
            f"{tag} event {i}",
            sequence=i,
        )
        for i in range(first, first + n)
    ]


async def _consume(bootstrap: str, topic: str, expected: int, quiet_s: float = 2.0) -> list[Any]:
    """Every record of ``topic``: at least ``expected``, then ``quiet_s`` more to catch duplicates."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records: list[Any] = []
        deadline: float | None = None
        while deadline is None or time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
            if deadline is None and len(records) >= expected:
                deadline = time.monotonic() + quiet_s
        return records
    finally:
        await consumer.stop()


@pytest_asyncio.fixture
async def silent_broker() -> AsyncIterator[str]:
    """A loopback TCP server that accepts connections and never answers: a hung broker."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def _stop(sink: KafkaSink, grace_s: float) -> float:
    """Close ``sink`` the way the daemon does at SIGTERM (bounded); seconds it took."""
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(grace_s):
            await sink.close()
    return time.monotonic() - t0


async def test_events_raised_while_kafka_is_down_reach_it_after_a_restart_once_each(
    kafka_bootstrap: str, silent_broker: str, tmp_path: Path
) -> None:
    topic = f"sentinelle-test-{uuid.uuid4().hex}"
    spool_dir = tmp_path / "spool"
    down = KafkaSettings(
        bootstrap_servers=silent_broker,
        topic=topic,
        required_at_start=False,
        request_timeout_ms=1_000,
        spool_dir=spool_dir,
    )
    metrics = _metrics()
    sink = KafkaSink(down, metrics, retry_initial_s=0.05, retry_max_s=0.2)
    async with asyncio.timeout(10):
        await sink.start()
    raised = _life("chiller1", 40) + _life("chiller2", 30)
    for i in range(0, len(raised), 7):
        await sink.send(raised[i : i + 7])
    assert sink.pending == len(raised)

    stop_s = await _stop(sink, grace_s=0.5)  # SIGTERM while the broker is down
    assert stop_s < 3.0, f"stop took {stop_s:.2f} s"
    assert _value(metrics, "sink_events_dropped_total", {"sink": "kafka"}) == 0
    assert _value(metrics, "alert_spool_events") == len(raised)
    assert _value(metrics, "alert_spool_bytes") > 0

    # Restart with the broker up: the spooled events first, then new ones.
    up = down.model_copy(update={"bootstrap_servers": kafka_bootstrap, "request_timeout_ms": 10_000})
    metrics = _metrics()
    sink = KafkaSink(up, metrics)
    new = _life("chiller1", 5, first=40)
    async with asyncio.timeout(60):
        t0 = time.monotonic()
        await sink.start()
        await sink.send(new)
        await sink.close()
        drain_s = time.monotonic() - t0
        records = await _consume(kafka_bootstrap, topic, expected=len(raised) + len(new))
    assert sink.pending == 0
    assert _value(metrics, "sink_events_dropped_total", {"sink": "kafka"}) == 0
    assert _value(metrics, "alert_spool_events") == 0
    assert _value(metrics, "sink_events_delivered_total", {"sink": "kafka"}) == len(raised) + len(new)

    ids = [json.loads(r.value)["event_id"] for r in sorted(records, key=lambda r: (r.partition, r.offset))]
    assert len(ids) == len(set(ids)), "an event reached Kafka twice"
    assert set(ids) == {ev.event_id for ev in raised + new}
    for asset in ("chiller1", "chiller2"):
        sent = [ev.event_id for ev in raised + new if ev.asset == asset]
        got = [i for i in ids if i.startswith(f"{asset}/")]
        assert got == sent, f"{asset}: events out of order"
    print(
        f"\nstop with the broker down: {stop_s:.2f} s; spooled {len(raised)}; drained after restart in {drain_s:.2f} s"
    )


async def test_a_broker_that_never_answers_cannot_hang_the_stop(silent_broker: str, tmp_path: Path) -> None:
    """Connected to a broker that accepts and never answers, with the daemon's default request timeout."""
    settings = KafkaSettings(bootstrap_servers=silent_broker, required_at_start=False, spool_dir=tmp_path / "spool")
    metrics = _metrics()
    sink = KafkaSink(settings, metrics)
    async with asyncio.timeout(15):
        await sink.start()  # not required: returns once the unanswered connection times out (10 s)
    await sink.send(_life("ahu1", 10))
    stop_s = await _stop(sink, grace_s=1.0)
    assert stop_s < 1.0 + 2.5, f"stop took {stop_s:.2f} s"
    assert _value(metrics, "sink_events_dropped_total", {"sink": "kafka"}) == 0
    assert _value(metrics, "alert_spool_events") == 10
    print(f"\nstop with a silent broker: {stop_s:.2f} s (grace 1.0 s)")


async def test_an_outage_longer_than_spool_after_s_spills_and_recovery_sends_in_order_once(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker paused (SIGSTOP) while running: events are acknowledged by nobody, so after
    spool_after_s they are on disk; when it resumes they go out in order, none twice."""
    topic = f"sentinelle-test-{uuid.uuid4().hex}"
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        topic=topic,
        request_timeout_ms=1_000,
        spool_dir=tmp_path / "spool",
        spool_after_s=1.0,
    )
    metrics = _metrics()
    sink = KafkaSink(settings, metrics, retry_initial_s=0.05, retry_max_s=0.5)
    events = _life("chiller1", 30)
    pid = kafka_pid()
    async with asyncio.timeout(60):
        await sink.start()
        await sink.send(events[:2])
        while sink.pending:
            await asyncio.sleep(0.05)
        os.kill(pid, signal.SIGSTOP)
        try:
            await sink.send(events[2:12])
            while _value(metrics, "alert_spool_events") < 10:
                await asyncio.sleep(0.1)
            await sink.send(events[12:])  # newer than the spool: stays behind it
        finally:
            os.kill(pid, signal.SIGCONT)
        t0 = time.monotonic()
        while sink.pending:
            await asyncio.sleep(0.05)
        recovery_s = time.monotonic() - t0
        await sink.close()
        records = await _consume(kafka_bootstrap, topic, expected=30)
    ids = [json.loads(r.value)["event_id"] for r in sorted(records, key=lambda r: (r.partition, r.offset))]
    assert ids == [ev.event_id for ev in events]
    assert _value(metrics, "sink_events_dropped_total", {"sink": "kafka"}) == 0
    assert _value(metrics, "alert_spool_events") == 0
    assert _value(metrics, "alert_pending_events") == 0
    # The recovery is said: how long it was down, and when the backlog is through.
    said = [r.getMessage() for r in caplog.records if r.name == "sentinelle.sinks.kafka"]
    assert any(m.startswith("Kafka delivery recovered after") and "28 alert events" in m for m in said), said
    assert any(m.startswith("Kafka backlog after the outage delivered: 28 alert events") for m in said), said
    print(f"\nbroker paused, resumed: backlog delivered {recovery_s:.2f} s after SIGCONT")
