"""Why SKAB changepoints are missed or late: for every changepoint of the tuning split (valve1 + odd ``other``),
the headline prediction's state and its nearest change (issue 13).  Held-out files are not replayed.

    PYTHONPATH=daemon SENTINELLE_DATA_DIR=../shared/data python bench/skab/why_missed.py
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from sentinelle.evaluation.replay import replay_settings
from sentinelle.evaluation.skab import ASSET_ON, evaluate_skab, in_tuning_split, skab_recordings
from sentinelle.settings import DetectSettings

WINDOW_S = 60.0


def main() -> None:
    recs = [r for r in skab_recordings() if in_tuning_split(r.name)]
    res = evaluate_skab(recs, replay_settings("holt", DetectSettings(**ASSET_ON)), "headline")
    why: Counter[str] = Counter()
    for f in res.files:
        pred = f.predicted.astype(int)
        change = np.flatnonzero(np.diff(pred)) + 1
        ts = f.timestamps
        opened = np.flatnonzero(f.trace.opened[f.test])
        for i in np.flatnonzero(f.changepoints):
            rising = bool(f.labels[i]) if i < len(f.labels) else True
            inside = change[(ts[change] >= ts[i]) & (ts[change] <= ts[i] + WINDOW_S)]
            kind = "start" if rising else "end"
            if inside.size:
                why[f"{kind}: detected"] += 1
                continue
            before = change[change < i]
            after = change[change > i]
            state = "alert already open" if pred[i] else "no alert"
            nxt = f"next change +{ts[after[0]] - ts[i]:.0f} s" if after.size else "no later change"
            last = f"last change -{ts[i] - ts[before[-1]]:.0f} s" if before.size else "none before"
            op = opened[(opened >= i)]
            print(
                f"{f.name} {kind} at row {i}: missed, {state}, {last}, {nxt}, next opening "
                f"{'+%.0f s' % (ts[op[0]] - ts[i]) if op.size else 'none'}"
            )
            why[f"{kind}: missed, {state}"] += 1
    print(dict(why))


if __name__ == "__main__":
    main()
