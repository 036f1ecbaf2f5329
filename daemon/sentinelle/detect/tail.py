"""The tag's own tail: how often excursions of a given size *start* on this tag, learned from the stream.

The calibrated surprise (``surprise.py``) reads a residual against a normal law
with the tag's usual scale.  Many plant signals are not normal there:

* a control signal (a damper, a coil valve) holds still for hours, then steps
  by many quanta when its schedule or its loop says so — the forecast of a held
  value is sure to the last quantum, so every commanded step is 10–30 σ;
* a temperature ramps at a schedule transition faster than a one-step forecast
  follows, and its residual sits at 4–6 σ for the ramp's ten minutes.

Both happen every day; on LBNL's fault-free air-handler days they opened most
alerts (issue 13).  The usual scale cannot learn them: it is winsorised (a
spike must not inflate it) and diluted by the hours of exact zeros.

So each tag also counts its *excursions*: for levels ``L`` (calibrated σ, a
factor √2 apart) an EW rate of excursions beyond ``L`` per tick.  An excursion
is counted when it *ends* (the tag comes back below ``L``): while one lasts it
is judged against the tag's earlier excursions only, so a lasting fault keeps
its surprise, and a sustained shift is one excursion, not one per tick.  The
surprise of ``|r|`` is then at most ``−log10`` of the rate at the highest level
``|r|`` reached: an excursion this tag makes about once a day (rate 1/1,440 on
minute data) scores about 3.2 decades, below the default threshold (3.5); one
larger than any the tag has made recently (by one level, √2) keeps its normal
surprise.  The rate starts at zero (with a prior weight of
:data:`TAIL_PRIOR_STEPS` ticks, so a start-up excursion cannot teach it much)
and forgets like the scale (``memory_steps``).

>>> import numpy as np
>>> tail = ExcursionTail(n_rows=1, memory_steps=5000)
>>> r = np.zeros(1440)
>>> r[600:603] = 20.0     # a commanded step: one excursion beyond 20 σ, three ticks long
>>> for x in r:
...     tail.learn(np.array([x]), np.ones(1, bool))
>>> tail.decades(np.array([20.0])).round(2).tolist()   # once in the last ~1,500 ticks
[3.19]
>>> tail.decades(np.array([40.0])).tolist()            # never that large: no bound from the tail
[inf]
"""

from __future__ import annotations

import numpy as np

from ..records import BoolArray, FloatArray

TAIL_LEVELS: FloatArray = np.asarray(2.0 ** (np.arange(2, 15) / 2.0), dtype=np.float64)
"""Excursion levels in calibrated σ: 2, 2.8, 4, 5.7, 8, … 128 (a factor √2 apart)."""
TAIL_PRIOR_STEPS = 100
"""Weight of the starting rate (no excursions), in ticks: a start-up excursion is at most 1 in 100."""


class ExcursionTail:
    """Per row and level: the EW rate of excursions of ``|r|`` beyond the level (see the module docstring)."""

    def __init__(self, n_rows: int, memory_steps: int) -> None:
        self.alpha_min = 1.0 / memory_steps
        self.rate = np.zeros((n_rows, TAIL_LEVELS.size))
        self.inside = np.zeros((n_rows, TAIL_LEVELS.size), dtype=bool)
        self.learned = np.zeros(n_rows, dtype=np.int64)

    def decades(self, r: FloatArray) -> FloatArray:
        """``−log10`` of the rate of excursions at the highest level ``|r|`` reached (inf: none there, or NaN r).

        An upper bound on the surprise of ``r``: it is never more surprising than this tag's own record says.
        """
        a = np.abs(np.nan_to_num(r, nan=0.0))
        k = np.searchsorted(TAIL_LEVELS, a, side="right") - 1
        rate = np.where(k >= 0, self.rate[np.arange(a.size), np.maximum(k, 0)], 0.0)
        with np.errstate(divide="ignore"):
            return np.asarray(np.where(rate > 0, -np.log10(np.where(rate > 0, rate, 1.0)), np.inf), dtype=np.float64)

    def learn(self, r: FloatArray, mask: BoolArray) -> None:
        """Learn the rows of ``mask`` with a finite ``r``: an excursion that ended at this tick counts once."""
        rows = np.flatnonzero(mask & np.isfinite(r))
        if rows.size == 0:
            return
        alpha = np.maximum(1.0 / (TAIL_PRIOR_STEPS + self.learned[rows] + 1), self.alpha_min)[:, None]
        above = np.abs(r[rows])[:, None] >= TAIL_LEVELS[None, :]
        ended = self.inside[rows] & ~above
        self.rate[rows] += alpha * (ended - self.rate[rows])
        self.inside[rows] = above
        self.learned[rows] += 1
