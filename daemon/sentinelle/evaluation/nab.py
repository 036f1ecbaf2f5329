"""Scores of detections against labels: the NAB score for changepoints, SKAB's point-wise scores for outliers.

**NAB** (Lavin & Ahmad, "Evaluating Real-time Anomaly Detection Algorithms — the
Numenta Anomaly Benchmark", 2015).  Every labelled event owns a *window*; the
first detection inside a window is a true positive worth ``A_TP`` scaled by how
early it came, later detections in the same window count for nothing, a window
without detection costs ``A_FN``, and a detection outside every window costs
``A_FP``.  The raw sum is normalised so the null detector (no detections) scores
0 and the perfect detector (one detection at each window's start) scores 100:
``100 · (raw − null) / (perfect − null)``, with ``null = A_FN · windows`` and
``perfect = A_TP · windows`` summed over all files before dividing.

Profiles (A_TP, A_FP, A_TN, A_FN): standard (1, −0.11, 1, −1), reward low FP
(1, −0.22, 1, −1), reward low FN (1, −0.11, 1, −2).  ``A_TN`` enters no formula.

Two scalings of a detection's position in its window exist, and both are here:

* :func:`numenta_score` — NAB's own (``nab/sweeper.py``): the relative position
  ``y = −(last − i + 1)/width`` is −1 at a window's first row; a true positive earns
  ``A_TP · σ(y)/σ(−1)`` with ``σ(y) = 2/(1 + e^{5y}) − 1``; a false positive after a
  window costs ``|A_FP| · σ(y)`` with ``y = (i − last)/(width − 1)`` (so a detection
  just late is barely punished), and ``A_FP`` when no window precedes it.  Rows
  before the probationary index are ignored.  :mod:`.nab_scorer` adds NAB's
  threshold search over a corpus.
* :func:`skab_nab` — the variant SKAB's leaderboard uses (the ``tsad`` library,
  ``chp_score(metric="nab")``, ``scale_func="improved"``): windows are time
  intervals ``[t_cp, t_cp + width]`` to the *right* of each changepoint, both ends
  included; where two windows overlap the later one starts at the earlier one's
  end ("cut right window").  A true positive at relative position
  ``r = (t − start) / (end − start)`` earns
  ``(A_TP − A_FP)/2 · (−tanh(x)/tanh(π/2)) + (A_TP + A_FP)/2`` with ``x`` the
  ``⌊1000·r⌋``-th of 1000 points evenly spaced on [−π/2, π/2]: exactly ``A_TP``
  at the window's start and ``A_FP`` at its end.  *Every* detection outside the
  windows costs the flat ``A_FP`` (no sigmoid after a window), and detections
  after the first in a window are ignored.

**Outliers** (SKAB's ``chp_score(metric="binary")``): point-wise counts summed
over all files, then ``F1 = TP / (TP + (FN + FP)/2)``, ``FAR = FP / (FP + TN)``
and ``MAR = FN / (FN + TP)`` (in %).

>>> round(skab_position_score(0.0, STANDARD), 6), round(skab_position_score(1.0, STANDARD), 6)
(1.0, -0.11)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..records import BoolArray, FloatArray


@dataclass(frozen=True, slots=True)
class Profile:
    """NAB application profile: the weight of each outcome (negative weights are costs)."""

    name: str
    a_tp: float
    a_fp: float
    a_tn: float
    a_fn: float


STANDARD = Profile("standard", 1.0, -0.11, 1.0, -1.0)
REWARD_LOW_FP = Profile("reward_low_fp", 1.0, -0.22, 1.0, -1.0)
REWARD_LOW_FN = Profile("reward_low_fn", 1.0, -0.11, 1.0, -2.0)
PROFILES: tuple[Profile, ...] = (STANDARD, REWARD_LOW_FP, REWARD_LOW_FN)

SKAB_WINDOW_S = 60.0
"""SKAB's proposed leaderboard: a 60 s window to the right of each true changepoint."""
_SKAB_DETAIL = 1000


# -- SKAB / tsad variant ------------------------------------------------------------


def right_windows(changepoints: Sequence[float], width: float) -> list[tuple[float, float]]:
    """``[t, t + width]`` for each changepoint time, sorted; an overlapping window starts where the previous ends.

    >>> right_windows([100.0, 130.0, 400.0], 60.0)
    [(100.0, 160.0), (160.0, 190.0), (400.0, 460.0)]
    """
    out = [[float(t), float(t) + width] for t in sorted(changepoints)]
    for prev, nxt in itertools.pairwise(out):
        if prev[1] >= nxt[0]:
            nxt[0] = prev[1]
    return [(a, b) for a, b in out]


@dataclass(slots=True)
class WindowMatch:
    """Detections matched to windows, for one file."""

    windows: int = 0
    tp_positions: list[float] = field(default_factory=list)
    """Relative position (0 at the window's start, 1 at its end) of each window's first detection."""
    tp_delays: list[float] = field(default_factory=list)
    """Time from each detected window's start to its first detection."""
    false_negatives: int = 0
    false_positives: int = 0

    def add(self, other: WindowMatch) -> None:
        self.windows += other.windows
        self.tp_positions.extend(other.tp_positions)
        self.tp_delays.extend(other.tp_delays)
        self.false_negatives += other.false_negatives
        self.false_positives += other.false_positives


def match_windows(windows: Sequence[tuple[float, float]], detections: Sequence[float]) -> WindowMatch:
    """Match detection times to windows as tsad does (bounds included; a time on a shared bound counts in both).

    >>> m = match_windows([(100.0, 160.0)], [10.0, 115.0, 130.0])
    >>> m.tp_positions, m.false_positives, m.false_negatives
    ([0.25], 1, 0)
    """
    det = np.sort(np.asarray(detections, dtype=np.float64))
    m = WindowMatch(windows=len(windows))
    inside_any = np.zeros(det.shape, dtype=bool)
    for start, end in windows:
        inside = (det >= start) & (det <= end)
        inside_any |= inside
        if not inside.any():
            m.false_negatives += 1
            continue
        first = float(det[np.argmax(inside)])
        m.tp_positions.append((first - start) / (end - start) if end > start else 0.0)
        m.tp_delays.append(first - start)
    m.false_positives = int((~inside_any).sum())
    return m


def skab_position_score(position: float, profile: Profile, koef: float = 1.0) -> float:
    """tsad's "improved" scale: ``A_TP`` at a window's start falling smoothly (tanh) to ``A_FP`` at its end."""
    x = np.linspace(-math.pi / 2, math.pi / 2, _SKAB_DETAIL)
    event = min(int(position * _SKAB_DETAIL), _SKAB_DETAIL - 1)
    half = (profile.a_tp - profile.a_fp) / 2
    return float(half * -math.tanh(koef * x[event]) / math.tanh(math.pi * koef / 2) + half + profile.a_fp)


@dataclass(frozen=True, slots=True)
class NabResult:
    """Normalised NAB scores per profile, with the counts behind them."""

    scores: dict[str, float]
    windows: int
    detected: int
    missed: int
    false_positives: int
    mean_delay: float
    """Mean time from a window's start to its first detection (NaN if none was detected)."""


def skab_nab(
    files: Sequence[tuple[Sequence[float], Sequence[float]]],
    width: float = SKAB_WINDOW_S,
    profiles: Sequence[Profile] = PROFILES,
) -> NabResult:
    """SKAB's NAB scores over many files: each is (true changepoint times, detection times).

    Raw, null and perfect scores are summed over the files before normalising, as
    tsad does; scores are rounded to two decimals, as on the leaderboard.

    >>> r = skab_nab([([100.0], [100.0, 130.0, 10.0]), ([50.0], [300.0])])
    >>> r.scores["standard"], r.scores["reward_low_fp"], r.scores["reward_low_fn"]
    (44.5, 39.0, 46.33)
    """
    total = WindowMatch()
    for changepoints, detections in files:
        total.add(match_windows(right_windows(changepoints, width), detections))
    scores = {}
    for p in profiles:
        raw = sum(skab_position_score(pos, p) for pos in total.tp_positions)
        raw += p.a_fp * total.false_positives + p.a_fn * total.false_negatives
        scores[p.name] = _normalise(raw, total.windows, p)
    return NabResult(
        scores=scores,
        windows=total.windows,
        detected=len(total.tp_positions),
        missed=total.false_negatives,
        false_positives=total.false_positives,
        mean_delay=float(np.mean(total.tp_delays)) if total.tp_delays else math.nan,
    )


def _normalise(raw: float, windows: int, p: Profile) -> float:
    null, perfect = p.a_fn * windows, p.a_tp * windows
    if perfect == null:
        return math.nan
    return round(100.0 * (raw - null) / (perfect - null), 2)


# -- NAB's own scoring (Lavin & Ahmad 2015) -----------------------------------------


def scaled_sigmoid(y: float) -> float:
    """NAB's ``σ(y) = 2/(1 + e^{5y}) − 1``, −1 beyond ``y > 3`` (``sweeper.scaledSigmoid``: no clamp on the left).

    >>> round(scaled_sigmoid(-1.0), 5), scaled_sigmoid(0.0), round(scaled_sigmoid(1.0), 5), scaled_sigmoid(3.5)
    (0.98661, 0.0, -0.98661, -1.0)
    """
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def numenta_score(
    detections: BoolArray, windows: Sequence[tuple[int, int]], profile: Profile, probation: int = 0
) -> float:
    """NAB's raw score of one file: ``detections`` per row, ``windows`` as (first, last) row indices, inclusive.

    As NAB's ``sweeper.py``: a window is worth its earliest detection,
    ``A_TP · σ(−(last − i + 1)/width)/σ(−1)`` (exactly ``A_TP`` at its first row), or ``A_FN``
    if none; a detection outside every window costs ``|A_FP| · σ(|i − last|/(width − 1))``
    after a window and ``|A_FP|`` before any.  Rows before ``probation`` count for nothing, and
    a window wholly inside it is not scored.  :mod:`.nab_scorer` does the same over a corpus,
    with NAB's threshold search.

    >>> det = np.zeros(20, dtype=bool); det[[5, 6, 12, 19]] = True
    >>> round(numenta_score(det, [(5, 9)], STANDARD), 4)   # TP at the start; FP 3 rows and 10 rows past the end
    0.7851
    """
    det = np.asarray(detections, dtype=bool).copy()
    det[:probation] = False
    in_window = np.zeros(det.shape, dtype=bool)
    max_tp = scaled_sigmoid(-1.0)
    score = 0.0
    for first, last in windows:
        in_window[first : last + 1] = True
        if last < probation:
            continue
        hits = np.flatnonzero(det[first : last + 1])
        if hits.size == 0:
            score += profile.a_fn
            continue
        width = last - first + 1
        score += profile.a_tp * scaled_sigmoid(-(last - (first + int(hits[0])) + 1) / width) / max_tp
    for i in np.flatnonzero(det & ~in_window).tolist():
        preceding = [(last, first) for first, last in windows if last < i]
        if not preceding:
            score += profile.a_fp
            continue
        last, first = max(preceding)
        width = last - first + 1
        score += -profile.a_fp * (scaled_sigmoid(abs(i - last) / (width - 1)) if width > 1 else -1.0)
    return score


def numenta_normalised(raw: float, windows: int, profile: Profile) -> float:
    """``100 · (raw − null) / (perfect − null)`` with NAB's null (no detection) and perfect (A_TP per window)."""
    null, perfect = profile.a_fn * windows, profile.a_tp * windows
    return 100.0 * (raw - null) / (perfect - null) if perfect != null else math.nan


# -- outliers ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BinaryScores:
    tp: int
    tn: int
    fp: int
    fn: int

    @property
    def f1(self) -> float:
        d = self.tp + (self.fn + self.fp) / 2
        return self.tp / d if d else math.nan

    @property
    def far_percent(self) -> float:
        d = self.fp + self.tn
        return 100.0 * self.fp / d if d else math.nan

    @property
    def mar_percent(self) -> float:
        d = self.fn + self.tp
        return 100.0 * self.fn / d if d else math.nan

    def rounded(self) -> dict[str, float]:
        """F1, FAR % and MAR % rounded as SKAB's leaderboard (2 decimals)."""
        return {
            "f1": round(self.f1, 2),
            "far_percent": round(self.far_percent, 2),
            "mar_percent": round(self.mar_percent, 2),
        }


def binary_scores(pairs: Sequence[tuple[BoolArray, BoolArray]]) -> BinaryScores:
    """Point-wise counts over many files, each (true labels, predictions).

    >>> s = binary_scores([(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool))])
    >>> (s.tp, s.tn, s.fp, s.fn), round(s.f1, 2), s.far_percent, s.mar_percent
    ((1, 1, 1, 1), 0.5, 50.0, 50.0)
    """
    tp = tn = fp = fn = 0
    for truth, pred in pairs:
        t = np.asarray(truth, dtype=bool)
        p = np.asarray(pred, dtype=bool)
        tp += int((t & p).sum())
        tn += int((~t & ~p).sum())
        fp += int((~t & p).sum())
        fn += int((t & ~p).sum())
    return BinaryScores(tp, tn, fp, fn)


def changepoints_of(prediction: BoolArray) -> BoolArray:
    """SKAB's notebooks' changepoint prediction: ``|diff(prediction)|``, the first point taking its own value.

    >>> changepoints_of(np.array([1, 1, 0, 0, 1], bool)).astype(int).tolist()
    [1, 0, 1, 0, 1]
    """
    p = np.asarray(prediction, dtype=bool)
    out = np.zeros(p.shape, dtype=bool)
    if p.size:
        out[0] = p[0]
        out[1:] = p[1:] != p[:-1]
    return out


def times_of(mask: BoolArray, timestamps: FloatArray) -> list[float]:
    """Timestamps where ``mask`` is set."""
    return [float(t) for t in np.asarray(timestamps)[np.asarray(mask, dtype=bool)]]
