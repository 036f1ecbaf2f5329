"""NIST's AHU performance assessment rules (APAR) that Guideline 36's conditions lack, tick by tick.

APAR (House, Vaezi-Nejad and Whitcomb, "An expert rule set for fault detection in air-handling
units", ASHRAE Transactions 107(1), 2001; Schein, Bushby, Castro and House, "A rule-based fault
detection method for air handling units", Energy and Buildings 38(12), 2006) reads the same
operating modes as Guideline 36 (:mod:`.afdd`: 1 heating, 2 cooling with outdoor air, 3
mechanical cooling with 100 % outdoor air, 4 mechanical cooling with minimum outdoor air) and
tests mass and energy balances in each.  Guideline 36 took over most of them; these are the ones
it left out or made wider, on points every AHU here has:

* **APAR2** (rules 2 and 16: heating, and mechanical cooling at minimum outdoor air): the
  outdoor-air fraction computed from temperatures, ``Q = (MAT − RAT) / (OAT − RAT)``, equals the
  minimum outdoor-air fraction ``Q_min`` within ``εf``.  Guideline 36's FC6 needs airflows for
  ``Q_min``; APAR takes it as the site's design value — here ``minimum_outdoor_air_fraction``,
  or, unset, the median ``Q`` of the known-good history replayed at start-up (the value the
  unit's commissioning left, which is what a leak or a stuck damper moves).
* **APAR2C** (the same balance with the damper *commanded closed* while the fan runs: a
  recirculating unit's fraction is 0 — the minimum a closed damper allows): ``|Q| > εf``.  A
  leaking or stuck outdoor-air damper lets air in that the command says is shut.
* **APAR7** (rule 7, cooling with outdoor air, no coil active): the supply air is the mixed air
  plus the fan's heat within ``εt``, both ways.  Guideline 36's FC8 tests the same balance
  within ``√(εSAT² + εMAT²)`` with its 5 °F mixed-air error; APAR's single ``εt`` sees a valve
  that leaks heat or chilled water into a coil commanded shut.
* **APAR6** (rules 6, 12 and 17: every cooling mode): the supply air is not warmer than the
  return air by more than ``εt`` (APAR subtracts a return-fan heat, which these units do not
  report: taken as 0, the wider side).

``Q`` is evaluated only where ``|OAT − RAT| ≥ ΔTmin`` (a small difference makes it noise).
Published defaults (NIST's recommended values as carried by APAR implementations, and Guideline
36 FC6's ``ΔTmin``, ``ΔF_OA``): ``εt`` = 2 °C, fan heat 1.1 °C (Guideline 36's 2 °F, the
setting shared with :mod:`.afdd`), ``εf`` = 0.3, ``ΔTmin`` = 5.6 °C (10 °F).  APAR's 8-hours-
a-week persistence is the daemon's ``alarm_delay_s`` here, like the guideline's conditions.

>>> outdoor_air_fraction(mat=70.0, rat=72.0, oat=52.0)
0.1
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NAMES = ("APAR2", "APAR2C", "APAR6", "APAR7")
TEXT = {
    "APAR2": "outdoor-air fraction differs from the minimum (heating or cooling at minimum outdoor air)",
    "APAR2C": "outdoor air enters with the outdoor-air damper commanded closed",
    "APAR6": "supply air warmer than return air while cooling",
    "APAR7": "supply air differs from mixed air plus fan heat with no coil active",
}
_MIN_REFERENCE = 30
"""Fewer known-good samples than this leave APAR2 untested (no minimum fraction to compare with)."""


def outdoor_air_fraction(mat: float, rat: float, oat: float) -> float:
    """The outdoor air's share of the mixed air, from the three temperatures (NaN where OAT = RAT)."""
    d = oat - rat
    return round((mat - rat) / d, 12) if d != 0 else float("nan")


@dataclass(frozen=True, slots=True)
class AparPoints:
    """One tick's averaged temperatures and current commands (tag units, NaN where missing)."""

    sat: float
    mat: float
    rat: float
    oat: float
    damper: float


class AparRules:
    """The APAR quantities of one AHU and the minimum outdoor-air fraction they compare with."""

    def __init__(
        self,
        temperature_tolerance: float,
        fan_heat: float,
        min_delta: float,
        closed: float,
        full: float,
        minimum_fraction: float | None,
        reference_n: int,
    ) -> None:
        self.e_t = temperature_tolerance
        self.fan = fan_heat
        self.min_delta = min_delta
        self.closed = closed
        self.full = full
        self.q_min = float("nan") if minimum_fraction is None else float(minimum_fraction)
        self.reference: list[float] = []
        self.learning = minimum_fraction is None
        self.reference_n = reference_n

    def fraction(self, p: AparPoints) -> float:
        """``Q``, or NaN where ``|OAT − RAT| < ΔTmin``."""
        if not abs(p.oat - p.rat) >= self.min_delta:
            return float("nan")
        return outdoor_air_fraction(p.mat, p.rat, p.oat)

    def quantities(self, p: AparPoints) -> dict[str, float]:
        """Each rule's quantity (the second APAR7 half as ``APAR7-``), NaN where its points or damper rule it out.

        The states each rule holds in are :mod:`.afdd`'s table; the damper's part is here.
        """
        q = self.fraction(p)
        closed = p.damper <= self.closed
        at_minimum = self.closed < p.damper < self.full
        supply_vs_mixed = p.sat - self.fan - p.mat
        return {
            "APAR2": abs(q - self.q_min) if at_minimum else np.nan,
            "APAR2C": abs(q) if closed else np.nan,
            "APAR6": p.sat - p.rat,
            "APAR7": supply_vs_mixed,
            "APAR7-": -supply_vs_mixed,
        }

    def learn(self, p: AparPoints, in_minimum_state: bool) -> None:
        """Collect the known-good ``Q`` at minimum outdoor air (until :meth:`freeze` or ``reference_n`` samples)."""
        if not self.learning or not in_minimum_state or not self.closed < p.damper < self.full:
            return
        q = self.fraction(p)
        if np.isfinite(q):
            self.reference.append(q)
        if len(self.reference) >= self.reference_n:
            self.freeze()

    def freeze(self) -> None:
        """End learning: ``Q_min`` is the collected median (none, with fewer than 30 samples: APAR2 untested)."""
        if not self.learning:
            return
        if len(self.reference) >= min(_MIN_REFERENCE, self.reference_n):
            self.q_min = float(np.median(self.reference))
        self.reference = []
        self.learning = False
