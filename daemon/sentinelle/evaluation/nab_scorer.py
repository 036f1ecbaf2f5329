"""NAB's official scorer (``numenta/NAB`` @ ea702d7: ``nab/sweeper.py``, ``optimizer.py``, ``scorer.py``,
``runner.py``), vectorised.

What the official code does, and so what this does:

* **Probation**: the first ``min(⌊0.15·n⌋, 750)`` rows of a file are not scored
  (neither detections nor false positives, nor window rows).
* **Windows** are row ranges ``[first, last]`` (their timestamps looked up in the
  file).  A row inside a window at index ``i`` has the relative position
  ``−(last − i + 1)/width`` (``width = last − first + 1``) and, if detected, is worth
  ``A_TP · σ(pos)/σ(−1)`` — exactly ``A_TP`` at the window's first row.  A window is
  worth the best of its detected rows, or ``−A_FN`` when none is detected.
* **False positives**: a detected row outside every window costs
  ``A_FP · σ(|i − last_prev|/(width_prev − 1))`` after a window (barely anything just
  after it), and the full ``A_FP`` before any window.  ``σ(y) = 2/(1 + e^{5y}) − 1``,
  and −1 beyond ``y > 3``.
* **Threshold**: a row is a detection when its ``anomaly_score`` ≥ the threshold; the
  optimiser tries every score value present over all the files given (and "nothing")
  and keeps the threshold with the largest total, per profile.
* **Normalisation**: ``100 · (raw − null)/(perfect − null)`` with ``null`` the null
  detector's optimised raw score on the same files (a constant ``anomaly_score``:
  ``−A_FN`` per scored window) and ``perfect = A_TP ·`` the number of windows.

The sweep over thresholds is one sort and a few cumulative sums over all rows, not
NAB's Python loop: the whole corpus (365k rows) scores in well under a second.

>>> f = LabelledFile("a.csv", 40, ((20, 24),))
>>> s = np.zeros(40); s[21] = 0.9; s[30] = 0.7
>>> r = score_corpus([(f, s)], STANDARD)
>>> r.threshold, r.detected, r.false_positive_rows, round(r.normalised, 2)
(0.9, 1, 0, 98.86)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..records import FloatArray, IntArray
from .nab import PROFILES, REWARD_LOW_FN, REWARD_LOW_FP, STANDARD, Profile

__all__ = [
    "PROFILES",
    "REWARD_LOW_FN",
    "REWARD_LOW_FP",
    "STANDARD",
    "CorpusScore",
    "LabelledFile",
    "probation_rows",
    "score_corpus",
    "sweep_weights",
]

PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750
"""``probationPercent · 5000`` in NAB's ``Sweeper._getProbationaryLength``."""
_OUTSIDE = -1


@dataclass(frozen=True, slots=True)
class LabelledFile:
    """One file of a NAB-style corpus: its name (``category/file.csv``), row count and windows (row ranges)."""

    name: str
    rows: int
    windows: tuple[tuple[int, int], ...]

    @property
    def category(self) -> str:
        return self.name.split("/", 1)[0] if "/" in self.name else ""


def probation_rows(rows: int) -> int:
    """Rows at the start of a file that are not scored.

    >>> probation_rows(4032), probation_rows(22695)
    (604, 750)
    """
    return int(min(math.floor(PROBATION_FRACTION * rows), PROBATION_FRACTION * 5000))


def scaled_sigmoid(y: FloatArray) -> FloatArray:
    """NAB's ``σ(y) = 2/(1 + e^{5y}) − 1``, −1 beyond ``y > 3`` (no clamp on the left, as in ``sweeper.py``)."""
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(over="ignore"):
        out = 2.0 / (1.0 + np.exp(5.0 * y)) - 1.0
    return np.asarray(np.where(y > 3.0, -1.0, out), dtype=np.float64)


_MAX_TP = float(scaled_sigmoid(np.array(-1.0)))


def sweep_weights(f: LabelledFile, profile: Profile) -> tuple[FloatArray, IntArray]:
    """Each row's worth if detected (``sweepScore``), and its window's index in ``f.windows`` (−1: outside).

    >>> w, win = sweep_weights(LabelledFile("a.csv", 8, ((2, 4),)), STANDARD)
    >>> [round(x, 3) for x in w.tolist()], win.tolist()
    ([-0.11, -0.11, 1.0, 0.944, 0.692, -0.093, -0.109, -0.11], [-1, -1, 0, 0, 0, -1, -1, -1])
    """
    n = f.rows
    i = np.arange(n, dtype=np.float64)
    weight = np.full(n, profile.a_fp)  # before any window: the full cost (a_fp is negative)
    window = np.full(n, _OUTSIDE, dtype=np.intp)
    fp_cost = -profile.a_fp
    for j, (first, last) in enumerate(f.windows):
        width = last - first + 1
        rows = slice(first, last + 1)
        window[rows] = j
        weight[rows] = profile.a_tp * scaled_sigmoid(-(last - i[rows] + 1) / width) / _MAX_TP
        # Rows after this window up to the next one's start are judged against it.
        stop = f.windows[j + 1][0] if j + 1 < len(f.windows) else n
        after = slice(last + 1, stop)
        if width > 1:
            weight[after] = fp_cost * scaled_sigmoid(np.abs(last - i[after]) / (width - 1))
        else:
            # NAB divides by (width − 1) = 0 here (and fails); the limit is "far past the window".
            weight[after] = -fp_cost
    return weight, window


@dataclass(frozen=True, slots=True)
class CorpusScore:
    """One profile's result over some files, with the threshold NAB's optimiser picks."""

    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    windows: int
    detected: int
    """Windows with at least one detection."""
    false_positive_rows: int
    per_file_raw: dict[str, float]

    @property
    def normalised(self) -> float:
        return 100.0 * (self.raw - self.null) / (self.perfect - self.null) if self.perfect != self.null else math.nan


@dataclass(frozen=True, slots=True)
class _Rows:
    score: FloatArray
    weight: FloatArray
    window: IntArray
    """Global window id over all files (−1: outside)."""
    file: IntArray
    scored_windows: int


def _rows(files: Sequence[tuple[LabelledFile, FloatArray]], profile: Profile) -> _Rows:
    scores, weights, windows, file_ids = [], [], [], []
    offset = 0
    scored_windows = 0
    for k, (f, s) in enumerate(files):
        s = np.asarray(s, dtype=np.float64)
        if s.shape != (f.rows,):
            raise ValueError(f"{f.name}: {s.shape[0]} anomaly scores for {f.rows} rows")
        w, win = sweep_weights(f, profile)
        start = probation_rows(f.rows)
        win = win[start:]
        scored = np.unique(win[win >= 0])
        scored_windows += int(scored.size)
        scores.append(s[start:])
        weights.append(w[start:])
        windows.append(np.where(win >= 0, win + offset, _OUTSIDE))
        file_ids.append(np.full(f.rows - start, k, dtype=np.intp))
        offset += len(f.windows)
    cat = np.concatenate
    return _Rows(
        cat(scores) if scores else np.zeros(0),
        cat(weights) if weights else np.zeros(0),
        cat(windows) if windows else np.zeros(0, dtype=np.intp),
        cat(file_ids) if file_ids else np.zeros(0, dtype=np.intp),
        scored_windows,
    )


def _sweep(rows: _Rows, fn_weight: float) -> tuple[FloatArray, FloatArray]:
    """Thresholds (descending, the first 1.1 = nothing) and the corpus raw score at each."""
    order = np.argsort(-rows.score, kind="stable")
    s = rows.score[order]
    w = rows.weight[order]
    win = rows.window[order]
    delta = np.where(win < 0, w, 0.0)
    inside = np.flatnonzero(win >= 0)
    if inside.size:
        # Per window: the best detected row so far (starting from −A_FN); each row adds the rise it brings.
        by_window = inside[np.lexsort((inside, win[inside]))]
        g = win[by_window]
        floor = -fn_weight
        span = 2.0 * (fn_weight + float(np.max(np.abs(w[by_window]))) + 1.0)
        base = g.astype(np.float64) * span
        best = np.maximum.accumulate(np.maximum(w[by_window], floor) + base) - base
        prev = np.empty_like(best)
        prev[0] = floor
        prev[1:] = best[:-1]
        first_of_window = np.r_[True, g[1:] != g[:-1]]
        prev[first_of_window] = floor
        delta[by_window] = best - prev
    total = -fn_weight * rows.scored_windows + np.cumsum(delta)
    # A threshold counts every row with a score at least it: evaluate at the end of each run of equal scores.
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True]) if s.size else np.zeros(0, dtype=np.intp)
    thresholds = np.r_[1.1, s[ends]]
    totals = np.r_[-fn_weight * rows.scored_windows, total[ends]]
    return thresholds, totals


def _per_file(files: Sequence[tuple[LabelledFile, FloatArray]], profile: Profile, threshold: float) -> dict[str, float]:
    out = {}
    for f, s in files:
        w, win = sweep_weights(f, profile)
        start = probation_rows(f.rows)
        det = np.asarray(s, dtype=np.float64)[start:] >= threshold
        w, win = w[start:], win[start:]
        raw = float(np.sum(w[det & (win < 0)]))
        for j in np.unique(win[win >= 0]).tolist():
            hit = det & (win == j)
            raw += max(profile.a_fn, float(w[hit].max())) if hit.any() else profile.a_fn
        out[f.name] = raw
    return out


def optimise(files: Sequence[tuple[LabelledFile, FloatArray]], profile: Profile) -> tuple[float, float]:
    """NAB's optimiser: the threshold with the largest raw score over ``files`` (the highest on ties)."""
    thresholds, totals = _sweep(_rows(files, profile), -profile.a_fn)
    best = int(np.argmax(totals))
    return float(thresholds[best]), float(totals[best])


def score_corpus(
    files: Sequence[tuple[LabelledFile, FloatArray]], profile: Profile, threshold: float | None = None
) -> CorpusScore:
    """Optimise the threshold over ``files`` (or use ``threshold``) and normalise with the null detector
    on the same files."""
    _, null = optimise([(f, np.full(f.rows, 0.5)) for f, _ in files], profile)
    if threshold is None:
        threshold, raw = optimise(files, profile)
        per_file = _per_file(files, profile, threshold)
    else:
        per_file = _per_file(files, profile, threshold)
        raw = sum(per_file.values())
    detected = fp_rows = 0
    for f, s in files:
        start = probation_rows(f.rows)
        det = np.asarray(s, dtype=np.float64) >= threshold
        det[:start] = False
        inside = np.zeros(f.rows, dtype=bool)
        for first, last in f.windows:
            inside[first : last + 1] = True
            detected += bool(det[max(first, start) : last + 1].any())
        fp_rows += int((det & ~inside).sum())
    windows = sum(len(f.windows) for f, _ in files)
    return CorpusScore(
        profile=profile.name,
        threshold=threshold,
        raw=raw,
        null=null,
        perfect=profile.a_tp * windows,
        windows=windows,
        detected=detected,
        false_positive_rows=fp_rows,
        per_file_raw=per_file,
    )
