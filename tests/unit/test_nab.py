"""NAB and SKAB scores on hand-made cases, each worked out by hand in the comments."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sentinelle.evaluation.nab import (
    PROFILES,
    REWARD_LOW_FN,
    REWARD_LOW_FP,
    STANDARD,
    binary_scores,
    changepoints_of,
    match_windows,
    numenta_normalised,
    numenta_score,
    right_windows,
    scaled_sigmoid,
    skab_nab,
    skab_position_score,
)


def test_skab_nab_two_files_by_hand() -> None:
    # File 1: changepoint at 100 s, window [100, 160]; detections at 10 (FP), 100 (TP at the
    # window's start: worth A_TP = 1) and 130 (second in the window: ignored).
    # File 2: changepoint at 50 s never detected (FN); a detection at 300 s (FP).
    # standard: raw = 1 − 0.11 − 1 − 0.11 = −0.22, null = −2, perfect = 2 → 100·1.78/4 = 44.5
    # low FP:   raw = 1 − 0.22 − 1 − 0.22 = −0.44 → 100·1.56/4 = 39.0
    # low FN:   raw = 1 − 0.11 − 2 − 0.11 = −1.22, null = −4 → 100·2.78/6 = 46.33
    r = skab_nab([([100.0], [10.0, 100.0, 130.0]), ([50.0], [300.0])])
    assert r.scores == {"standard": 44.5, "reward_low_fp": 39.0, "reward_low_fn": 46.33}
    assert (r.windows, r.detected, r.missed, r.false_positives) == (2, 1, 1, 2)
    assert r.mean_delay == 0.0


def test_skab_null_and_perfect_detectors() -> None:
    cps = [([100.0, 400.0], [100.0, 400.0]), ([50.0], [50.0])]
    assert skab_nab(cps).scores == {p.name: 100.0 for p in PROFILES}
    assert skab_nab([([100.0, 400.0], []), ([50.0], [])]).scores == {p.name: 0.0 for p in PROFILES}


def test_skab_position_score_ends_and_middle() -> None:
    # A_TP at the start, A_FP at the end, (A_TP + A_FP)/2 in the middle (tanh is odd).
    for p in (STANDARD, REWARD_LOW_FP, REWARD_LOW_FN):
        assert skab_position_score(0.0, p) == pytest.approx(p.a_tp)
        assert skab_position_score(1.0, p) == pytest.approx(p.a_fp)
        assert skab_position_score(0.5, p) == pytest.approx((p.a_tp + p.a_fp) / 2, abs=2e-3)
    # The curve only falls.
    xs = [skab_position_score(r, STANDARD) for r in np.linspace(0, 1, 50)]
    assert all(a >= b for a, b in itertools.pairwise(xs))


def test_overlapping_windows_are_cut_and_shared_bound_counts_twice() -> None:
    # Changepoints at 100 and 130 with 60 s windows: [100, 160] and [130, 190] overlap, so the
    # second starts at 160 ("cut right window").  A detection at exactly 160 is the first in both
    # windows (tsad includes both bounds): the end of the first (worth A_FP) and the start of
    # the second (worth A_TP): raw = −0.11 + 1 = 0.89, null −2, perfect 2 → 100·2.89/4 = 72.25.
    assert right_windows([130.0, 100.0], 60.0) == [(100.0, 160.0), (160.0, 190.0)]
    m = match_windows(right_windows([100.0, 130.0], 60.0), [160.0])
    assert m.tp_positions == [1.0, 0.0] and m.false_positives == 0
    assert skab_nab([([100.0, 130.0], [160.0])]).scores["standard"] == 72.25


def test_detection_just_before_a_window_is_a_false_positive() -> None:
    # Windows are right of the changepoint: a detection one second early is an FP and the window an FN.
    r = skab_nab([([100.0], [99.0])])
    assert (r.false_positives, r.missed) == (1, 1)
    # raw = −0.11 − 1 = −1.11, null −1, perfect 1 → 100·(−0.11)/2 = −5.5
    assert r.scores["standard"] == -5.5


def test_numenta_scaled_sigmoid_values() -> None:
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)  # the paper's halfway value
    # NAB's sweeper clamps only on the right (y > 3 is −1); on the left it is the formula itself.
    assert scaled_sigmoid(5.0) == -1.0 and scaled_sigmoid(-5.0) == pytest.approx(2 / (1 + math.exp(-25)) - 1)


def test_numenta_score_by_hand() -> None:
    det = np.zeros(30, dtype=bool)
    # Window rows 10..14 (width 5).  First detection at row 12: y = −(14 − 12 + 1)/5 = −0.6,
    # worth σ(−0.6)/σ(−1) = 0.90515/0.98661.  Row 13 is the second detection in the window: ignored.
    # Row 16 is an FP 2 rows after the window's end: y = 2/(5 − 1) = 0.5 → σ = −0.84828, cost 0.11·σ.
    # Row 3 is an FP with no preceding window: A_FP = −0.11.
    # Row 1 falls in the probationary period: ignored.
    det[[1, 3, 12, 13, 16]] = True
    raw = numenta_score(det, [(10, 14)], STANDARD, probation=2)
    assert raw == pytest.approx(0.90515 / 0.98661 - 0.11 * 0.84828 - 0.11, abs=1e-5)
    # A detection on a window's first row is worth exactly A_TP.
    first = np.zeros(30, dtype=bool)
    first[10] = True
    assert numenta_score(first, [(10, 14)], STANDARD) == pytest.approx(1.0)
    # A missed window costs A_FN; normalised: null −1 → 0, perfect 1 → 100.
    assert numenta_score(np.zeros(30, dtype=bool), [(10, 14)], REWARD_LOW_FN) == -2.0
    # A window wholly inside the probation is not scored at all.
    assert numenta_score(np.zeros(30, dtype=bool), [(0, 4)], STANDARD, probation=6) == 0.0
    assert numenta_normalised(-2.0, 1, REWARD_LOW_FN) == 0.0
    assert numenta_normalised(1.0, 1, STANDARD) == 100.0


def test_binary_scores_as_skab_defines_them() -> None:
    truth = np.array([0, 0, 0, 1, 1, 1, 1, 0], dtype=bool)
    pred = np.array([0, 1, 0, 0, 1, 1, 1, 1], dtype=bool)
    # TP 3 (rows 4–6), FP 2 (rows 1, 7), FN 1 (row 3), TN 2 (rows 0, 2)
    s = binary_scores([(truth, pred), (np.zeros(3, dtype=bool), np.zeros(3, dtype=bool))])
    assert (s.tp, s.tn, s.fp, s.fn) == (3, 5, 2, 1)
    # F1 = 3 / (3 + 1.5) = 0.667; FAR = 2/7 = 28.57 %; MAR = 1/4 = 25 %
    assert s.rounded() == {"f1": 0.67, "far_percent": 28.57, "mar_percent": 25.0}


def test_changepoints_of_marks_rises_and_falls() -> None:
    assert changepoints_of(np.array([0, 0, 1, 1, 1, 0, 0], dtype=bool)).astype(int).tolist() == [0, 0, 1, 0, 0, 1, 0]
    assert changepoints_of(np.zeros(0, dtype=bool)).size == 0
