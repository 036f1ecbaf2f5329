"""Detection cost per sample: ``DetectStage.process`` on ready-made ForecastBatches, per configuration.

For each size (tags sharing one 1 s period, 50 tags per asset as the simulator's benchmark
tags) and each configuration, a fresh :class:`~sentinelle.detect.stage.DetectStage` gets one
ForecastBatch per tick: the tags' values (a random walk with noise) and the forecasts made one
tick earlier (median = the previous value, an 80 % band of ±1.28 noise sigmas).  A tenth of a
percent of the values jump by 10 sigmas, so alerts open and clear as in operation.  Timed:
only the ``process`` calls, after every warm-up (the residual detectors' grace period and the
asset detector's warm-up), as µs per sample (one tag at one tick).

Configurations, all measured in the same run:

* **residual only** — forecast residuals scored per tag (the calibrated surprise), k of n;
* **per-tag only** — the baseline: the residuals and the distribution-change detector
  (``detect.distribution_enabled``, the default), k of n;
* **+ asset** — ``detect.asset_enabled``: the asset-level detector on each asset's 50 tags;
* **+ asset + rules** — also each tag's static limits, rate limit, stuck and spike checks.

Beside them, the per-tag **scorer alone**, new and old on the same batches: the calibrated
surprise (``ResidualScorer.score``, numpy over the rows) against the River ``GaussianScorer``
per tag it replaced (the old scorer's inner loop: one ``score_one`` and one ``learn_one`` per
row, on the same residual z) — issue 13 asks for the new scoring's cost next to the old one's.

Memory per tag: ``tracemalloc``'s traced bytes held by a stage after its warm-up (the stage
and everything it keeps: detectors, k-of-n rings, asset models), divided by the tag count, in a
separate pass (tracing slows Python down, so it is not timed).

**Before and after in one run**: ``--baseline-src DIR`` also times the configurations with the
package found in ``DIR`` (another checkout's ``daemon/``, e.g. ``git archive`` of the commit
before a change), in a child process, size by size just before this code's own timing, so
both meet the same machine load; their rows carry ``code: baseline`` (this code's: ``current``).
Every row records the 1-minute load average before and after its timing (``loadavg_1m``): on a
shared machine, compare rows of the same run only.

Prints a table and writes ``bench/results/detect_speed.json`` with the machine it ran on.

    python bench/detect_speed.py                       # 100 / 1,000 / 10,000 tags
    python bench/detect_speed.py --sizes 1000 --measure-ticks 50
    python bench/detect_speed.py --sizes 10000 --baseline-src /tmp/before/daemon
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from _machine import write_result
from sentinelle.detect.stage import DetectStage
from sentinelle.metrics import Metrics
from sentinelle.records import FloatArray, ForecastBatch, WindowBatch
from sentinelle.settings import DetectSettings, TagSettings
from sentinelle.sim.chiller import extra_tag_asset, extra_tag_names

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (0.1, 0.5, 0.9)
HORIZON = 16
NOISE = 0.1
Z90 = 1.2815515655446004
T0 = 1_767_225_600.0

CONFIGS: dict[str, dict[str, Any]] = {
    "residual only": {"asset": False, "rules": False, "distribution": False},
    "per-tag only": {"asset": False, "rules": False},
    "+ asset": {"asset": True, "rules": False},
    "+ asset + rules": {"asset": True, "rules": True},
}


def make_tags(n: int, rules: bool) -> list[TagSettings]:
    extra: dict[str, float] = {}
    if rules:
        extra = {
            "low_limit": -1e6,
            "high_limit": 1e6,
            "rate_limit_per_s": 50.0,
            "rate_window_s": 5.0,
            "stuck_after_s": 120.0,
            "spike_factor": 12.0,
        }
    return [
        TagSettings(
            name=name, asset=extra_tag_asset(i), node_id=f"ns=2;s={name}", period_s=1.0, min_spread=0.01, **extra
        )
        for i, name in enumerate(extra_tag_names(n))
    ]


class Feed:
    """One ForecastBatch per tick for ``n`` tags (deterministic for a seed)."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n = n
        self.rng = np.random.default_rng(seed)
        tags = extra_tag_names(n)
        self.tags = tags
        self.assets = tuple(extra_tag_asset(i) for i in range(n))
        self.level = self.rng.uniform(10.0, 100.0, n)
        self.prev = self.level.copy()
        self.tick = 0
        self.contexts = np.zeros((n, 1))

    def next(self) -> ForecastBatch:
        self.level += 0.02 * self.rng.standard_normal(self.n)
        values = self.level + NOISE * self.rng.standard_normal(self.n)
        jumps = self.rng.random(self.n) < 0.001
        values[jumps] += 10 * NOISE
        median = np.repeat(values[:, None], HORIZON, axis=1)
        q = np.stack([median - Z90 * NOISE, median, median + Z90 * NOISE], axis=1)
        ts = T0 + self.tick
        self.tick += 1
        window = WindowBatch(
            ts=ts,
            period_s=1.0,
            tags=self.tags,
            assets=self.assets,
            values=values,
            contexts=self.contexts,
            closed_at=time.monotonic(),
            arrived_at=time.monotonic(),
        )
        return ForecastBatch(window=window, levels=LEVELS, quantiles=q, forecaster="bench")


def make_stage(n: int, config: dict[str, Any]) -> DetectStage:
    settings = DetectSettings(asset_enabled=config["asset"], distribution_enabled=config.get("distribution", True))
    return DetectStage(make_tags(n, config["rules"]), settings, Metrics(CollectorRegistry()))


def warmup_ticks() -> int:
    s = DetectSettings()
    asset_warmup = max(getattr(s, "asset_warmup_steps", 0), getattr(s, "asset_grace_period_steps", 0))
    distribution = s.distribution_warmup_steps + s.distribution_window_steps
    return max(s.grace_period_steps, asset_warmup, distribution) + 20


def time_config(n: int, config: dict[str, Any], warmup: int, measure: int) -> dict[str, Any]:
    stage = make_stage(n, config)
    feed = Feed(n)
    events = 0
    for _ in range(warmup):
        events += len(stage.process(feed.next()))
    load_before = round(os.getloadavg()[0], 2)
    per_tick = []
    for _ in range(measure):
        fb = feed.next()
        t0 = time.perf_counter()
        events += len(stage.process(fb))
        per_tick.append(time.perf_counter() - t0)
    t = np.array(per_tick)
    return {
        "loadavg_1m": [load_before, round(os.getloadavg()[0], 2)],
        "us_per_sample_mean": round(float(t.mean()) / n * 1e6, 3),
        "us_per_sample_p50": round(float(np.median(t)) / n * 1e6, 3),
        "ms_per_tick_p50": round(float(np.median(t)) * 1e3, 3),
        "ms_per_tick_p99": round(float(np.percentile(t, 99)) * 1e3, 3),
        "alert_events": events,
    }


def time_scorers(n: int, warmup: int, measure: int) -> dict[str, float]:
    """ms per tick of the per-tag scorer alone: the calibrated surprise vs River's GaussianScorer per tag."""
    from river import anomaly

    from sentinelle.detect.scoring import ResidualScorer

    settings = DetectSettings()
    new = ResidualScorer.from_settings(n, LEVELS, np.full(n, 0.01), settings)
    old = [anomaly.GaussianScorer(grace_period=settings.grace_period_steps) for _ in range(n)]
    learn = np.ones(n, dtype=bool)
    feed = Feed(n)
    previous: FloatArray | None = None
    new_s, old_s = [], []
    for tick in range(warmup + measure):
        fb = feed.next()
        t0 = time.perf_counter()
        new.score(fb, learn)
        t1 = time.perf_counter()
        if previous is not None:  # the old scorer: z against the forecast made one tick earlier
            z = (fb.window.values - previous[:, 1]) / ((previous[:, 2] - previous[:, 0]) / (2 * Z90))
            for i, zi in enumerate(z.tolist()):
                det = old[i]
                if det.score_one(None, zi) < 0.9995:
                    det.learn_one(None, zi)
        t2 = time.perf_counter()
        previous = fb.quantiles[:, :, 0]
        if tick >= warmup:
            new_s.append(t1 - t0)
            old_s.append(t2 - t1)
    return {
        "calibrated_ms_per_tick_p50": round(float(np.median(new_s)) * 1e3, 3),
        "river_gaussian_ms_per_tick_p50": round(float(np.median(old_s)) * 1e3, 3),
    }


def memory_config(n: int, config: dict[str, Any], warmup: int) -> float:
    """Traced bytes per tag held by a stage after its warm-up (each batch is freed after its tick)."""
    feed = Feed(n)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        stage = make_stage(n, config)
        for _ in range(warmup):
            fb = feed.next()
            stage.process(fb)
            del fb
        stage.last_tick = None  # the latest batch's numbers, kept for evaluations: not the stage's state
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    del stage
    return held / n


def baseline_rows(src: Path, n: int, measure: int) -> list[dict[str, Any]]:
    """This benchmark's timing rows for ``n`` tags with the package in ``src``, run in a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(Path(__file__).parent)])}
        cmd = [sys.executable, __file__, "--sizes", str(n), "--measure-ticks", str(measure)]
        subprocess.run([*cmd, "--no-memory", "--rows-only", "--out", str(out)], env=env, check=True)
        rows: list[dict[str, Any]] = json.loads(out.read_text())
    return [{**r, "code": "baseline"} for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--measure-ticks", type=int, default=100)
    ap.add_argument("--no-memory", action="store_true", help="skip the (slow, traced) memory pass")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "detect_speed.json")
    ap.add_argument(
        "--baseline-src",
        type=Path,
        help="also time the package in this folder (a daemon/ of another commit), in the same run",
    )
    ap.add_argument("--baseline-label", help="what the baseline is (a commit), for the JSON; default: the folder")
    ap.add_argument("--no-scorers", action="store_true", help="skip the scorer-alone comparison")
    ap.add_argument("--rows-only", action="store_true", help=argparse.SUPPRESS)  # a baseline child: rows as JSON
    args = ap.parse_args()
    warmup = warmup_ticks()
    results = []
    for n in args.sizes:
        if args.baseline_src is not None:
            print(f"-- {n} tags, baseline ({args.baseline_src}) ...", flush=True)
            results += baseline_rows(args.baseline_src, n, args.measure_ticks)
        for name, config in CONFIGS.items():
            print(f"-- {n} tags, {name} ...", flush=True)
            r = {"tags": n, "config": name, "code": "current", **time_config(n, config, warmup, args.measure_ticks)}
            if not args.no_memory:
                r["memory_bytes_per_tag"] = round(memory_config(n, config, warmup))
            results.append(r)
    if args.rows_only:
        args.out.write_text(json.dumps(results))
        return
    scorers = []
    for n in [] if args.no_scorers else args.sizes:
        print(f"-- {n} tags, scorer alone: calibrated vs River GaussianScorer ...", flush=True)
        scorers.append({"tags": n, **time_scorers(n, warmup, args.measure_ticks)})
    base = {(r["tags"], r["code"]): r["us_per_sample_mean"] for r in results if r["config"] == "per-tag only"}
    for r in results:
        b = base.get((r["tags"], r["code"]))
        r["vs_per_tag_only"] = round(r["us_per_sample_mean"] / b, 2) if b else None
    print(
        f"{'tags':>6} {'code':<8} {'configuration':<16} {'µs/sample mean':>14} {'p50':>8} {'ms/tick p50/p99':>16} "
        f"{'× per-tag':>9} {'B/tag':>8} {'load':>10}"
    )
    for r in results:
        mem = r.get("memory_bytes_per_tag")
        print(
            f"{r['tags']:>6} {r['code']:<8} {r['config']:<16} {r['us_per_sample_mean']:>14.2f} "
            f"{r['us_per_sample_p50']:>8.2f} {str(r['ms_per_tick_p50']) + ' / ' + str(r['ms_per_tick_p99']):>16} "
            f"{r['vs_per_tag_only']!s:>9} {'' if mem is None else mem:>8} {'-'.join(map(str, r['loadavg_1m'])):>10}"
        )
    print(f"{'tags':>6} {'scorer alone, ms/tick p50: calibrated':>38} {'River GaussianScorer':>21}")
    for r in scorers:
        print(f"{r['tags']:>6} {r['calibrated_ms_per_tick_p50']:>38} {r['river_gaussian_ms_per_tick_p50']:>21}")
    settings = {
        "warmup_ticks": warmup,
        "measure_ticks": args.measure_ticks,
        "tags_per_asset": 50,
        "configs": CONFIGS,
        "detect": "DetectSettings defaults, asset_enabled and distribution_enabled per configuration",
        "baseline": args.baseline_label or (None if args.baseline_src is None else str(args.baseline_src)),
    }
    write_result(args.out, "detect_speed", "cpu (numpy, River)", settings, results, scorer_alone=scorers)


if __name__ == "__main__":
    main()
