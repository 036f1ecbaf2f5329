"""What SKAB's NAB score can be for a detector of *state*: the labels themselves as the prediction (issue 13).

    PYTHONPATH=daemon SENTINELLE_DATA_DIR=../shared/data python bench/skab/nab_ceiling.py

Under SKAB's protocol the changepoint prediction is ``|diff|`` of the outlier prediction, and each
fault carries four changepoints (its start, 60 s later, 60 s before its end, its end), each with a
60 s right-sided window.  A perfect outlier prediction changes twice per fault, so it hits the
start's window and the end's (and the ``end-60`` window on its shared bound, at the window's last
point, worth ``A_FP``): its NAB score is far from 100.  This prints that ceiling for the tuning
split, the held-out split and all files, and the same prediction delayed (a detector's opening and
clearing delay) or early by a few seconds.  Only the labels are read: no detector runs.
"""

from __future__ import annotations

import numpy as np

from sentinelle.evaluation.replay import Trace
from sentinelle.evaluation.skab import file_result, in_tuning_split, score_files, skab_recordings

SHIFTS_S = (0, 5, 10, 20, 40, -1, -3)


def shifted(labels: np.ndarray, present: np.ndarray, rows: int) -> np.ndarray:
    """``labels`` held over the grid's missing slots (as the daemon holds values), then moved ``rows`` slots
    later (negative: earlier), the vacated slots normal."""
    last = np.maximum.accumulate(np.where(present, np.arange(len(present)), 0))
    labels = labels[last] & (np.cumsum(present) > 0)
    out = np.zeros_like(labels)
    if rows >= 0:
        out[rows:] = labels[: len(labels) - rows]
    else:
        out[:rows] = labels[-rows:]
    return out


def main() -> None:
    recs = skab_recordings()
    for split, keep in (("tuning", True), ("held_out", False), ("all", None)):
        chosen = [r for r in recs if keep is None or in_tuning_split(r.name) == keep]
        for shift in SHIFTS_S:
            files = []
            for r in chosen:
                assert r.labels is not None
                n = len(r.timestamps)
                nan = np.full((n, 1), np.nan)
                files.append(file_result(r, Trace(shifted(r.labels, r.present, shift), np.zeros(n, bool), *(nan,) * 5)))
            s = score_files(files)
            print(
                f"{split:9s} labels {shift:+3d} s: NAB standard {s.nab['standard']:6.2f}  windows "
                f"{s.nab_counts['windows']:3.0f} hit {s.nab_counts['detected']:3.0f}  false changes "
                f"{s.nab_counts['false_positives']:3.0f}  F1 {s.outlier.f1:.2f} FAR {s.outlier.far_percent:.2f} %"
            )


if __name__ == "__main__":
    main()
