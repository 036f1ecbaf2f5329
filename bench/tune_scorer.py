"""Choose the per-tag scorer's defaults (detect/scoring.py) on NAB's tuning split, and record every try.

**Decision rule, fixed before this grid was run** (a few exploratory runs on the same
split came first; they are recorded in the JSON as ``exploration``).  Every configuration of the grid
below is scored on NAB's *tuning split* only (within each category, files sorted by
name, the odd positions counted from 1: the 1st, 3rd, … file), with the Holt
forecaster, by NAB's own threshold sweep (``evaluation/nab_scorer.py``) on the
per-row score.  The default is the configuration with the largest *standard*
profile score, unless another is within 1.0 point of it on standard and better on
the smaller of the two other profiles (low FP, low FN) — robustness over a
hair's-breadth win.  Among ties, the one listed first (the simpler) wins.  The
held-out files (the even positions) are never scored here.

How it runs, and why it is not the daemon's replay: the forecasts do not depend on
the scorer, so each file's one-step Holt forecasts are made once, for all its rows
at once (each row's context is the file's previous ``CONTEXT`` rows, NaN-padded,
as the daemon's window ring holds them), and every configuration then runs only
:class:`~sentinelle.detect.scoring.ResidualScorer` over the ticks, all files side by
side as the rows of one tag group.  Rows are the file's rows (NAB's timestamps are
regular but for a few gaps, which this ignores: the stream evaluator,
``sentinelle evaluate --dataset nab``, runs the daemon's own windows on them).

Writes ``docs/results/nab/tuning_scorer.json``.

    python bench/tune_scorer.py            # the whole grid (a few minutes)
    python bench/tune_scorer.py --quick    # the default configuration only
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
from sentinelle.evaluation.nab_corpus import TUNING, split_of
from sentinelle.evaluation.nab_scorer import PROFILES, LabelledFile, score_corpus
from sentinelle.forecast.baselines import HoltForecaster
from sentinelle.records import FloatArray, ForecastBatch, WindowBatch
from sentinelle.settings import DetectSettings

ROOT = Path(__file__).resolve().parents[1]
NAB = ROOT.parent.parent / "shared" / "data" / "nab"
LEVELS = (0.1, 0.5, 0.9)
CONTEXT = 512
OUT = ROOT / "docs" / "results" / "nab" / "tuning_scorer.json"


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


def evaluate(files: list[NabFile], settings: DetectSettings) -> dict[str, Any]:
    scores = run_scorer(files, settings)
    pairs = [(f.label, s) for f, s in zip(files, scores, strict=True)]
    result: dict[str, Any] = {}
    for p in PROFILES:
        c = score_corpus(pairs, p)
        result[p.name] = round(c.normalised, 2)
        if p.name == "standard":
            result["threshold"] = c.threshold
            result["detected"] = f"{c.detected}/{c.windows}"
            result["false_positive_rows"] = c.false_positive_rows
    return result


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


def choose(rows: list[dict[str, Any]]) -> int:
    """The decision rule of the module docstring: the index of the chosen row."""
    best = max(range(len(rows)), key=lambda i: (rows[i]["scores"]["standard"], -i))
    top = rows[best]["scores"]["standard"]

    def weaker(i: int) -> float:
        s = rows[i]["scores"]
        return float(min(s["reward_low_fp"], s["reward_low_fn"]))

    near = [i for i, r in enumerate(rows) if r["scores"]["standard"] >= top - 1.0]
    return max(near, key=lambda i: (weaker(i), i == best, -i))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="only the default configuration")
    args = ap.parse_args()
    root = nab_root()
    holt = HoltForecaster(LEVELS, 1)
    t0 = time.perf_counter()
    files = [load(root, n, holt) for n in tuning_names(root)]
    print(f"{len(files)} tuning files, forecasts in {time.perf_counter() - t0:.1f} s")
    rows = []
    for change in GRID[:1] if args.quick else GRID:
        t1 = time.perf_counter()
        scores = evaluate(files, DetectSettings(**change))
        rows.append({"change": change, "scores": scores})
        print(f"{json.dumps(change):70s} {scores}  ({time.perf_counter() - t1:.1f} s)", flush=True)
    chosen = choose(rows)
    print("chosen by the rule:", rows[chosen]["change"])
    if not args.quick:
        write_result(
            OUT,
            "tune_scorer",
            "cpu",
            settings={"forecaster": "holt", "context_steps": CONTEXT, "files": [f.label.name for f in files]},
            results=rows,
            chosen=rows[chosen]["change"],
            refractory_note=REFRACTORY_NOTE,
            exploration=EXPLORATION,
            rule=(__doc__ or "").split("\n\n")[1],
        )


if __name__ == "__main__":
    main()
