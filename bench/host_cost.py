"""What the host does per 10,000-tag tick in a scale-out worker, the model's forward pass apart (issue 16).

With a GPU the forward pass leaves the CPU, but everything around it stays on the host:
decoding the samples records, closing the windows, stacking the due rows into passes,
tokenising, moving the answer back (quantile interpolation, unscaling, the per-row
fallback) and the detect stage.  This bench times each of them per tick with the
worker's own objects and path (one :class:`~sentinelle.scaleout.state.AssetUnit` per
asset of 50 tags, :class:`~sentinelle.forecast.batcher.ForecastPass` in passes of
``forecast.max_batch`` rows, ``ForecastBatcher.predict`` with Holt as the fallback),
for the model (the shipped checkpoint on the CPU) and Holt in the same run:

* ``decode_ms``: the codec's records (one per asset) → samples;
* ``windows_ms``: ingesting them into each asset's windows, which closes one slot per asset;
* ``pass_assembly_ms``: the due rows of each closed window stacked into passes (``ForecastPass.of``);
* ``tokenise_ms``: the model's fitting to its context and :class:`~sentinelle.forecast.tokenizer.TSTokenizer`;
* ``forward_ms``: the model's forward pass (on the CPU here: a GPU's would replace only this);
* ``forecast_other_ms``: the rest of ``predict`` (tensors to numpy, level interpolation,
  unscaling, the baseline's fill of non-finite rows); for Holt, its whole forecast;
* ``detect_ms``: splitting the answer per window and every asset's detect stage.

The model refreshes a rotating 1/R of the tags per tick (``forecast.refresh_every_steps``):
R = 16 as in ``bench/scaleout.py`` (what two CPU cores need; medians over R ticks, a whole
rotation) and R = 1 (every tag every tick, what a GPU worker would run: its host columns are
what stays on the CPU then; its forward column here is the CPU's).  Holt forecasts every tag
every tick (R = 1, its default).  History is written into
the windows' rings directly (not timed), then a few ticks warm the detectors up.

    PYTHONPATH=daemon python bench/host_cost.py                  # -> bench/results/host_cost.json
    PYTHONPATH=daemon python bench/host_cost.py --tags 2000 --ticks 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from prometheus_client import CollectorRegistry

from _machine import write_result
from sentinelle.forecast import SHIPPED_CHECKPOINT, HoltForecaster
from sentinelle.forecast.base import Forecaster
from sentinelle.forecast.batcher import ForecastBatcher, ForecastPass
from sentinelle.forecast.engine import ModelForecaster
from sentinelle.metrics import Metrics
from sentinelle.records import Sample
from sentinelle.scaleout.codec import decode_samples, encode_samples
from sentinelle.scaleout.state import AssetUnit
from sentinelle.settings import DetectSettings, ForecastSettings, TagSettings, WindowSettings

ROOT = Path(__file__).resolve().parents[1]
TAGS_PER_ASSET = 50
CONTEXT = 512
WARMUP_TICKS = 3


class _Timed:
    """Wraps a callable and adds each call's wall time to ``spent[key]`` (seconds)."""

    def __init__(self, fn: Callable[..., Any], spent: dict[str, float], key: str) -> None:
        self.fn, self.spent, self.key = fn, spent, key

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.spent[self.key] += time.perf_counter() - t0

    def __getattr__(self, name: str) -> Any:  # the model's config etc. stay reachable
        return getattr(self.fn, name)


def _units(tags: int, metrics: Metrics) -> dict[str, AssetUnit]:
    all_tags = [
        TagSettings(name=f"g{i // TAGS_PER_ASSET:04d}.t{i:05d}", asset=f"g{i // TAGS_PER_ASSET:04d}", node_id=f"n{i}")
        for i in range(tags)
    ]
    by_asset: dict[str, list[TagSettings]] = {}
    for t in all_tags:
        by_asset.setdefault(t.asset, []).append(t)
    ws = WindowSettings(context_steps=CONTEXT, allowed_lateness_s=0.0)
    return {a: AssetUnit(a, ts, ws, DetectSettings(), metrics) for a, ts in by_asset.items()}


def _fill(units: dict[str, AssetUnit], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random walks with noise and a few gaps in every ring (not timed); each tag's last level."""
    last = {}
    for unit in units.values():
        for g in unit.windows.groups:
            n = len(g.tags)
            walk = rng.normal(50, 10, (n, 1)) + np.cumsum(rng.normal(0, 0.1, (n, CONTEXT)), axis=1)
            walk += rng.normal(0, 0.05, (n, CONTEXT))
            walk[rng.random((n, CONTEXT)) < 0.01] = np.nan
            g.ring[:] = walk
            g.last_ts[:] = CONTEXT - 1.0
            last[unit.asset] = walk[:, -1].copy()
    return last


def run(name: str, forecaster: Forecaster, refresh: int, tags: int, ticks: int) -> dict[str, Any]:
    metrics = Metrics(CollectorRegistry())
    settings = ForecastSettings(forecaster="holt", refresh_every_steps=refresh)
    fallback = HoltForecaster(forecaster.levels, forecaster.horizon) if name == "model" else None
    batcher = ForecastBatcher(forecaster, settings, metrics, fallback=fallback)
    rng = np.random.default_rng(0)
    units = _units(tags, metrics)
    level = {a: np.nan_to_num(v, nan=50.0) for a, v in _fill(units, rng).items()}
    spent = {"tokenise": 0.0, "forward": 0.0}
    if isinstance(forecaster, ModelForecaster):
        forecaster.tokenizer.encode = _Timed(forecaster.tokenizer.encode, spent, "tokenise")  # type: ignore[method-assign]
        forecaster._fit_length = _Timed(forecaster._fit_length, spent, "tokenise")  # type: ignore[method-assign]
        forecaster.model = _Timed(forecaster.model, spent, "forward")  # type: ignore[assignment]
    rows: dict[str, list[float]] = {}
    windows_forecast = 0
    load_start = os.getloadavg()[0]
    for k in range(CONTEXT, CONTEXT + WARMUP_TICKS + ticks):
        records = []
        for a, unit in units.items():
            level[a] += rng.normal(0, 0.1, len(level[a]))
            values = level[a] + rng.normal(0, 0.05, len(level[a]))
            records.append(
                encode_samples([Sample(t.name, float(k), float(v)) for t, v in zip(unit.tags, values, strict=True)])
            )
        spent["tokenise"] = spent["forward"] = 0.0
        t0 = time.perf_counter()
        decoded = [decode_samples(r) for r in records]
        t1 = time.perf_counter()
        now = time.monotonic()
        closed = []
        for samples in decoded:
            closed += units[samples[0].tag.split(".")[0]].windows.ingest(samples, now)
        t2 = time.perf_counter()
        assembly = predict = detect = 0.0
        start = 0
        while start < len(closed):  # the worker's passes (worker._detect)
            end, n = start, 0
            while end < len(closed) and (end == start or n + len(closed[end]) <= settings.max_batch):
                n += len(closed[end])
                end += 1
            a0 = time.perf_counter()
            fp = ForecastPass.of(closed[start:end], refresh)
            a1 = time.perf_counter()
            quantiles, _ = batcher.predict(fp.contexts, fp.assets)
            a2 = time.perf_counter()
            for fb in fp.split(forecaster.levels, quantiles, name):
                units[fb.window.assets[0]].detect.process(fb)
            a3 = time.perf_counter()
            assembly, predict, detect = assembly + a1 - a0, predict + a2 - a1, detect + a3 - a2
            windows_forecast += len(fp.contexts) if k >= CONTEXT + WARMUP_TICKS else 0
            start = end
        if k < CONTEXT + WARMUP_TICKS:  # the first tick starts the windows' slot clock; detectors warm up
            continue
        if len(closed) != len(units):
            raise RuntimeError(f"tick {k}: {len(closed)} windows closed, {len(units)} expected")
        tick = {
            "decode_ms": t1 - t0,
            "windows_ms": t2 - t1,
            "pass_assembly_ms": assembly,
            "tokenise_ms": spent["tokenise"],
            "forward_ms": spent["forward"],
            "forecast_other_ms": predict - spent["tokenise"] - spent["forward"],
            "detect_ms": detect,
        }
        tick["host_total_ms"] = sum(v for key, v in tick.items() if key != "forward_ms")
        tick["total_ms"] = tick["host_total_ms"] + tick["forward_ms"]
        for key, v in tick.items():
            rows.setdefault(key, []).append(v * 1e3)
    out: dict[str, Any] = {"forecaster": name, "tags": tags, "refresh_every_steps": refresh, "ticks": ticks}
    out["windows_forecast_per_tick"] = round(windows_forecast / ticks, 1)
    out["load_avg_1m_start_end"] = [round(load_start, 2), round(os.getloadavg()[0], 2)]
    out["median_ms"] = {k: round(statistics.median(v), 2) for k, v in rows.items()}
    out["p90_ms"] = {k: round(float(np.percentile(v, 90)), 2) for k, v in rows.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tags", type=int, default=10_000)
    ap.add_argument(
        "--refresh-every-steps", type=int, nargs="+", default=[16, 1], help="the model's R, one row each (Holt: 1)"
    )
    ap.add_argument(
        "--ticks", type=int, default=None, help="timed ticks (default: Holt 8, the model one rotation: R, ≥ 2)"
    )
    ap.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: two threads contend badly on a busy 2-core VM)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "host_cost.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    levels, horizon = (0.1, 0.5, 0.9), 16
    results = []
    for name, refresh in [("holt", 1)] + [("model", r) for r in args.refresh_every_steps]:
        f: Forecaster
        if name == "model":  # a fresh one per row: run() wraps its tokenizer and model with timers
            f = ModelForecaster(SHIPPED_CHECKPOINT, levels, horizon, device="cpu", max_batch=1024)
        else:
            f = HoltForecaster(levels, horizon)
        ticks = args.ticks or (8 if name == "holt" else max(2, refresh))
        r = run(name, f, refresh, args.tags, ticks)
        results.append(r)
        print(f"{name:>6} R={refresh}: {r['windows_forecast_per_tick']} windows/tick, median ms {r['median_ms']}")
    settings = {
        "tags": args.tags,
        "tags_per_asset": TAGS_PER_ASSET,
        "context_steps": CONTEXT,
        "horizon_steps": horizon,
        "levels": levels,
        "model_max_batch": 1024,
        "forecast_max_batch": ForecastSettings().max_batch,
        "torch_threads": args.threads,
        "note": "a shared 2-core VM (about 8 people): wall times include other jobs' contention",
    }
    write_result(args.out, "host_cost", "cpu (model, torch float32)", settings, results)


if __name__ == "__main__":
    main()
