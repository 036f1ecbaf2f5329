"""Choose the distribution-change detector's defaults (and whether the drift detector is on) on NAB's tuning split.

Issue 13: the per-tag residual surprise sees one step at a time; NAB's misses are mostly
pattern changes.  Every configuration here is scored on NAB's *tuning split* only
(``evaluation/nab_corpus.split_of``: within each category, files sorted by name, the 1st,
3rd, … file), with the Holt forecaster, by NAB's own threshold sweep on the per-row score
(the stage's combined score: the maximum of the residual's and the new detectors').  The
held-out files are never scored here.

**Decision rule** (as ``bench/tune_scorer.py``'s): the configuration with the largest
*standard* score, unless another is within 1.0 point of it and better on the smaller of
the other two profiles; among ties, the first listed.

Two runners:

* ``offline`` (the grids, seconds per configuration): the residual's per-row scores from one
  stage replay with ``distribution_enabled = false`` (cached), and
  :class:`~sentinelle.detect.distribution.DistributionShift` over each file's rows — all files
  side by side as rows (rows are independent: ``tests/unit/test_distribution.py``) — combined
  by maximum.  It ignores the windows' resampling and the stage's gating (a few rows).
* ``stage`` (the check of the choice, and the drift detector, which needs forecasts): every
  tuning file through the daemon's own path (``evaluation/nab_stream.replay_corpus``, Holt
  forecasts cached), the combined score and each term alone.

    python bench/nab/tune_distribution.py offline
    python bench/nab/tune_distribution.py stage
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _machine import merged_runs, write_result
from sentinelle.detect.distribution import DistributionShift
from sentinelle.evaluation.nab_corpus import TUNING, NabFile, load_corpus, split_of
from sentinelle.evaluation.nab_scorer import PROFILES, score_corpus
from sentinelle.evaluation.nab_stream import replay_corpus
from sentinelle.records import FloatArray
from sentinelle.settings import DetectSettings

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "results" / "nab" / "tuning_distribution.json"
CACHE = Path("/tmp/sentinelle-tune-distribution")
DEFAULT = {"window_steps": 16, "bins": 8, "reference_steps": 10_000, "warmup_steps": 100}
"""The defaults chosen (``detect.distribution_*``), before the differences were added."""


def nab_files() -> list[NabFile]:
    root = Path("/work/shared/data/nab")
    if not (root / "data").is_dir():
        root = ROOT.parent.parent / "shared" / "data" / "nab"
    files = load_corpus(root / "data", root / "labels" / "combined_windows.json")
    split = split_of(f.name for f in files)
    return [f for f in files if split[f.name] == TUNING]


def scores(files: list[NabFile], per_row: list[FloatArray]) -> dict[str, float]:
    pairs = [(f.labelled, s) for f, s in zip(files, per_row, strict=True)]
    return {p.name: round(score_corpus(pairs, p).normalised, 2) for p in PROFILES}


def residual_scores(files: list[NabFile]) -> list[FloatArray]:
    """The residual detector's per-row score alone (one stage replay, cached in ``CACHE``)."""
    saved = CACHE / "residual_holt.npz"
    if saved.is_file():
        with np.load(saved) as z:
            if set(z.files) >= {f.name for f in files}:
                return [np.asarray(z[f.name]) for f in files]
    run = replay_corpus(files, "holt", detect=DetectSettings(distribution_enabled=False), forecast_cache=CACHE)
    out = [run.results[f.name].score for f in files]
    CACHE.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {f.name: s for f, s in zip(files, out, strict=True)}
    np.savez(saved, **arrays)
    return out


def distribution_scores(files: list[NabFile], cfg: dict[str, int], s: DetectSettings) -> list[FloatArray]:
    """The detector's per-row score: the values' term, and with ``differences`` the larger of it and theirs."""
    cfg = dict(cfg)
    if cfg.pop("differences", 0):
        values = _shift_scores([f.values for f in files], cfg, s)
        diffs = _shift_scores([np.concatenate([[np.nan], np.diff(f.values)]) for f in files], cfg, s)
        return [np.fmax(a, b) for a, b in zip(values, diffs, strict=True)]
    return _shift_scores([f.values for f in files], cfg, s)


def _shift_scores(series: list[FloatArray], cfg: dict[str, int], s: DetectSettings) -> list[FloatArray]:
    n, t_max = len(series), max(len(v) for v in series)
    x = np.full((t_max, n), np.nan)
    for j, v in enumerate(series):
        x[: len(v), j] = v
    d = DistributionShift(
        n,
        min_spread=np.zeros(n),
        memory_steps=s.score_memory_steps,
        refractory_steps=s.score_refractory_steps,
        **cfg,
    )
    out = np.zeros((t_max, n))
    every = np.ones(n, dtype=bool)
    for t in range(t_max):
        out[t] = d.step(x[t], every)
    out = np.nan_to_num(out, nan=0.0)
    return [out[: len(v), j].copy() for j, v in enumerate(series)]


def offline_grid() -> list[dict[str, Any]]:
    """One-at-a-time around the first guess (window 32, reference 1,000), then around the best."""
    first = {"window_steps": 32, "bins": 8, "reference_steps": 1000, "warmup_steps": 100}
    grid = [first]
    for key, values in (
        ("window_steps", [16, 64, 128]),
        ("bins", [5, 12, 20]),
        ("reference_steps", [300, 3000]),
        ("warmup_steps", [300]),
    ):
        grid += [first | {key: v} for v in values]
    for w in (8, 12, 16, 24):
        for r in (3000, 10_000):
            for b in (8, 12):
                grid.append({"window_steps": w, "bins": b, "reference_steps": r, "warmup_steps": 100})
    for key, values in (("bins", [5, 6, 10]), ("reference_steps", [30_000]), ("warmup_steps", [50, 300])):
        grid += [DEFAULT | {key: v} for v in values]
    grid.append(DEFAULT | {"window_steps": 20})
    # Then the tick-to-tick differences measured beside the values (detect.distribution_differences).
    with_differences = DEFAULT | {"differences": 1}
    grid += [with_differences, with_differences | {"window_steps": 32}]
    for key, values in (("window_steps", [12, 24]), ("bins", [6, 10]), ("reference_steps", [3000])):
        grid += [with_differences | {key: v} for v in values]
    unique: list[dict[str, int]] = []
    for g in grid:
        if g not in unique:
            unique.append(g)
    return unique


def choose(rows: list[dict[str, Any]], key: str) -> int:
    """The decision rule of the module docstring (``bench/tune_scorer.py``'s): the index of the chosen row."""
    best = max(range(len(rows)), key=lambda i: (rows[i][key]["standard"], -i))
    top = rows[best][key]["standard"]

    def weaker(i: int) -> float:
        s = rows[i][key]
        return float(min(s["reward_low_fp"], s["reward_low_fn"]))

    near = [i for i, r in enumerate(rows) if r[key]["standard"] >= top - 1.0]
    return max(near, key=lambda i: (weaker(i), i == best, -i))


def run_offline(files: list[NabFile]) -> dict[str, Any]:
    s = DetectSettings()
    base = residual_scores(files)
    rows = []
    for cfg in offline_grid():
        started = time.perf_counter()
        dist = distribution_scores(files, cfg, s)
        comb = [np.fmax(a, b) for a, b in zip(base, dist, strict=True)]
        row: dict[str, Any] = {"config": cfg, "distribution": scores(files, dist), "combined": scores(files, comb)}
        row["seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(row), flush=True)
        rows.append(row)
    chosen = choose(rows, "combined")
    return {"residual_alone": scores(files, base), "grid": rows, "chosen": chosen, "chosen_config": rows[chosen]}


def run_stage(files: list[NabFile]) -> dict[str, Any]:
    rows = []
    changes: list[dict[str, Any]] = [
        {"distribution_differences": False},
        {"distribution_differences": False, "horizon_enabled": True},
        {"distribution_differences": False, "horizon_enabled": True, "horizon_steps": 8},
        {},
    ]
    for change in changes:
        run = replay_corpus(files, "holt", detect=DetectSettings(**change), forecast_cache=CACHE)
        row: dict[str, Any] = {"change": change, "combined": scores(files, [run.results[f.name].score for f in files])}
        for part in run.results[files[0].name].parts:
            row[part] = scores(files, [run.results[f.name].parts[part] for f in files])
        row["openings"] = scores(files, [run.results[f.name].opened.astype(np.float64) for f in files])
        print(json.dumps(row), flush=True)
        rows.append(row)
    return {"grid": rows, "chosen": choose(rows, "combined")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runner", choices=["offline", "stage"])
    args = ap.parse_args()
    files = nab_files()
    result = run_offline(files) if args.runner == "offline" else run_stage(files)
    runs = merged_runs(OUT, args.runner, result)
    settings = {"split": "tuning", "files": len(files), "forecaster": "holt", "rule": "largest standard, 1.0 point"}
    write_result(OUT, "nab_tune_distribution", "cpu", settings, [], runs=runs)


if __name__ == "__main__":
    main()
