"""Spine throughput benchmark: N tags at 1 Hz from the simulator through the daemon.

For each size the chiller simulator runs in its own process (``sentinelle simulate
--extra-tags N``) and the daemon runs in this process with a baseline forecaster
(or, with ``--forecaster model``, the shipped model on the CPU), its real OPC-UA
source, windows, batcher, detectors and sinks (console only: Kafka
delivery is not what is measured here).  After a warm-up it measures, over a fixed
window:

* samples/s sustained (accepted by the window stage) against the offered rate,
  and samples dropped by reason;
* CPU % of the daemon process (100 % = one core) and of the simulator, RSS;
* latency per closed slot: *receipt → detection* (the daemon receiving the samples
  that close a slot, to that slot's detection result: the daemon's own cost,
  queueing included) and
  *slot end → detection* (simulated source timestamp of the slot end to detection:
  adds the ``allowed_lateness_s`` wait that closing a slot needs).

Prints a table and writes ``bench/results/spine.json`` with the machine it ran on.

    python bench/spine.py                 # 1,000 / 5,000 / 10,000 tags
    python bench/spine.py --sizes 1000 --measure-s 20
    python bench/spine.py --forecaster model --sizes 100 1000 --refresh-every-steps 1 4 \
        --model-threads 1                # -> bench/results/spine_model.json
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from prometheus_client import CollectorRegistry

from _machine import write_result
from sentinelle.app import Daemon
from sentinelle.metrics import DROP_REASONS, Metrics
from sentinelle.records import AlertEvent, ForecastBatch
from sentinelle.settings import SimulatorSettings, load_settings
from sentinelle.sim.server import chiller_tags

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_port(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            await w.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.5)
    raise TimeoutError(f"simulator did not listen on {port} within {timeout_s} s")


def _counter(m: Metrics, name: str, labels: dict[str, str] | None = None) -> float:
    return m.registry.get_sample_value(name, labels or {}) or 0.0


async def run_size(
    n_tags: int,
    warmup_s: float,
    measure_s: float,
    forecaster: str,
    refresh_every_steps: int = 1,
    model_threads: int | None = None,
    model_device: str = "cpu",
) -> dict[str, Any]:
    extra = max(n_tags - 7, 0)  # the chiller's 7 tags plus synthetic ones
    port = free_port()
    sim_settings = SimulatorSettings(port=port, extra_tags=extra, time_scale=1.0, sample_period_s=1.0)
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sentinelle.cli",
            "simulate",
            "--port",
            str(port),
            "--extra-tags",
            str(extra),
            "--time-scale",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        t0 = time.monotonic()
        await wait_port(port, 180)
        build_s = time.monotonic() - t0
        settings = load_settings(
            None,
            tags=chiller_tags(sim_settings),
            sources=[
                {
                    "name": "plant",
                    "url": f"opc.tcp://127.0.0.1:{port}/sentinelle/",
                    "publishing_interval_ms": 250.0,
                    "queue_size": 4,
                }
            ],
            kafka={"enabled": False},
            prometheus={"enabled": False},
            forecast={
                "forecaster": forecaster,
                "refresh_every_steps": refresh_every_steps,
                "model_threads": model_threads,
                "model_device": model_device,
            },
            daemon={"log_level": "WARNING"},
        )
        metrics = Metrics(CollectorRegistry())
        alerts: list[AlertEvent] = []

        class _Collect:
            name = "bench"

            async def start(self) -> None: ...

            async def send(self, events: Any) -> None:
                alerts.extend(events)

            async def close(self) -> None: ...

        daemon = Daemon(settings, metrics, sinks=[_Collect()])
        receipt_lat: list[float] = []
        slot_lat: list[float] = []
        rows_scored = [0]
        measuring = [False]
        original = daemon.detect.process

        def timed(fb: ForecastBatch) -> list[AlertEvent]:
            out = original(fb)
            if measuring[0]:
                receipt_lat.append(time.monotonic() - fb.window.arrived_at)
                slot_lat.append(time.time() - fb.window.ts)
                rows_scored[0] += len(fb.window)
            return out

        daemon.detect.process = timed  # type: ignore[method-assign]
        stop = asyncio.Event()
        await daemon.start()
        serve = asyncio.create_task(daemon.serve(stop))
        me = psutil.Process()
        simp = psutil.Process(sim.pid)
        await asyncio.sleep(warmup_s)
        measuring[0] = True
        c0, s0 = me.cpu_times(), simp.cpu_times()
        acc0 = _counter(metrics, "sentinelle_samples_accepted_total")
        ing0 = _counter(metrics, "sentinelle_samples_ingested_total", {"source": "plant"})
        drop0 = {r: _counter(metrics, "sentinelle_samples_dropped_total", {"reason": r}) for r in DROP_REASONS}
        w0 = time.monotonic()
        rss_peak = 0
        while time.monotonic() - w0 < measure_s:
            await asyncio.sleep(1.0)
            rss_peak = max(rss_peak, me.memory_info().rss)
            if serve.done():
                break
        wall = time.monotonic() - w0
        c1, s1 = me.cpu_times(), simp.cpu_times()
        measuring[0] = False
        accepted = _counter(metrics, "sentinelle_samples_accepted_total") - acc0
        ingested = _counter(metrics, "sentinelle_samples_ingested_total", {"source": "plant"}) - ing0
        dropped = {
            r: _counter(metrics, "sentinelle_samples_dropped_total", {"reason": r}) - drop0[r] for r in DROP_REASONS
        }
        stop.set()
        await asyncio.wait_for(serve, 30)
        n = len(settings.tags)
        rl = np.array(receipt_lat) if receipt_lat else np.array([np.nan])
        sl = np.array(slot_lat) if slot_lat else np.array([np.nan])
        return {
            "tags": n,
            "offered_samples_per_s": n * 1.0,
            "ingested_samples_per_s": round(ingested / wall, 1),
            "accepted_samples_per_s": round(accepted / wall, 1),
            "dropped": {k: v for k, v in dropped.items() if v},
            "slots_scored_per_s": round(rows_scored[0] / wall, 1),
            "daemon_cpu_percent": round(100 * (c1.user + c1.system - c0.user - c0.system) / wall, 1),
            "simulator_cpu_percent": round(100 * (s1.user + s1.system - s0.user - s0.system) / wall, 1),
            "daemon_rss_mib": round(rss_peak / 2**20, 1),
            "receipt_to_detection_ms": {
                "p50": round(float(np.percentile(rl, 50)) * 1e3, 1),
                "p99": round(float(np.percentile(rl, 99)) * 1e3, 1),
            },
            "slot_end_to_detection_ms": {
                "p50": round(float(np.percentile(sl, 50)) * 1e3, 1),
                "p99": round(float(np.percentile(sl, 99)) * 1e3, 1),
            },
            "alert_events": len(alerts),
            "simulator_build_s": round(build_s, 1),
            "measure_s": round(wall, 1),
            "forecaster": forecaster,
            "refresh_every_steps": refresh_every_steps,
            "model_threads": model_threads,
            "model_device": model_device,
        }
    finally:
        sim.terminate()
        try:
            sim.wait(20)
        except subprocess.TimeoutExpired:
            sim.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    ap.add_argument("--warmup-s", type=float, default=20.0)
    ap.add_argument("--measure-s", type=float, default=30.0)
    ap.add_argument("--forecaster", default="holt", choices=["holt", "naive", "model"])
    ap.add_argument(
        "--refresh-every-steps",
        type=int,
        nargs="+",
        default=[1],
        help="forecast.refresh_every_steps values to run at every size (each tag re-forecast every R ticks)",
    )
    ap.add_argument("--model-threads", type=int, default=None, help="forecast.model_threads (torch CPU threads)")
    ap.add_argument(
        "--model-device", default="cpu", choices=["cpu", "cuda"], help="forecast.model_device (cuda: bfloat16)"
    )
    ap.add_argument("--out", type=Path, default=None, help="default: bench/results/spine[_model].json")
    args = ap.parse_args()
    out: Path = args.out or ROOT / "bench" / "results" / (
        "spine_model.json" if args.forecaster == "model" else "spine.json"
    )
    results = []
    for n in args.sizes:
        for r in args.refresh_every_steps:
            print(f"-- {n} tags, refresh every {r} ticks ...", flush=True)
            results.append(
                asyncio.run(
                    run_size(
                        n, args.warmup_s, args.measure_s, args.forecaster, r, args.model_threads, args.model_device
                    )
                )
            )
    header = (
        f"{'tags':>6} {'R':>2} {'offered/s':>9} {'accepted/s':>10} {'dropped':>8} {'cpu%':>6} {'sim cpu%':>8} "
        f"{'rss MiB':>8} {'rcpt→det p50/p99 ms':>20} {'slot→det p50/p99 ms':>20}"
    )
    print(header)
    for r in results:
        rd, sd = r["receipt_to_detection_ms"], r["slot_end_to_detection_ms"]
        print(
            f"{r['tags']:>6} {r['refresh_every_steps']:>2} {r['offered_samples_per_s']:>9.0f} "
            f"{r['accepted_samples_per_s']:>10.0f} "
            f"{sum(r['dropped'].values()):>8.0f} {r['daemon_cpu_percent']:>6.1f} {r['simulator_cpu_percent']:>8.1f} "
            f"{r['daemon_rss_mib']:>8.1f} {str(rd['p50']) + ' / ' + str(rd['p99']):>20} "
            f"{str(sd['p50']) + ' / ' + str(sd['p99']):>20}"
        )
    device = (
        f"{args.model_device} (model, torch {'bfloat16' if args.model_device == 'cuda' else 'float32'})"
        if args.forecaster == "model"
        else "cpu (baseline forecaster, numpy)"
    )
    settings = {"warmup_s": args.warmup_s, "measure_s": args.measure_s, "rate_hz": 1.0}
    write_result(out, "spine", device, settings, results)


if __name__ == "__main__":
    main()
