"""SKAB's protocol details that change scores: changepoints inside the training rows keep their windows."""

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


def test_a_training_row_changepoint_is_a_missed_window() -> None:
    # Fault from row 100 (inside the training rows) to row 400: the start's window cannot be reached.
    rec = _recording([100, 400], slice(100, 400))
    perfect = np.zeros(N, dtype=bool)
    perfect[TRAIN:400] = True
    fr = file_result(rec, _trace(perfect))
    assert fr.warmup_changepoints == (100.0,)
    assert fr.test.tolist() == list(range(TRAIN, N))
    scores = score_files([fr])
    # Windows: 100 (missed, unreachable) and 400 (hit at its start). The first test row's own value (an alert
    # open at row 200) is a change outside both windows: one false positive.
    assert scores.nab_counts["windows"] == 2
    assert scores.nab_counts["missed"] == 1 and scores.nab_counts["detected"] == 1
    assert scores.nab_counts["false_positives"] == 1
    assert scores.nab["standard"] == round(100.0 * (1.0 - 1.0 - 0.11 + 2.0) / 4.0, 2)
    assert scores.outlier.f1 == 1.0  # outliers: the test rows alone


def test_a_training_window_reaching_the_test_rows_can_be_hit() -> None:
    # A changepoint 30 s before the first test row: its 60 s window reaches 30 s into the test rows.
    rec = _recording([TRAIN - 30], slice(TRAIN - 30, N))
    anomalous = np.ones(N, dtype=bool)  # an alert open from the first test row: a change at row 200
    scores = score_files([file_result(rec, _trace(anomalous))])
    assert scores.nab_counts["windows"] == 1 and scores.nab_counts["detected"] == 1
    assert scores.nab_counts["false_positives"] == 0
