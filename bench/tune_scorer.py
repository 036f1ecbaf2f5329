"""Choose the per-tag scorer's defaults (detect/scoring.py) on NAB's tuning split, and record every try.

**Decision rule, fixed before the grids were run** (a few exploratory runs on the same
split came first; they are recorded in the JSON as ``exploration``).  Every configuration
is scored on NAB's *tuning split* only (``evaluation/nab_corpus.split_of``: within each
category, files sorted by name, the 1st, 3rd, … file), with the Holt forecaster, by NAB's
own threshold sweep (``evaluation/nab_scorer.py``) on the per-row score.  The default is
the configuration with the largest *standard* profile score, unless another is within 1.0
point of it on standard and better on the smaller of the two other profiles (low FP, low
FN) — robustness over a hair's-breadth win.  Among ties, the one listed first wins.  The
held-out files (the even positions) are never scored here.

Two runners:

* ``--runner scorer`` (fast, the first grids: ``tuning_scorer_only.json``): each file's
  one-step Holt forecasts made once for all its rows (context: the previous ``CONTEXT``
  rows, NaN-padded), then only :class:`~sentinelle.detect.scoring.ResidualScorer` over the
  rows, all files side by side.  It ignores the daemon's windows (irregular timestamps,
  sample-and-hold) and the stage's gating (data quality), and it measured about 6 points
  above the daemon's own path on the same files and settings (44.72 vs 38.82).
* ``--runner stage`` (the decision: ``tuning_scorer.json``): every file through the
  daemon's own path, ``evaluation/nab_stream.replay_corpus`` (windows → Holt → the whole
  ``DetectStage``), the forecasts cached across configurations.

    python bench/tune_scorer.py                    # the stage grid (about a minute per configuration)
    python bench/tune_scorer.py --runner scorer    # the scorer-only grid (seconds per configuration)
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from _machine import write_result
from sentinelle.detect.scoring import ResidualScorer
from sentinelle.evaluation.nab_corpus import TUNING, load_corpus, split_of
from sentinelle.evaluation.nab_corpus import NabFile as CorpusFile
from sentinelle.evaluation.nab_scorer import PROFILES, LabelledFile, score_corpus
from sentinelle.evaluation.nab_stream import replay_corpus
from sentinelle.forecast.baselines import HoltForecaster
from sentinelle.records import FloatArray, ForecastBatch, WindowBatch
from sentinelle.settings import DetectSettings

ROOT = Path(__file__).resolve().parents[1]
NAB = ROOT.parent.parent / "shared" / "data" / "nab"
LEVELS = (0.1, 0.5, 0.9)
CONTEXT = 512
OUT = ROOT / "docs" / "results" / "nab" / "tuning_scorer.json"
OUT_SCORER_ONLY = ROOT / "docs" / "results" / "nab" / "tuning_scorer_only.json"
CACHE = Path("/tmp/sentinelle-tune-scorer-forecasts")


@dataclass(frozen=True, slots=True)
class NabFile:
    label: LabelledFile
    values: FloatArray
    forecast: FloatArray
    """(rows, levels): the one-step Holt forecast of each row, made from the rows before it."""


def nab_root() -> Path:
    for p in (NAB, Path("/work/shared/data/nab")):
        if (p / "labels" / "combined_windows.json").exists():
            return p
    raise SystemExit("NAB not found under ../shared/data/nab")


def tuning_names(root: Path) -> list[str]:
    """The tuning split: ``evaluation/nab_corpus.split_of`` (per category, files sorted by name, 1st, 3rd, …)."""
    split = split_of(json.loads((root / "labels" / "combined_windows.json").read_text()))
    return [n for n, part in split.items() if part == TUNING]


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.strip()).timestamp()


def load(root: Path, name: str, holt: HoltForecaster) -> NabFile:
    with (root / "data" / name).open() as fh:
        rows = list(csv.DictReader(fh))
    ts = np.array([_ts(r["timestamp"]) for r in rows])
    x = np.array([float(r["value"]) for r in rows])
    windows = []
    for start, end in json.loads((root / "labels" / "combined_windows.json").read_text())[name]:
        a, b = _ts(start), _ts(end)
        inside = np.flatnonzero((ts >= a) & (ts <= b))
        windows.append((int(inside[0]), int(inside[-1])))
    n = len(x)
    padded = np.r_[np.full(CONTEXT - 1, np.nan), x]
    contexts = np.lib.stride_tricks.sliding_window_view(padded, CONTEXT)  # row i: x[i-511 .. i]
    q = holt.forecast(np.ascontiguousarray(contexts))[:, :, 0]  # forecast of row i + 1
    forecast = np.full((n, len(LEVELS)), np.nan)
    forecast[1:] = q[:-1]
    return NabFile(LabelledFile(name, n, tuple(windows)), x, forecast)


def run_scorer(files: list[NabFile], settings: DetectSettings) -> list[FloatArray]:
    """Per file, the per-row score of a :class:`ResidualScorer` built from ``settings`` (0 where none)."""
    k = len(files)
    length = max(f.label.rows for f in files)
    values = np.full((length, k), np.nan)
    forecast = np.full((length, k, len(LEVELS)), np.nan)
    for j, f in enumerate(files):
        values[: f.label.rows, j] = f.values
        forecast[: f.label.rows, j] = f.forecast
    scorer = ResidualScorer.from_settings(k, LEVELS, np.zeros(k), settings)
    tags = tuple(f"t{j}" for j in range(k))
    out = np.zeros((length, k))
    learn = np.ones(k, dtype=bool)
    for t in range(length):
        # The forecast for row t + 1 is handed over with row t, as the forecaster does.
        nxt = forecast[t + 1] if t + 1 < length else np.full((k, len(LEVELS)), np.nan)
        w = WindowBatch(
            ts=float(t), period_s=1.0, tags=tags, assets=tags, values=values[t], contexts=values[t, :, None]
        )
        fb = ForecastBatch(window=w, levels=LEVELS, quantiles=nxt[:, :, None], forecaster="holt")
        _, _, score, _ = scorer.score(fb, learn)
        out[t] = np.nan_to_num(score, nan=0.0)
    return [out[: f.label.rows, j] for j, f in enumerate(files)]


def profile_scores(pairs: list[tuple[LabelledFile, FloatArray]]) -> dict[str, Any]:
    """The normalised NAB score under each profile, and the standard profile's threshold and counts."""
    result: dict[str, Any] = {}
    for p in PROFILES:
        c = score_corpus(pairs, p)
        result[p.name] = round(c.normalised, 2)
        if p.name == "standard":
            result["threshold"] = c.threshold
            result["detected"] = f"{c.detected}/{c.windows}"
            result["false_positive_rows"] = c.false_positive_rows
    return result


def evaluate(files: list[NabFile], settings: DetectSettings) -> dict[str, Any]:
    scores = run_scorer(files, settings)
    pairs = [(f.label, s) for f, s in zip(files, scores, strict=True)]
    return profile_scores(pairs)


BASE: dict[str, Any] = {
    "score_method": "surprise",
    "residual_min_sigma": 0.5,
    "score_clip_sigmas": 3.0,
    "score_memory_steps": 1000,
    "score_refractory_steps": 0,
}
_FLOOR_CLIP = {"residual_min_sigma": 1.0, "score_clip_sigmas": 10.0}
_FLOOR = {"residual_min_sigma": 1.0}
_LIK = {"score_method": "likelihood"}
_R = {"score_refractory_steps": 1000}
_CHANGES: list[dict[str, Any]] = [
    {},
    {"score_clip_sigmas": 6.0},
    {"score_clip_sigmas": 10.0},
    {"score_memory_steps": 200},
    {"score_memory_steps": 5000},
    {"residual_min_sigma": 0.2},
    _FLOOR,
    {**_FLOOR, "score_clip_sigmas": 6.0},
    _FLOOR_CLIP,
    {**_FLOOR_CLIP, "score_memory_steps": 200},
    {**_FLOOR_CLIP, "score_memory_steps": 5000},
    {**_FLOOR_CLIP, "score_refractory_steps": 50},
    {**_FLOOR_CLIP, "score_refractory_steps": 200},
    {**_FLOOR_CLIP, **_R},
    {**_FLOOR, "score_clip_sigmas": 6.0, "score_refractory_steps": 200},
    _LIK,
    {**_FLOOR_CLIP, **_LIK},
    {**_FLOOR_CLIP, **_LIK, "score_likelihood_short_steps": 5},
    {**_FLOOR_CLIP, **_LIK, "score_likelihood_memory_steps": 5000},
    {**_FLOOR_CLIP, **_LIK, "score_refractory_steps": 200},
    # Added after the refractory period stopped holding back the flag (REFRACTORY_NOTE):
    _R,
    {**_FLOOR, **_R},
    {**_FLOOR, **_R, "score_clip_sigmas": 6.0},
    {**_FLOOR, **_R, "score_memory_steps": 200},
    {**_FLOOR, **_R, "score_memory_steps": 5000},
    {**_FLOOR, "score_refractory_steps": 300},
    {**_FLOOR, "score_refractory_steps": 3000},
    {**_FLOOR, **_LIK, **_R},
    {**_FLOOR, **_LIK, **_R, "score_likelihood_short_steps": 5},
]
GRID: list[dict[str, Any]] = [{**BASE, **c} for c in _CHANGES]
_DEFAULTS: dict[str, Any] = {
    "score_method": "surprise",
    "residual_min_sigma": 1.0,
    "score_clip_sigmas": 3.0,
    "score_memory_steps": 5000,
    "score_refractory_steps": 1000,
}
STAGE_GRID: list[dict[str, Any]] = [
    _DEFAULTS,
    {**_DEFAULTS, "score_refractory_steps": 0},
    {**_DEFAULTS, "score_refractory_steps": 3000},
    {**_DEFAULTS, "score_memory_steps": 1000},
    {**_DEFAULTS, "score_clip_sigmas": 10.0},
    {**_DEFAULTS, "residual_min_sigma": 0.5},
    {**_DEFAULTS, "score_method": "likelihood"},
    {**_DEFAULTS, "score_method": "both"},
]
"""The daemon-path grid: the scorer-only grid's choice and its neighbours, one setting at a time."""
"""Settings given to ``DetectSettings`` (all of the scorer's, explicitly); ``residual_min_sigma`` stays at
most 1 a priori: a floor above one
forecast spread would override a correct forecast's own calibration (the calibration test fails)."""

EXPLORATION = {
    "note": "Runs before this grid, on the same tuning split, while the score was Numenta's min(1, S/D): "
    "standard / low FP / low FN, default settings of then (clip 3, memory 1000, floor 0.5).",
    "D=10 (Numenta's scale: 1 for p <= 1e-10)": [0.0, 0.0, 14.4],
    "D=10, likelihood": [0.0, 0.0, 0.0],
    "D=30": [13.5, 0.0, 26.9],
    "D=100": [27.8, 19.1, 31.8],
    "D=100, likelihood": [6.3, 0.0, 14.5],
    "D=1000": [27.8, 21.6, 31.8],
    "conclusion": "ties at the top of the scale cost the sweep dearly: the score became S/(S+10), never tied",
}

REFRACTORY_NOTE = (
    "A first run of this grid (same rule) picked the refractory period while it also held back the flag: "
    "a lasting anomaly then flagged once and the k-of-n life cycle never opened (14 unit tests failed), so "
    "that run shipped floor 1 / clip 3 / no refractory instead (35.63 / 26.47 / 41.61; with the refractory "
    "period of 1000 and clip 10 it had 43.08 / 33.26 / 50.83). Since then the refractory period shapes only the "
    "reported per-row score (the onset's); the flag is the surprise's. This run is the grid again with that."
)


def evaluate_stage(files: list[CorpusFile], settings: DetectSettings) -> dict[str, Any]:
    run = replay_corpus(files, "holt", detect=settings, forecast_cache=CACHE)
    pairs = [(f.labelled, run.results[f.name].score) for f in files]
    return profile_scores(pairs)


def choose(rows: list[dict[str, Any]]) -> int:
    """The decision rule of the module docstring: the index of the chosen row."""
    best = max(range(len(rows)), key=lambda i: (rows[i]["scores"]["standard"], -i))
    top = rows[best]["scores"]["standard"]

    def weaker(i: int) -> float:
        s = rows[i]["scores"]
        return float(min(s["reward_low_fp"], s["reward_low_fn"]))

    near = [i for i, r in enumerate(rows) if r["scores"]["standard"] >= top - 1.0]
    return max(near, key=lambda i: (weaker(i), i == best, -i))


def grid_rows(grid: list[dict[str, Any]], rows: list[int] | None) -> list[dict[str, Any]]:
    return grid if rows is None else [grid[i] for i in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--runner", choices=("stage", "scorer"), default="stage")
    ap.add_argument("--quick", action="store_true", help="only the first configuration, nothing written")
    ap.add_argument("--rows", type=int, nargs="+", help="only these rows of the grid (0-based) ...")
    ap.add_argument("--merge", action="store_true", help="... added to the rows already in the JSON")
    args = ap.parse_args()
    root = nab_root()
    names = set(tuning_names(root))
    t0 = time.perf_counter()
    grid = STAGE_GRID if args.runner == "stage" else GRID
    if args.runner == "stage":
        corpus = [f for f in load_corpus(root / "data", root / "labels" / "combined_windows.json") if f.name in names]

        def run(change: dict[str, Any]) -> dict[str, Any]:
            return evaluate_stage(corpus, DetectSettings(**change))

        n_files = len(corpus)
    else:
        holt = HoltForecaster(LEVELS, 1)
        files = [load(root, n, holt) for n in sorted(names)]

        def run(change: dict[str, Any]) -> dict[str, Any]:
            return evaluate(files, DetectSettings(**change))

        n_files = len(files)
    print(f"{n_files} tuning files, loaded in {time.perf_counter() - t0:.1f} s")
    out = OUT if args.runner == "stage" else OUT_SCORER_ONLY
    rows: list[dict[str, Any]] = []
    if args.merge and out.exists():
        rows = [r for r in json.loads(out.read_text())["results"] if r["change"] not in grid_rows(grid, args.rows)]
    for change in grid[:1] if args.quick else grid_rows(grid, args.rows):
        t1 = time.perf_counter()
        scores = run(change)
        rows.append({"change": change, "scores": scores})
        print(f"{json.dumps(change)}\n    {scores}  ({time.perf_counter() - t1:.1f} s)", flush=True)
    chosen = choose(rows)
    print("chosen by the rule:", rows[chosen]["change"])
    if not args.quick:
        write_result(
            out,
            "tune_scorer",
            "cpu",
            settings={"forecaster": "holt", "runner": args.runner, "files": sorted(names)},
            results=rows,
            chosen=rows[chosen]["change"],
            refractory_note=REFRACTORY_NOTE,
            exploration=EXPLORATION,
            rule=(__doc__ or "").split("\n\n")[1],
        )


if __name__ == "__main__":
    main()
