"""KafkaSink against a real broker, and against no broker at all — without its spool (test_kafka_spool.py).

What a consumer relies on (docs/alerts.md): key = asset, headers, the JSON of
``AlertEvent.to_dict()``, per-asset order, and that ``close()`` delivers what is
pending.  What the daemon relies on: a required but unreachable cluster fails
``start()`` quickly with SinkUnavailable; an optional one does not, and events
sent meanwhile stay pending and are counted — never lost silently.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from sentinelle.errors import SinkUnavailable
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent, Contributor
from sentinelle.settings import KafkaSettings
from sentinelle.sinks.kafka import KafkaSink

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

UNREACHABLE = "127.0.0.1:1"
START = 1_700_000_000.0


def _metrics() -> Metrics:
    return Metrics(CollectorRegistry(auto_describe=True))


def _count(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(f"sentinelle_{name}_total", {"sink": "kafka"})
    return value or 0.0


def _events(asset: str, n: int) -> list[AlertEvent]:
    """One alert's life: opened, updated…, cleared — in the order the consumer must see."""
    tag = f"{asset}.chw_temp_c"
    alert_id = f"{asset}/{tag}/forecast_residual/{int(START * 1000)}"
    types = ["opened"] + ["updated"] * (n - 2) + ["cleared"]
    return [
        AlertEvent(
            event=t,  # type: ignore[arg-type]
            alert_id=alert_id,
            kind="forecast_residual",
            asset=asset,
            tag=tag,
            severity="critical" if i % 2 else "warning",
            start_ts=START,
            event_ts=START + 30 * i,
            end_ts=START + 30 * i if t == "cleared" else None,
            score=0.9999,
            actual=7.0 + i,
            forecast=5.0,
            lower=4.8,
            upper=float("nan"),
            unit="degC",
            message=f"{tag} event {i}",
            contributors=(Contributor(tag, 0.9999, 9.5 + i),),
        )
        for i, t in enumerate(types)
    ]


async def _consume(bootstrap: str, topic: str, expected: int) -> list[Any]:
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
        while len(records) < expected:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def test_events_reach_the_topic_keyed_by_asset_in_order(kafka_bootstrap: str) -> None:
    topic = f"sentinelle-test-{uuid.uuid4().hex}"
    settings = KafkaSettings(spool_dir=None, bootstrap_servers=kafka_bootstrap, topic=topic, request_timeout_ms=10_000)
    metrics = _metrics()
    sink = KafkaSink(settings, metrics)
    a_events, b_events = _events("chiller1", 6), _events("chiller2", 4)
    async with asyncio.timeout(30):
        await sink.start()
        # Interleaved across several send() calls, as the detect stage would.
        await sink.send([a_events[0], b_events[0]])
        await sink.send(a_events[1:3])
        await sink.send([b_events[1], a_events[3], b_events[2]])
        await sink.send([a_events[4], b_events[3], a_events[5]])
        # close() straight after send(): it must deliver everything still pending.
        await sink.close()
    assert sink.pending == 0
    assert _count(metrics, "sink_events_delivered") == 10
    assert _count(metrics, "sink_errors") == 0
    assert _count(metrics, "sink_events_dropped") == 0

    async with asyncio.timeout(30):
        records = await _consume(kafka_bootstrap, topic, expected=10)
    assert len(records) == 10

    by_asset: dict[str, list[Any]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_asset.setdefault(r.key.decode(), []).append(r)
    for asset, sent in (("chiller1", a_events), ("chiller2", b_events)):
        got = by_asset[asset]
        assert [json.loads(r.value) for r in got] == [ev.to_dict() for ev in sent]
        assert len({r.partition for r in got}) == 1
        for r, ev in zip(got, sent, strict=True):
            assert dict(r.headers) == {"schema_version": b"1", "event": ev.event.encode()}
            # Compact JSON: consumers may store raw values, keep them small.
            assert b", " not in r.value and b": " not in r.value


async def test_send_after_start_and_second_close_are_harmless(kafka_bootstrap: str) -> None:
    topic = f"sentinelle-test-{uuid.uuid4().hex}"
    metrics = _metrics()
    sink = KafkaSink(KafkaSettings(spool_dir=None, bootstrap_servers=kafka_bootstrap, topic=topic), metrics)
    async with asyncio.timeout(30):
        await sink.start()
        assert sink.connected
        await sink.send(_events("ahu1", 2))
        await sink.close()
        await sink.close()
        await sink.send(_events("ahu1", 2))  # after close: dropped and counted, not raised
    assert _count(metrics, "sink_events_delivered") == 2
    assert _count(metrics, "sink_events_dropped") == 2


async def test_overflow_before_start_keeps_the_newest(kafka_bootstrap: str) -> None:
    """Events sent before start() wait in the queue; beyond its bound the oldest go."""
    topic = f"sentinelle-test-{uuid.uuid4().hex}"
    settings = KafkaSettings(spool_dir=None, bootstrap_servers=kafka_bootstrap, topic=topic, max_pending_events=3)
    metrics = _metrics()
    sink = KafkaSink(settings, metrics)
    events = _events("chiller1", 5)
    await sink.send(events[:2])
    await sink.send(events[2:])
    assert sink.pending == 3
    assert _count(metrics, "sink_events_dropped") == 2
    async with asyncio.timeout(30):
        await sink.start()
        await sink.close()
        records = await _consume(kafka_bootstrap, topic, expected=3)
    assert [json.loads(r.value) for r in records] == [ev.to_dict() for ev in events[2:]]
    assert _count(metrics, "sink_events_delivered") == 3


async def test_required_and_unreachable_fails_start_quickly() -> None:
    settings = KafkaSettings(
        spool_dir=None, bootstrap_servers=UNREACHABLE, required_at_start=True, request_timeout_ms=1_000
    )
    sink = KafkaSink(settings, _metrics())
    t0 = time.monotonic()
    async with asyncio.timeout(5):
        with pytest.raises(SinkUnavailable, match=UNREACHABLE):
            await sink.start()
    assert time.monotonic() - t0 < 3
    async with asyncio.timeout(5):
        await sink.close()


async def test_optional_and_unreachable_keeps_events_pending_and_counts_them() -> None:
    settings = KafkaSettings(
        spool_dir=None, bootstrap_servers=UNREACHABLE, required_at_start=False, request_timeout_ms=1_000
    )
    metrics = _metrics()
    sink = KafkaSink(settings, metrics, retry_initial_s=0.05, retry_max_s=0.2)
    async with asyncio.timeout(5):
        await sink.start()
    assert not sink.connected
    await sink.send(_events("chiller1", 3))
    assert sink.pending == 3

    # Each failed reconnection with events pending is a failed delivery attempt.
    async with asyncio.timeout(5):
        while _count(metrics, "sink_errors") < 2:
            await asyncio.sleep(0.05)
    assert sink.pending == 3
    assert _count(metrics, "sink_events_dropped") == 0
    assert _count(metrics, "sink_events_delivered") == 0

    # The caller bounds close(); what could not be delivered is counted as dropped.
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await sink.close()
    assert _count(metrics, "sink_events_dropped") == 3
    assert sink.pending == 0


async def test_queue_overflow_drops_the_oldest_and_counts_them() -> None:
    settings = KafkaSettings(
        spool_dir=None,
        bootstrap_servers=UNREACHABLE,
        required_at_start=False,
        request_timeout_ms=1_000,
        max_pending_events=4,
    )
    metrics = _metrics()
    sink = KafkaSink(settings, metrics, retry_initial_s=10, retry_max_s=10)
    async with asyncio.timeout(5):
        await sink.start()
    await sink.send(_events("chiller1", 3))
    await sink.send(_events("chiller2", 3))
    assert sink.pending == 4
    assert _count(metrics, "sink_events_dropped") == 2
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await sink.close()
    assert _count(metrics, "sink_events_dropped") == 6
