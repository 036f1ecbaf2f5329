"""SKAB's protocol details that change scores: truth and prediction are the test rows alone.

SKAB's pipeline (``core/utils.py``, ``preprocess_skab``) splits ``df[["anomaly", "changepoint"]]`` with the
features at row 400, so a changepoint inside the training rows has no window (``other/2``'s fault starts at
row 104).  Older notebooks that scored whole files counted such windows as missed; these tests pin the
current protocol.
"""

from __future__ import annotations

import numpy as np

from sentinelle.evaluation.replay import Recording, Trace
from sentinelle.evaluation.skab import file_result, score_files

N = 600
TRAIN = 200


def _recording(changepoint_rows: list[int], labels: slice) -> Recording:
    lab = np.zeros(N, dtype=bool)
    lab[labels] = True
    cp = np.zeros(N, dtype=bool)
    cp[changepoint_rows] = True
    return Recording(
        name="other/2",
        asset="pump",
        tags=("pump.x",),
        units=("",),
        timestamps=np.arange(N, dtype=np.float64),
        values=np.zeros((N, 1)),
        present=np.ones(N, dtype=bool),
        labels=lab,
        changepoints=cp,
        train_rows=TRAIN,
    )


def _trace(anomalous: np.ndarray) -> Trace:
    nan = np.full((N, 1), np.nan)
    return Trace(anomalous, np.zeros(N, dtype=bool), nan, nan, nan, nan, nan)


def test_a_training_row_changepoint_has_no_window() -> None:
    # Fault from row 100 (inside the training rows) to row 400: only the end's changepoint is scored.
    rec = _recording([100, 400], slice(100, 400))
    perfect = np.zeros(N, dtype=bool)
    perfect[TRAIN:400] = True
    fr = file_result(rec, _trace(perfect))
    assert fr.test.tolist() == list(range(TRAIN, N))
    scores = score_files([fr])
    # One window (400, hit at its start); the first test row's own value (an alert open at row 200) is a change
    # outside it: one false positive.
    assert scores.nab_counts["windows"] == 1
    assert scores.nab_counts["detected"] == 1 and scores.nab_counts["missed"] == 0
    assert scores.nab_counts["false_positives"] == 1
    assert scores.nab["standard"] == round(100.0 * (1.0 - 0.11 + 1.0) / 2.0, 2)
    assert scores.outlier.f1 == 1.0


def test_outliers_are_scored_on_the_test_rows_alone() -> None:
    rec = _recording([100, 400], slice(100, 400))
    late = np.zeros(N, dtype=bool)
    late[TRAIN + 50 : 400] = True  # the first 50 test rows of the fault missed; training rows never count
    s = score_files([file_result(rec, _trace(late))]).outlier
    assert (s.tp, s.fn, s.fp, s.tn) == (150, 50, 0, 200)
