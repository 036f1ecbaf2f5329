"""Issue 15, item 5, as an operator would see it: the OPC-UA server goes away and comes back.

The daemon (a process) watches the chiller simulator.  When the server stops, its
tags must become gaps at once — no held values scored as live — and one
``source_down`` data-quality alert opens for the asset; when the server is back,
samples flow again, the alert clears, and the outage counts as one reconnect.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from sentinelle.settings import SimulatorSettings
from sentinelle.sim.server import ChillerServer, chiller_tags

from .test_pipeline_e2e import _free_port, _start_daemon

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        text = r.read().decode()
    total = 0.0
    for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE):
        total += float(m.group(1))
    return total


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def _until(check: Callable[[], bool], proc: Any, log: Path, timeout_s: float) -> float:
    t0 = time.monotonic()
    async with asyncio.timeout(timeout_s):
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if check():
                    return time.monotonic() - t0
            except OSError:
                pass
            await asyncio.sleep(0.2)


async def test_a_server_outage_is_a_gap_with_one_source_down_alert_and_one_reconnect(tmp_path: Path) -> None:
    # time_scale 1: a restarted simulator continues at wall-clock time, never behind the first one.
    sim = SimulatorSettings(port=_free_port(), time_scale=1.0, seed=5, ground_truth_path=tmp_path / "truth.jsonl")
    metrics_port = _free_port()
    jsonl = tmp_path / "alerts.jsonl"
    cfg: dict[str, Any] = {
        "sources": [
            {
                "name": "plant",
                "url": f"opc.tcp://127.0.0.1:{sim.port}/sentinelle/",
                "publishing_interval_ms": 100.0,
                "connect_timeout_s": 2.0,
                "reconnect_initial_s": 0.5,
                "reconnect_max_s": 2.0,
            }
        ],
        "tags": [t.model_dump(exclude_none=True) for t in chiller_tags(sim)],
        "forecast": {"forecaster": "naive"},
        "detect": {"rearm_steps": 0, "rearm_min_s": 0.0},  # a clear is sent at once, not held for re-arm
        "kafka": {"enabled": False},
        "prometheus": {"host": "127.0.0.1", "port": metrics_port},
        "console": {"jsonl_path": str(jsonl)},
        "daemon": {"shutdown_timeout_s": 5.0},
        "windows": {"allowed_lateness_s": 0.5, "idle_close_s": 1.0},
    }
    config = tmp_path / "sentinelle.toml"
    config.write_text(tomli_w.dumps(cfg))
    log = tmp_path / "daemon.log"

    def source_down(event: str) -> list[dict[str, Any]]:
        return [e for e in _events(jsonl) if e["reason"] == "source_down" and e["event"] == event]

    proc = _start_daemon(config, log)
    try:
        async with ChillerServer(sim) as server:
            run = asyncio.create_task(server.run())
            await _until(lambda: _metric(metrics_port, "sentinelle_samples_ingested_total") > 50, proc, log, 60)
            server.stop()
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
        gaps_before = _metric(metrics_port, "sentinelle_window_gap_slots_total")
        down_s = await _until(lambda: len(source_down("opened")) == 1, proc, log, 30)
        ingested = _metric(metrics_port, "sentinelle_samples_ingested_total")
        await _until(
            lambda: _metric(metrics_port, "sentinelle_window_gap_slots_total") > gaps_before + 10, proc, log, 30
        )

        async with ChillerServer(sim) as server:
            run = asyncio.create_task(server.run())
            t_back = time.monotonic()
            await _until(lambda: _metric(metrics_port, "sentinelle_samples_ingested_total") > ingested, proc, log, 30)
            flowing_s = time.monotonic() - t_back
            await _until(lambda: len(source_down("cleared")) == 1, proc, log, 30)
            cleared_s = time.monotonic() - t_back
            reconnects = _metric(metrics_port, "sentinelle_source_reconnects_total")
            proc.send_signal(signal.SIGTERM)
            rc = await asyncio.to_thread(proc.wait, 20)
            server.stop()
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert rc == 0, log.read_text()[-3000:]
    (opened,) = source_down("opened")
    assert opened["asset"] == sim.asset and opened["category"] == "data_quality"
    assert "source disconnected" in opened["message"]
    assert reconnects == 1.0  # one outage, however many attempts
    print(
        f"\nsource_down alert {down_s:.1f} s after the server stopped; samples again {flowing_s:.1f} s "
        f"after it was back; alert cleared {cleared_s:.1f} s after"
    )
