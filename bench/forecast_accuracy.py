"""Forecast accuracy on held-out data: our model vs seasonal naive, AutoETS, SES and Holt.

``sentinelle`` is the model as the daemon ships it; ``sentinelle_before`` the same checkpoint
without the inference settings chosen on ``forecast_validation.py``'s validation mirror;
``sentinelle_val_best`` the model with ``forecast_experts.py``'s lowest validation row (a
statistical expert and a long-season level window), scored for the record only.

Tasks (nothing here was seen in pretraining — ``sentinelle.evaluation.heldout``):

* ``electricity-2019-h{1,7,61}``: French daily consumption, 52 weekly rolling origins
  over 2019, context up to 512 days, horizons 1, 7 and 61 days (season 7);
* ``electricity-2014-window``: the original study's window, context ending 2014-10-30,
  forecast 2014-10-31..2014-12-31 (61 days); also scored with the study's own metrics
  in its unit (the daily sum of 48 half-hourly MW values, ``48 × load_mw_mean``);
* ``skab-h{1,16}``: the held-out 40 % of SKAB's anomaly-free channels (1 s), origins
  every 64 s, context 512 s;
* ``chiller-h{1,16}``: the chiller simulator with unseen seeds (≥ 1000), 4 h at 1 s,
  origins every 480 s, context 512 s;
* ``skab-now``, ``chiller-now`` (``asset_tasks.py``): the same windows as one asset's
  tags together; each tag's value at the origin estimated — by a univariate forecaster
  as its 1-step forecast, by ``virtual_sensor`` (recursive least squares on the other
  tags' current values, the classic virtual sensor) and by the asset model
  (``--asset-model DIR``) also from the other tags' values at the origin.

Scores (``sentinelle.evaluation.scores``): MASE (seasonal scale), weighted quantile loss
(CRPS approximation, 9 levels 0.1..0.9), 80 % interval coverage; per task and the
geometric mean of MASE over the forecast tasks and, separately, over the ``-now`` tasks.
Prints Markdown tables and writes ``bench/results/forecast_accuracy.json`` (machine and device named).

    python bench/forecast_accuracy.py [--model DIR] [--asset-model DIR] [--device cpu] [--skip autoets]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from _machine import machine_info
from asset_tasks import AssetTask, NowEstimate, chiller_asset_task, score_now, skab_asset_task, virtual_sensor
from sentinelle.evaluation.datasets import load_electricity, to_study_units
from sentinelle.evaluation.scores import ScoreAccumulator, geometric_mean, mase_scale, study_metrics
from sentinelle.forecast import HoltForecaster, NaiveForecaster
from sentinelle.records import FloatArray

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
CONTEXT = 512
ROW_KEYS = ("expert", "expert_weight", "level_steps", "long_season_weight", "gm", "coverage_gap")
STUDY_FIGURES = {
    "exponential smoothing (study)": {"mae": 2.907e5, "max_error": 1.097e6},
    "Claude (study)": {"mae": 2.919e5},
    "Mistral-7B (study)": {"mae": 4.294e5},
    "LoRA-tuned Mistral-7B (study)": {"mae": 4.594e5},
    "GPT (study)": {"mae": 1.156e6},
}


@dataclass
class Task:
    """Forecast windows of one dataset; scored at each horizon in ``evals``."""

    name: str
    season: int
    horizon: int
    evals: tuple[int, ...]
    contexts: list[FloatArray] = field(default_factory=list)
    targets: list[FloatArray] = field(default_factory=list)
    asset: AssetTask | None = None
    """The same windows as one asset's tags together (multivariate tasks), if they are."""


def _day_index(ts: FloatArray, day: dt.date) -> int:
    t = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
    return int(np.searchsorted(ts, t, side="left"))


def electricity_tasks(data_dir: Path | None) -> tuple[Task, Task]:
    s = load_electricity(data_dir, columns=("load_mw_mean",))["load_mw_mean"]
    y, ts = s.values, s.timestamps
    rolling = Task("electricity-2019", season=7, horizon=61, evals=(1, 7, 61))
    start = _day_index(ts, dt.date(2019, 1, 1))
    for k in range(52):
        o = start + 7 * k
        rolling.contexts.append(y[max(0, o - CONTEXT) : o])
        rolling.targets.append(y[o : o + 61])
    window = Task("electricity-2014-window", season=7, horizon=61, evals=(61,))
    o = _day_index(ts, dt.date(2014, 10, 31))
    window.contexts.append(y[max(0, o - CONTEXT) : o])
    window.targets.append(y[o : o + 61])
    return rolling, window


def flat_task(asset: AssetTask) -> Task:
    """The univariate task of an asset's runs: each tag alone (run → tag → origin order)."""
    task = Task(asset.name, season=1, horizon=asset.horizon, evals=(1, asset.horizon), asset=asset)
    task.contexts, task.targets = asset.flat()
    return task


def _pad(contexts: list[FloatArray]) -> FloatArray:
    out = np.full((len(contexts), CONTEXT), np.nan)
    for i, c in enumerate(contexts):
        c = c[-CONTEXT:]
        out[i, CONTEXT - len(c) :] = c
    return out


Forecast = Callable[[Task], FloatArray]


def ours(path: Path | None, device: str, before: bool = False, row: dict[str, Any] | None = None) -> Forecast:
    """The model as the daemon runs it; ``before``: without the inference settings chosen on the validation
    mirror (``forecast_validation.py``: the long-season expert and the smoothing share), as shipped until then;
    ``row``: with a row of ``forecast_experts.py``'s grid (statistical expert, long-season level and weight)."""
    from sentinelle.forecast import SHIPPED_CHECKPOINT
    from sentinelle.forecast.engine import ModelForecaster
    from sentinelle.forecast.long_season import LongSeason
    from sentinelle.forecast.stat_experts import StatExpert

    cache: dict[int, Any] = {}
    extra: dict[str, Any] = {"long_season": LongSeason(weight=0.0), "smoothing_share": ()} if before else {}
    if row is not None:
        extra["long_season"] = LongSeason(weight=row["long_season_weight"], level_steps=row["level_steps"])
        if row["expert"] != "none":
            extra["stat_expert"] = StatExpert(kind=row["expert"], weight=row["expert_weight"])

    def run(task: Task) -> FloatArray:
        if task.horizon not in cache:
            cache[task.horizon] = ModelForecaster(
                path or SHIPPED_CHECKPOINT, LEVELS, task.horizon, device=device, **extra
            )
        return np.asarray(cache[task.horizon].forecast(_pad(task.contexts)))

    return run


def smoothing_alone(path: Path | None) -> Forecast:
    """The model's exponential-smoothing branch on its own (its in-context Holt-Winters experts,
    no transformer, no gate; the point forecast at every level): what the branch adds by itself."""
    import torch

    from sentinelle.forecast import SHIPPED_CHECKPOINT
    from sentinelle.forecast.engine import load_model
    from sentinelle.forecast.tokenizer import TSTokenizer

    model = load_model(path or SHIPPED_CHECKPOINT, torch.device("cpu"), torch.float32)
    branch, cfg = model.smoothing, model.config
    if branch is None:
        raise SystemExit("smoothing_alone: the checkpoint has no smoothing branch (use --skip smoothing_alone)")
    tokenizer = TSTokenizer(cfg.vocab_size, cfg.token_limit)

    def run(task: Task) -> FloatArray:
        enc = tokenizer.encode(_pad(task.contexts))
        values = torch.from_numpy(tokenizer.centers[enc.ids]).float()
        with torch.no_grad():
            answer = branch(torch.zeros(len(values), cfg.d_model), values, torch.from_numpy(enc.ids != 0))
        scaled = np.repeat(answer.forecast[:, None, : task.horizon].numpy().astype(np.float64), len(LEVELS), axis=1)
        return np.asarray(tokenizer.unscale(scaled, enc.loc, enc.scale))

    return run


def seasonal_naive(task: Task) -> FloatArray:
    return NaiveForecaster(LEVELS, task.horizon, task.season if task.season > 1 else 0).forecast(_pad(task.contexts))


def holt(task: Task) -> FloatArray:
    return HoltForecaster(LEVELS, task.horizon).forecast(_pad(task.contexts))


def _clean(c: FloatArray) -> FloatArray:
    """Statistical baselines need gap-free input: interpolate gaps, drop leading NaNs."""
    idx = np.flatnonzero(np.isfinite(c))
    if idx.size == 0:
        return np.zeros(2)
    c = c[idx[0] :]
    ok = np.isfinite(c)
    return np.interp(np.arange(len(c)), np.flatnonzero(ok), c[ok])


def _ets(model: str, season_of: Callable[[Task], int]) -> Forecast:
    from statsforecast.models import AutoETS

    def run(task: Task) -> FloatArray:
        out = np.full((len(task.contexts), len(LEVELS), task.horizon), np.nan)
        m = season_of(task)
        for i, c in enumerate(task.contexts):
            y = _clean(c)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = AutoETS(model=model, season_length=m).forecast(y=y, h=task.horizon, level=[20, 40, 60, 80])
            out[i] = np.stack(
                [
                    f["lo-80"],
                    f["lo-60"],
                    f["lo-40"],
                    f["lo-20"],
                    f["mean"],
                    f["hi-20"],
                    f["hi-40"],
                    f["hi-60"],
                    f["hi-80"],
                ]
            )
        return out

    return run


def score(task: Task, q: FloatArray) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for h in task.evals:
        acc = ScoreAccumulator(LEVELS)
        for i, (c, y) in enumerate(zip(task.contexts, task.targets, strict=True)):
            acc.add(y[:h], q[i, :, :h], mase_scale(c, task.season))
        out[f"{task.name}-h{h}" if task.name != "electricity-2014-window" else task.name] = acc.summary()
    return out


def _table(results: dict[str, dict[str, dict[str, float]]], names: list[str], rows: list[str]) -> None:
    print("| task | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for t in rows:
        cells = [
            f"{results[n][t]['mase']:.3f} / {results[n][t]['wql']:.4f} / {results[n][t]['coverage_80']:.2f}"
            if t in results[n]
            else "–"
            for n in names
        ]
        print(f"| {t} | " + " | ".join(cells) + " |")


def asset_model(path: Path, device: str) -> tuple[Forecast, NowEstimate]:
    """The asset model: a univariate task runs each window alone (G = 1); an asset's task runs its
    tags together, and its estimate of now reads the other tags' values at the origin."""
    from sentinelle.forecast.asset_engine import AssetForecaster

    forecaster = AssetForecaster(path, LEVELS, device=device)

    def forecast(task: Task) -> FloatArray:
        if task.asset is None:
            return forecaster.forecast(_pad(task.contexts)[:, None, :], task.horizon).quantiles[:, 0]
        ctx, now, _ = task.asset.groups()
        out = forecaster.forecast(ctx, task.horizon, now)
        return task.asset.to_flat_order(out.quantiles)

    def now(asset: AssetTask) -> FloatArray:
        ctx, current, _ = asset.groups()
        out = forecaster.forecast(ctx, asset.horizon, current)
        return asset.to_flat_order(out.estimate)

    return forecast, now


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="checkpoint directory (default: the shipped one)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", type=Path, default=None, help="shared data folder (default ../shared/data)")
    ap.add_argument("--skip", nargs="*", default=[], help="forecasters to skip")
    ap.add_argument("--asset-model", type=Path, default=None, help="an asset-model checkpoint to score too")
    ap.add_argument("--chiller-seeds", type=int, default=3)
    ap.add_argument(
        "--experts",
        type=Path,
        default=ROOT / "bench" / "results" / "forecast_experts.json",
        help="forecast_experts.py's result: its lowest validation row is scored as sentinelle_val_best",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "forecast_accuracy.json")
    args = ap.parse_args()

    t0 = time.time()
    # forecast_experts.py's lowest validation row, scored for the record whatever its rule decided (RULE.md there).
    val_best = json.loads(args.experts.read_text())["best"] if args.experts and args.experts.exists() else None
    elec, window = electricity_tasks(args.data)
    assets = [skab_asset_task(args.data), chiller_asset_task(args.chiller_seeds)]
    tasks = [elec, window, *(flat_task(a) for a in assets)]
    factories: dict[str, Callable[[], Forecast]] = {
        "sentinelle": lambda: ours(args.model, args.device),
        "sentinelle_before": lambda: ours(args.model, args.device, before=True),
        "smoothing_alone": lambda: smoothing_alone(args.model),
        **(
            {"sentinelle_val_best": lambda: ours(args.model, args.device, row=val_best)} if val_best is not None else {}
        ),
        "seasonal_naive": lambda: seasonal_naive,
        "autoets": lambda: _ets("ZZZ", lambda t: t.season),
        "ses": lambda: _ets("ANN", lambda t: 1),
        "holt": lambda: holt,
    }
    now_only: dict[str, Callable[[], NowEstimate]] = {"virtual_sensor": lambda: virtual_sensor(LEVELS)}
    estimators: dict[str, NowEstimate] = {}
    if args.asset_model is not None:
        forecast, now = asset_model(args.asset_model, args.device)
        factories["asset_model"] = lambda: forecast
        estimators["asset_model"] = now
    forecasters = {k: make() for k, make in factories.items() if k not in args.skip}
    results: dict[str, dict[str, dict[str, float]]] = {}
    window_forecasts: dict[str, FloatArray] = {}
    timings: dict[str, float] = {}
    for name, f in forecasters.items():
        results[name] = {}
        t = time.time()
        for task in tasks:
            q = f(task)
            results[name].update(score(task, q))
            if task is window:
                window_forecasts[name] = q[0, LEVELS.index(0.5)]
            if task.asset is not None:
                # The estimate of now: the model's own head, a univariate forecaster's first step.
                now_q = estimators[name](task.asset) if name in estimators else q[:, :, 0]
                results[name][f"{task.asset.name}-now"] = score_now(task.asset, now_q, LEVELS)
        timings[name] = round(time.time() - t, 1)
        print(f"{name}: done in {timings[name]} s", flush=True)
    for name, make_now in now_only.items():
        if name in args.skip:
            continue
        t = time.time()
        estimate = make_now()
        results[name] = {f"{a.name}-now": score_now(a, estimate(a), LEVELS) for a in assets}
        timings[name] = round(time.time() - t, 1)
        print(f"{name}: done in {timings[name]} s", flush=True)

    now_names = [f"{a.name}-now" for a in assets]
    forecast_names = [n for n in results if n not in now_only]
    task_names = [k for k in results[forecast_names[0]] if k != "electricity-2014-window" and k not in now_names]
    geo = {name: geometric_mean([results[name][t]["mase"] for t in task_names]) for name in forecast_names}
    geo_now = {name: geometric_mean([results[name][t]["mase"] for t in now_names]) for name in results}

    print("\n## MASE / WQL / 80 % coverage per task\n")
    _table(results, forecast_names, [*task_names, "electricity-2014-window"])
    print("| **geometric mean MASE** | " + " | ".join(f"**{geo[n]:.3f}**" for n in forecast_names) + " |")
    print("\n## Estimate of now (each tag at the origin; multivariate estimators also read the others now)\n")
    _table(results, list(results), now_names)
    print("| **geometric mean MASE** | " + " | ".join(f"**{geo_now[n]:.3f}**" for n in results) + " |")

    actual = to_study_units(window.targets[0])
    study = {name: study_metrics(actual, to_study_units(f)) for name, f in window_forecasts.items()}
    print("\n## Electricity 2014-10-31..2014-12-31, the study's metrics (unit: 48 × load_mw_mean)\n")
    print("| forecaster | MAE | max error | min error | error mean | error median | error std | pred mean |")
    print("|---|---|---|---|---|---|---|---|")
    for name, m in study.items():
        print(
            f"| {name} | {m['mae']:.4g} | {m['max_error']:.4g} | {m['min_error']:.4g} | {m['error_mean']:.4g} | "
            f"{m['error_median']:.4g} | {m['error_std']:.4g} | {m['pred_mean']:.4g} |"
        )
    for name, m in STUDY_FIGURES.items():
        print(f"| {name} | {m['mae']:.4g} | {m.get('max_error', float('nan')):.4g} | | | | | |")

    doc = {
        "benchmark": "forecast_accuracy",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(args.device),
        "model": str(args.model or "shipped checkpoint"),
        "val_best_row": None if val_best is None else {k: val_best[k] for k in ROW_KEYS},
        "asset_model": None if args.asset_model is None else str(args.asset_model),
        "levels": LEVELS,
        "tasks": {t.name: {"windows": len(t.contexts), "season": t.season, "horizon": t.horizon} for t in tasks},
        "results": results,
        "geometric_mean_mase": geo,
        "geometric_mean_mase_now": geo_now,
        "asset_tasks": {
            a.name: {"tags": list(a.tags), "runs": len(a.runs), "origins": sum(map(len, a.origins))} for a in assets
        },
        "electricity_study_window": {"ours_and_baselines": study, "published": STUDY_FIGURES},
        "timings_s": timings,
        "wall_s": round(time.time() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
