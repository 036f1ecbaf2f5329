"""Operator commands through the whole daemon, against a real broker.

The daemon (``app.Daemon``: windows, forecaster, detect stage, Kafka sink and the
command consumer, wired as in production) watches one tag fed by an in-process
source with wall-clock timestamps.  The tag crosses its high limit, and on the
alerts topic we must see, in order, what an operator's commands cause:

* ``ack`` → an ``acknowledged`` event for the open alert (once, even if re-sent);
* ``maintenance.start`` → the alert ``cleared`` with ``clear_reason: maintenance``,
  and nothing opens while the limit is still violated;
* ``maintenance.end`` → a new alert opens for the condition still present;

and on the reply topic one answer per command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry

from sentinelle.app import Daemon
from sentinelle.metrics import Metrics
from sentinelle.records import Quality, Sample
from sentinelle.settings import Settings, load_settings
from sentinelle.sinks.kafka import KafkaSink

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

PERIOD_S = 0.1
TAG = "chiller1.chw_temp_c"


class Plant:
    """A source of one tag at ``PERIOD_S``, timestamped with the wall clock; ``value`` is set by the test."""

    name = "plant"

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.value = 5.0

    async def run(self) -> None:
        while True:
            self.daemon.samples.put_nowait([Sample(TAG, time.time(), self.value, Quality.GOOD)])
            await asyncio.sleep(PERIOD_S / 2)


class Topic:
    """Everything published on one topic, read in the background."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.records: list[dict[str, Any]] = []
        self._consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=f"test-{uuid.uuid4().hex}", auto_offset_reset="earliest"
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for record in self._consumer:
            self.records.append(json.loads(record.value))

    async def wait_for(self, predicate: Any, timeout_s: float = 20.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            while True:
                for r in self.records:
                    if predicate(r):
                        return r
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()


def _cmd(command_id: str, kind: str, **kw: Any) -> bytes:
    body = {"schema_version": 1, "command_id": command_id, "type": kind, "asset": "chiller1", "by": "ana", **kw}
    return json.dumps(body).encode()


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _settings(kafka_bootstrap: str, suffix: str) -> Settings:
    """One tag with a high limit at 5.5; the residual detector stays in its grace period (limit alerts only)."""
    return load_settings(
        sources=[{"name": "plant", "url": "opc.tcp://127.0.0.1:1/unused"}],
        tags=[
            {
                "name": TAG,
                "asset": "chiller1",
                "node_id": "ns=2;s=t",
                "unit": "degC",
                "period_s": PERIOD_S,
                "high_limit": 5.5,
            }
        ],
        windows={"context_steps": 16, "allowed_lateness_s": 0.0, "idle_close_s": 0.5},
        forecast={"forecaster": "naive", "horizon_steps": 4},
        detect={
            "grace_period_steps": 100_000,
            "open_k": 2,
            "open_n": 3,
            "clear_normal_steps": 3,
            "update_min_interval_s": 3600,
        },
        kafka={
            "bootstrap_servers": kafka_bootstrap,
            "topic": f"sentinelle-test-alerts-{suffix}",
            "request_timeout_ms": 10_000,
            "spool_dir": str(Path(tempfile.gettempdir()) / f"sentinelle-test-spool-{suffix}"),
        },
        commands={
            "enabled": True,
            "topic": f"sentinelle-test-commands-{suffix}",
            "reply_topic": f"sentinelle-test-replies-{suffix}",
            "group_id": f"test-{suffix}",
        },
        prometheus={"enabled": False},
        daemon={"shutdown_timeout_s": 10.0},
    )


def _daemon(settings: Settings) -> tuple[Daemon, Plant, Metrics]:
    metrics = Metrics(CollectorRegistry(auto_describe=True))
    daemon = Daemon(settings, metrics, sinks=[KafkaSink(settings.kafka, metrics)], sources=[])
    plant = Plant(daemon)
    daemon.sources = [plant]
    return daemon, plant, metrics


def _gauge(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_ack_and_maintenance_reach_the_alerts_topic(kafka_bootstrap: str) -> None:
    settings = _settings(kafka_bootstrap, uuid.uuid4().hex)
    daemon, plant, metrics = _daemon(settings)
    alerts = Topic(kafka_bootstrap, settings.kafka.topic)
    replies = Topic(kafka_bootstrap, settings.commands.reply_topic)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    stop = asyncio.Event()

    async def send(value: bytes) -> None:
        await producer.send_and_wait(settings.commands.topic, value, key=b"chiller1")

    def gauge(name: str, **labels: str) -> float:
        return _gauge(metrics, name, **labels)

    async with asyncio.timeout(120):
        await daemon.start()
        serving = asyncio.create_task(daemon.serve(stop))
        await alerts.start()
        await replies.start()
        await producer.start()
        try:
            await asyncio.sleep(1.0)  # normal at 5.0
            plant.value = 7.0
            opened = await alerts.wait_for(lambda r: r["event"] == "opened")
            alert_id = opened["alert_id"]
            assert opened["kind"] == "limit_high" and opened["acknowledged_by"] is None

            # Acknowledge it; the console re-sends the same command, then someone acknowledges again.
            await send(_cmd("ack-1", "ack", alert_id=alert_id, reason="crew on site"))
            await send(_cmd("ack-1", "ack", alert_id=alert_id, reason="crew on site"))
            await send(_cmd("ack-2", "ack", alert_id=alert_id))
            acked = await alerts.wait_for(lambda r: r["event"] == "acknowledged")
            assert acked["alert_id"] == alert_id
            assert acked["acknowledged_by"] == "ana" and acked["acknowledged_at"] is not None
            assert acked["end_ts"] is None  # still open
            await replies.wait_for(lambda r: r["command_id"] == "ack-2")
            answers = [(r["command_id"], r["status"], r["reason"]) for r in replies.records]
            assert answers == [
                ("ack-1", "accepted", None),
                ("ack-1", "duplicate", None),
                ("ack-2", "rejected", "already_acknowledged"),
            ]

            # Maintenance: the open alert clears for that reason, and nothing opens while it lasts.
            await send(_cmd("mnt-1", "maintenance.start", until=_iso(time.time() + 120), reason="filter change"))
            cleared = await alerts.wait_for(lambda r: r["event"] == "cleared")
            assert cleared["alert_id"] == alert_id and cleared["clear_reason"] == "maintenance"
            assert cleared["acknowledged_by"] == "ana"
            assert gauge("sentinelle_asset_maintenance", asset="chiller1") == 1
            await asyncio.sleep(1.5)  # 15 ticks above the limit, in maintenance
            assert [r["event"] for r in alerts.records] == ["opened", "acknowledged", "cleared"]
            assert gauge("sentinelle_alerts_suppressed_total", asset="chiller1", reason="maintenance") >= 1

            # The ack of a cleared alert is answered, not dropped.
            await send(_cmd("ack-3", "ack", alert_id=alert_id))
            late = await replies.wait_for(lambda r: r["command_id"] == "ack-3")
            assert (late["status"], late["reason"]) == ("rejected", "alert_closed")

            # The end of maintenance: the condition is still there, so a new alert opens.
            await send(_cmd("mnt-2", "maintenance.end"))
            reopened = await alerts.wait_for(lambda r: r["event"] == "opened" and r["alert_id"] != alert_id)
            assert reopened["kind"] == "limit_high"
            assert gauge("sentinelle_asset_maintenance", asset="chiller1") == 0
        finally:
            stop.set()
            await serving
            await producer.stop()
            await alerts.stop()
            await replies.stop()
    assert [r["status"] for r in replies.records] == [
        "accepted",
        "duplicate",
        "rejected",
        "accepted",
        "rejected",
        "accepted",
    ]


async def test_a_restarted_daemon_keeps_the_maintenance_and_answers_what_came_meanwhile(kafka_bootstrap: str) -> None:
    settings = _settings(kafka_bootstrap, uuid.uuid4().hex)
    alerts = Topic(kafka_bootstrap, settings.kafka.topic)
    replies = Topic(kafka_bootstrap, settings.commands.reply_topic)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")

    async def send(value: bytes) -> None:
        await producer.send_and_wait(settings.commands.topic, value, key=b"chiller1")

    async with asyncio.timeout(120):
        await alerts.start()
        await replies.start()
        await producer.start()
        try:
            first, _, _ = _daemon(settings)
            stop = asyncio.Event()
            await first.start()
            serving = asyncio.create_task(first.serve(stop))
            try:
                await send(_cmd("mnt-1", "maintenance.start", until=_iso(time.time() + 120), reason="overhaul"))
                await replies.wait_for(lambda r: r["command_id"] == "mnt-1")
            finally:
                stop.set()
                await serving

            # While it is down: an ack of an alert of the previous run, and a window that has already ended.
            await send(_cmd("ack-9", "ack", alert_id="chiller1/chiller1.chw_temp_c/limit_high/1"))
            await send(
                _cmd("mnt-0", "maintenance.start", issued_at=_iso(time.time() - 7200), until=_iso(time.time() - 3600))
            )

            second, plant, metrics = _daemon(settings)
            plant.value = 7.0  # above the limit from the first tick: only the maintenance keeps it quiet
            stop = asyncio.Event()
            await second.start()
            serving = asyncio.create_task(second.serve(stop))
            try:
                await replies.wait_for(lambda r: r["command_id"] == "mnt-0")
                await asyncio.sleep(1.5)  # 15 ticks above the limit
                assert [r["event"] for r in alerts.records] == []
                assert _gauge(metrics, "sentinelle_asset_maintenance", asset="chiller1") == 1
                assert _gauge(metrics, "sentinelle_commands_replayed_total") == 1
                await send(_cmd("mnt-2", "maintenance.end"))
                opened = await alerts.wait_for(lambda r: r["event"] == "opened")
                assert opened["kind"] == "limit_high"
            finally:
                stop.set()
                await serving
        finally:
            await producer.stop()
            await alerts.stop()
            await replies.stop()
    # Each command answered once: the one from before the restart is not answered again.
    assert [(r["command_id"], r["status"], r["reason"]) for r in replies.records] == [
        ("mnt-1", "accepted", None),
        ("ack-9", "rejected", "unknown_alert"),
        ("mnt-0", "rejected", "expired"),
        ("mnt-2", "accepted", None),
    ]
