"""The whole spine against real servers: simulator (OPC-UA) → daemon process → Kafka + Prometheus.

One daemon process runs against the chiller simulator with a chilled-water sensor drift
injected after a fault-free stretch.  The test consumes the alert topic from real Kafka,
queries the daemon's gauges through a real Prometheus, then stops the daemon with
SIGTERM and checks that every alert event it produced reached Kafka.

Documented false-alert bound (README, "What the tests guarantee"): over the fault-free
stretch (600 simulated seconds of the chiller at 1 Hz, 7 tags) at most 1 alert opens.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from aiokafka import AIOKafkaConsumer

from sentinelle.settings import FaultSettings, SimulatorSettings
from sentinelle.sim.server import ChillerServer, chiller_tags

pytestmark = [pytest.mark.integration]

TIME_SCALE = 20.0
FAULT_FREE_S = 600.0  # simulated seconds before the fault
FAULT = FaultSettings(kind="sensor_drift", onset_s=FAULT_FREE_S, duration_s=600.0, tag="chw_temp_c", magnitude=0.8)
MAX_FALSE_ALERTS = 1
DETECTION_BOUND_SIM_S = 300.0  # an alert on the drifting tag within this after onset


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _daemon_config(
    tmp: Path, *, opcua_url: str, sim: SimulatorSettings, kafka: str, topic: str, metrics_port: int
) -> Path:
    tags = [t.model_dump(exclude_none=True) for t in chiller_tags(sim)]
    cfg: dict[str, Any] = {
        "sources": [{"name": "plant", "url": opcua_url, "publishing_interval_ms": 50.0, "queue_size": 32}],
        "tags": tags,
        "kafka": {
            "bootstrap_servers": kafka,
            "topic": topic,
            "required_at_start": True,
            "spool_dir": str(tmp / "spool"),
        },
        "prometheus": {"host": "127.0.0.1", "port": metrics_port},
        "console": {"jsonl_path": str(tmp / "alerts.jsonl")},
        "daemon": {"shutdown_timeout_s": 10.0, "log_level": "INFO"},
        "windows": {"allowed_lateness_s": 1.0, "idle_close_s": 2.0},
    }
    path = tmp / "sentinelle.toml"
    path.write_text(tomli_w.dumps(cfg))
    return path


def _start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "sentinelle.cli", "run", "--config", str(config)],
            stdout=f,
            stderr=subprocess.STDOUT,
            env=env,
        )


def _prom_query(base: str, query: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def _wait_metrics(port: int, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                text: str = r.read().decode()
                if "sentinelle_tag_forecast{" in text:
                    return text
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"daemon metrics on :{port} never showed a forecast")
        await asyncio.sleep(0.5)


@pytest.mark.asyncio
async def test_fault_alert_reaches_kafka_and_gauges_reach_prometheus(
    tmp_path: Path, kafka_bootstrap: str, prometheus_url: str, prometheus_targets_dir: Path
) -> None:
    topic = f"sentinelle.e2e.{uuid.uuid4().hex[:8]}"
    sim = SimulatorSettings(
        port=0, time_scale=TIME_SCALE, seed=7, faults=(FAULT,), ground_truth_path=tmp_path / "truth.jsonl"
    )
    metrics_port = _free_port()
    target_file = prometheus_targets_dir / f"e2e-{metrics_port}.json"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=f"e2e-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
    )
    async with ChillerServer(sim) as server:
        sim_task = asyncio.create_task(server.run())
        config = _daemon_config(
            tmp_path, opcua_url=server.url, sim=sim, kafka=kafka_bootstrap, topic=topic, metrics_port=metrics_port
        )
        proc = _start_daemon(config, tmp_path / "daemon.log")
        try:
            await _wait_metrics(metrics_port, 60)
            prometheus_targets_dir.mkdir(parents=True, exist_ok=True)
            target_file.write_text(json.dumps([{"targets": [f"127.0.0.1:{metrics_port}"]}]))

            await server.wait_started()
            assert server.sim_start_ts is not None
            onset = server.sim_start_ts + FAULT.onset_s
            faulted = "chiller1.chw_temp_c"

            await consumer.start()
            events: list[dict[str, Any]] = []
            detected: dict[str, Any] | None = None
            # Bounded: fault-free stretch + detection bound, in real seconds, plus margin.
            async with asyncio.timeout((FAULT_FREE_S + DETECTION_BOUND_SIM_S) / TIME_SCALE + 60):
                while detected is None:
                    batch = await consumer.getmany(timeout_ms=500)
                    for records in batch.values():
                        for rec in records:
                            ev = json.loads(rec.value)
                            assert rec.key == ev["asset"].encode()
                            events.append(ev)
                            if ev["event"] == "opened" and ev["tag"] == faulted and _ts(ev["start_ts"]) >= onset:
                                detected = ev
                    assert proc.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]

            delay = _ts(detected["start_ts"]) - onset
            assert 0 <= delay <= DETECTION_BOUND_SIM_S, f"detected {delay:.0f} simulated s after onset"
            assert detected["contributors"] and detected["contributors"][0]["tag"] == faulted
            false_alerts = [e for e in events if e["event"] == "opened" and _ts(e["start_ts"]) < onset]
            assert len(false_alerts) <= MAX_FALSE_ALERTS, false_alerts

            # Prometheus scraped our per-tag forecast gauge.
            async with asyncio.timeout(40):
                while not (
                    result := _prom_query(prometheus_url, f'sentinelle_tag_forecast{{tag="{faulted}",level="0.5"}}')
                ):
                    await asyncio.sleep(1)
            assert 4.0 < float(result[0]["value"][1]) < 7.0
            # The model forecast (the default), without falling back to Holt for calls or rows.
            active = _prom_query(prometheus_url, "sentinelle_forecaster_active == 1")
            assert [r["metric"]["forecaster"] for r in active] == ["model"], active
            fallback = _prom_query(
                prometheus_url,
                "sentinelle_forecast_fallback_active + on (instance) "
                "sum by (instance) (sentinelle_forecast_fallback_rows_total)",
            )
            assert [float(r["value"][1]) for r in fallback] == [0.0], fallback

            # SIGTERM: clean stop within the grace period, every produced event delivered.
            proc.send_signal(signal.SIGTERM)
            rc = await asyncio.to_thread(proc.wait, 20)
            log = (tmp_path / "daemon.log").read_text()
            assert rc == 0, log[-3000:]
            assert "stopped in" in log
            produced = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
            async with asyncio.timeout(20):
                while len(events) < len(produced):
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        events.extend(json.loads(r.value) for r in records)

            def key(e: dict[str, Any]) -> tuple[str, str, float]:
                return (e["alert_id"], e["event"], e["event_ts"])

            assert {key(e) for e in produced} <= {key(e) for e in events}
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            await consumer.stop()
            target_file.unlink(missing_ok=True)
            server.stop()
            await asyncio.wait_for(sim_task, 10)


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _run_cli(tmp_path: Path, cfg: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """``sentinelle run`` on the settings ``cfg`` (written as TOML), to its exit."""
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(cfg))
    return subprocess.run(
        [sys.executable, "-m", "sentinelle.cli", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unreachable_kafka_at_start_exits_69(tmp_path: Path) -> None:
    cfg = {
        "tags": [{"name": "a.x", "asset": "a", "node_id": "ns=2;s=a.x"}],
        "sources": [{"url": f"opc.tcp://127.0.0.1:{_free_port()}/x/"}],
        "kafka": {
            "bootstrap_servers": f"127.0.0.1:{_free_port()}",
            "request_timeout_ms": 2000,
            "spool_dir": str(tmp_path / "spool"),
        },
        "prometheus": {"enabled": False},
    }
    r = _run_cli(tmp_path, cfg)
    assert r.returncode == 69, r.stderr[-2000:]
    assert "unavailable" in r.stderr


def test_required_opcua_server_unreachable_exits_69(tmp_path: Path) -> None:
    cfg = {
        "tags": [{"name": "a.x", "asset": "a", "node_id": "ns=2;s=a.x"}],
        "sources": [
            {"url": f"opc.tcp://127.0.0.1:{_free_port()}/x/", "required_at_start": True, "connect_timeout_s": 1.0}
        ],
        "kafka": {"enabled": False},
        "prometheus": {"enabled": False},
    }
    r = _run_cli(tmp_path, cfg)
    assert r.returncode == 69, r.stderr[-2000:]
    assert "unreachable at start" in r.stderr


@pytest.mark.asyncio
async def test_unreachable_opcua_server_is_retried_and_visible_in_metrics(tmp_path: Path) -> None:
    metrics_port = _free_port()
    cfg = {
        "tags": [{"name": "a.x", "asset": "a", "node_id": "ns=2;s=a.x"}],
        "sources": [
            {
                "url": f"opc.tcp://127.0.0.1:{_free_port()}/x/",
                "reconnect_initial_s": 0.2,
                "reconnect_max_s": 0.5,
                "connect_timeout_s": 0.5,
            }
        ],
        "kafka": {"enabled": False},
        "prometheus": {"port": metrics_port},
    }
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(cfg))
    proc = _start_daemon(path, tmp_path / "daemon.log")
    try:
        async with asyncio.timeout(90):
            while True:
                await asyncio.sleep(0.5)
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as r:
                        text = r.read().decode()
                except OSError:
                    continue
                # Attempts are counted as errors; a reconnect only when an outage ends.
                attempts = [
                    float(line.split()[-1])
                    for line in text.splitlines()
                    if line.startswith("sentinelle_source_errors_total{")
                    and 'source="plant"' in line
                    and 'kind="connect"' in line
                ]
                if attempts and attempts[0] >= 2:
                    break
        assert 'sentinelle_source_connected{source="plant"} 0.0' in text
        assert 'sentinelle_source_reconnects_total{source="plant"} 0.0' in text
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
