"""Scale-out: 1 vs 2 worker processes on the samples topic, 10,000 and 20,000 tags at 1 Hz, Holt or model (issue 16).

A synthetic collector (this script: one record per asset of 50 tags per second, the codec's
format, keyed by asset) writes ``--tags`` tags at 1 Hz in real time for ``--duration-s``; the
workers are ``sentinelle run`` processes in ``daemon.mode = "worker"`` (``--forecaster``: Holt, or
the shipped model on the CPU; one consumer group, 12 partitions, checkpoints every 30 s as by default).
The model cannot forecast 10,000 windows of 512 steps a second on two cores, so it runs with the
daemon's own answer to that, ``forecast.refresh_every_steps`` (``--refresh-every-steps``, default
for the model: 16, the most ``horizon_steps`` allows: each tag re-forecast every 16th tick, a
rotating 1/16 of the tags per tick); ``--model-threads`` is the torch threads per worker
(default: the cores shared out among the workers).  Each worker's ``forecast_batch_size`` sum is
the windows the forecaster did: windows/s per run.  Every 2 s the script records each worker's
lag (``sentinelle_scaleout_lag_records``: records of its partitions not processed yet, from its
metrics endpoint), CPU (% of one core) and RSS, and the size of its last checkpoint.  After the
producer stops, the time until every worker has processed everything is the drain time.  From
30 s on, the first tag of every asset steps past its high limit: the time from Kafka's
acknowledgement of the opening tick's samples to the alert in a worker's file is the
sample-to-alert latency (it includes the slot's wait for the next tick, ``allowed_lateness_s``).

Needs a Kafka broker (``--bootstrap``, default ``$SENTINELLE_TEST_KAFKA_BOOTSTRAP``).  The values
are a noisy random walk per tag with no fault: this measures cost, not detection.  The machine's
load average is recorded beside each sample (a shared machine: other people's jobs count too).
Rows are merged into ``--out`` by (forecaster, tags, workers, model threads): rows of other runs stay.

    PYTHONPATH=daemon python bench/scaleout.py --tags 10000 20000 --workers 1 2 --duration-s 60
    PYTHONPATH=daemon python bench/scaleout.py --forecaster model --tags 10000 --duration-s 90 --max-drain-s 60
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import tomli_w
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info
from sentinelle.records import Sample
from sentinelle.scaleout.codec import encode_samples

TAGS_PER_ASSET = 50
PARTITIONS = 12
CHECKPOINT_S = 30.0
FAULT_AT_S = 30
"""From this second on, the first tag of every asset steps past its high limit (sample-to-alert latency)."""
LIMIT = 1000.0
MAX_RSS_MIB = 4096
SCRAPED = ("sentinelle_scaleout_", "sentinelle_forecast_batch_size_sum", "sentinelle_forecast_batch_seconds_sum")
MODEL_REFRESH = 16
"""The model's default ``refresh_every_steps``: the most ``horizon_steps`` (16) allows."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> dict[str, float]:
    """The worker's scale-out gauges (empty while its endpoint does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith(SCRAPED) and " " in line and "{" not in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _config(tmp: Path, name: str, tags: int, bootstrap: str, ids: str, port: int, forecast: dict[str, Any]) -> Path:
    cfg: dict[str, Any] = {
        "tags": [
            {
                "name": f"g{i // TAGS_PER_ASSET:04d}.t{i:05d}",
                "asset": f"g{i // TAGS_PER_ASSET:04d}",
                "node_id": f"ns=2;i={i}",
                # The first tag of each asset has a limit its step (FAULT_AT_S) crosses: one alert per asset.
                **({"high_limit": LIMIT} if i % TAGS_PER_ASSET == 0 else {}),
            }
            for i in range(tags)
        ],
        "kafka": {"bootstrap_servers": bootstrap, "enabled": False, "spool_dir": ""},
        "prometheus": {"host": "127.0.0.1", "port": port},
        "console": {"jsonl_path": str(tmp / f"{name}.jsonl")},
        "daemon": {"mode": "worker", "log_level": "INFO"},
        "forecast": forecast,
        "scaleout": {
            "samples_topic": f"sentinelle-bench-samples-{ids}",
            "state_topic": f"sentinelle-bench-state-{ids}",
            "group_id": f"sentinelle-bench-{ids}",
            "partitions": PARTITIONS,
            "checkpoint_interval_s": CHECKPOINT_S,
            "start_from": "earliest",
        },
    }
    path = tmp / f"{name}.toml"
    path.write_text(tomli_w.dumps(cfg))
    return path


async def _produce(bootstrap: str, topic: str, tags: int, duration_s: float, sent_at: dict[float, float]) -> int:
    """Real-time 1 Hz samples of ``tags`` tags; returns the records sent; ``sent_at``: tick ts → wall time acked."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=20)
    await producer.start()
    rng = np.random.default_rng(0)
    level = rng.normal(50.0, 10.0, tags)
    names = [f"g{i // TAGS_PER_ASSET:04d}.t{i:05d}" for i in range(tags)]
    sent = 0
    try:
        start = time.time()
        for k in range(int(duration_s)):
            ts = float(int(start) + k)
            level += rng.normal(0.0, 0.1, tags)
            values = level + rng.normal(0.0, 0.05, tags)
            if k >= FAULT_AT_S:
                values[::TAGS_PER_ASSET] += 2 * LIMIT
            futs = []
            for a in range(0, tags, TAGS_PER_ASSET):
                chunk = [Sample(names[i], ts, float(values[i])) for i in range(a, min(a + TAGS_PER_ASSET, tags))]
                futs.append(await producer.send(topic, encode_samples(chunk), key=names[a].split(".")[0].encode()))
            await asyncio.gather(*futs)
            sent_at[ts] = time.time()
            sent += len(futs)
            await asyncio.sleep(max(0.0, start + k + 1 - time.time()))
    finally:
        await producer.stop()
    return sent


async def _watch_alerts(files: list[Path], seen: dict[str, tuple[float, float]]) -> None:
    """Each limit alert's opening tick and the wall time its event first appeared (polled every 50 ms)."""
    offsets = dict.fromkeys(files, 0)
    while True:
        for f in files:
            data = _read_from(f, offsets[f])
            end = data.rfind(b"\n") + 1
            offsets[f] += end
            now = time.time()
            for line in data[:end].splitlines():
                e = json.loads(line)
                if e["kind"] == "limit_high" and e["event"] == "opened" and e["alert_id"] not in seen:
                    start = dt.datetime.fromisoformat(e["start_ts"].replace("Z", "+00:00")).timestamp()
                    seen[e["alert_id"]] = (start, now)
        await asyncio.sleep(0.05)


def _read_from(path: Path, offset: int) -> bytes:
    if not path.exists():
        return b""
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read()


def _quantile(xs: list[float], q: float) -> float:
    return round(float(np.quantile(xs, q)), 3)


async def _lag(bootstrap: str, topic: str, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        end = await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(group)
        return int(sum(end[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps))
    finally:
        await consumer.stop()
        await admin.close()


async def _run(
    bootstrap: str, tags: int, workers: int, duration_s: float, forecast: dict[str, Any], max_drain_s: float
) -> dict[str, Any]:
    ids = uuid.uuid4().hex[:8]
    topic, group = f"sentinelle-bench-samples-{ids}", f"sentinelle-bench-{ids}"
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        procs = []
        ports = [_free_port() for _ in range(workers)]
        for w in range(workers):
            log = open(tmp / f"w{w}.log", "wb")  # noqa: SIM115, ASYNC230 - closed with the process; once per run
            cmd = [
                sys.executable,
                "-m",
                "sentinelle.cli",
                "run",
                "--config",
                str(_config(tmp, f"w{w}", tags, bootstrap, ids, ports[w], forecast)),
            ]
            procs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log))
        try:
            deadline = time.monotonic() + 300  # the model's load and capacity probe take a while on a busy machine
            while True:  # every worker has an assignment, and together they hold every partition
                texts = [(tmp / f"w{w}.log").read_text(errors="replace") for w in range(workers)]
                last = [[ln for ln in t.splitlines() if "assigned partitions" in ln] for t in texts]
                if (
                    all(last)
                    and sum(len(json.loads(x[-1].split("assigned partitions ")[1].split(":")[0])) for x in last)
                    == PARTITIONS
                ):
                    break
                for p, _ in procs:
                    if p.poll() is not None:
                        raise RuntimeError(f"a worker exited: {texts}")
                if time.monotonic() > deadline:
                    raise RuntimeError("workers did not join the group")
                await asyncio.sleep(0.5)
            ps = [psutil.Process(p.pid) for p, _ in procs]
            for p in ps:
                p.cpu_percent(None)
            sent_at: dict[float, float] = {}
            seen: dict[str, tuple[float, float]] = {}
            produce = asyncio.create_task(_produce(bootstrap, topic, tags, duration_s, sent_at))
            watch = asyncio.create_task(_watch_alerts([tmp / f"w{w}.jsonl" for w in range(workers)], seen))
            series: list[dict[str, Any]] = []
            t0 = time.monotonic()
            drained_at = None
            while True:
                await asyncio.sleep(2.0)
                gauges = [await asyncio.to_thread(_scrape, port) for port in ports]
                lag = int(sum(g.get("sentinelle_scaleout_lag_records", 0.0) for g in gauges))
                series.append(
                    {
                        "t_s": round(time.monotonic() - t0, 1),
                        "lag_records": lag,
                        "committed_lag_records": await _lag(bootstrap, topic, group),
                        "checkpoint_bytes": [g.get("sentinelle_scaleout_checkpoint_bytes") for g in gauges],
                        "cpu_pct": [round(p.cpu_percent(None), 1) for p in ps],
                        "rss_mib": [round(p.memory_info().rss / 2**20, 1) for p in ps],
                        "windows_forecast": [g.get("sentinelle_forecast_batch_size_sum") for g in gauges],
                        "load_avg_1m": round(os.getloadavg()[0], 2),
                    }
                )
                if max(series[-1]["rss_mib"]) > MAX_RSS_MIB:  # a shared machine: never let a worker take it all
                    print(f"a worker passed {MAX_RSS_MIB} MiB: run stopped", flush=True)
                    produce.cancel()
                    break
                if produce.done() and lag == 0 and all(gauges):
                    drained_at = time.monotonic() - t0
                    break
                if time.monotonic() - t0 > duration_s + max_drain_s:
                    break
            await asyncio.wait([produce])
            records = 0 if produce.cancelled() else produce.result()
            watch.cancel()
            await asyncio.wait([watch])
        finally:
            stopped_s: list[float | None] = []
            for p, log in procs:
                p.terminate()
                t_stop = time.monotonic()
                try:
                    p.wait(60)
                    stopped_s.append(round(time.monotonic() - t_stop, 1))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                    stopped_s.append(None)
                log.close()
            probes = [
                ln.strip()[-300:]
                for w in range(workers)
                for ln in (tmp / f"w{w}.log").read_text(errors="replace").splitlines()
                if "windows/s here" in ln
            ]
    steady = [s for s in series if 10 <= s["t_s"] <= duration_s]
    # Sample-to-alert: the opening tick's samples acknowledged by Kafka → the event in a worker's file.
    latency = sorted(at - sent_at[ts] for ts, at in seen.values() if ts in sent_at)
    # Windows the forecaster did per second of the producer's run (counters at its end, scrape every 2 s).
    in_run = [x for x in series if x["t_s"] <= duration_s + 2]
    done = [sum(v or 0.0 for v in x["windows_forecast"]) for x in in_run]
    return {
        "forecaster": forecast["forecaster"],
        "refresh_every_steps": forecast.get("refresh_every_steps", 1),
        "model_threads_per_worker": forecast.get("model_threads"),
        "tags": tags,
        "workers": workers,
        "duration_s": duration_s,
        "samples_per_s": tags,
        "windows_needed_per_s": round(tags / forecast.get("refresh_every_steps", 1), 1),
        "windows_forecast_per_s": round((done[-1] - done[0]) / (in_run[-1]["t_s"] - in_run[0]["t_s"]), 1)
        if len(in_run) > 1
        else None,
        "capacity_probe_logs": probes,
        "load_avg_1m_mean_max": [
            round(statistics.fmean(x["load_avg_1m"] for x in series), 2),
            max(x["load_avg_1m"] for x in series),
        ],
        "records": records,
        "drain_s_after_producer": None if drained_at is None else round(drained_at - duration_s, 1),
        "lag_records_max": max(s["lag_records"] for s in series),
        "lag_records_median_steady": statistics.median(s["lag_records"] for s in steady) if steady else None,
        "alerts_seen": len(seen),
        "sample_to_alert_s_p50_p99": [_quantile(latency, 0.5), _quantile(latency, 0.99)] if latency else None,
        "cpu_pct_mean_per_worker": [
            round(statistics.fmean(s["cpu_pct"][w] for s in steady), 1) if steady else None for w in range(workers)
        ],
        "rss_mib_max_per_worker": [max(s["rss_mib"][w] for s in series) for w in range(workers)],
        "checkpoint_bytes_per_worker": series[-1]["checkpoint_bytes"],
        "stop_s_per_worker (None: killed after 60 s)": stopped_s,
        "series": series,
    }


def _key(run: dict[str, Any]) -> tuple[str, int, int]:
    return run["forecaster"], run["tags"], run["workers"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default=os.environ.get("SENTINELLE_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092"))
    ap.add_argument("--tags", type=int, nargs="+", default=[10_000, 20_000])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--duration-s", type=float, default=60.0)
    ap.add_argument("--max-drain-s", type=float, default=240.0, help="longest wait for the drain after the producer")
    ap.add_argument("--forecaster", default="holt", choices=["holt", "model"])
    ap.add_argument("--refresh-every-steps", type=int, default=None, help=f"default: 1 (holt), {MODEL_REFRESH} (model)")
    ap.add_argument("--model-threads", type=int, default=None, help="per worker; default: cores // workers")
    ap.add_argument("--out", type=Path, default=Path("bench/results/scaleout.json"))
    args = ap.parse_args()
    refresh = args.refresh_every_steps or (MODEL_REFRESH if args.forecaster == "model" else 1)
    runs: list[dict[str, Any]] = []
    if args.out.exists():  # keep the rows of other runs (those before the forecaster field were Holt)
        runs = [{"forecaster": "holt", **r} for r in json.loads(args.out.read_text()).get("runs", [])]
    for tags in args.tags:
        for workers in args.workers:
            forecast: dict[str, Any] = {"forecaster": args.forecaster, "refresh_every_steps": refresh}
            if args.forecaster == "model":
                forecast.update(
                    model_device="cpu", model_threads=args.model_threads or max(1, (os.cpu_count() or 1) // workers)
                )
            r = asyncio.run(_run(args.bootstrap, tags, workers, args.duration_s, forecast, args.max_drain_s))
            key = (args.forecaster, tags, workers, r["model_threads_per_worker"])
            runs = [x for x in runs if (*_key(x), x.get("model_threads_per_worker")) != key] + [r]
            args.out.parent.mkdir(parents=True, exist_ok=True)
            device = "cpu (model, torch float32)" if args.forecaster == "model" else "cpu"
            result = {
                "machine": machine_info(device),
                "note": "a shared 2-core VM (about 8 people): see each run's load_avg_1m_mean_max",
                "checkpoint_interval_s": CHECKPOINT_S,
                "runs": runs,
            }
            args.out.write_text(json.dumps(result, indent=1))
            print(
                f"{args.forecaster} R={refresh}: {tags:>6} tags, {workers} worker(s): "
                f"windows {r['windows_forecast_per_s']}/s (needed {r['windows_needed_per_s']}), "
                f"lag max {r['lag_records_max']} records, "
                f"steady median {r['lag_records_median_steady']}, drained {r['drain_s_after_producer']} s after, "
                f"CPU {r['cpu_pct_mean_per_worker']} %, RSS {r['rss_mib_max_per_worker']} MiB, "
                f"sample-to-alert p50/p99 {r['sample_to_alert_s_p50_p99']} s over {r['alerts_seen']} alerts, "
                f"load {r['load_avg_1m_mean_max']}",
                flush=True,
            )


if __name__ == "__main__":
    main()
