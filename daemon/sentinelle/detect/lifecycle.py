"""When an alert opens and clears: k of n to open, a run of normal ticks to clear.

One anomalous tick is noise; ``k`` anomalous ticks among the last ``n`` is a
condition.  Clearing needs ``clear_normal_steps`` consecutive normal ticks —
hysteresis, so an alert at the edge does not flap open/closed every tick.  Gaps
(no value) and gated ticks (``flagged`` and ``normal`` both false) neither
count towards opening nor clearing: the state waits.  Vectorised over the
rows of a tag group: the per-tick cost is a few numpy operations.

A *severe* tick opens at once.  k of n is an on-delay (ISA-18.2's remedy for
fleeting alarms): it waits for a condition to last, which is right for a tick a
little beyond normal and wrong for one far beyond it — a single huge spike would
never open an alert.  The caller says which flagged rows are severe (for residuals
|z| at or past ``detect.critical_z``, the threshold at which the alert would be
critical anyway): severity decides, k of n holds for the rest.  Not for limits: a
limit alert is always critical, so "severity decides" would remove their on-delay.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..records import BoolArray


class KofN:
    """Open/clear state of one alert kind for every row.

    >>> t = KofN(rows=1, k=2, n=3, clear_steps=2)
    >>> [t.step(np.array([f]), np.array([not f]))[0].tolist() for f in (True, False, True)]
    [[], [], [0]]
    >>> [t.step(np.array([False]), np.array([True]))[1].tolist() for _ in range(2)]
    [[], [0]]

    A severe tick opens its row at once (its neighbour, flagged too, waits for k of n):

    >>> t = KofN(rows=2, k=3, n=5, clear_steps=2)
    >>> t.step(np.array([True, True]), np.array([False, False]), severe=np.array([True, False]))[0].tolist()
    [0]
    """

    def __init__(self, rows: int, k: int, n: int, clear_steps: int) -> None:
        self.k = k
        self.n = n
        self.clear_steps = clear_steps
        self.ring: BoolArray = np.zeros((rows, n), dtype=bool)
        self.pos = 0
        self.open: BoolArray = np.zeros(rows, dtype=bool)
        self.normal_run: npt.NDArray[np.int64] = np.zeros(rows, dtype=np.int64)

    def step(
        self, flagged: BoolArray, normal: BoolArray, severe: BoolArray | None = None
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Record one tick; return (rows that open now, rows that clear now).

        ``severe`` (optional): rows whose flagged tick is severe enough to open without k of n.
        """
        self.ring[:, self.pos] = flagged
        self.pos = (self.pos + 1) % self.n
        counts = self.ring.sum(axis=1)
        self.normal_run = np.where(normal, self.normal_run + 1, np.where(flagged, 0, self.normal_run))
        opened = ~self.open & (counts >= self.k)
        if severe is not None:
            opened |= ~self.open & severe & flagged
        cleared = self.open & (self.normal_run >= self.clear_steps)
        self.open = (self.open | opened) & ~cleared
        self.normal_run[opened] = 0
        # A cleared alert starts from a clean history, or it would reopen at once.
        self.ring[cleared] = False
        return np.flatnonzero(opened), np.flatnonzero(cleared)

    def force_clear(self, rows: BoolArray) -> npt.NDArray[np.intp]:
        """Close the open alerts of ``rows`` now and forget their history; return the rows that were open.

        For conditions that end for a reason of their own, not through normal ticks:
        an asset entering a mode where detection is paused.

        >>> t = KofN(rows=2, k=1, n=1, clear_steps=5)
        >>> t.step(np.array([True, True]), np.array([False, False]))[0].tolist()
        [0, 1]
        >>> t.force_clear(np.array([False, True])).tolist(), t.open.tolist()
        ([1], [True, False])
        """
        closed = np.flatnonzero(self.open & rows)
        self.open[rows] = False
        self.ring[rows] = False
        self.normal_run[rows] = 0
        return closed

    def reset(self) -> None:
        """Forget every open alert and the recent ticks (after a replay of history)."""
        self.ring[:] = False
        self.open[:] = False
        self.normal_run[:] = 0
