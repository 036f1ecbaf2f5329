"""Scale-out against real Kafka: one collector, two workers, one of them killed mid-run (issue 16).

Four simulated chillers (one OPC-UA simulator each), named so that each has a partition of its
own among four, feed one collector process (``daemon.mode = "collector"``).  Two worker processes
(``daemon.mode = "worker"``, Holt) share the samples topic as one consumer group, two partitions
each.  Every chiller gets the same two faults: a chilled-water sensor drift across its high
limit, then a second one.  When the first worker that opens a limit alert has done so, it is
killed with SIGKILL — its alert open and not yet cleared.  The other worker must take over its
partitions, restore their assets from the state topic and:

* clear the alert the killed worker opened, as the same alert (same ``alert_id``) — not open a
  second one for the same fault (which a cold start would do);
* open the alert of the second fault on every asset it took over;
* send nothing twice except as the same event (same ``event_id``, same content): what it
  replays from the last checkpoint re-makes the same events.

The checks read the alert topic, as a consumer would (the workers' Kafka sink; a worker commits
its input only once Kafka acknowledged the events it made): every event either worker wrote to
its JSON-lines file must be there too.

Reported (``-s``): takeover time (SIGKILL → the survivor holds every partition, and → its first
event for a taken-over asset), alerts lost, duplicates.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sentinelle.scaleout.worker import partition_of
from sentinelle.settings import FaultSettings, SimulatorSettings
from sentinelle.sim.server import ChillerServer, chiller_tags

pytestmark = [pytest.mark.integration]

PARTITIONS = 4
TIME_SCALE = 20.0
FAULTS = (
    FaultSettings(kind="sensor_drift", onset_s=120.0, duration_s=200.0, tag="chw_temp_c", magnitude=2.0),
    FaultSettings(kind="sensor_drift", onset_s=420.0, duration_s=150.0, tag="chw_temp_c", magnitude=2.0),
)
SESSION_TIMEOUT_MS = 6000
TEST_BOUND_S = 100.0


def _assets() -> list[str]:
    """Four chiller names whose keys fall in four different partitions (so each worker gets two)."""
    out: list[str] = []
    seen: set[int] = set()
    for i in range(1, 200):
        name = f"chiller{i}"
        p = partition_of(name, PARTITIONS)
        if p not in seen:
            seen.add(p)
            out.append(name)
        if len(out) == PARTITIONS:
            return out
    raise AssertionError("no four chiller names in four partitions")


def _config(tmp: Path, name: str, mode: str, kafka: str, servers: dict[str, ChillerServer], ids: str) -> Path:
    tags: list[dict[str, Any]] = []
    sources: list[dict[str, Any]] = []
    for asset, server in servers.items():
        sim = SimulatorSettings(asset=asset)
        tags += [t.model_dump(exclude_none=True) for t in chiller_tags(sim, source=asset)]
        sources.append({"name": asset, "url": server.url, "publishing_interval_ms": 50.0, "queue_size": 64})
    cfg: dict[str, Any] = {
        "sources": sources,
        "tags": tags,
        # The workers' alerts go to Kafka (what is checked) and to a JSON-lines file (what drives the test).
        "kafka": {
            "bootstrap_servers": kafka,
            "enabled": mode == "worker",
            "topic": f"sentinelle-test-alerts-{ids}",
            "spool_dir": str(tmp / f"{name}-spool"),
        },
        "prometheus": {"enabled": False},
        "console": {"jsonl_path": str(tmp / f"{name}.jsonl")},
        "daemon": {"mode": mode, "shutdown_timeout_s": 5.0, "log_level": "INFO"},
        "windows": {"allowed_lateness_s": 1.0, "idle_close_s": 2.0},
        "forecast": {"forecaster": "holt"},
        "scaleout": {
            "samples_topic": f"sentinelle-test-samples-{ids}",
            "state_topic": f"sentinelle-test-state-{ids}",
            "group_id": f"sentinelle-test-workers-{ids}",
            "partitions": PARTITIONS,
            "checkpoint_interval_s": 2.0,
            "session_timeout_ms": SESSION_TIMEOUT_MS,
            "heartbeat_interval_ms": 1000,
            "start_from": "earliest",
            "collector_flush_interval_ms": 100,
        },
    }
    path = tmp / f"{name}.toml"
    path.write_text(tomli_w.dumps(cfg))
    return path


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "sentinelle.cli", "run", "--config", str(config)],
            stdout=f,
            stderr=subprocess.STDOUT,
            env=env,
        )


def _events(path: Path) -> list[dict[str, Any]]:
    """Complete lines only: a worker killed mid-write leaves at most a torn last line."""
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.split("\n")[:-1]  # what follows the last newline is torn (or empty)
    return [json.loads(line) for line in lines if line]


def _assignments(log: Path) -> list[tuple[float, str]]:
    """(time seen, line) of each 'assigned partitions' line so far; times are filled by the caller's poll."""
    if not log.exists():
        return []
    return [(0.0, line) for line in log.read_text(errors="replace").splitlines() if "assigned partitions" in line]


def _ts(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _limit_alerts(events: list[dict[str, Any]], asset: str, start: float, end: float) -> set[str]:
    return {
        e["alert_id"]
        for e in events
        if e["kind"] == "limit_high" and e["asset"] == asset and start <= _ts(e["start_ts"]) < end
    }


async def _wait_for(what: str, check: Any, procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    while not check():
        for p, log in zip(procs, logs, strict=True):
            if p.poll() is not None and p.returncode != -signal.SIGKILL:
                raise AssertionError(
                    f"{log.name} exited ({p.returncode}) waiting for {what}:\n{log.read_text()[-3000:]}"
                )
        await asyncio.sleep(0.2)


@pytest.mark.asyncio
async def test_worker_killed_mid_run_is_taken_over_without_losing_alerts(tmp_path: Path, kafka_bootstrap: str) -> None:
    ids = uuid.uuid4().hex[:8]
    assets = _assets()
    servers = {
        a: ChillerServer(SimulatorSettings(asset=a, port=0, time_scale=TIME_SCALE, seed=11 + i, faults=FAULTS))
        for i, a in enumerate(assets)
    }
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    sim_tasks: list[asyncio.Task[None]] = []
    try:
        async with asyncio.timeout(TEST_BOUND_S):
            for s in servers.values():
                await s.__aenter__()
            names = ["collector", "worker_a", "worker_b"]
            for name in names:
                mode = "collector" if name == "collector" else "worker"
                logs.append(tmp_path / f"{name}.log")
                procs.append(_start(_config(tmp_path, name, mode, kafka_bootstrap, servers, ids), logs[-1]))
            workers = {"worker_a": (procs[1], logs[1]), "worker_b": (procs[2], logs[2])}

            def balanced() -> bool:
                # Each worker's latest assignment holds two partitions (two assets).
                return all((a := _assignments(log)) and ": 2 assets" in a[-1][1] for _, log in workers.values())

            await _wait_for("both workers to hold two partitions", balanced, procs, logs)
            # Bad input on the samples topic: counted and logged by its worker, never a crash.
            producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
            await producer.start()
            try:
                topic = f"sentinelle-test-samples-{ids}"
                # One to each worker (each logs the first of a burst): garbage, then an unknown version.
                of_a, of_b = _held(workers["worker_a"][1])[0], _held(workers["worker_b"][1])[0]
                await producer.send_and_wait(topic, b"not a samples record", key=of_a.encode())
                await producer.send_and_wait(topic, b"SS\x63" + bytes(8), key=of_b.encode())
            finally:
                await producer.stop()

            def bad_logged() -> bool:
                text = "".join(log.read_text(errors="replace") for _, log in workers.values())
                return text.count("skipped an unreadable samples record") >= 2

            await _wait_for("the workers to log the two bad records", bad_logged, procs, logs)
            sim_tasks = [asyncio.create_task(s.run()) for s in servers.values()]
            for s in servers.values():
                await s.wait_started()
            sim_start = min(s.sim_start_ts or 0.0 for s in servers.values())
            f1, f2 = FAULTS
            w1 = (sim_start + f1.onset_s, sim_start + f1.onset_s + f1.duration_s)
            w2 = (sim_start + f2.onset_s, sim_start + f2.onset_s + f2.duration_s)

            # Kill the first worker to open a limit alert of the first fault, while it is open.
            victim: str | None = None

            def first_opened() -> bool:
                nonlocal victim
                for name, (_, _log) in workers.items():
                    if any(
                        e["kind"] == "limit_high" and e["event"] == "opened"
                        for e in _events(tmp_path / f"{name}.jsonl")
                    ):
                        victim = name
                        return True
                return False

            await _wait_for("a limit alert of the first fault", first_opened, procs, logs)
            assert victim is not None
            survivor = "worker_b" if victim == "worker_a" else "worker_a"
            victim_events = _events(tmp_path / f"{victim}.jsonl")
            taken = sorted({e["asset"] for e in victim_events} | set(_held(workers[victim][1])))
            open_at_kill = [e for e in victim_events if e["kind"] == "limit_high" and e["event"] == "opened"]
            workers[victim][0].send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            n_assign = len(_assignments(workers[survivor][1]))

            def survivor_holds_all() -> bool:
                a = _assignments(workers[survivor][1])
                return len(a) > n_assign and f": {PARTITIONS} assets" in a[-1][1]

            await _wait_for("the survivor to hold every partition", survivor_holds_all, procs, logs)
            rebalanced_s = time.monotonic() - killed_at
            n_before = len(_events(tmp_path / f"{survivor}.jsonl"))

            def first_takeover_event() -> bool:
                return any(e["asset"] in taken for e in _events(tmp_path / f"{survivor}.jsonl")[n_before:])

            await _wait_for("an event of a taken-over asset", first_takeover_event, procs, logs)
            first_event_s = time.monotonic() - killed_at

            def done() -> bool:
                ev = _events(tmp_path / f"{survivor}.jsonl")
                both = ev + _events(tmp_path / f"{victim}.jsonl")
                for a in taken:  # a cold takeover opens a second alert for the fault already alerted on
                    assert len(_limit_alerts(both, a, *w1)) <= 1, f"{a}: a second alert for one fault (cold takeover?)"
                second = all(_limit_alerts(ev, a, *w2) for a in taken)
                cleared = {e["alert_id"] for e in ev if e["event"] == "cleared"}
                return second and all(o["alert_id"] in cleared for o in open_at_kill)

            await _wait_for("the second fault's alerts and the first's clearing", done, procs, logs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                await asyncio.to_thread(p.wait, 15)
            except subprocess.TimeoutExpired:
                p.kill()
        for s in servers.values():
            s.stop()
        for t in sim_tasks:
            await asyncio.wait_for(t, 10)
        for s in servers.values():
            await s.__aexit__(None, None, None)

    # What a consumer of the alert topic got: the workers commit their input only once Kafka has the events.
    everything = await _alert_topic(kafka_bootstrap, f"sentinelle-test-alerts-{ids}")
    written = _events(tmp_path / "worker_a.jsonl") + _events(tmp_path / "worker_b.jsonl")
    assert {e["event_id"] for e in written} <= {e["event_id"] for e in everything}, "made but never reached Kafka"
    by_id: dict[str, list[dict[str, Any]]] = {}
    for e in everything:
        by_id.setdefault(e["event_id"], []).append(e)
    repeats = {k: v for k, v in by_id.items() if len(v) > 1}
    # Duplicates only as repeats of one event: same id, same content.
    for k, copies in repeats.items():
        assert all(c == copies[0] for c in copies), f"{k} was sent twice with different content: {copies}"
    # Not lost, not doubled: one limit alert per asset and fault (a cold takeover would open a second), each seen.
    lost = []
    for a in assets:
        for w in (w1, w2):
            found = _limit_alerts(everything, a, *w)
            assert len(found) <= 1, f"{a}: {len(found)} limit alerts for one fault: {sorted(found)}"
            if not found:
                lost.append((a, w))
    assert not lost, f"faults without an alert: {lost}"
    cleared = {e["alert_id"] for e in everything if e["event"] == "cleared"}
    for o in open_at_kill:
        assert o["alert_id"] in cleared, f"the alert open at the kill never cleared: {o['alert_id']}"
    print(
        f"\nscale-out takeover: {len(taken)} assets of {victim} taken over; survivor held every partition "
        f"{rebalanced_s:.1f} s after SIGKILL (session timeout {SESSION_TIMEOUT_MS / 1000:g} s), first event of a "
        f"taken-over asset after {first_event_s:.1f} s; alerts lost 0; events {len(by_id)}, "
        f"repeated {len(repeats)} (each identical, same event_id)"
    )
    assert rebalanced_s < SESSION_TIMEOUT_MS / 1000 + 15


async def _alert_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every event on the alert topic (read to its end)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(30):
            tps = consumer.assignment() or set()
            while not tps:
                await asyncio.sleep(0.1)
                tps = consumer.assignment()
            end = await consumer.end_offsets(list(tps))
            while any([await consumer.position(tp) < end[tp] for tp in tps]):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    out += [json.loads(r.value) for r in records]
    finally:
        await consumer.stop()
    return out


def _held(log: Path) -> list[str]:
    """Assets of a worker's latest assignment, from its log's partitions and the partitioner."""
    a = _assignments(log)
    if not a:
        return []
    line = a[-1][1]
    parts = json.loads(line.split("assigned partitions ")[1].split(":")[0])
    return [x for x in _assets() if partition_of(x, PARTITIONS) in parts]
