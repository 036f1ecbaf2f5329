"""A forecast band's usual width, learned late, in place of this tick's width (issue 14: a slow fault's estimate).

Why: the asset model's blind estimate (``forecast.asset_mask_recent_steps``) of a tag from the others widens
its own band when the tags stop agreeing — which is what a fault does.  On the development chiller runs (seed
2188, a supply-temperature sensor drifting 1 °C over 900 s) the estimate residual grew from about 0.1 °C to
0.6 °C while the 10-90 % band grew from 0.27 °C to 0.65 °C: read in the band of the same tick, the residual's
``z`` stayed at the size of healthy ones and no tick was surprising.  A residual read in the band the tag
*usually* has keeps what the estimate says (the value is 0.6 °C from where the rest of the asset puts it) and
drops what the fault did to the estimate's confidence.

:class:`HeldSpread` keeps, per row, the forgetting mean of the log of the band's outer width (``levels[-1]``
minus ``levels[0]``), its rate :class:`~.surprise.RobustScale`'s (``1/(prior + n)`` until it reaches
``1/memory_steps``), learned ``delay_steps`` ticks late from a delay line, and only from ticks the caller lets
it learn then and now (no alert open): for ``delay_steps`` ticks after a fault starts, the width is the one
from before it.  :meth:`apply` moves each row's levels about the median by the factor ``usual / width``, so
the band keeps its shape (and its skew) at the usual width; a row that has learned nothing, or whose band is
degenerate, is left as it is.  No training and no labels: what the estimate's band looked like on this tag.

**Only while the residual keeps its sign** (:class:`PersistentSign`, ``detect.asset_estimate_held_spread_sign_steps``
> 0): the held width alone flags healthy tags in stretches where the band is legitimately wide (development runs:
2 to 7 false alarms on 60 runs, docs/results/chiller-detection/held-spread/).  A drift puts the value on one side
of its estimate for minutes; a healthy residual in a wide band wanders about its usual location.  Per row, a
forgetting mean of the residual's sign (about its usual location) over ``memory_steps`` ticks; the usual width is
held on the rows where its magnitude reaches ``share``, and the tick's own band is read elsewhere (as without the
held spread).  On the development traces (seeds 2180..2203, 3200..3223, 2310..2321) a memory of 120 ticks at
0.9 was open on every drift's faulted tag before its residual stood out, and on about 17 % of healthy ticks.

>>> import numpy as np
>>> held = HeldSpread(n_rows=1, levels=(0.1, 0.5, 0.9), memory_steps=5000, delay_steps=2)
>>> calm = np.array([[9.0, 10.0, 11.0]])
>>> for _ in range(10):
...     held.learn(calm, np.ones(1, bool))
>>> held.apply(np.array([[6.0, 10.0, 14.0]])).round(2).tolist()  # a band 4x as wide is read at the usual 2
[[9.0, 10.0, 11.0]]
"""

from __future__ import annotations

import numpy as np

from ..records import BoolArray, FloatArray
from .delay_line import DelayLine
from .surprise import PRIOR_STEPS


class HeldSpread:
    """Per row: the usual (geometric mean) outer width of a quantile band, learned late; bands rescaled to it."""

    def __init__(self, n_rows: int, levels: tuple[float, ...], memory_steps: int, delay_steps: int) -> None:
        self.mid = levels.index(0.5)
        self.alpha_min = 1.0 / memory_steps
        self.delay = delay_steps
        self.mean_log: FloatArray = np.zeros(n_rows)
        """Each row's forgetting mean of ``log`` width (meaningful once ``learned`` > 0)."""
        self.learned: FloatArray = np.zeros(n_rows)
        """Widths each row has learned."""
        self.late = DelayLine(n_rows, delay_steps)
        """Each row's ``log`` width of the last ``delay_steps`` ticks and whether it could be learned then."""

    @staticmethod
    def _log_width(expected: FloatArray) -> FloatArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            width = expected[:, -1] - expected[:, 0]
            out = np.where(np.isfinite(width) & (width > 0), np.log(np.where(width > 0, width, 1.0)), np.nan)
        return np.asarray(out, dtype=np.float64)

    def apply(self, expected: FloatArray, rows: BoolArray | None = None) -> FloatArray:
        """``expected`` (rows × levels) with each learned row (of ``rows``, default all) moved about its median to
        the usual width."""
        log_w = self._log_width(expected)
        ok = (self.learned > 0) & np.isfinite(log_w)
        if rows is not None:
            ok &= rows
        factor = np.where(ok, np.exp(np.where(ok, self.mean_log - np.nan_to_num(log_w), 0.0)), 1.0)
        median = expected[:, self.mid : self.mid + 1]
        return np.asarray(median + factor[:, None] * (expected - median), dtype=np.float64)

    def learn(self, expected: FloatArray, mask: BoolArray, now: BoolArray | None = None) -> None:
        """Push this tick's widths (rows of ``mask``) into the delay line; learn the ones ``delay_steps`` ticks old
        whose rows may also learn now (``now``, default ``mask``: the caller's "no alert open now")."""
        log_w = self._log_width(expected)
        ok = mask & np.isfinite(log_w)
        now = mask if now is None else now
        if self.delay:
            old, old_ok = self.late.swap(log_w, ok)
            log_w, ok = old, old_ok & now & np.isfinite(old)
        rows = np.flatnonzero(ok)
        if rows.size == 0:
            return
        rate = np.maximum(1.0 / (PRIOR_STEPS + self.learned[rows] + 1.0), self.alpha_min)
        first = self.learned[rows] == 0
        self.mean_log[rows] = np.where(
            first, log_w[rows], self.mean_log[rows] + rate * (log_w[rows] - self.mean_log[rows])
        )
        self.learned[rows] += 1.0

    def arrays(self) -> dict[str, FloatArray]:
        """The state, by attribute name (:meth:`restore` takes them back)."""
        return {"mean_log": self.mean_log, "learned": self.learned} | self.late.arrays("late_log")

    def restore(self, arrays: dict[str, FloatArray]) -> None:
        """Take back :meth:`arrays`' state; a delay line of another length (or none) starts afresh."""
        if arrays.get("mean_log") is not None and arrays["mean_log"].shape == self.mean_log.shape:
            self.mean_log = arrays["mean_log"].copy()
            self.learned = arrays["learned"].copy()
        self.late.restore(arrays, "late_log")


class PersistentSign:
    """Per row: the forgetting mean of a residual's sign; "persistent" where its magnitude reaches ``share``.

    >>> sign = PersistentSign(n_rows=2, memory_steps=10, share=0.9)
    >>> for k in range(40):  # row 0 stays above its location, row 1 alternates
    ...     held = sign.step(np.array([0.3, (-1.0) ** k]))
    >>> held.tolist(), sign.mean.round(2).tolist()
    ([True, False], [0.99, -0.05])
    """

    def __init__(self, n_rows: int, memory_steps: int, share: float) -> None:
        self.alpha = 1.0 / memory_steps
        self.share = share
        self.mean: FloatArray = np.zeros(n_rows)
        """Each row's forgetting mean of ``sign(deviation)``, −1 … 1 (0 before any)."""

    def step(self, deviation: FloatArray) -> BoolArray:
        """Step each row with a finite ``deviation`` (a residual less its usual location); the persistent rows."""
        ok = np.isfinite(deviation)
        sign = np.sign(np.where(ok, deviation, 0.0))
        self.mean = np.where(ok, self.mean + self.alpha * (sign - self.mean), self.mean)
        out: BoolArray = np.abs(self.mean) >= self.share
        return out
