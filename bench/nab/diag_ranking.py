"""Issue 13, TUNING split only: the ranking at the top of the per-row score, and where a change's gain comes from.

Reads the per-row npz of ``diag_fp_rows.py`` / ``tune_escalate.py`` (tuning runs; the held-out files are never
loaded here).

* ``rank RUN.npz LOW``: the rows after NAB's probation scoring at least ``LOW``, best first — how many windows and
  false-positive (FP) rows sit at 1.0 (the contextual novelty's tied rows, and any residual of ≥ 10¹⁰ decades
  rounding there), then below 1.0 each FP row and each window's first row in turn, with the windows and FP rows
  counted so far: what NAB's threshold search trades at each step.
* ``compare BASE.npz RUN.npz``: per profile, the corpus change, the files that carry it (raw points per file, each
  run at its own corpus threshold, in normalised points) and the change with any one file left out (thresholds
  re-optimised; its minimum, maximum and jackknife standard error).
* ``changed BASE.npz RUN.npz``: the rows whose published score changed and reach the rest level (0.4) in either.

    PYTHONPATH=daemon python bench/nab/diag_ranking.py rank DIAG/model.npz 0.46
    PYTHONPATH=daemon python bench/nab/diag_ranking.py compare DIAG/model.npz DIAG/model_C.npz
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from diag_fp_rows import FIELDS

from sentinelle.evaluation.nab_corpus import TUNING, NabFile, load_corpus, split_of
from sentinelle.evaluation.nab_scorer import PROFILES, probation_rows, score_corpus

Runs = dict[str, dict[str, np.ndarray]]


def tuning_files() -> list[NabFile]:
    files = load_corpus(Path("/work/shared/data/nab/data"))
    split = split_of(f.name for f in files)
    return [f for f in files if split[f.name] == TUNING]


def load(path: str, files: list[NabFile], full: bool = False) -> Runs:
    """Per file, the run's published score and terms (``full``: every field the replay kept)."""
    z = np.load(path)
    keys = FIELDS if full else ("score", "residual", "novelty")
    return {f.name: {k: z[f"{f.name}|{k}"] for k in keys} for f in files}


def score_of(r: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(np.nan_to_num(np.clip(r["score"], 0.0, 1.0)), dtype=np.float64)


def window_of(f: NabFile) -> np.ndarray:
    win = np.full(f.labelled.rows, -1)
    for j, (a, b) in enumerate(f.labelled.windows):
        win[a : b + 1] = j
    return win


def term(r: dict[str, np.ndarray], i: int) -> str:
    res, nov = np.nan_to_num(r["residual"][i], nan=-1.0), np.nan_to_num(r["novelty"][i], nan=-1.0)
    return "residual" if res >= nov else "novelty"


def rank(files: list[NabFile], runs: Runs, low: float) -> None:
    items = []
    for f in files:
        s, win = score_of(runs[f.name]), window_of(f)
        for k in np.flatnonzero((s >= low) & (np.arange(s.size) >= probation_rows(f.labelled.rows))).tolist():
            items.append((float(s[k]), f.name, k, int(win[k]), term(runs[f.name], k)))
    items.sort(key=lambda x: -x[0])
    seen: set[tuple[str, int]] = set()
    windows = fp = 0
    top = [0, 0]
    lines = []
    for value, name, i, w, t in items:
        new_window = w >= 0 and (name, w) not in seen
        if w >= 0 and not new_window:
            continue  # a window's later rows add nothing
        if new_window:
            seen.add((name, w))
            windows += 1
        else:
            fp += 1
        if value >= 1.0:
            top[0 if new_window else 1] += 1
            continue
        what = f"WINDOW w{w}" if new_window else "fp"
        lines.append(f"  {value:.4f} {what:9s} {name} row {i} ({t}); so far {windows} windows, {fp} FP rows")
    print(f"at 1.0: {top[0]} windows, {top[1]} FP rows")
    print("\n".join(lines))


def compare(files: list[NabFile], base: Runs, run: Runs) -> None:
    pa = [(f.labelled, score_of(base[f.name])) for f in files]
    pb = [(f.labelled, score_of(run[f.name])) for f in files]
    for p in PROFILES:
        ca, cb = score_corpus(pa, p), score_corpus(pb, p)
        unit = 100.0 / (ca.perfect - ca.null)
        print(
            f"== {p.name}: {ca.normalised:.2f} -> {cb.normalised:.2f} (threshold {ca.threshold:.4f} -> "
            f"{cb.threshold:.4f}; windows {ca.detected} -> {cb.detected}; FP rows {ca.false_positive_rows} -> "
            f"{cb.false_positive_rows})"
        )
        d = {n: (cb.per_file_raw[n] - ca.per_file_raw[n]) * unit for n in ca.per_file_raw}
        for n, v in sorted(d.items(), key=lambda x: -abs(x[1]))[:8]:
            if abs(v) >= 0.005:
                print(f"   {v:+.2f} {n}")
        loo = []
        for k in range(len(files)):
            a = score_corpus([x for i, x in enumerate(pa) if i != k], p).normalised
            b = score_corpus([x for i, x in enumerate(pb) if i != k], p).normalised
            loo.append(b - a)
        x = np.array(loo)
        se = float(np.sqrt((x.size - 1) / x.size * np.sum((x - x.mean()) ** 2)))
        print(f"   one file left out: {x.min():+.2f} … {x.max():+.2f}, jackknife SE {se:.2f}")


def changed(files: list[NabFile], base: Runs, run: Runs) -> None:
    for f in files:
        a, b, win = score_of(base[f.name]), score_of(run[f.name]), window_of(f)
        rows = (np.abs(a - b) > 1e-9) & ((a >= 0.4) | (b >= 0.4))
        rows &= np.arange(a.size) >= probation_rows(f.labelled.rows)
        for i in np.flatnonzero(rows):
            where = f"window {win[i]}" if win[i] >= 0 else "outside"
            print(f"  {f.name} row {i} ({where}): {a[i]:.4f} -> {b[i]:.4f} ({term(run[f.name], int(i))})")


def main() -> None:
    what, *args = sys.argv[1:]
    files = tuning_files()
    if what == "rank":
        rank(files, load(args[0], files), float(args[1]))
    elif what == "compare":
        compare(files, load(args[0], files), load(args[1], files))
    elif what == "changed":
        changed(files, load(args[0], files), load(args[1], files))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
