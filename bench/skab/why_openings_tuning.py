"""Per tuning file: when each fault starts and ends, when the outlier prediction changes, which alert opened.

    PYTHONPATH=daemon SENTINELLE_DATA_DIR=../shared/data python bench/skab/why_openings_tuning.py [detect overrides]

Seconds from the first test row.  What ``tune_onset.py``'s diagnosis read: the ``valve1`` alerts open 59–61 s
after the labelled start (a slow ramp; the opening lands on one side or the other of the ``start``/``start+60``
windows' shared bound), the ``other`` files' step faults open at once on the per-tag residuals, and the
prediction's changes after a fault's end (re-openings on the ``other`` files).  The held-out files are not loaded.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from why_rows_lost import tuning_replay


def main() -> None:
    overrides = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    res = tuning_replay(overrides)[2]
    for f in res.files:
        ts, t0 = f.timestamps, float(f.timestamps[0])
        lab, pred = f.labels.astype(bool), f.predicted.astype(bool)
        starts = [int(ts[i] - t0) for i in np.flatnonzero(lab[1:] & ~lab[:-1]) + 1]
        ends = [int(ts[i] - t0) for i in np.flatnonzero(~lab[1:] & lab[:-1]) + 1]
        changes = [(int(ts[i] - t0), int(pred[i])) for i in np.flatnonzero(pred[1:] != pred[:-1]) + 1]
        events = [(int(e.event_ts - t0), e.event, e.kind) for e in f.trace.events if e.event in ("opened", "cleared")]
        print(f"{f.name:10s} fault starts {starts} ends {ends}; prediction changes (s, to) {changes}")
        print(f"{'':10s} alert events {events}")


if __name__ == "__main__":
    main()
