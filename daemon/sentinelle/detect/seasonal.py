"""A seasonal repeat bound: a surprise this tag made at the same time of day the last periods is expected.

Why: on NAB's tuning split the false-positive rows that separate the model from Holt are single-tick spikes that
two AWS CPU tags (``ec2_cpu_utilization_c6585a``, ``24ae8d``) make once a day, at about 03:00-04:30, and that NAB
labels normal (issue 13, ``docs/results/nab/rest-margin/report.md``, Addendum).  Neither forecaster forecasts them
(a one-tick spike on a 0.07 baseline), the model's honest band scores them z 41-49, Holt's too-wide band 17-20;
the decaying refractory peak of yesterday's spike (``detect.score_refractory_steps``) removes only part of today's.
What tells such a spike from a new one is that the tag made one at this phase of the day before, and the day
before that.  This does not read the forecast, so it bounds both forecasters alike.

What it keeps, per row: the largest surprise (decades of tail probability, what the refractory peak reads) in each
bin of ``tolerance_s`` seconds of wall-clock time over the last ``periods`` periods (a ring of bins, so the memory
does not grow with the sample rate: a day of 1-hour bins is 24 numbers a tag).  At a tick of time ``t`` the
*repeat level* is, for each ``k = 1 .. periods``, the largest surprise in the three bins around ``t − k·period_s``
(so a phase jitter of at least ``tolerance_s`` either way, at most twice that, is tolerated: the daily spikes above
jitter by up to 80 minutes), and then the smallest of those ``periods`` numbers: a repeat needs *every* one of the
last periods to have made a surprise that large there.  It counts only if it reaches ``min_decades`` (the flag's:
a phase that merely had noise discounts nothing).  The *bound* is :data:`REPEAT_FACTOR` (2) times that level: the
scorer publishes only the surprise beyond the larger of its refractory peak and the bound (``scoring.py``).  A
factor, not the level itself: at tens of σ a spike 5 % larger than yesterday's is ~10 % more decades (tens of
decades, a score near 1 if subtracted plainly), and the daily spikes above vary by that much (1.33-1.53 on a 0.07
baseline); twice the decades is √2 in calibrated σ, the step between ``tail.py``'s excursion levels.  So a recurring
spike of about the usual size scores 0; a spike at a new phase, the first and second of a train, or one more
than √2 times the smallest of the last periods' at its phase (in σ) scores the part beyond the bound.
Bins with no scored tick (gaps, start-up) are no evidence: the level there is 0.

The flags do not read it (as the refractory peak): an alert's life cycle is unchanged, only the published per-tag
score (NAB's ``anomaly_score``) is discounted.

>>> rep = SeasonalRepeat(1, period_s=100.0, tolerance_s=10.0, periods=2, min_decades=3.5)
>>> def tick(t, d):
...     level = rep.level(float(t))
...     rep.learn(float(t), np.array([d]), np.ones(1, bool))
...     return float(level[0])
>>> [tick(t, 50.0 if t % 100 == 5 else 0.5) for t in range(0, 300)][5::100]  # a spike at t = 5, 105, 205
[0.0, 0.0, 50.0]
>>> tick(350, 50.0)  # a spike at a new phase: nothing there the last two periods
0.0
"""

from __future__ import annotations

import math

import numpy as np

from ..records import BoolArray, FloatArray

REPEAT_FACTOR = 2.0
"""The bound is this many times the repeat level (decades): a repeat up to √2 times as many σ is expected."""


class SeasonalRepeat:
    """Per row: the largest surprise per wall-clock bin over the last ``periods`` periods, and the repeat level."""

    def __init__(self, n_rows: int, period_s: float, tolerance_s: float, periods: int, min_decades: float) -> None:
        if not (period_s > 0 and tolerance_s > 0 and periods >= 1):
            raise ValueError("a seasonal repeat needs a period, a tolerance and at least one period back")
        if 4 * tolerance_s > period_s:
            raise ValueError("the phase tolerance must be at most a quarter of the period")
        self.period_s = period_s
        self.bin_s = tolerance_s
        self.periods = periods
        self.min_decades = min_decades
        n_bins = math.ceil(periods * period_s / tolerance_s) + 3
        self.peak: FloatArray = np.zeros((n_rows, n_bins))
        """Per row and ring slot: the largest surprise (decades) of the ticks learned in that slot's bin."""
        self.bin_id = np.full(n_bins, -1, dtype=np.int64)
        """The absolute bin (``floor(ts / tolerance_s)``) each ring slot holds (-1: none yet)."""

    def _bin(self, ts: float) -> int:
        return math.floor(ts / self.bin_s)

    def _around(self, ts: float) -> FloatArray:
        """Per row, the largest surprise learned in the bin of ``ts`` and its two neighbours (0 where none)."""
        j = self._bin(ts)
        ids = np.arange(j - 1, j + 2)
        slots = ids % self.bin_id.size
        held = self.bin_id[slots] == ids
        if not held.any():
            return np.zeros(self.peak.shape[0])
        return np.asarray(self.peak[:, slots[held]].max(axis=1), dtype=np.float64)

    def level(self, ts: float) -> FloatArray:
        """Per row, the repeat level at ``ts`` (decades; 0 where the last periods did not all surprise this much)."""
        level = np.full(self.peak.shape[0], np.inf)
        for k in range(1, self.periods + 1):
            level = np.minimum(level, self._around(ts - k * self.period_s))
        return np.asarray(np.where(level >= self.min_decades, level, 0.0), dtype=np.float64)

    def bound(self, ts: float) -> FloatArray:
        """Per row, the surprise (decades) a tick at ``ts`` may have and still be this phase's usual repeat."""
        return np.asarray(REPEAT_FACTOR * self.level(ts), dtype=np.float64)

    def learn(self, ts: float, decades: FloatArray, mask: BoolArray) -> None:
        """Remember the surprise of the rows of ``mask`` (finite ones) in the bin of ``ts``."""
        j = self._bin(ts)
        slot = j % self.bin_id.size
        if self.bin_id[slot] != j:
            self.bin_id[slot] = j
            self.peak[:, slot] = 0.0
        rows = mask & np.isfinite(decades)
        self.peak[rows, slot] = np.maximum(self.peak[rows, slot], decades[rows])
