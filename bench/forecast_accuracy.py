"""Forecast accuracy on held-out data: our model vs seasonal naive, AutoETS, SES and Holt.

Tasks (nothing here was seen in pretraining — ``sentinelle.evaluation.heldout``):

* ``electricity-2019-h{1,7,61}``: French daily consumption, 52 weekly rolling origins
  over 2019, context up to 512 days, horizons 1, 7 and 61 days (season 7);
* ``electricity-2014-window``: the original study's window, context ending 2014-10-30,
  forecast 2014-10-31..2014-12-31 (61 days); also scored with the study's own metrics
  in its unit (the daily sum of 48 half-hourly MW values, ``48 × load_mw_mean``);
* ``skab-h{1,16}``: the held-out 40 % of SKAB's anomaly-free channels (1 s), origins
  every 64 s, context 512 s;
* ``chiller-h{1,16}``: the chiller simulator with unseen seeds (≥ 1000), 4 h at 1 s,
  origins every 480 s, context 512 s.

Scores (``sentinelle.evaluation.scores``): MASE (seasonal scale), weighted quantile loss
(CRPS approximation, 9 levels 0.1..0.9), 80 % interval coverage; per task and the
geometric mean of MASE over the tasks.  Prints Markdown tables and writes
``bench/results/forecast_accuracy.json`` (machine and device named).

    python bench/forecast_accuracy.py [--model DIR] [--device cpu] [--skip autoets]
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
from sentinelle.evaluation.datasets import load_electricity, load_skab, to_study_units
from sentinelle.evaluation.heldout import benchmark_seeds, skab_anomaly_free_cut
from sentinelle.evaluation.scores import ScoreAccumulator, geometric_mean, mase_scale, study_metrics
from sentinelle.forecast import HoltForecaster, NaiveForecaster
from sentinelle.records import FloatArray
from sentinelle.settings import SimulatorSettings
from sentinelle.sim.chiller import CHILLER_TAGS, ChillerModel

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
CONTEXT = 512
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


def skab_task(data_dir: Path | None) -> Task:
    task = Task("skab", season=1, horizon=16, evals=(1, 16))
    for s in load_skab(data_dir, groups=("anomaly-free",)):
        cut = skab_anomaly_free_cut(s)
        for o in range(max(cut, CONTEXT), len(s) - 16, 64):
            task.contexts.append(s.values[o - CONTEXT : o])
            task.targets.append(s.values[o : o + 16])
    return task


def chiller_task(seeds: int = 3, hours: float = 4.0) -> Task:
    task = Task("chiller", season=1, horizon=16, evals=(1, 16))
    steps = int(hours * 3600)
    for seed in benchmark_seeds(seeds):
        settings = SimulatorSettings(seed=seed, start_ts=1_767_225_600.0 + 3600.0 * seed)
        model = ChillerModel(settings)
        data = np.empty((steps, len(CHILLER_TAGS)))
        for k in range(steps):
            data[k] = model.step_array(settings.start_ts + k * settings.sample_period_s)  # type: ignore[operator]
        for j in range(len(CHILLER_TAGS)):
            for o in range(CONTEXT, steps - 16, 480):
                task.contexts.append(data[o - CONTEXT : o, j])
                task.targets.append(data[o : o + 16, j])
    return task


def _pad(contexts: list[FloatArray]) -> FloatArray:
    out = np.full((len(contexts), CONTEXT), np.nan)
    for i, c in enumerate(contexts):
        c = c[-CONTEXT:]
        out[i, CONTEXT - len(c) :] = c
    return out


Forecast = Callable[[Task], FloatArray]


def ours(path: Path | None, device: str) -> Forecast:
    from sentinelle.forecast import SHIPPED_CHECKPOINT
    from sentinelle.forecast.engine import ModelForecaster

    cache: dict[int, Any] = {}

    def run(task: Task) -> FloatArray:
        if task.horizon not in cache:
            cache[task.horizon] = ModelForecaster(path or SHIPPED_CHECKPOINT, LEVELS, task.horizon, device=device)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="checkpoint directory (default: the shipped one)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", type=Path, default=None, help="shared data folder (default ../shared/data)")
    ap.add_argument("--skip", nargs="*", default=[], help="forecasters to skip")
    ap.add_argument("--chiller-seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "forecast_accuracy.json")
    args = ap.parse_args()

    t0 = time.time()
    elec, window = electricity_tasks(args.data)
    tasks = [elec, window, skab_task(args.data), chiller_task(args.chiller_seeds)]
    factories: dict[str, Callable[[], Forecast]] = {
        "sentinelle": lambda: ours(args.model, args.device),
        "smoothing_alone": lambda: smoothing_alone(args.model),
        "seasonal_naive": lambda: seasonal_naive,
        "autoets": lambda: _ets("ZZZ", lambda t: t.season),
        "ses": lambda: _ets("ANN", lambda t: 1),
        "holt": lambda: holt,
    }
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
        timings[name] = round(time.time() - t, 1)
        print(f"{name}: done in {timings[name]} s", flush=True)

    task_names = [k for k in next(iter(results.values())) if k != "electricity-2014-window"]
    geo = {name: geometric_mean([results[name][t]["mase"] for t in task_names]) for name in results}

    print("\n## MASE / WQL / 80 % coverage per task\n")
    print("| task | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for t in [*task_names, "electricity-2014-window"]:
        cells = [
            f"{results[n][t]['mase']:.3f} / {results[n][t]['wql']:.4f} / {results[n][t]['coverage_80']:.2f}"
            for n in results
        ]
        print(f"| {t} | " + " | ".join(cells) + " |")
    print("| **geometric mean MASE** | " + " | ".join(f"**{geo[n]:.3f}**" for n in results) + " |")

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
        "levels": LEVELS,
        "tasks": {t.name: {"windows": len(t.contexts), "season": t.season, "horizon": t.horizon} for t in tasks},
        "results": results,
        "geometric_mean_mase": geo,
        "electricity_study_window": {"ours_and_baselines": study, "published": STUDY_FIGURES},
        "timings_s": timings,
        "wall_s": round(time.time() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
