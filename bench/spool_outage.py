"""Issue 15 figure: alerts across (broker down N min + stop + restart) — lost, duplicated, time to drain.

The broker (deploy/kafka/kafka.sh, pid under $SENTINELLE_RUN_DIR) is paused with SIGSTOP: connected
but never acknowledging, the harder case. Events are sent at a steady rate throughout; then the sink
is stopped the way the daemon stops (bounded close), the broker resumed, a new sink started on the
same spool, and the topic read back. Prints a table and writes JSON.

    SENTINELLE_RUN_DIR=.run python bench/spool_outage.py --bootstrap 127.0.0.1:20892 --outage-s 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent
from sentinelle.settings import KafkaSettings
from sentinelle.sinks.kafka import KafkaSink


def _event(asset: str, i: int) -> AlertEvent:
    tag = f"{asset}.chw_temp_c"
    return AlertEvent(
        "opened" if i == 0 else "updated",
        f"{asset}/{tag}/forecast_residual/1700000000000",
        "forecast_residual",
        asset,
        tag,
        "warning",
        1.7e9,
        1.7e9 + i,
        None,
        0.99,
        7.0,
        5.0,
        4.8,
        5.2,
        "degC",
        f"event {i}",
        sequence=i,
    )


async def _read_all(bootstrap: str, topic: str, expected: int) -> list[str]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=uuid.uuid4().hex, auto_offset_reset="earliest"
    )
    await consumer.start()
    ids: list[str] = []
    quiet_until: float | None = None
    try:
        while quiet_until is None or time.monotonic() < quiet_until:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                ids.extend(json.loads(r.value)["event_id"] for r in batch)
            if quiet_until is None and len(ids) >= expected:
                quiet_until = time.monotonic() + 5.0
    finally:
        await consumer.stop()
    return ids


async def main(args: argparse.Namespace) -> dict[str, object]:
    pid = int((Path(os.environ.get("SENTINELLE_RUN_DIR", ".run")) / "kafka" / "kafka.pid").read_text())
    topic = f"sentinelle-bench-{uuid.uuid4().hex}"
    spool_dir = Path(tempfile.mkdtemp(prefix="spool-bench-"))
    settings = KafkaSettings(bootstrap_servers=args.bootstrap, topic=topic, spool_dir=spool_dir, spool_after_s=30.0)
    metrics = Metrics(CollectorRegistry())
    sink = KafkaSink(settings, metrics)
    await sink.start()
    sent: list[str] = []
    n = 0
    os.kill(pid, signal.SIGSTOP)
    t_down = time.monotonic()
    try:
        while time.monotonic() - t_down < args.outage_s:
            batch = [_event(f"asset{k}", n) for k in range(args.assets)]
            n += 1
            sent.extend(ev.event_id for ev in batch)
            await sink.send(batch)
            await asyncio.sleep(1.0 / args.rate_hz)
        t_stop = time.monotonic()
        try:
            async with asyncio.timeout(args.grace_s):
                await sink.close()
        except TimeoutError:
            pass
        stop_s = time.monotonic() - t_stop
    finally:
        os.kill(pid, signal.SIGCONT)
    spooled = int(metrics.registry.get_sample_value("sentinelle_alert_spool_events") or 0)
    dropped_first = metrics.registry.get_sample_value("sentinelle_sink_events_dropped_total", {"sink": "kafka"}) or 0
    metrics2 = Metrics(CollectorRegistry())
    t_start = time.monotonic()
    sink2 = KafkaSink(settings, metrics2)
    await sink2.start()
    while sink2.pending:
        await asyncio.sleep(0.05)
    drain_s = time.monotonic() - t_start
    await sink2.close()
    got = await _read_all(args.bootstrap, topic, len(sent))
    result: dict[str, object] = {
        "machine": platform.node(),
        "device": "cpu",
        "outage_s": args.outage_s,
        "events_sent": len(sent),
        "events_in_kafka": len(got),
        "lost": len(set(sent) - set(got)),
        "duplicated_same_event_id": len(got) - len(set(got)),
        "order_kept_per_asset_after_dedup": all(
            [i for i in dict.fromkeys(got) if i.startswith(f"asset{k}/")]
            == [i for i in sent if i.startswith(f"asset{k}/")]
            for k in range(args.assets)
        ),
        "stop_s": round(stop_s, 3),
        "spooled_at_stop": spooled,
        "dropped": dropped_first,
        "drain_after_restart_s": round(drain_s, 3),
    }
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--outage-s", type=float, default=300.0)
    p.add_argument("--rate-hz", type=float, default=2.0)
    p.add_argument("--assets", type=int, default=3)
    p.add_argument("--grace-s", type=float, default=10.0)
    p.add_argument("--out", type=Path, default=Path("bench/results/spool_outage.json"))
    a = p.parse_args()
    res = asyncio.run(main(a))
    for k, v in res.items():
        print(f"{k:24} {v}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=2) + "\n")
