"""Re-arm and the chattering latch: how long a cleared alert waits for its subject to come back.

ISA-18.2 and EEMUA 191 name the problem: a *chattering* alarm goes in and out of
alarm repeatedly in a short time (EEMUA's working definition: three or more
times in a minute), and every return is a new annunciation an operator must
handle; "bad actors" of this kind are why operators silence systems.  The
standards' remedies are an on-delay (k of n, ``lifecycle.py``), an off-delay or
deadband (the clearing run, ``detect.clear_normal_steps``, and the limit deadband)
and, for the alarms that still chatter, *re-alarm* suppression and *latching*.

Here the alert book applies two of them per subject — (kind, tag or asset):

* **Re-arm** (an off-delay on the *event*): when an alert's condition clears, its
  ``cleared`` is held for the re-arm time; if the subject becomes anomalous again
  meanwhile, the same alert continues (same id, an ``updated`` event saying it
  re-activated, the re-activation counted) and no new alert opens.  The time is
  ``max(rearm_steps × period, rearm_min_s)``: process time for slow data (10
  periods: 10 h of hourly data, whose alerts cannot chatter within minutes) and
  operator time for fast data (a minute: EEMUA's chattering unit).
* **Latch**: a subject that opened ``chatter_openings`` alerts within
  ``chatter_window_s`` (default 3 in 10 minutes — the issue's budget, stricter than
  EEMUA's 3 per minute) is chattering; its alert is re-armed for the whole window,
  so the subject opens at most ``chatter_openings`` alerts in any such window: a
  4th opening needs a quiet window after the 3rd alert cleared.  This is the
  automatic counterpart of *shelving*, but the alert stays visible and open.

Defaults were set a priori from those numbers, not tuned on any reported data.

>>> r = Rearm(rearm_steps=10, rearm_min_s=60.0, chatter_openings=3, chatter_window_s=600.0)
>>> r.hold_s(period_s=1.0, latched=False), r.hold_s(period_s=3600.0, latched=False)
(60.0, 36000.0)
>>> [r.opened(("limit_high", "c.t"), ts) for ts in (0.0, 100.0, 200.0, 900.0)]
[False, False, True, False]
>>> r.hold_s(period_s=1.0, latched=True)
600.0
"""

from __future__ import annotations

import collections
from collections.abc import Hashable
from typing import Any


def rearm_s(rearm_steps: int, rearm_min_s: float, period_s: float) -> float:
    """The re-arm time of a tag group with this period: ``rearm_steps`` slots, at least ``rearm_min_s``."""
    return max(rearm_steps * period_s, rearm_min_s)


class Rearm:
    """Per subject, the times its recent alerts opened; the re-arm time of an alert."""

    def __init__(self, rearm_steps: int, rearm_min_s: float, chatter_openings: int, chatter_window_s: float) -> None:
        self.rearm_steps = rearm_steps
        self.rearm_min_s = rearm_min_s
        self.chatter_openings = chatter_openings
        self.chatter_window_s = chatter_window_s
        self._openings: dict[Hashable, collections.deque[float]] = {}

    def hold_s(self, period_s: float, latched: bool) -> float:
        """Seconds a cleared alert of a tag group with this period waits for its subject (0: clear at once)."""
        hold = rearm_s(self.rearm_steps, self.rearm_min_s, period_s)
        return max(hold, self.chatter_window_s) if latched else hold

    def opened(self, subject: Hashable, ts: float) -> bool:
        """Record an opening of ``subject`` at ``ts``; True when it is chattering (its alert is to be latched)."""
        times = self._openings.setdefault(subject, collections.deque())
        times.append(ts)
        while times and times[0] <= ts - self.chatter_window_s:
            times.popleft()
        return self.chatter_openings > 0 and len(times) >= self.chatter_openings

    def state(self) -> list[Any]:
        """The recent openings per subject, as JSON (a scale-out snapshot); subjects are alert keys."""
        return [[list(k) if isinstance(k, tuple) else k, list(v)] for k, v in self._openings.items() if v]

    def restore(self, state: list[Any]) -> None:
        self._openings = {
            (tuple(k) if isinstance(k, list) else k): collections.deque(float(t) for t in v) for k, v in state
        }
