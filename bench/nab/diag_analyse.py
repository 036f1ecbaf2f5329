"""Score the npz files of diag_model_vs_holt.py: its terms, their offline recombination, per file (tuning only).

Run: PYTHONPATH=daemon python bench/nab/diag_analyse.py DIR [--split held_out] holt_1 model_16
With ``--split held_out`` only corpus scores are printed (no per-file look at the held-out files).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sentinelle.detect.rest import Rest
from sentinelle.evaluation.nab_corpus import HELD_OUT, TUNING, load_corpus, split_of
from sentinelle.evaluation.nab_scorer import PROFILES, score_corpus

files = load_corpus(Path("/work/shared/data/nab/data"))
split = split_of(f.name for f in files)
ARGS = sys.argv[2:]
PART = TUNING
if ARGS[0] == "--split":
    PART = {"tuning": TUNING, "held_out": HELD_OUT}[ARGS[1]]
    ARGS = ARGS[2:]
tuning = [f for f in files if split[f.name] == PART]


def rested(s: np.ndarray, steps: int = 100, level: float = 0.4) -> np.ndarray:
    r = Rest(1, steps, level)
    return np.array([r.apply(np.array([v]))[0] for v in s])


def corpus(scores: dict[str, np.ndarray]) -> tuple[list[float], dict[str, float]]:
    out, per = [], {}
    for p in PROFILES:
        cs = score_corpus([(f.labelled, scores[f.name]) for f in tuning], p)
        out.append(round(cs.normalised, 2))
        if p.name == "standard":
            per = cs.per_file_raw
    return out, per


def load(tag: str) -> dict[str, dict[str, np.ndarray]]:
    z = np.load(Path(sys.argv[1]) / f"{tag}{'' if PART == TUNING else '_held_out'}.npz")
    d: dict[str, dict[str, np.ndarray]] = {}
    for k in z.files:
        name, part = k.split("|")
        d.setdefault(part, {})[name] = z[k]
    return d


per_run = {}
for tag in ARGS:
    d = load(tag)
    for part in sorted(d):
        s, _ = corpus(d[part])
        print(tag, part, s)
    res = d["forecast_residual"]
    nov = next(k for k in d if k not in ("score", "forecast_residual"))
    comb = {n: rested(np.fmax(res[n], d[nov][n])) for n in res}
    s, per = corpus(comb)
    print(tag, "recombined", s)
    per_run[tag] = per
    for q in (0.5, 0.9, 0.99, 0.999):
        allr = np.concatenate(list(res.values()))
        print(tag, "residual quantile", q, round(float(np.quantile(allr, q)), 3))
tags = ARGS
if len(tags) > 1 and PART == TUNING:
    a, b = tags[0], tags[-1]
    diffs = sorted((per_run[b][n] - per_run[a][n], n) for n in per_run[a])
    print(f"per file standard raw, {b} - {a} (each at its own corpus threshold):")
    for dlt, n in diffs:
        if abs(dlt) > 0.05:
            print(f"  {dlt:+.2f} {n}")
