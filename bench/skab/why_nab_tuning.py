"""What the NAB score of SKAB is made of, on the tuning split only (issue 13): per window kind, per false change.

    PYTHONPATH=daemon SENTINELLE_DATA_DIR=../shared/data python bench/skab/why_nab_tuning.py [detect overrides as JSON]

SKAB labels each transition of a fault with two changepoints 60 s apart (the fault's start and the end of its
ramp; the start of the way back and the fault's end), so a file has up to four right-sided 60 s windows:
``start``, ``start+60``, ``end-60``, ``end``.  Under SKAB's protocol the changepoint prediction is
``|diff|`` of the outlier prediction, so a state detector that opens once and clears once can hit at most
``start`` and ``end`` (and ``end-60`` on its last second, the window's shared bound).  This script prints,
for the headline (or the given overrides) on the 23 tuning files, each window kind's hits, misses and mean
position score, the changes outside every window split by whether the label is on there (a dip inside the
fault) or off (a false alarm or a late clearing), and the ceiling: the labels themselves as the prediction,
and the labels delayed by a few seconds.  The held-out files are not loaded.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict

import numpy as np
from why_rows_lost import tuning_replay

from sentinelle.evaluation.nab import (
    STANDARD,
    changepoints_of,
    match_windows,
    right_windows,
    skab_position_score,
    times_of,
)
from sentinelle.evaluation.skab import (
    FileResult,
    score_files,
)

KINDS = ("start", "start+60", "end-60", "end")


def window_kinds(f: FileResult) -> list[str]:
    """Each changepoint's kind: ``start`` (the label turns on), ``end`` (it turns off), and between them
    ``start+60`` (within 90 s of a start) or ``end-60``."""
    idx = np.flatnonzero(f.changepoints)
    ts = f.timestamps
    out: list[str] = []
    last_start = -np.inf
    for i in idx:
        on = bool(f.labels[i])
        was_on = bool(f.labels[i - 1]) if i > 0 else False
        if on and not was_on:
            out.append("start")
            last_start = float(ts[i])
        elif not on:
            out.append("end")
        else:
            out.append("start+60" if float(ts[i]) - last_start <= 90.0 else "end-60")
    return out


def main() -> None:
    overrides = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    res = tuning_replay(overrides)[2]
    hits: Counter[str] = Counter()
    misses: defaultdict[str, Counter[str]] = defaultdict(Counter)
    pos_score: defaultdict[str, list[float]] = defaultdict(list)
    delays: defaultdict[str, list[float]] = defaultdict(list)
    false_changes: Counter[str] = Counter()
    for f in res.files:
        ts = f.timestamps
        cp_t = times_of(f.changepoints, ts)
        kinds = window_kinds(f)
        wins = right_windows(cp_t, 60.0)
        change = changepoints_of(f.predicted)
        det_t = np.array(times_of(change, ts))
        for k, (a, b) in zip(kinds, wins, strict=True):
            inside = det_t[(det_t >= a) & (det_t <= b)]
            if inside.size:
                hits[k] += 1
                pos = (inside[0] - a) / (b - a) if b > a else 0.0
                pos_score[k].append(skab_position_score(pos, STANDARD))
                delays[k].append(float(inside[0] - a))
            else:
                i = int(np.searchsorted(ts, a))
                state = "alert open" if f.predicted[min(i, len(ts) - 1)] else "no alert"
                before = det_t[det_t < a]
                after = det_t[det_t > b]
                why = state
                if before.size and a - before[-1] <= 10:
                    why += ", a change <=10 s before"
                if after.size and after[0] - b <= 60:
                    why += ", a change <=60 s after"
                misses[k][why] += 1
        m = match_windows(wins, det_t.tolist())
        outside = [t for t in det_t if not any(a <= t <= b for a, b in wins)]
        lab_t = dict(zip(ts.tolist(), f.labels.tolist(), strict=True))
        for t in outside:
            false_changes["label on (inside the fault)" if lab_t[t] else "label off"] += 1
        assert m.false_positives == len(outside)
    pooled = score_files(res.files)
    print("overrides", overrides)
    print(f"F1 {res.outlier.f1:.3f} FAR {res.outlier.far_percent:.2f} NAB {pooled.nab}")
    for k in KINDS:
        n = hits[k] + sum(misses[k].values())
        ps = pos_score[k]
        print(
            f"{k:9s} windows {n:3d} hit {hits[k]:3d} mean score {np.mean(ps) if ps else float('nan'):.2f} "
            f"median delay {np.median(delays[k]) if delays[k] else float('nan'):.0f} s  missed {dict(misses[k])}"
        )
    print("changes outside every window:", dict(false_changes))
    w = pooled.nab_counts["windows"]
    print(f"NAB points: a window hit at its start +{100 / w:.2f} vs missed; a false change -{11 / (2 * w):.3f}")


if __name__ == "__main__":
    main()
