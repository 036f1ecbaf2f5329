"""Issue 15, as an operator would see it: the daemon process, a broker down, SIGTERM, a restart.

Daemon 1 runs against the chiller simulator with Kafka unreachable: alerts open
(every tag's high limit set below its values) and are written to JSONL; SIGTERM must
stop it in its grace period, exit 0 (nothing dropped) and leave the undelivered
events in the spool.  Daemon 2 starts on the same spool with Kafka up: every event
daemon 1 raised reaches the topic, before daemon 2's own, and none twice by event_id.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from aiokafka import AIOKafkaConsumer

from sentinelle.settings import SimulatorSettings
from sentinelle.sim.server import ChillerServer, chiller_tags

from .broker import kafka_pid
from .test_pipeline_e2e import _free_port, _start_daemon

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

GRACE_S = 5.0
MIN_RAISED = 5


def _config(
    tmp: Path, name: str, *, opcua_url: str, sim: SimulatorSettings, kafka: str, topic: str, spool: bool = True
) -> Path:
    tags = [t.model_dump(exclude_none=True) for t in chiller_tags(sim)]
    for t in tags:  # every tag always above its high limit: a limit alert per tag at once
        t["low_limit"], t["high_limit"] = -2e6, -1e6
    cfg: dict[str, Any] = {
        "sources": [{"name": "plant", "url": opcua_url, "publishing_interval_ms": 50.0, "queue_size": 32}],
        "tags": tags,
        "forecast": {"forecaster": "naive"},
        "kafka": {
            "bootstrap_servers": kafka,
            "topic": topic,
            "required_at_start": False,
            "request_timeout_ms": 2_000,
            "spool_dir": str(tmp / "spool") if spool else "",
        },
        "prometheus": {"enabled": False},
        "console": {"jsonl_path": str(tmp / f"{name}.jsonl")},
        "daemon": {"shutdown_timeout_s": GRACE_S, "log_level": "INFO"},
        "windows": {"allowed_lateness_s": 1.0, "idle_close_s": 2.0},
    }
    path = tmp / f"{name}.toml"
    path.write_text(tomli_w.dumps(cfg))
    return path


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def _sigterm(proc: Any, log: Path) -> tuple[int, float]:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc = await asyncio.to_thread(proc.wait, 30)
    return rc, time.monotonic() - t0


@pytest.mark.parametrize("broker", ["refusing", "silent"])
async def test_alerts_raised_while_kafka_is_down_survive_sigterm_and_reach_kafka_once(
    tmp_path: Path, kafka_bootstrap: str, broker: str
) -> None:
    """``refusing``: nothing listens on the port; ``silent``: the real broker paused (SIGSTOP) —
    it accepts connections (the kernel does) and never answers."""
    topic = f"sentinelle.spool-e2e.{uuid.uuid4().hex[:8]}"
    sim = SimulatorSettings(port=0, time_scale=20.0, seed=3, ground_truth_path=tmp_path / "truth.jsonl")
    if broker == "refusing":
        down = f"127.0.0.1:{_free_port()}"
        paused = None
    else:
        down = kafka_bootstrap
        paused = kafka_pid()
        os.kill(paused, signal.SIGSTOP)
    try:
        raised, raised2, records, stop_s, drain_s = await _down_stop_restart(
            tmp_path, sim, down, kafka_bootstrap, topic, paused
        )
    finally:
        if paused is not None:
            os.kill(paused, signal.SIGCONT)
    ids = [json.loads(r.value)["event_id"] for r in sorted(records, key=lambda r: (r.partition, r.offset))]
    assert len(ids) == len(set(ids)), "an event reached Kafka twice"
    assert set(ids) == {e["event_id"] for e in raised + raised2}
    assert ids[: len(raised)] == [e["event_id"] for e in raised]  # the spooled ones first, in order
    print(f"\n{broker} broker: raised {len(raised)}; SIGTERM {stop_s:.2f} s; in Kafka {drain_s:.1f} s after restart")


async def _down_stop_restart(
    tmp_path: Path, sim: SimulatorSettings, down: str, kafka_bootstrap: str, topic: str, paused: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any], float, float]:
    async with ChillerServer(sim) as server:
        sim_task = asyncio.create_task(server.run())
        try:
            log1 = tmp_path / "daemon1.log"
            proc = _start_daemon(
                _config(tmp_path, "daemon1", opcua_url=server.url, sim=sim, kafka=down, topic=topic), log1
            )
            try:
                async with asyncio.timeout(90):
                    while len(_jsonl(tmp_path / "daemon1.jsonl")) < MIN_RAISED:
                        assert proc.poll() is None, log1.read_text()[-3000:]
                        await asyncio.sleep(0.5)
                rc, stop_s = await _sigterm(proc, log1)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
            if paused is not None:
                os.kill(paused, signal.SIGCONT)
            text = log1.read_text()
            raised = _jsonl(tmp_path / "daemon1.jsonl")
            assert rc == 0, text[-3000:]
            assert stop_s < GRACE_S + 3.0, f"stop took {stop_s:.1f} s"
            assert f"{len(raised)} alert events wait in the spool" in text, text[-3000:]

            log2 = tmp_path / "daemon2.log"
            t0 = time.monotonic()
            proc = _start_daemon(
                _config(tmp_path, "daemon2", opcua_url=server.url, sim=sim, kafka=kafka_bootstrap, topic=topic), log2
            )
            consumer = AIOKafkaConsumer(
                topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", group_id=uuid.uuid4().hex
            )
            await consumer.start()
            records: list[Any] = []
            try:
                wanted = {e["event_id"] for e in raised}
                async with asyncio.timeout(90):
                    while not wanted <= {json.loads(r.value)["event_id"] for r in records}:
                        for batch in (await consumer.getmany(timeout_ms=500)).values():
                            records.extend(batch)
                        assert proc.poll() is None, log2.read_text()[-3000:]
                drain_s = time.monotonic() - t0
                rc, _ = await _sigterm(proc, log2)
                assert rc == 0, log2.read_text()[-3000:]
                raised2 = _jsonl(tmp_path / "daemon2.jsonl")
                async with asyncio.timeout(30):
                    while len(records) < len(raised) + len(raised2):
                        for batch in (await consumer.getmany(timeout_ms=500)).values():
                            records.extend(batch)
                for batch in (await consumer.getmany(timeout_ms=2000)).values():  # any duplicate after them
                    records.extend(batch)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
                await consumer.stop()
        finally:
            server.stop()
            sim_task.cancel()
            await asyncio.gather(sim_task, return_exceptions=True)

    return raised, raised2, records, stop_s, drain_s


async def test_without_a_spool_undelivered_alerts_are_dropped_and_the_exit_says_so(tmp_path: Path) -> None:
    """``spool_dir = ""``: what Kafka never took is dropped at the stop — counted, logged, and exit 75."""
    sim = SimulatorSettings(port=0, time_scale=20.0, seed=3, ground_truth_path=tmp_path / "truth.jsonl")
    down = f"127.0.0.1:{_free_port()}"
    async with ChillerServer(sim) as server:
        sim_task = asyncio.create_task(server.run())
        log = tmp_path / "daemon.log"
        config = _config(tmp_path, "daemon", opcua_url=server.url, sim=sim, kafka=down, topic="t", spool=False)
        proc = _start_daemon(config, log)
        try:
            async with asyncio.timeout(90):
                while len(_jsonl(tmp_path / "daemon.jsonl")) < MIN_RAISED:
                    assert proc.poll() is None, log.read_text()[-3000:]
                    await asyncio.sleep(0.5)
            rc, _ = await _sigterm(proc, log)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            server.stop()
            sim_task.cancel()
            await asyncio.gather(sim_task, return_exceptions=True)
    text = log.read_text()
    assert rc == 75, text[-3000:]
    assert "alert events were dropped during this run" in text
    assert not (tmp_path / "spool").exists()
