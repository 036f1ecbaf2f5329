"""The command consumer against a real broker: apply, answer, commit; survive a restart.

What a command producer relies on (docs/alerts.md, "Operator commands"): every record
on the command topic is answered once on the reply topic — accepted, rejected with a
reason, or duplicate —; a command is applied once; commands sent while the daemon was
down are applied when it starts, except maintenance windows that have expired; a
maintenance window survives a restart of the daemon.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from sentinelle.detect.control import OperatorControl
from sentinelle.detect.maintenance import MaintenanceCalendar
from sentinelle.errors import SourceUnavailable
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent, CommandOutcome
from sentinelle.settings import CommandSettings, KafkaSettings
from sentinelle.sources.commands import CommandConsumer

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Book:
    """Stands in for the alert book: one open alert per asset, acknowledged once."""

    def __init__(self) -> None:
        self.open = {"chiller1/chiller1.chw_temp_c/limit_high/1": "chiller1"}
        self.acked: list[str] = []

    def acknowledge(self, asset: str, alert_id: str | None, *, by: str, at_ts: float, reason: str) -> CommandOutcome:
        if alert_id not in self.open or alert_id in self.acked:
            return CommandOutcome("rejected", "not open", "unknown_alert")
        self.acked.append(alert_id)
        event = AlertEvent(
            "acknowledged",
            alert_id,
            "limit_high",
            asset,
            "chiller1.chw_temp_c",
            "critical",
            1.0,
            at_ts,
            None,
            1.0,
            6.0,
            5.0,
            4.8,
            5.2,
            "degC",
            f"acknowledged by {by}",
        )
        return CommandOutcome("accepted", "acknowledged", events=(event,), alert_ids=(alert_id,))


class Harness:
    """One daemon's worth of command handling: calendar, book, consumer, collected events."""

    def __init__(self, bootstrap: str, settings: CommandSettings) -> None:
        self.metrics = Metrics(CollectorRegistry(auto_describe=True))
        self.calendar = MaintenanceCalendar()
        self.book = Book()
        self.control = OperatorControl(
            {"chiller1", "ahu1"}, self.calendar, lambda: self.book, max_maintenance_s=settings.max_maintenance_s
        )
        self.events: list[AlertEvent] = []
        kafka = KafkaSettings(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        self.consumer = CommandConsumer(
            settings,
            kafka,
            self.metrics,
            self.control,
            self._emit,
            retry_initial_s=0.1,
            retry_max_s=0.5,
        )
        self.task: asyncio.Task[None] | None = None

    async def _emit(self, events: list[AlertEvent]) -> None:
        self.events.extend(events)

    async def __aenter__(self) -> Harness:
        await self.consumer.start()
        assert self.consumer.ready.is_set()
        if self.task is None:
            self.task = asyncio.create_task(self.consumer.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.consumer.close()


def _settings() -> CommandSettings:
    suffix = uuid.uuid4().hex
    return CommandSettings(
        enabled=True,
        topic=f"sentinelle-test-commands-{suffix}",
        reply_topic=f"sentinelle-test-replies-{suffix}",
        group_id=f"sentinelle-test-{suffix}",
        max_maintenance_s=86_400,
    )


async def _produce(bootstrap: str, topic: str, values: list[bytes | dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for v in values:
            raw = v if isinstance(v, bytes) else json.dumps(v).encode()
            await producer.send_and_wait(topic, raw, key=b"chiller1")
    finally:
        await producer.stop()


async def _replies(bootstrap: str, topic: str, expected: int) -> list[dict[str, Any]]:
    """The first ``expected`` replies, by offset; then waits a little to prove there are no more."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"test-{uuid.uuid4().hex}", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        records: list[Any] = []
        while len(records) < expected:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        for batch in (await consumer.getmany(timeout_ms=1_000)).values():
            records.extend(batch)
        return [json.loads(r.value) for r in sorted(records, key=lambda r: r.offset)]
    finally:
        await consumer.stop()


async def _committed(bootstrap: str, settings: CommandSettings) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=settings.group_id, enable_auto_commit=False)
    await consumer.start()
    try:
        result: int | None = await consumer.committed(TopicPartition(settings.topic, 0))
        return result
    finally:
        await consumer.stop()


def _cmd(command_id: str, kind: str, asset: str = "chiller1", **kw: Any) -> dict[str, Any]:
    return {"schema_version": 1, "command_id": command_id, "type": kind, "asset": asset, "by": "ana", **kw}


ALERT = "chiller1/chiller1.chw_temp_c/limit_high/1"


async def test_each_command_is_applied_once_answered_and_committed(kafka_bootstrap: str) -> None:
    settings = _settings()
    now = time.time()
    harness = Harness(kafka_bootstrap, settings)
    async with asyncio.timeout(60), harness:
        await _produce(
            kafka_bootstrap,
            settings.topic,
            [
                _cmd("c-1", "ack", alert_id=ALERT),
                _cmd("c-1", "ack", alert_id=ALERT),  # the producer retried: same id
                b"\x00 not json",
                _cmd("c-2", "maintenance.start", asset="pump9", until=_iso(now + 600)),
                _cmd("c-3", "maintenance.start", until=_iso(now + 600), issued_at=_iso(now)),
                _cmd("c-4", "reboot"),
            ],
        )
        replies = await _replies(kafka_bootstrap, settings.reply_topic, expected=6)
    assert [(r["offset"], r["command_id"], r["status"], r["reason"]) for r in replies] == [
        (0, "c-1", "accepted", None),
        (1, "c-1", "duplicate", None),
        (2, None, "rejected", "invalid_json"),
        (3, "c-2", "rejected", "unknown_asset"),
        (4, "c-3", "accepted", None),
        (5, "c-4", "rejected", "unknown_type"),
    ]
    assert replies[0]["alert_ids"] == [ALERT]
    assert [(e.event, e.alert_id) for e in harness.events] == [("acknowledged", ALERT)]
    assert harness.book.acked == [ALERT]
    assert harness.calendar.in_maintenance("chiller1", now + 1)
    assert await _committed(kafka_bootstrap, settings) == 6
    m = harness.metrics.registry
    assert m.get_sample_value("sentinelle_commands_total", {"type": "ack", "status": "duplicate"}) == 1
    assert m.get_sample_value("sentinelle_commands_rejected_total", {"reason": "invalid_json"}) == 1
    assert m.get_sample_value("sentinelle_sink_events_delivered_total", {"sink": "command_replies"}) == 6


async def test_a_restart_keeps_maintenance_and_applies_what_was_sent_meanwhile(kafka_bootstrap: str) -> None:
    settings = _settings()
    now = time.time()
    first = Harness(kafka_bootstrap, settings)
    async with asyncio.timeout(60):
        async with first:
            await _produce(
                kafka_bootstrap,
                settings.topic,
                [_cmd("c-10", "maintenance.start", until=_iso(now + 3600)), _cmd("c-11", "ack", alert_id=ALERT)],
            )
            await _replies(kafka_bootstrap, settings.reply_topic, expected=2)
        assert first.calendar.in_maintenance("chiller1", now + 5)

        # The daemon is down: an operator acts meanwhile.
        await _produce(
            kafka_bootstrap,
            settings.topic,
            [
                _cmd("c-12", "maintenance.start", asset="ahu1", issued_at=_iso(now - 7200), until=_iso(now - 3600)),
                _cmd("c-13", "maintenance.start", asset="ahu1", until=_iso(now + 1800)),
                _cmd("c-10", "maintenance.start", until=_iso(now + 3600)),  # re-sent by a console
            ],
        )

        second = Harness(kafka_bootstrap, settings)
        try:
            await second.consumer.start()
            # Before it reads anything new, the replay has rebuilt the calendar — and skipped the old ack.
            assert second.calendar.in_maintenance("chiller1", now + 5)
            assert not second.calendar.in_maintenance("ahu1", now + 5)
            assert second.book.acked == [] and second.events == []
            assert second.metrics.registry.get_sample_value("sentinelle_commands_replayed_total") == 2
            async with second:
                replies = await _replies(kafka_bootstrap, settings.reply_topic, expected=5)
        finally:
            await second.consumer.close()
        assert [(r["command_id"], r["status"], r["reason"]) for r in replies] == [
            ("c-10", "accepted", None),
            ("c-11", "accepted", None),
            ("c-12", "rejected", "expired"),
            ("c-13", "accepted", None),
            ("c-10", "duplicate", None),
        ]
        assert second.calendar.in_maintenance("ahu1", now + 5)
        assert second.book.acked == []
        assert await _committed(kafka_bootstrap, settings) == 5


async def test_required_and_unreachable_fails_start_quickly() -> None:
    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", required_at_start=True, request_timeout_ms=1_000)
    metrics = Metrics(CollectorRegistry(auto_describe=True))
    control = OperatorControl({"chiller1"}, MaintenanceCalendar(), lambda: Book(), max_maintenance_s=60)

    async def emit(events: list[AlertEvent]) -> None:
        return None

    consumer = CommandConsumer(CommandSettings(enabled=True), kafka, metrics, control, emit)
    t0 = time.monotonic()
    async with asyncio.timeout(10):
        with pytest.raises(SourceUnavailable, match=r"127\.0\.0\.1:1"):
            await consumer.start()
        await consumer.close()
    assert time.monotonic() - t0 < 5
    assert not consumer.ready.is_set()
