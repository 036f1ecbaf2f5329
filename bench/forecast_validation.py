"""The validation mirror of ``forecast_accuracy.py``: where inference-time settings of the model are chosen.

The benchmark's seven tasks are held out; this script builds the same seven from data that
no benchmark scores, and chooses the model's inference settings on them (issue 14: nothing
chosen on held-out tasks):

* ``elec-val-h{1,7,61}``: French daily consumption, weekly origins 2015-01-01..2018-10-31
  (targets end before 2019, the benchmark's year; after the study's 2014 window), context 512
  days — never in pretraining either (``evaluation.heldout``: pretraining stops at 2014-10-30);
* ``skab-val-h{1,16}``: SKAB's anomaly-free channels, origins every 64 s in the *first* 60 %
  (the part pretraining reads; the benchmark scores the last 40 %), context 512 s;
* ``chiller-val-h{1,16}``: the chiller simulator with development seeds 900..902 (the benchmark
  runs ≥ 1000), 4 h at 1 s, origins every 480 s.

Candidates (pre-registered in commit "forecast_validation: pre-register …" before any of
them was scored on the benchmark):

* ``smoothing_share`` (``SentinelleTSModel.smoothing_share``): the smoothing answer's least share
  ``a`` ∈ {0, 0.25, 0.5, 0.75} in the median for the first ``K`` ∈ {1, 4, 16, 64} steps;
* the long-season expert (:mod:`sentinelle.forecast.long_season`): ``weight`` ∈ {0, 0.5, 0.75, 1},
  ``level_steps`` ∈ {7, 14}, ``candidates`` ∈ {3, 8}, ``ramp_steps`` ∈ {1, 16, 32, 64}.

Rule: the combination with the lowest geometric-mean MASE over the seven validation tasks;
each of the two mechanisms is kept only if it lowers that mean by ≥ 0.5 % (relative) against
the best combination without it (else it stays off).  The chosen settings are then checked
through ``ModelForecaster`` itself (the grid shifts the quantiles as it does, vectorised), and
the benchmark is run once.

    python bench/forecast_validation.py [--out bench/results/forecast_validation.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from _machine import machine_info
from asset_tasks import AssetTask, chiller_asset_task
from forecast_accuracy import CONTEXT, LEVELS, Task, _day_index, _pad, flat_task, score
from sentinelle.evaluation.datasets import load_electricity, load_skab
from sentinelle.evaluation.heldout import skab_anomaly_free_cut
from sentinelle.evaluation.scores import geometric_mean, mase_scale
from sentinelle.forecast import SHIPPED_CHECKPOINT
from sentinelle.forecast.engine import ModelForecaster
from sentinelle.forecast.long_season import LongSeason, blend, long_season_expert
from sentinelle.records import FloatArray

ROOT = Path(__file__).resolve().parents[1]
DEV_SEEDS = (900, 901, 902)
SHARES = (0.0, 0.25, 0.5, 0.75)
SHARE_STEPS = (1, 4, 16, 64)
WEIGHTS = (0.0, 0.5, 0.75, 1.0)
LEVEL_STEPS = (7, 14)
CANDIDATES = (3, 8)
RAMPS = (1, 16, 32, 64)
MIN_GAIN = 0.005


def electricity_val(data_dir: Path | None) -> Task:
    s = load_electricity(data_dir, columns=("load_mw_mean",))["load_mw_mean"]
    y, ts = s.values, s.timestamps
    task = Task("elec-val", season=7, horizon=61, evals=(1, 7, 61))
    o, end = _day_index(ts, dt.date(2015, 1, 1)), _day_index(ts, dt.date(2019, 1, 1))
    while o + 61 <= end:
        task.contexts.append(y[max(0, o - CONTEXT) : o])
        task.targets.append(y[o : o + 61])
        o += 7
    return task


def skab_val(data_dir: Path | None) -> AssetTask:
    series = load_skab(data_dir, groups=("anomaly-free",))
    run = np.stack([s.values for s in series], axis=1)
    cut = skab_anomaly_free_cut(series[0])
    task = AssetTask("skab-val", tuple(s.name.rsplit("/", 1)[-1] for s in series))
    task.runs.append(run[:cut])
    task.origins.append(list(range(CONTEXT, cut - 16, 64)))
    return task


def chiller_val() -> AssetTask:
    return chiller_asset_task(DEV_SEEDS, name="chiller-val")


def mirror(data_dir: Path | None) -> list[Task]:
    """The seven validation tasks' three datasets (a task per dataset, scored at its ``evals``)."""
    return [electricity_val(data_dir), flat_task(skab_val(data_dir)), flat_task(chiller_val())]


def _targets(task: Task) -> FloatArray:
    out = np.full((len(task.targets), task.horizon), np.nan)
    for i, y in enumerate(task.targets):
        out[i, : len(y)] = y
    return out


def _mase(pred: FloatArray, targets: FloatArray, scales: FloatArray, h: int) -> float:
    """Mean over windows of MAE(first h steps) / scale (what ``ScoreAccumulator`` reports)."""
    err = np.abs(pred[:, :h] - targets[:, :h])
    ok = np.isfinite(err)
    per = np.where(ok, err, 0.0).sum(1) / np.maximum(ok.sum(1), 1)
    keep = ok.any(1) & np.isfinite(scales) & (scales > 0)
    return float(np.mean(per[keep] / scales[keep]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "forecast_validation.json")
    args = ap.parse_args()
    t0 = time.time()
    tasks = mirror(args.data)
    median = LEVELS.index(0.5)
    off = LongSeason(weight=0.0)
    base = ModelForecaster(SHIPPED_CHECKPOINT, LEVELS, 64, device="cpu", long_season=off, smoothing_share=())
    full = ModelForecaster(SHIPPED_CHECKPOINT, LEVELS, 64, device="cpu", long_season=off, smoothing_share=(1.0,) * 64)
    cached = []
    for task in tasks:
        ctx = _pad(task.contexts)
        m0 = base.forecast(ctx)[:, median, : task.horizon]
        m1 = full.forecast(ctx)[:, median, : task.horizon]
        scales = np.array([mase_scale(c, task.season) for c in task.contexts])
        experts = {
            (a, c, r): long_season_expert(ctx, 64, LongSeason(1.0, level_steps=a, candidates=c, ramp_steps=r))
            for a, c, r in itertools.product(LEVEL_STEPS, CANDIDATES, RAMPS)
        }
        cached.append((task, m0, np.where(np.isfinite(m1), m1, m0), scales, _targets(task), experts))

    grid: list[dict[str, object]] = []
    for share, k, weight, a, c, r in itertools.product(SHARES, SHARE_STEPS, WEIGHTS, LEVEL_STEPS, CANDIDATES, RAMPS):
        if (share == 0 and k != SHARE_STEPS[0]) or (weight == 0 and (a, c, r) != (7, 3, 1)):
            continue  # the same answer as another row
        scores: dict[str, float] = {}
        for task, m0, m1, scales, targets, experts in cached:
            s = np.where(np.arange(task.horizon) < k, share, 0.0)[None, :]
            pred = m0 + s * (m1 - m0)
            forecast, w = experts[(a, c, r)]
            pred = blend(pred[:, None, :], forecast, weight * w, 0)[:, 0]
            for h in task.evals:
                scores[f"{task.name}-h{h}"] = _mase(pred, targets, scales, h)
        row = {"share": share, "share_steps": k, "weight": weight, "level_steps": a, "candidates": c, "ramp": r}
        grid.append({**row, "gm": geometric_mean(list(scores.values())), "tasks": scores})

    def best(rows: list[dict[str, object]]) -> dict[str, object]:
        return min(rows, key=lambda g: float(g["gm"]))  # type: ignore[arg-type]

    top = best(grid)
    no_share = best([g for g in grid if g["share"] == 0])
    no_expert = best([g for g in grid if g["weight"] == 0])
    shipped = next(g for g in grid if g["share"] == 0 and g["weight"] == 0)
    keep_share = float(no_share["gm"]) / float(top["gm"]) - 1 >= MIN_GAIN  # type: ignore[arg-type]
    keep_expert = float(no_expert["gm"]) / float(top["gm"]) - 1 >= MIN_GAIN  # type: ignore[arg-type]
    if keep_share and keep_expert:
        chosen = top
    elif keep_expert:
        chosen = no_share
    elif keep_share:
        chosen = no_expert
    else:
        chosen = shipped
    share_steps = int(chosen["share_steps"])  # type: ignore[call-overload]
    chosen_share = (float(chosen["share"]),) * share_steps if float(chosen["share"]) > 0 else ()  # type: ignore[arg-type]
    chosen_ls = LongSeason(
        weight=float(chosen["weight"]),  # type: ignore[arg-type]
        level_steps=int(chosen["level_steps"]),  # type: ignore[call-overload]
        candidates=int(chosen["candidates"]),  # type: ignore[call-overload]
        ramp_steps=int(chosen["ramp"]),  # type: ignore[call-overload]
    )
    # The chosen settings through the forecaster itself and the benchmark's scorer.
    check: dict[str, float] = {}
    for task in tasks:
        f = ModelForecaster(
            SHIPPED_CHECKPOINT, LEVELS, task.horizon, device="cpu", long_season=chosen_ls, smoothing_share=chosen_share
        )
        check.update({k: v["mase"] for k, v in score(task, f.forecast(_pad(task.contexts))).items()})
    doc = {
        "benchmark": "forecast_validation",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info("cpu"),
        "tasks": {t.name: {"windows": len(t.contexts), "season": t.season, "horizon": t.horizon} for t in tasks},
        "rule": f"lowest geometric-mean MASE; each mechanism kept only if it gains >= {MIN_GAIN:.1%}",
        "shipped_before": shipped,
        "best": top,
        "best_without_share": no_share,
        "best_without_long_season": no_expert,
        "chosen": {"smoothing_share": chosen_share, "long_season": asdict(chosen_ls), "grid_row": chosen},
        "chosen_through_forecaster": {"tasks": check, "gm": geometric_mean(list(check.values()))},
        "grid_rows": len(grid),
        "wall_s": round(time.time() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    for name in ("shipped_before", "best_without_share", "best_without_long_season", "best"):
        g = doc[name]
        print(name, round(float(g["gm"]), 4), {k: round(v, 3) for k, v in g["tasks"].items()})  # type: ignore[index]
    print("chosen", doc["chosen"], "through the forecaster", round(doc["chosen_through_forecaster"]["gm"], 4))  # type: ignore[index]
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
