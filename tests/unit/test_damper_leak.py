"""OAL, the one-sided outdoor-air damper leak condition (detect/afdd.py, ``damper_leak_rule``), on hand-made ticks.

Points in °C, commands 0..1, one tick per second; average 1 s, mode delay 3 ticks, alarm delay 5 ticks.
Return air 22 °C, outdoor air 10 °C unless said: the mixed air at outdoor-air fraction Q is 22 − 12 Q.
Threshold 0.1 (the default); ΔTmin 5.6 K.
"""

from __future__ import annotations

import numpy as np
import pytest

from sentinelle.detect.afdd import CONDITIONS, Afdd, AfddCheck
from sentinelle.records import FloatArray

from .ahu_helpers import AHU_TAGS, FAN, ROWS, ahu_settings, condition
from .detect_helpers import feed, stage

RAT, OAT = 22.0, 10.0
OAL = next(c for c in CONDITIONS if c.name == "OAL")


def _tick(q: float, damper: float, oat: float = OAT, hc: float = 0.0) -> FloatArray:
    """An AHU tick at outdoor-air fraction ``q``, no cooling, the supply air the mixed air plus fan heat."""
    mat = RAT + q * (oat - RAT)
    return np.array([mat + FAN + (8.0 if hc else 0.0), mat, RAT, oat, hc, 0.0, damper, 14.0])


def _run(row: FloatArray, n: int = 5, **kw: object) -> list[AfddCheck]:
    a = Afdd(ahu_settings(**{"damper_leak_rule": True, **kw}), ROWS, 1.0)
    return [a.check(float(t), row, False) for t in range(n)]


def test_outdoor_air_entering_through_a_closed_damper_trips_oal_after_the_mode_delay() -> None:
    """Q = 0.15 with the damper commanded closed: over 0.1 once the state has held 3 ticks.  APAR2C (εf 0.3,
    not configured here) and Guideline 36 see nothing: the mixed air stays between return and outdoor air."""
    leak = _run(_tick(0.15, 0.0))
    assert [condition(c.violated, "OAL") for c in leak] == [False, False, False, True, True]
    assert leak[-1].quantity[list(CONDITIONS).index(OAL)] == pytest.approx(0.15)
    assert [n for n in ("FC2", "FC3", "FC8", "APAR2C") if condition(leak[-1].violated, n)] == []
    heating = _run(_tick(0.15, 0.0, hc=0.4))
    assert heating[-1].state == 1 and condition(heating[-1].violated, "OAL")


def test_a_tight_damper_a_negative_fraction_an_open_damper_and_close_temperatures_do_not_trip_it() -> None:
    """Q = 0.03 (under the shipped 0.05); Q = −0.25 (mixed air colder than return air with warmer outdoor air: a sensor
    inconsistency, which APAR2C's |Q| would flag, not a leak); the damper open at minimum (another rule's
    business); |OAT − RAT| = 4 K < ΔTmin (Q would be noise)."""
    assert not condition(_run(_tick(0.03, 0.0))[-1].violated, "OAL")
    assert condition(_run(_tick(0.03, 0.0))[-1].evaluable, "OAL")
    negative = _run(_tick(-0.25, 0.0, oat=30.0))
    assert condition(negative[-1].evaluable, "OAL") and not condition(negative[-1].violated, "OAL")
    assert not condition(_run(_tick(0.4, 0.2))[-1].evaluable, "OAL")
    assert not condition(_run(_tick(0.4, 0.0, oat=18.0))[-1].evaluable, "OAL")


def test_on_by_default_can_be_turned_off_and_the_threshold_is_a_setting() -> None:
    """Shipped on at 0.05 (chosen on LBNL's tuning days), so a configured AHU gets it without a switch."""
    on = Afdd(ahu_settings(), ROWS, 1.0)
    assert condition([on.check(float(t), _tick(0.15, 0.0), False) for t in range(5)][-1].evaluable, "OAL")
    off = Afdd(ahu_settings(damper_leak_rule=False), ROWS, 1.0)
    checks = [off.check(float(t), _tick(0.4, 0.0), False) for t in range(5)]
    assert not condition(checks[-1].evaluable, "OAL")
    assert not condition(_run(_tick(0.15, 0.0), damper_leak_fraction=0.2)[-1].violated, "OAL")


def test_the_detector_opens_one_oal_alert_in_fraction_units() -> None:
    s = ahu_settings(damper_leak_rule=True, damper_leak_fraction=0.05)
    st, _ = stage(AHU_TAGS, assets=[{"name": "a", "afdd": s.model_dump()}], clear_normal_steps=4)
    tight = list(_tick(0.0, 0.0))
    events = feed(st, AHU_TAGS, [tight] * 10 + [list(_tick(0.2, 0.0))] * 12, tight)
    opened = [e for e in events if e.kind == "ahu_fault" and e.event == "opened"]
    assert [e.subject for e in opened] == ["a#OAL"]
    assert opened[0].actual == pytest.approx(0.2) and "commanded closed" in opened[0].message
