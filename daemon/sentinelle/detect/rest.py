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

The rest covers the tag's combined score (``detect.score_rest_scope = "tag"``) or each of its terms on its own
(``"term"``, :func:`rest_each`): then a term that fires while another rests is published — a residual onset
just after a novelty row is another kind of evidence, not a repeat of the same event (an operator's alarm
re-arms per alarm, not per instrument).  Each term keeps its own one-event-one-detection rule.

With ``escalate`` (``detect.score_rest_escalate``) a score *higher than every score published since the rest
began* is published during the rest and restarts it: the rank of an event is then its strongest evidence, not its
first.  Without it a residual onset of 0.46 hides the novelty's 1.0 eighty ticks later, inside the same NAB window
(``Twitter_volume_PFE``, issue 13), and the detector must be thresholded at 0.46 to keep that window.  Scores at
or below the best published stay 0, so one event still scores once at any threshold above its first score.
``"any"`` escalates on any higher score; ``"excursion"`` only on one that starts a new excursion (the score given
the tick before was below ``level``): the novelty of the tick right after a spike reads the spike's own value (its
left context), so publishing it too reports one spike twice (on NAB's tuning files every ``"any"`` escalation
outside a window was that, issue 13).  ``"margin"`` is ``"excursion"`` and asks more: the new excursion's score must
beat the best published by at least ``level`` itself — the part beyond what was published would fire on its own.
An event whose strongest evidence merely rounds its first score up (a residual onset of 0.998, a novelty of 1.0
later in the same rest: on NAB's tuning files the one ``"excursion"`` publication outside a window, for both
forecasters) still scores once; a weak onset (0.46) followed by decisive evidence (1.0) ranks by the latter
(issue 13, ``docs/results/nab/rest-margin/``).

>>> seq = (0.6, 0.9, 0.7, 0.95, 0.3, 0.2)
>>> r, e, x = Rest(1, 2, 0.5), Rest(1, 2, 0.5, escalate="any"), Rest(1, 2, 0.5, escalate="excursion")
>>> [[float(d.apply(np.array([s]))[0]) for s in seq] for d in (r, e, x)]
[[0.6, 0.0, 0.0, 0.95, 0.0, 0.0], [0.6, 0.9, 0.0, 0.95, 0.0, 0.0], [0.6, 0.0, 0.0, 0.95, 0.0, 0.0]]
>>> x = Rest(1, 3, 0.5, escalate="excursion")
>>> [float(x.apply(np.array([s]))[0]) for s in (0.6, 0.1, 0.9, 0.95)]  # 0.9 starts a new excursion
[0.6, 0.0, 0.9, 0.0]
>>> m = Rest(1, 3, 0.4, escalate="margin")
>>> [float(m.apply(np.array([s]))[0]) for s in (0.5, 0.1, 0.8, 0.1, 0.95)]  # 0.8 beats 0.5 by < 0.4; 0.95 by more
[0.5, 0.0, 0.0, 0.0, 0.95]

>>> r = Rest(2, steps=2, level=0.5)   # one tag, two terms (term-major: residual, then novelty)
>>> [float(rest_each(r, [np.array([a]), np.array([b])])[0]) for a, b in ((0.0, 1.0), (0.7, 0.0), (0.9, 1.0))]
[1.0, 0.7, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..records import FloatArray


class Rest:
    """Per row: ``steps`` ticks of score 0 after each score of at least ``level`` (0 steps: off); with
    ``escalate`` (``"any"``, ``"excursion"`` or ``"margin"``), a score above the best published since the rest began
    is published and restarts it (``"excursion"``: only if the score given the tick before was below ``level``;
    ``"margin"``: that, and above the best by at least ``level``)."""

    def __init__(self, n_rows: int, steps: int, level: float, escalate: str = "off") -> None:
        if steps < 0:
            raise ValueError("a rest period is 0 or more ticks")
        if escalate not in ("off", "any", "excursion", "margin"):
            raise ValueError(f"escalate is off, any, excursion or margin, not {escalate!r}")
        self.steps = steps
        self.level = level
        self.escalate = escalate
        self.left = np.zeros(n_rows, dtype=np.int64)
        """Ticks each row still rests (0: awake)."""
        self.best = np.zeros(n_rows)
        """Each resting row's highest score published since its rest began (``escalate``; 0 when awake)."""
        self.prev = np.zeros(n_rows)
        """Each row's score given at the tick before (``escalate`` ``"excursion"``, ``"margin"``; NaN counts as below
        the level)."""

    def apply(self, score: FloatArray) -> FloatArray:
        """The published score of this tick (NaN stays NaN); every call is one tick."""
        if self.steps == 0:
            return score
        resting = self.left > 0
        if self.escalate != "off":
            with np.errstate(invalid="ignore"):
                higher = score > self.best
                if self.escalate in ("excursion", "margin"):
                    higher &= ~(self.prev >= self.level)
                if self.escalate == "margin":
                    higher &= score >= self.best + self.level
            resting = resting & ~higher
            self.prev = np.asarray(score, dtype=np.float64).copy()
        out = np.where(resting & np.isfinite(score), 0.0, score)
        fired = ~resting & (score >= self.level)
        self.left = np.where(resting, self.left - 1, np.where(fired, self.steps, 0))
        if self.escalate != "off":
            self.best = np.where(fired, score, np.where(self.left > 0, self.best, 0.0))
        return out


def rest_each(rest: Rest, terms: Sequence[FloatArray]) -> FloatArray:
    """Rest each term on its own and return their maximum per row (NaN only where every term is NaN).

    ``rest`` has ``len(terms)`` × rows entries, term-major (``detect.score_rest_scope = "term"``); every call is
    one tick.
    """
    n = terms[0].shape[0]
    rested = rest.apply(np.concatenate([np.asarray(t, dtype=np.float64) for t in terms])).reshape(len(terms), n)
    with np.errstate(invalid="ignore"):
        return np.asarray(np.fmax.reduce(rested, axis=0), dtype=np.float64)
