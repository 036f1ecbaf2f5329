"""Forecaster speed: forecasts/s and batch latency for 100 / 1,000 / 10,000 tags at context 512.

For each forecaster (the language model, the asset model, and the Holt and naive
baselines as the same-run baseline) and each tag count, the windows of all tags are
forecast the way the batcher does it (chunks of ``max_batch`` rows), ``--repeats`` times:

* forecasts/s = tags / wall time of one whole round (tag-windows/s);
* p50 / p99 latency of one forecaster call (one chunk);
* peak RSS of the process (and peak CUDA memory on a GPU);
* the cost of one daemon tick for 1,000 tags: closing a slot in ``Windows``,
  forecasting, and the detect stage (River detectors, alert life cycle), measured
  with the real stage objects.

The asset model (``asset``: the checkpoint in ``forecast/checkpoints/asset``) is timed the way
the daemon runs it: :meth:`~sentinelle.forecast.asset_engine.AssetForecaster.estimate_window`
on a window batch whose rows are grouped by asset (``--tags-per-asset`` tags each, the chiller
has 7–8), each tag estimated from its past and the other tags now; a chunk is ``max_batch``
rows rounded down to whole assets, so a call covers as many tags as the univariate model's.
Its numbers are per tag, to compare with the univariate model's per window.

The machine may be shared: the forecasters take turns per tag count (not one after the
other over minutes), each row records the 1-minute load average when it started, and only
rows of one run are comparable.  Peak RSS is the process's so far (``ru_maxrss``): a row's
value includes every forecaster loaded before it.

Prints a table and writes ``bench/results/forecast_speed.json`` with the machine and device.

    python bench/forecast_speed.py
    python bench/forecast_speed.py --tags 100 1000 --device cpu --model path/to/checkpoint
    python bench/forecast_speed.py --forecasters model --scans recursion chunked --threads 1 2
    python bench/forecast_speed.py --forecasters model asset --tags 1000 --threads 2
    python bench/forecast_speed.py --forecasters model --stat-experts damped:0.3 ar:0.2 --alternate 3 --no-tick

**Before and after, and ratios that survive a shared machine.** ``--baseline-src DIR`` also times the
model and the asset model of the package in ``DIR`` (``git archive`` of an earlier commit's
``daemon/``, as ``detect_speed.py`` does), named ``model@baseline`` and ``asset@baseline``.
``--alternate N`` then runs N more passes per tag count and thread count in which every model takes
its turn over the same windows (the order reversed every other pass) and records, pass by pass,
each one's time over the univariate model's (``vs_model``, and ``vs_model@baseline``: today's
model; ``vs_asset@baseline``: the asset model over its own code before), with every pass's time (``pass_s``),
plus ``model+asset``, what the daemon runs per slot with both configured.  Load that comes
and goes meets all of them alike; rows timed minutes apart on this shared machine differed by 40 %.
Each pass's CPU time (``cpu_pass_s``, the process's) gives the same ratios as ``cpu_vs_…``: at load
4–6 on the 2 cores the same code's wall-clock passes differed by 0.7–1.5× on one thread, its CPU time
less (docs/results/forecast-speed/report.md); on two threads CPU time also counts the threads' spinning.
``--asset-rows-per-pass 0 128`` times the asset model once per most rows in a CPU forward pass
(``forecast.asset_cpu_rows_per_pass``; 0: one pass per chunk), named ``asset@0rows`` and so on.

    git archive HEAD~3 daemon | tar -x -C /tmp/before
    python bench/forecast_speed.py --tags 100 1000 --forecasters model asset --threads 2 1 \\
        --alternate 4 --no-tick --baseline-src /tmp/before/daemon --baseline-label HEAD~3

``--scans`` times the model once per form of its smoothing branch (the step-by-step
recursion, the chunked triangular solve, or ``auto``: chunked off the CPU), ``--threads``
once per torch intra-op thread count, all in one process so the rows share the machine's state.
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from prometheus_client import CollectorRegistry

from _baseline import BASELINE, import_baseline
from _machine import write_result
from sentinelle.detect.stage import DetectStage
from sentinelle.forecast import Forecaster, HoltForecaster, NaiveForecaster
from sentinelle.metrics import Metrics
from sentinelle.records import FloatArray, ForecastBatch, Sample, WindowBatch
from sentinelle.settings import DetectSettings, TagSettings, WindowSettings
from sentinelle.windows import Windows

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (0.1, 0.5, 0.9)
CONTEXT = 512


def windows(n: int, seed: int = 0) -> FloatArray:
    """Random walks with a daily-like cycle and noise, a few gaps: industrial-looking windows."""
    rng = np.random.default_rng(seed)
    t = np.arange(CONTEXT)
    level = rng.normal(0, 50, size=(n, 1))
    walk = np.cumsum(rng.normal(0, 0.1, size=(n, CONTEXT)), axis=1)
    cycle = rng.uniform(0, 3, size=(n, 1)) * np.sin(2 * np.pi * t / rng.integers(24, 200, size=(n, 1)))
    x = level + walk + cycle + rng.normal(0, 0.05, size=(n, CONTEXT))
    x[rng.random((n, CONTEXT)) < 0.01] = np.nan
    return x


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_1min() -> float:
    """The machine's 1-minute load average (what else was running: compare rows of one run only)."""
    return round(os.getloadavg()[0], 2)


Call = Callable[[FloatArray], int]
"""Forecasts one chunk of windows (rows × steps), returns how many rows it answered."""


def time_calls(call: Call, n: int, chunk: int, repeats: int) -> dict[str, Any]:
    """Wall time of ``repeats`` rounds over the windows of ``n`` tags, in chunks of ``chunk`` rows."""
    ctx = windows(n)
    call(ctx[: min(n, chunk)])  # warm-up (lazy init, kernels)
    calls: list[float] = []
    rounds: list[float] = []
    load = load_1min()
    for _ in range(repeats):
        r0 = time.perf_counter()
        for start in range(0, n, chunk):
            c0 = time.perf_counter()
            answered = call(ctx[start : start + chunk])
            calls.append(time.perf_counter() - c0)
            assert answered == min(chunk, n - start)
        rounds.append(time.perf_counter() - r0)
    best_round = statistics.median(rounds)
    return {
        "tags": n,
        "forecasts_per_s": round(n / best_round, 1),
        "round_s": round(best_round, 4),
        "call_p50_ms": round(float(np.percentile(calls, 50)) * 1e3, 2),
        "call_p99_ms": round(float(np.percentile(calls, 99)) * 1e3, 2),
        "calls": len(calls),
        "peak_rss_mib": round(rss_mib(), 1),
        "load_1min": load,
    }


def univariate_call(f: Forecaster) -> Call:
    """A univariate forecaster's forecasts for a chunk of windows, as the batcher calls it."""
    return lambda ctx: int(f.forecast(ctx).shape[0])


def asset_call(estimator: Callable[[WindowBatch], FloatArray], tags_per_asset: int) -> Call:
    """The asset model's estimates of now for a chunk of windows, rows grouped by asset as the daemon
    groups them: ``tags_per_asset`` consecutive rows are one asset, the newest step is now."""

    def call(ctx: FloatArray) -> int:
        rows = ctx.shape[0]
        batch = WindowBatch(
            ts=float(CONTEXT),
            period_s=1.0,
            tags=tuple(f"t{i}" for i in range(rows)),
            assets=tuple(f"a{i // tags_per_asset}" for i in range(rows)),
            values=ctx[:, -1],
            contexts=ctx,
        )
        return int(estimator(batch).shape[0])

    return call


def tick_cost(f: Forecaster, n: int = 1000, ticks: int = 20) -> dict[str, float]:
    """Wall time of windows + forecast + detect for one closed slot of n tags."""
    m = Metrics(CollectorRegistry())
    tags = [TagSettings(name=f"t{i}", asset=f"a{i // 50}", node_id=f"n{i}") for i in range(n)]
    w = Windows(tags, WindowSettings(context_steps=CONTEXT, allowed_lateness_s=0.0), m)
    d = DetectStage(tags, DetectSettings(grace_period_steps=2), m)
    rng = np.random.default_rng(1)
    hist = windows(n)
    # Fill the windows with history first (not timed).
    for k in range(CONTEXT):
        w.ingest([Sample(t.name, float(k), float(hist[i, k])) for i, t in enumerate(tags)])
    costs: dict[str, list[float]] = {"windows_ms": [], "forecast_ms": [], "detect_ms": []}
    for k in range(CONTEXT, CONTEXT + ticks):
        samples = [Sample(t.name, float(k), float(hist[i, -1] + rng.normal(0, 0.1))) for i, t in enumerate(tags)]
        t0 = time.perf_counter()
        batches = w.ingest(samples)
        t1 = time.perf_counter()
        for b in batches:
            q = f.forecast(b.contexts)
            t2 = time.perf_counter()
            d.process(ForecastBatch(b, f.levels, q, f.name))
            t3 = time.perf_counter()
            costs["windows_ms"].append((t1 - t0) * 1e3)
            costs["forecast_ms"].append((t2 - t1) * 1e3)
            costs["detect_ms"].append((t3 - t2) * 1e3)
    out = {k: round(statistics.median(v), 2) for k, v in costs.items() if v}
    out["total_ms"] = round(sum(out.values()), 2)
    return out


FORECASTERS = ("model", "asset", "holt", "naive")


def build(name: str, args: argparse.Namespace, package: str = "sentinelle", expert: str | None = None) -> Forecaster:
    """A univariate forecaster of ``package`` (this code, or the baseline of ``--baseline-src``); ``expert``
    (``KIND:WEIGHT``): the model with that statistical expert mixed in (``forecast.model_stat_expert[_weight]``)."""
    if name == "holt":
        return HoltForecaster(LEVELS, args.horizon)
    if name == "naive":
        return NaiveForecaster(LEVELS, args.horizon)
    forecast = importlib.import_module(f"{package}.forecast")
    engine = importlib.import_module(f"{package}.forecast.engine")
    path = args.model or forecast.SHIPPED_CHECKPOINT
    extra: dict[str, Any] = {}
    if expert is not None:
        from sentinelle.forecast.stat_experts import StatExpert

        kind, weight = expert.split(":")
        extra["stat_expert"] = StatExpert(kind=kind, weight=float(weight))  # type: ignore[arg-type]
    f: Forecaster = engine.ModelForecaster(
        path, LEVELS, args.horizon, device=args.device, max_batch=args.max_batch, **extra
    )
    return f


def build_asset(
    args: argparse.Namespace, package: str = "sentinelle", rows_per_pass: int | None = None
) -> tuple[Call, Any, str]:
    """The asset model's timed call (one daemon ``estimate_window`` per chunk), its torch model, its device.

    ``rows_per_pass``: the forecaster's ``cpu_rows_per_pass`` (None: its default; the baseline's code
    has no such argument and runs one pass per chunk).
    """
    forecast = importlib.import_module(f"{package}.forecast")
    asset_engine = importlib.import_module(f"{package}.forecast.asset_engine")
    path = args.asset_model or forecast.SHIPPED_CHECKPOINT.parent / "asset"
    groups = max(1, args.max_batch // args.tags_per_asset)  # at most one forward pass per timed chunk
    extra = {} if rows_per_pass is None else {"cpu_rows_per_pass": rows_per_pass}
    f = asset_engine.AssetForecaster(path, LEVELS, device=args.device, max_batch=groups, **extra)
    return asset_call(f.estimate_window, args.tags_per_asset), f.model, str(next(f.model.parameters()).device)


SUMMARIES: tuple[tuple[str, Callable[[list[float]], float]], ...] = (
    ("median", statistics.median),
    ("min", min),
    ("max", max),
)
"""How a forecaster's per-pass ratios are summed up."""


def alternate(calls: dict[str, tuple[Call, Any, int]], n: int, passes: int) -> dict[str, Any]:
    """``passes`` rounds over the windows of ``n`` tags in which every forecaster takes its turn (the order
    reversed every other pass), so a load that comes and goes meets them alike: each one's tag-windows/s
    (median pass) and, pass by pass, its time per tag over the univariate model's (``model``)."""
    ctx = windows(n)
    for call, _, chunk in calls.values():
        call(ctx[: min(n, chunk)])  # warm-up
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    load = [load_1min()]
    for p in range(passes):
        for name in names if p % 2 == 0 else names[::-1]:
            call, _, chunk = calls[name]
            t0, c0 = time.perf_counter(), time.process_time()
            for start in range(0, n, chunk):
                call(ctx[start : start + chunk])
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    load.append(load_1min())
    out: dict[str, Any] = {"tags": n, "threads": torch.get_num_threads(), "passes": passes, "load_1min": load}
    for name in names:
        row: dict[str, Any] = {
            "forecasts_per_s": round(n / statistics.median(times[name]), 1),
            "pass_s": [round(t, 4) for t in times[name]],
            "cpu_pass_s": [round(t, 4) for t in cpu[name]],
        }
        # Over the univariate model (this code's and the baseline's), and a model over its own baseline;
        # by the clock and by the process's CPU time (``cpu_vs_``: see the module docstring).
        for reference in dict.fromkeys(("model", "model@baseline", *([f"{name}@baseline"] if "@" not in name else []))):
            if reference in times and name != reference:
                for prefix, spent in (("", times), ("cpu_", cpu)):
                    ratios = [t / u for t, u in zip(spent[name], spent[reference], strict=True)]
                    row[f"{prefix}vs_{reference}"] = {k: round(f(ratios), 3) for k, f in SUMMARIES}
        out[name] = row
    if "model" in times and "asset" in times:
        # What the daemon runs per slot with both configured (forecast.forecaster = "model" and
        # forecast.asset_model_path; refresh_every_steps = asset_estimate_every_steps = 1): both passes.
        both = [m + a for m, a in zip(times["model"], times["asset"], strict=True)]
        out["model+asset"] = {"forecasts_per_s": round(n / statistics.median(both), 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tags", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--forecasters", nargs="+", default=["model", "asset", "holt", "naive"], choices=FORECASTERS)
    ap.add_argument("--model", type=Path, default=None, help="checkpoint directory (default: the shipped one)")
    ap.add_argument("--asset-model", type=Path, default=None, help="asset-model checkpoint (default: the shipped one)")
    ap.add_argument("--tags-per-asset", type=int, default=8, help="asset model: consecutive tags forming one asset")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--horizon", type=int, default=16)
    ap.add_argument("--max-batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scans", nargs="+", default=["auto"], choices=["auto", "recursion", "chunked"])
    ap.add_argument("--threads", type=int, nargs="+", default=[0], help="torch threads per row (0: torch's default)")
    ap.add_argument("--no-tick", action="store_true", help="skip the daemon-tick measurement")
    ap.add_argument(
        "--alternate", type=int, default=0, help="also N passes per tag count and thread count, the models taking turns"
    )
    ap.add_argument(
        "--baseline-src", type=Path, help="also time the model and asset model of the package in this daemon/ folder"
    )
    ap.add_argument(
        "--asset-rows-per-pass",
        type=int,
        nargs="+",
        help="the asset model's most rows per CPU forward pass (0: one pass a chunk), one asset forecaster each",
    )
    ap.add_argument(
        "--stat-experts",
        nargs="+",
        default=[],
        metavar="KIND:WEIGHT",
        help="also time the model with each statistical expert mixed in (e.g. damped:0.3), named model+KIND",
    )
    ap.add_argument("--baseline-label", help="what the baseline is (a commit), for the JSON; default: the folder")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "forecast_speed.json")
    args = ap.parse_args()
    if args.tags_per_asset < 1:
        ap.error("--tags-per-asset must be ≥ 1")

    # Every forecaster first, then per tag count each in turn: rows close in time share the machine's load.
    calls: dict[str, tuple[Call, Any, int]] = {}  # name → its timed call, its torch model (or None), chunk rows
    univariate: dict[str, Forecaster] = {}
    device = "cpu"
    load_start = load_1min()
    if args.baseline_src is not None:
        import_baseline(args.baseline_src)
    packages = {"": "sentinelle", **({"@baseline": BASELINE} if args.baseline_src is not None else {})}
    for name in args.forecasters:
        for suffix, package in packages.items():
            if suffix and name not in ("model", "asset"):
                continue  # the baselines' code is not what a change touches
            if name == "asset":
                chunk = max(args.tags_per_asset, args.max_batch // args.tags_per_asset * args.tags_per_asset)
                for rows in [None] if suffix else args.asset_rows_per_pass or [None]:
                    call, model, device = build_asset(args, package, rows)
                    label = "" if rows is None or not args.asset_rows_per_pass[1:] else f"@{rows}rows"
                    calls[name + suffix + label] = (call, model, chunk)
                continue
            f = univariate[name + suffix] = build(name, args, package)
            device = str(getattr(f, "device", device))
            calls[name + suffix] = (univariate_call(f), getattr(f, "model", None), args.max_batch)
            for spec in args.stat_experts if name == "model" and not suffix else []:
                g = univariate[f"model+{spec.split(':')[0]}"] = build(name, args, package, spec)
                calls[f"model+{spec.split(':')[0]}"] = (univariate_call(g), getattr(g, "model", None), args.max_batch)

    results: list[dict[str, Any]] = []
    for n in args.tags:
        for name, (call, model, chunk) in calls.items():
            branch = getattr(model, "smoothing", None)
            for scan in args.scans if branch is not None else ["-"]:
                if branch is not None:
                    branch.scan = scan
                for threads in args.threads if model is not None else [0]:
                    if threads:
                        torch.set_num_threads(threads)
                    r = time_calls(call, n, chunk, args.repeats)
                    r.update(forecaster=name, smoothing_scan=scan, threads=torch.get_num_threads())
                    peak = getattr(univariate.get(name), "peak_memory_mib", None)
                    if peak is not None:
                        r["peak_device_mib"] = peak()
                    results.append(r)
                    print(
                        f"{name:>6} {scan:>9} {r['threads']} thr {n:>6} tags: {r['forecasts_per_s']:>10.0f} "
                        f"tag-windows/s, call p50 {r['call_p50_ms']} ms p99 {r['call_p99_ms']} ms, "
                        f"peak RSS {r['peak_rss_mib']} MiB, load {r['load_1min']}",
                        flush=True,
                    )
    alternating: list[dict[str, Any]] = []
    for n in args.tags if args.alternate else []:
        for threads in args.threads:
            if threads:
                torch.set_num_threads(threads)
            modelled = {name: c for name, c in calls.items() if c[1] is not None}
            alternating.append(r := alternate(modelled, n, args.alternate))
            print(f"alternating, {r['threads']} thr {n:>6} tags, load {r['load_1min']}: {r}", flush=True)
    ticks: dict[str, dict[str, float]] = {}
    for name, f in univariate.items():
        if not args.no_tick:
            ticks[name] = tick_cost(f)
            print(f"{name:>6} daemon tick, 1,000 tags: {ticks[name]}", flush=True)
    settings = {
        "context": CONTEXT,
        "horizon": args.horizon,
        "max_batch": args.max_batch,
        "levels": LEVELS,
        "repeats": args.repeats,
        "scans": args.scans,
        "tags_per_asset": args.tags_per_asset,
        "alternate_passes": args.alternate,
        "asset_rows_per_pass": args.asset_rows_per_pass,
        "stat_experts": args.stat_experts,
        "baseline": args.baseline_label or (None if args.baseline_src is None else str(args.baseline_src)),
    }
    load = {"start_1min": load_start, "end_1min": load_1min(), "cores": os.cpu_count()}
    write_result(
        args.out,
        "forecast_speed",
        device,
        settings,
        results,
        alternating=alternating,
        tick_1000_tags=ticks,
        load_average=load,
    )


if __name__ == "__main__":
    main()
