"""ASHRAE Guideline 36 fault conditions of an air-handling unit, tick by tick.

An AHU runs in one *operating state* at a time, read off its valve and damper commands:
OS1 heating, OS2 free cooling (no coil), OS3 mechanical cooling with 100 % outdoor air,
OS4 mechanical cooling with minimum outdoor air, OS5 anything else.  Each fault
condition is a physical expectation that holds in some states (in free cooling the
supply air is the mixed air plus the fan's heat; the mixed air lies between the return
and the outdoor air; a fully open cooling valve reaches the set point …), tested only
once the state and the fan have held ``mode_delay_s``, on temperatures averaged over
``average_s``.  A condition alarms after ``alarm_delay_s`` without a break (the detector
module sets k = n to that many ticks).

Why rules and not only statistics: these faults (a leaking or stuck valve, a stuck
damper) are *persistent* and change the unit's whole day, so a model that learns the
day's behaviour learns the fault; the guideline's expectations do not move.  What a
real unit adds is sensor offsets: with ``calibration_s`` each condition's quantity is
collected on known-good operation (the history replayed at start-up) and the condition
then trips its tolerance beyond the healthy median when that median is already past
zero — a unit whose mixed-air sensor reads 3 K warm is not in fault every day.

Conditions implemented (numbers as in the guideline): FC2/FC3 mixed air outside
[return, outdoor]; FC4 state hunting; FC5 supply not warmer than mixed air while
heating; FC7 full heating below set point; FC8 supply ≠ mixed + fan heat in free
cooling; FC9 outdoor too warm for free cooling; FC10 mixed ≠ outdoor at 100 % outdoor
air; FC11 outdoor too cold for 100 % outdoor-air cooling; FC12 supply warmer than mixed
air while cooling; FC13 full cooling above set point.  FC1 (duct pressure), FC6
(outdoor-air fraction: needs airflows) and FC14/FC15 (coil temperatures) need points
the reference AHUs lack.  With ``apar_rules``, NIST's APAR rules the guideline lacks (:mod:`.apar`:
the outdoor-air fraction against its minimum and with the damper commanded closed, the supply air
against the mixed air within APAR's narrower tolerance and against the return air) join the table.
With ``damper_leak_rule``, **OAL** (outdoor-air damper leak): with the damper commanded closed, the
outdoor-air fraction from temperatures ``Q = (MAT − RAT)/(OAT − RAT)`` above ``damper_leak_fraction``
(where ``|OAT − RAT| ≥ ΔTmin``).  One-sided, unlike APAR2C's ``|Q| > εf``: a leaking or stuck-open
damper lets outdoor air in and moves ``Q`` up; a negative ``Q`` is a sensor inconsistency, not a leak.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..records import BoolArray, FloatArray
from ..settings.afdd import AfddSettings
from . import apar
from .apar import AparPoints, AparRules

STATES = ("", "OS1", "OS2", "OS3", "OS4", "OS5")
"""Index 0: unknown (a point missing, or the asset paused)."""


@dataclass(frozen=True, slots=True)
class Condition:
    """One guideline condition: ``quantity > threshold`` in ``states`` is a fault."""

    name: str
    text: str
    """What an operator reads in the alert."""
    states: tuple[int, ...]
    role: str
    """The point the alert is filed under."""
    calibrated: bool = True
    """Whether a healthy offset may widen it (not for the weather conditions FC9/FC11)."""


CONDITIONS: tuple[Condition, ...] = (
    Condition("FC2", "mixed air colder than both return and outdoor air", (1, 2, 3, 4, 5), "mixed_air_temp_tag"),
    Condition("FC3", "mixed air warmer than both return and outdoor air", (1, 2, 3, 4, 5), "mixed_air_temp_tag"),
    Condition("FC4", "operating state changes too often (hunting)", (1, 2, 3, 4, 5), "cooling_valve_tag", False),
    Condition("FC5", "supply air not warmer than mixed air while heating", (1,), "supply_air_temp_tag"),
    Condition("FC7", "supply air below set point with the heating valve fully open", (1,), "supply_air_temp_tag"),
    Condition("FC8", "supply air above mixed air plus fan heat in free cooling", (2,), "supply_air_temp_tag"),
    Condition("FC8", "supply air below mixed air plus fan heat in free cooling", (2,), "supply_air_temp_tag"),
    Condition("FC9", "outdoor air too warm for free cooling", (2,), "outdoor_air_temp_tag", False),
    Condition("FC10", "mixed air differs from outdoor air at 100 % outdoor air", (3,), "mixed_air_temp_tag"),
    Condition("FC11", "outdoor air too cold for 100 % outdoor-air cooling", (3,), "outdoor_air_temp_tag", False),
    Condition("FC12", "supply air warmer than mixed air while cooling", (2, 3, 4), "supply_air_temp_tag"),
    Condition("FC13", "supply air above set point with the cooling valve fully open", (3, 4), "supply_air_temp_tag"),
    Condition("APAR2", apar.TEXT["APAR2"], (1, 4), "mixed_air_temp_tag"),
    Condition("APAR2C", apar.TEXT["APAR2C"], (1, 2, 4, 5), "mixed_air_temp_tag"),
    Condition("APAR6", apar.TEXT["APAR6"], (2, 3, 4), "supply_air_temp_tag"),
    Condition("APAR7", "supply air above mixed air plus fan heat with no coil active", (2,), "supply_air_temp_tag"),
    Condition("APAR7", "supply air below mixed air plus fan heat with no coil active", (2,), "supply_air_temp_tag"),
    Condition("OAL", "outdoor air leaks in with the damper commanded closed", (1, 2, 4, 5), "mixed_air_temp_tag"),
)
"""FC8 and APAR7 are two-sided: their two halves learn their own offsets and share one alert.  The APAR
conditions (:mod:`.apar`) are tested only with ``apar_rules``, OAL only with ``damper_leak_rule``."""

NAMES: tuple[str, ...] = tuple(dict.fromkeys(c.name for c in CONDITIONS))
"""The alert subjects' conditions, in order (FC8 once)."""
SUBJECT_OF = np.array([NAMES.index(c.name) for c in CONDITIONS], dtype=np.intp)
TEXT = {c.name: c.text for c in CONDITIONS} | {
    "FC8": "supply air differs from mixed air plus fan heat in free cooling",
    "APAR7": apar.TEXT["APAR7"],
}
IS_APAR = np.array([c.name in apar.NAMES for c in CONDITIONS])
IS_LEAK = np.array([c.name == "OAL" for c in CONDITIONS])
IN_STATE = np.array([[state in c.states for c in CONDITIONS] for state in range(len(STATES))])
"""State × condition (:data:`CONDITIONS` order): whether the condition is tested in that operating state."""
_FC4 = next(i for i, c in enumerate(CONDITIONS) if c.name == "FC4")
"""FC4's place in :data:`CONDITIONS` (arrays per condition are in that order, not :data:`NAMES`')."""
_MIN_CALIBRATION = 30
"""Fewer healthy samples than this leave a condition at the guideline's threshold."""


@dataclass(frozen=True, slots=True)
class AfddCheck:
    """One tick of one AHU, per condition (:data:`CONDITIONS` order)."""

    state: int
    evaluable: BoolArray
    """The condition was tested (its state held long enough, its points present)."""
    violated: BoolArray
    quantity: FloatArray
    threshold: FloatArray


class Afdd:
    """The guideline's conditions for one AHU; ``rows`` maps each role to its tag group row."""

    def __init__(self, settings: AfddSettings, rows: dict[str, int], period_s: float) -> None:
        self.s = settings
        self.rows = rows
        k = settings.kelvin_to_tag_units()
        self.e_sat = settings.supply_air_tolerance_k * k
        self.e_mat = settings.mixed_air_tolerance_k * k
        self.e_rat = settings.return_air_tolerance_k * k
        self.e_oat = settings.outdoor_air_tolerance_k * k
        self.fan = settings.supply_fan_heat_k * k
        self.sig_tol = settings.signal_tolerance_fraction * settings.signal_full_scale
        self.full = settings.signal_full_scale - self.sig_tol
        self.period_s = period_s
        self.avg_n = max(1, round(settings.average_s / period_s))
        self.delay_n = round(settings.mode_delay_s / period_s)
        self.cal_n = round(settings.calibration_s / period_s)
        n_cond = len(CONDITIONS)
        self.apar = (
            AparRules(
                settings.apar_temperature_tolerance_k * k,
                self.fan,
                settings.outdoor_air_fraction_min_delta_k * k,
                self.sig_tol,
                self.full,
                settings.minimum_outdoor_air_fraction,
                max(1, round(settings.minimum_outdoor_air_fraction_learn_s / period_s)),
            )
            if settings.apar_rules
            else None
        )
        self.min_delta = settings.outdoor_air_fraction_min_delta_k * k
        self.enabled = (~IS_APAR | (self.apar is not None)) & (~IS_LEAK | settings.damper_leak_rule)
        self.points = AparPoints(*[np.nan] * 5)
        self.base = np.array([self._base_threshold(c) for c in CONDITIONS])
        self.offset = np.zeros(n_cond)
        self.cal = [list[float]() for _ in CONDITIONS]
        self.frozen = self.cal_n == 0
        self.cal_ticks = 0
        self.temps = ("supply_air_temp_tag", "mixed_air_temp_tag", "return_air_temp_tag", "outdoor_air_temp_tag")
        self.sps = ("heating_setpoint_tag", "cooling_setpoint_tag")
        self.buf = np.full((self.avg_n, len(self.temps) + len(self.sps)), np.nan)
        self.filled = 0
        self.state = 0
        self.since = 0
        self.changes: deque[float] = deque()

    def _base_threshold(self, c: Condition) -> float:
        return {
            "FC2": self.e_mat,
            "FC3": self.e_mat,
            "FC4": float(self.s.max_state_changes_per_hour),
            "FC5": self.e_sat + self.e_mat,
            "FC7": self.e_sat,
            "FC8": float(np.hypot(self.e_sat, self.e_mat)),
            "FC9": 0.0,
            "FC10": float(np.hypot(self.e_mat, self.e_oat)),
            "FC11": 0.0,
            "FC12": self.e_sat + self.e_mat,
            "FC13": self.e_sat,
            "APAR2": self.s.outdoor_air_fraction_tolerance,
            "APAR2C": self.s.outdoor_air_fraction_tolerance,
            "APAR6": self.s.apar_temperature_tolerance_k * self.s.kelvin_to_tag_units(),
            "APAR7": self.s.apar_temperature_tolerance_k * self.s.kelvin_to_tag_units(),
            "OAL": self.s.damper_leak_fraction,
        }[c.name]

    def _value(self, values: FloatArray, role: str) -> float:
        row = self.rows.get(role)
        return float(values[row]) if row is not None else np.nan

    def _setpoint(self, values: FloatArray, role: str) -> float:
        v = self._value(values, role)
        return v if np.isfinite(v) else self._value(values, "supply_air_setpoint_tag")

    def _operating_state(self, values: FloatArray) -> int:
        hc, cc = self._value(values, "heating_valve_tag"), self._value(values, "cooling_valve_tag")
        if not (np.isfinite(hc) and np.isfinite(cc)):
            return 0
        heat, cool = hc > self.sig_tol, cc > self.sig_tol
        if heat and cool:
            return 5
        if heat:
            return 1
        if not cool:
            return 2
        dm = self._value(values, "outdoor_damper_tag")
        return 3 if np.isfinite(dm) and dm >= self.full else 4

    def check(self, ts: float, values: FloatArray, paused: bool) -> AfddCheck:
        """Judge one tick (``values``: the tag group's gated values; ``paused``: the asset's detection paused)."""
        n_cond = len(CONDITIONS)
        state = 0 if paused else self._operating_state(values)
        now = [self._value(values, r) for r in self.temps] + [self._setpoint(values, r) for r in self.sps]
        if state == 0:
            self.buf[:] = np.nan
            self.filled = 0
        else:
            self.buf = np.roll(self.buf, 1, axis=0)
            self.buf[0] = now
            self.filled = min(self.filled + 1, self.avg_n)
        if state != self.state:
            if state and self.state:
                self.changes.append(ts)
            self.since = 0
        else:
            self.since += 1
        self.state = state
        while self.changes and self.changes[0] <= ts - 3600.0:
            self.changes.popleft()
        quantity = np.full(n_cond, np.nan)
        evaluable = np.zeros(n_cond, dtype=bool)
        if state:
            quantity[:] = self._quantities(values)
            settled = self.since >= self.delay_n
            evaluable = IN_STATE[state] & np.isfinite(quantity) & settled & self.enabled
            evaluable[_FC4] = True
            quantity[_FC4] = float(len(self.changes))
        threshold = self.base + self.offset
        with np.errstate(invalid="ignore"):
            violated = evaluable & (quantity > threshold)
        return AfddCheck(state, evaluable, violated, quantity, threshold)

    def _quantities(self, values: FloatArray) -> FloatArray:
        recent = self.buf[: self.filled]
        finite = np.isfinite(recent)
        count = finite.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(finite, recent, 0.0).sum(axis=0) / count
        sat, mat, rat, oat, sp_h, sp_c = (float(x) for x in np.where(count > 0, mean, np.nan))
        hc, cc = self._value(values, "heating_valve_tag"), self._value(values, "cooling_valve_tag")
        supply_vs_mixed = sat - self.fan - mat
        damper = self._value(values, "outdoor_damper_tag")
        q = {
            "FC2": min(rat - self.e_rat, oat - self.e_oat) - mat,
            "FC3": mat - max(rat + self.e_rat, oat + self.e_oat),
            "FC5": mat + self.fan - sat,
            "FC7": sp_h - sat if hc >= self.full else np.nan,
            "FC9": oat - self.e_oat - (sp_c - self.fan + self.e_sat),
            "FC10": abs(mat - oat),
            "FC11": (sp_c - self.fan - self.e_sat) - (oat + self.e_oat),
            "FC12": supply_vs_mixed,
            "FC13": sat - sp_c if cc >= self.full else np.nan,
            "OAL": self._leak_fraction(mat, rat, oat, damper),
        }
        out = [q.get(c.name, np.nan) for c in CONDITIONS]
        fc8 = [i for i, c in enumerate(CONDITIONS) if c.name == "FC8"]
        out[fc8[0]], out[fc8[1]] = supply_vs_mixed, -supply_vs_mixed
        self.points = AparPoints(sat, mat, rat, oat, damper)
        if self.apar is not None:
            qa = self.apar.quantities(self.points)
            a7 = [i for i, c in enumerate(CONDITIONS) if c.name == "APAR7"]
            for i, c in enumerate(CONDITIONS):
                if c.name in qa:
                    out[i] = qa[c.name]
            out[a7[1]] = qa["APAR7-"]
        return np.array(out, dtype=float)

    def _leak_fraction(self, mat: float, rat: float, oat: float, damper: float) -> float:
        """OAL's quantity: the outdoor-air fraction with the damper commanded closed (NaN where the damper is
        open or unknown, or outdoor and return air are closer than ΔTmin)."""
        if not (damper <= self.sig_tol and abs(oat - rat) >= self.min_delta):
            return float("nan")
        return apar.outdoor_air_fraction(mat, rat, oat)

    def learn(self, check: AfddCheck) -> None:
        """Collect the healthy quantities over ``calibration_s`` of tested operation (or until :meth:`freeze`),
        and APAR's minimum outdoor-air fraction where it is learned (:meth:`.AparRules.learn`)."""
        if self.apar is not None and check.state in (1, 4) and self.since >= self.delay_n:
            self.apar.learn(self.points, True)
        if self.frozen:
            return
        tested = False
        for i, c in enumerate(CONDITIONS):
            if c.calibrated and check.evaluable[i]:
                self.cal[i].append(float(check.quantity[i]))
                tested = True
        self.cal_ticks += tested
        if self.cal_ticks >= self.cal_n:
            self.freeze()

    def freeze(self) -> None:
        """End calibration: each calibrated condition's offset is its healthy median where that is past zero (and
        APAR's learned minimum outdoor-air fraction is fixed)."""
        if self.apar is not None:
            self.apar.freeze()
        if self.frozen:
            return
        for i, c in enumerate(CONDITIONS):
            if c.calibrated and len(self.cal[i]) >= min(_MIN_CALIBRATION, self.cal_n):
                self.offset[i] = max(0.0, float(np.median(self.cal[i])))
        self.cal = [[] for _ in CONDITIONS]
        self.frozen = True
