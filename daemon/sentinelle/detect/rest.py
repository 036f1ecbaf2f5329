"""A rest period on a per-tag score: after a firing, the score the tag records is 0 for a while.

A detector whose score stays high for many ticks after a change reports the one event
many times; NAB charges every row above its threshold outside a window as a false
positive, an operator's trend shows a plateau instead of an onset.  CAD OSE
and ARTime rest after a firing too (CAD OSE: 3 % of a file's length).  Here, in ticks
(every detection constant is period-relative): once a row's score reaches ``level``
the score that row *publishes* is 0 for the next ``steps`` ticks; then it is the
score again.  The flags, and so the alert life cycle, do not read it: a lasting
anomaly keeps its alert open (the life cycle's own re-arm is its rest).

>>> r = Rest(1, steps=2, level=0.5)
>>> [float(r.apply(np.array([s]))[0]) for s in (0.1, 0.6, 0.9, 0.7, 0.8, 0.2)]
[0.1, 0.6, 0.0, 0.0, 0.8, 0.0]
"""

from __future__ import annotations

import numpy as np

from ..records import FloatArray


class Rest:
    """Per row: ``steps`` ticks of score 0 after each score of at least ``level`` (0 steps: off)."""

    def __init__(self, n_rows: int, steps: int, level: float) -> None:
        if steps < 0:
            raise ValueError("a rest period is 0 or more ticks")
        self.steps = steps
        self.level = level
        self.left = np.zeros(n_rows, dtype=np.int64)
        """Ticks each row still rests (0: awake)."""

    def apply(self, score: FloatArray) -> FloatArray:
        """The published score of this tick (NaN stays NaN); every call is one tick."""
        if self.steps == 0:
            return score
        resting = self.left > 0
        out = np.where(resting & np.isfinite(score), 0.0, score)
        fired = ~resting & (score >= self.level)
        self.left = np.where(resting, self.left - 1, np.where(fired, self.steps, 0))
        return out
