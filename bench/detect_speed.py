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
* **+ asset + rules** — also each tag's static limits, rate limit, stuck and spike checks;
* **+ novelty** — per-tag only with the contextual novelty (``detect.novelty_enabled``) on;
* **shipped defaults** — the residuals and the contextual novelty (scoring only), as the daemon ships.

Beside them, the per-tag **scorer alone**, new and old on the same batches: the calibrated
surprise (``ResidualScorer.score``, numpy over the rows) against the River ``GaussianScorer``
per tag it replaced (the old scorer's inner loop: one ``score_one`` and one ``learn_one`` per
row, on the same residual z) — issue 13 asks for the new scoring's cost next to the old one's.

Memory per tag: ``tracemalloc``'s traced bytes held by a stage after its warm-up (the stage
and everything it keeps: detectors, k-of-n rings, asset models), divided by the tag count, in a
separate pass (tracing slows Python down, so it is not timed).

**Before and after in one run**: ``--baseline-src DIR`` also imports the package found in
``DIR`` (another checkout's ``daemon/``, e.g. ``git archive`` of the commit before a change) as
``sentinelle_baseline`` and runs a stage of it beside this code's on the same batches, tick by
tick, the order alternating, so both meet the same machine load to the tick (on a shared
machine, runs of their own a minute apart differed by 40 %); its rows carry ``code: baseline``
(this code's: ``current``).  Every row records the 1-minute load average before and after its
timing (``loadavg_1m``).

Prints a table and writes ``bench/results/detect_speed.json`` with the machine it ran on.

    python bench/detect_speed.py                       # 100 / 1,000 / 10,000 tags
    python bench/detect_speed.py --sizes 1000 --measure-ticks 50
    git archive HEAD~1 daemon | tar -x -C /tmp/before
    python bench/detect_speed.py --sizes 10000 --baseline-src /tmp/before/daemon --baseline-label HEAD~1
    python bench/detect_speed.py --sizes 10000 --configs "per-tag only" "+ novelty" --baseline-src …
"""

from __future__ import annotations

import argparse
import importlib
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from _baseline import BASELINE, import_baseline
from _machine import write_result
from sentinelle.detect.stage import DetectStage
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
    "+ novelty": {"asset": False, "rules": False, "novelty": True},
    "shipped defaults": {"asset": False, "rules": False, "distribution": False, "novelty": True},
}


def make_tags(n: int, rules: bool, tag_settings: Any = TagSettings) -> list[Any]:
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
        tag_settings(
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


def make_stage(n: int, config: dict[str, Any], package: str = "sentinelle") -> DetectStage:
    """A fresh stage of ``package`` (this code, or the baseline imported by :func:`import_baseline`)."""
    settings_module = importlib.import_module(f"{package}.settings")
    stage_module = importlib.import_module(f"{package}.detect.stage")
    metrics_module = importlib.import_module(f"{package}.metrics")
    settings = settings_module.DetectSettings(
        asset_enabled=config["asset"],
        distribution_enabled=config.get("distribution", True),
        novelty_enabled=config.get("novelty", False),
    )
    tags = make_tags(n, config["rules"], settings_module.TagSettings)
    stage: DetectStage = stage_module.DetectStage(tags, settings, metrics_module.Metrics(CollectorRegistry()))
    return stage


def as_batch(package: str, fb: ForecastBatch) -> Any:
    """``fb`` as ``package``'s own records (copies of the arrays: a stage may keep what it is given)."""
    records = importlib.import_module(f"{package}.records")
    w = fb.window
    window = records.WindowBatch(
        ts=w.ts,
        period_s=w.period_s,
        tags=w.tags,
        assets=w.assets,
        values=w.values.copy(),
        contexts=w.contexts,
        closed_at=w.closed_at,
        arrived_at=w.arrived_at,
    )
    return records.ForecastBatch(window=window, levels=fb.levels, quantiles=fb.quantiles.copy(), forecaster="bench")


def warmup_ticks() -> int:
    s = DetectSettings()
    asset_warmup = max(getattr(s, "asset_warmup_steps", 0), getattr(s, "asset_grace_period_steps", 0))
    distribution = s.distribution_warmup_steps + s.distribution_window_steps
    return max(s.grace_period_steps, asset_warmup, distribution) + 20


def time_config(
    n: int, config: dict[str, Any], warmup: int, measure: int, baseline: bool = False
) -> list[dict[str, Any]]:
    """Rows of this code's stage and, with ``baseline``, of the baseline's on the same batches (order alternating)."""
    packages = ["sentinelle", *([BASELINE] if baseline else [])]
    stages = [make_stage(n, config, p) for p in packages]
    feed = Feed(n)
    events = [0] * len(stages)
    per_tick: list[list[float]] = [[] for _ in stages]
    load_before = 0.0
    for tick in range(warmup + measure):
        if tick == warmup:
            load_before = round(os.getloadavg()[0], 2)
        fb = feed.next()
        batches = [fb if p == "sentinelle" else as_batch(p, fb) for p in packages]
        order = range(len(stages)) if tick % 2 == 0 else reversed(range(len(stages)))
        for k in order:
            t0 = time.perf_counter()
            events[k] += len(stages[k].process(batches[k]))
            if tick >= warmup:
                per_tick[k].append(time.perf_counter() - t0)
    load = [load_before, round(os.getloadavg()[0], 2)]
    rows = []
    for k, package in enumerate(packages):
        t = np.array(per_tick[k])
        rows.append(
            {
                "code": "current" if package == "sentinelle" else "baseline",
                "loadavg_1m": load,
                "us_per_sample_mean": round(float(t.mean()) / n * 1e6, 3),
                "us_per_sample_p50": round(float(np.median(t)) / n * 1e6, 3),
                "ms_per_tick_p50": round(float(np.median(t)) * 1e3, 3),
                "ms_per_tick_p99": round(float(np.percentile(t, 99)) * 1e3, 3),
                "alert_events": events[k],
            }
        )
    return rows


def time_scorers(n: int, warmup: int, measure: int) -> dict[str, float]:
    """ms per tick of the per-tag scorer alone: the calibrated surprise vs River's GaussianScorer per tag."""
    from river import anomaly

    from sentinelle.detect.scoring import ResidualScorer

    settings = DetectSettings()
    new = ResidualScorer.from_settings(n, LEVELS, np.full(n, 0.01), settings)
    old = [anomaly.GaussianScorer(grace_period=settings.grace_period_steps) for _ in range(n)]  # type: ignore[no-untyped-call]
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
                if det.score_one(None, zi) < 0.9995:  # type: ignore[no-untyped-call]
                    det.learn_one(None, zi)  # type: ignore[no-untyped-call]
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
    ap.add_argument("--configs", nargs="+", choices=list(CONFIGS), help="only these configurations")
    args = ap.parse_args()
    warmup = warmup_ticks()
    if args.baseline_src is not None:
        import_baseline(args.baseline_src)
    results = []
    for n in args.sizes:
        for name, config in CONFIGS.items():
            if args.configs and name not in args.configs:
                continue
            print(f"-- {n} tags, {name} ...", flush=True)
            rows = time_config(n, config, warmup, args.measure_ticks, baseline=args.baseline_src is not None)
            if not args.no_memory:
                rows[0]["memory_bytes_per_tag"] = round(memory_config(n, config, warmup))
            results += [{"tags": n, "config": name, **r} for r in rows]
    results.sort(key=lambda r: (r["tags"], r["code"] == "current"))  # per size: the baseline's rows, then ours
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
