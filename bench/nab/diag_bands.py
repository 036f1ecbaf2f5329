"""Issue 13, TUNING split only: where the model's per-row score loses to Holt's, by score band, category and term.

Reads the shipped per-row npz of the tuning runs (``OUT/{model,holt}_shipped_tuning.npz``, ``tune_band.py`` /
``tune_seasonal.py`` write them; the held-out files are never loaded here) and prints, per forecaster:

* ``bands``: for each published-score level, the false-positive rows (after NAB's probation, outside every window)
  at or above it, split by the term that set the row, and the windows whose best published row reaches it — the
  trade NAB's threshold search makes, level by level;
* ``categories``: the standard score per category at each forecaster's own corpus threshold and at the other's,
  with FP rows and windows;
* ``tail``: the share of scored ticks (after probation, outside windows) with ``|r|`` beyond 3, 4, 5, 6.5 and 10
  calibrated σ against a normal law's, and the residual's published onsets (residual-set rows ≥ the rest level)
  per 1,000 ticks — how much heavier the model's tail is than Holt's on the same ticks;
* ``early``: FP rows at each forecaster's standard threshold in the first and the later half of each file's scored
  rows (start-up).

    PYTHONPATH=daemon:bench/nab python bench/nab/diag_bands.py OUT
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from diag_ranking import Runs, load, score_of, tuning_files, window_of

from sentinelle.evaluation.nab_corpus import NabFile
from sentinelle.evaluation.nab_scorer import STANDARD, probation_rows, score_corpus

LEVELS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)
R_LEVELS = (3.0, 4.0, 5.0, 6.5, 10.0)


def is_residual(r: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(np.nan_to_num(r["residual"], nan=-1.0) >= np.nan_to_num(r["novelty"], nan=-1.0))


def bands(files: list[NabFile], runs: dict[str, Runs]) -> None:
    for fc, run in runs.items():
        print(f"== {fc}: level, FP rows >= level (residual, novelty), windows whose best row >= level")
        for lv in LEVELS:
            n_res = n_nov = n_win = 0
            for f in files:
                s, win = score_of(run[f.name]), window_of(f)
                ok = np.arange(s.size) >= probation_rows(f.labelled.rows)
                fp = (s >= lv) & (win < 0) & ok
                res = is_residual(run[f.name])
                n_res += int((fp & res).sum())
                n_nov += int((fp & ~res).sum())
                for j in range(len(f.labelled.windows)):
                    n_win += bool(((win == j) & ok & (s >= lv)).any())
            print(f"   {lv:6.3f}  FP {n_res + n_nov:4d} ({n_res:3d}, {n_nov:3d})  windows {n_win}")


def categories(files: list[NabFile], runs: dict[str, Runs]) -> None:
    pairs = {fc: [(f.labelled, score_of(r[f.name])) for f in files] for fc, r in runs.items()}
    thr = {fc: score_corpus(p, STANDARD).threshold for fc, p in pairs.items()}
    print("== categories: standard at a threshold (normalised over the category), FP rows, windows")
    for cat in sorted({f.category for f in files}):
        keep = [i for i, f in enumerate(files) if f.category == cat]
        parts = []
        for fc in runs:
            for at, t in thr.items():
                c = score_corpus([pairs[fc][i] for i in keep], STANDARD, threshold=t)
                parts.append(f"{fc}@{at} {c.normalised:6.2f} fp {c.false_positive_rows:3d} w {c.detected}/{c.windows}")
        print(f"   {cat:22s} " + " | ".join(parts))


def tail(files: list[NabFile], runs: dict[str, Runs]) -> None:
    normal = [math.erfc(x / math.sqrt(2.0)) for x in R_LEVELS]
    print("== |r| tail outside windows after probation: share beyond " + ", ".join(f"{x:g}" for x in R_LEVELS))
    print("   normal law " + " ".join(f"{p:.2e}" for p in normal))
    for fc, run in runs.items():
        rs, onsets, ticks = [], 0, 0
        for f in files:
            r = run[f.name]
            win = window_of(f)
            ok = (np.arange(win.size) >= probation_rows(f.labelled.rows)) & (win < 0) & np.isfinite(r["r"])
            rs.append(np.abs(r["r"][ok]))
            s = score_of(r)
            onsets += int((ok & is_residual(r) & (s >= 0.4)).sum())
            ticks += int(ok.sum())
        a = np.concatenate(rs)
        share = [float((a >= x).mean()) for x in R_LEVELS]
        print(
            f"   {fc:5s}      " + " ".join(f"{p:.2e}" for p in share) + f"  (ticks {a.size}); residual onsets >= 0.4 "
            f"{onsets} = {1000 * onsets / ticks:.2f} per 1,000 ticks; |r| p99 {np.quantile(a, 0.99):.1f} "
            f"p99.9 {np.quantile(a, 0.999):.1f}"
        )
    print("   per category, residual onsets >= 0.4 outside windows (model / holt)")
    for cat in sorted({f.category for f in files}):
        n = {}
        for fc, run in runs.items():
            n[fc] = 0
            for f in files:
                if f.category != cat:
                    continue
                r, win = run[f.name], window_of(f)
                ok = (np.arange(win.size) >= probation_rows(f.labelled.rows)) & (win < 0)
                n[fc] += int((ok & is_residual(r) & (score_of(r) >= 0.4)).sum())
        print(f"   {cat:22s} " + " / ".join(str(v) for v in n.values()))


def early(files: list[NabFile], runs: dict[str, Runs]) -> None:
    print("== FP rows at each forecaster's standard threshold: first half / second half of the scored rows")
    for fc, run in runs.items():
        t = score_corpus([(f.labelled, score_of(run[f.name])) for f in files], STANDARD).threshold
        a = b = 0
        for f in files:
            s, win = score_of(run[f.name]), window_of(f)
            start = probation_rows(f.labelled.rows)
            mid = (start + s.size) // 2
            fp = (s >= t) & (win < 0)
            a += int(fp[start:mid].sum())
            b += int(fp[mid:].sum())
        print(f"   {fc:5s} threshold {t:.4f}: {a} / {b}")


def main() -> None:
    out = Path(sys.argv[1])
    files = tuning_files()
    runs = {fc: load(str(out / f"{fc}_shipped_tuning.npz"), files, full=True) for fc in ("model", "holt")}
    for part in (bands, categories, tail, early):
        part(files, runs)


if __name__ == "__main__":
    main()
