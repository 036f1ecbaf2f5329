"""Alarm floods: when one asset opens too many alerts, the rest become one ``flood`` alert.

EEMUA 191 and ISA-18.2 call more than 10 alarms in 10 minutes per operator a
*flood*: past it an operator no longer reads alarms, and the ones that matter
drown.  ISA-18.2 lets a flood begin above 10 per 10 minutes and end once the rate
falls below 5 per 10 minutes.  Per asset (the unit an operator handles and the
Kafka key) the alert book asks this watch before it opens a *process* alert:

* fewer than ``flood_openings`` openings of the asset in the last ``flood_window_s``:
  the alert opens as usual;
* otherwise the asset is flooding: the opening becomes a member of the asset's one
  ``flood`` alert (opened by the first such member, ``updated`` by each further one,
  listing them all), and the member's own condition is tracked here only;
* the flood ends when fewer than ``flood_clear_openings`` openings (members
  included) fall in the window *and* none of its members is still active — the
  hysteresis ISA-18.2 describes, and no member's condition is dropped unseen.

Alerts already open when the flood began behave as before.  Data-quality alerts
(for instrument technicians, not the operator) neither count nor join a flood.
Defaults come from the standards' numbers, not from tuning.

>>> w = FloodWatch(openings=3, window_s=600.0, clear_openings=2)
>>> [w.flooding("c1", ts) for ts in (0.0, 10.0, 20.0, 30.0)]
[False, False, False, True]
>>> w.ended("c1", 500.0), w.ended("c1", 625.0)
(False, True)
"""

from __future__ import annotations

import collections
from typing import Any


class FloodWatch:
    """Per asset: the recent openings (members included) and whether a flood is on."""

    def __init__(self, openings: int, window_s: float, clear_openings: int) -> None:
        self.openings = openings
        self.window_s = window_s
        self.clear_openings = clear_openings
        self._times: dict[str, collections.deque[float]] = {}
        self.active: set[str] = set()
        """Assets whose flood alert is open."""

    @property
    def enabled(self) -> bool:
        return self.openings > 0

    def recent(self, asset: str, ts: float) -> int:
        """Openings of ``asset`` (members included) in ``(ts - window_s, ts]``."""
        times = self._times.get(asset)
        if times is None:
            return 0
        while times and times[0] <= ts - self.window_s:
            times.popleft()
        return len(times)

    def flooding(self, asset: str, ts: float) -> bool:
        """Record an opening of ``asset`` at ``ts``; True when it is to join the asset's flood."""
        if not self.enabled:
            return False
        flood = asset in self.active or self.recent(asset, ts) >= self.openings
        self._times.setdefault(asset, collections.deque()).append(ts)
        if flood:
            self.active.add(asset)
        return flood

    def ended(self, asset: str, ts: float) -> bool:
        """Whether the rate of ``asset`` has fallen back below ``clear_openings`` per window at ``ts``."""
        return self.recent(asset, ts) < self.clear_openings

    def rates(self, ts: float) -> list[tuple[str, int]]:
        """(asset, openings in the window) of every asset with recent openings; each once more at 0, then forgotten."""
        out = []
        for asset in list(self._times):
            n = self.recent(asset, ts)
            out.append((asset, n))
            if n == 0:
                del self._times[asset]
        return out

    def state(self) -> dict[str, Any]:
        """Recent openings and active floods, as JSON (a scale-out snapshot)."""
        return {"times": {a: list(t) for a, t in self._times.items()}, "active": sorted(self.active)}

    def restore(self, state: dict[str, Any]) -> None:
        self._times = {str(a): collections.deque(float(x) for x in t) for a, t in state["times"].items()}
        self.active = {str(a) for a in state["active"]}
