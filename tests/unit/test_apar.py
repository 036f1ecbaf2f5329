"""NIST's APAR rules beside the Guideline 36 conditions (detect/apar.py via detect/afdd.py), on hand-made AHU ticks.

Points in °C, commands 0..1, one tick per second; average 1 s, mode delay 3 ticks, alarm delay 5 ticks.
Published defaults: εt 2 K, fan heat 1.11 K, εf 0.3, ΔTmin 5.6 K.  Return air 22 °C, outdoor air 10 °C
unless said: the mixed air at outdoor-air fraction Q is 22 − 12 Q.
"""

from __future__ import annotations

import numpy as np
import pytest

from sentinelle.detect.afdd import CONDITIONS, Afdd, AfddCheck
from sentinelle.detect.apar import AparPoints, AparRules, outdoor_air_fraction
from sentinelle.records import FloatArray
from sentinelle.settings import AfddSettings

from .ahu_helpers import AHU_TAGS, FAN, ROWS, ahu_settings, condition
from .detect_helpers import feed, stage

RAT, OAT = 22.0, 10.0


def _settings(**kw: object) -> AfddSettings:
    return ahu_settings(**{"apar_rules": True, **kw})


def _tick(
    q: float, damper: float, hc: float = 0.0, cc: float = 0.0, sat: float | None = None, oat: float = OAT
) -> FloatArray:
    """An AHU tick at outdoor-air fraction ``q`` (SAT: the mixed air plus fan heat unless given)."""
    mat = RAT + q * (oat - RAT)
    return np.array([mat + FAN if sat is None else sat, mat, RAT, oat, hc, cc, damper, 14.0])


def _violated(check: AfddCheck, name: str) -> bool:
    return condition(check.violated, name)


def _evaluable(check: AfddCheck, name: str) -> bool:
    return condition(check.evaluable, name)


def _run(a: Afdd, row: np.ndarray, n: int = 5, start: float = 0.0) -> list[AfddCheck]:
    return [a.check(start + t, row, False) for t in range(n)]


def test_outdoor_air_with_the_damper_commanded_closed_is_apar2c() -> None:
    """A recirculating unit (damper 0, no coil) drawing 40 % outdoor air leaks; 5 % is within εf."""
    healthy = _run(Afdd(_settings(), ROWS, 1.0), _tick(0.05, 0.0))
    assert healthy[-1].state == 2 and _evaluable(healthy[-1], "APAR2C") and not healthy[-1].violated.any()
    leak = _run(Afdd(_settings(), ROWS, 1.0), _tick(0.4, 0.0))
    assert [_violated(c, "APAR2C") for c in leak] == [False, False, False, True, True]
    # The mixed air stays between return and outdoor air: Guideline 36 sees nothing.
    assert [n for n in ("FC2", "FC3", "FC8") if _violated(leak[-1], n)] == []
    # The same air with the damper open at minimum is not this rule's business.
    assert not _evaluable(_run(Afdd(_settings(), ROWS, 1.0), _tick(0.4, 0.2))[-1], "APAR2C")


def test_the_fraction_is_not_judged_when_outdoor_and_return_air_are_close() -> None:
    """|OAT − RAT| = 4 K < ΔTmin 5.6 K: Q = (MAT − RAT)/(OAT − RAT) would be noise."""
    checks = _run(Afdd(_settings(), ROWS, 1.0), _tick(0.4, 0.0, oat=18.0))
    assert not _evaluable(checks[-1], "APAR2C")
    assert _evaluable(_run(Afdd(_settings(), ROWS, 1.0), _tick(0.4, 0.0, oat=16.0))[-1], "APAR2C")


def test_without_apar_rules_none_is_tested() -> None:
    checks = _run(Afdd(_settings(apar_rules=False), ROWS, 1.0), _tick(0.4, 0.0))
    assert not any(_evaluable(checks[-1], n) for n in ("APAR2", "APAR2C", "APAR6", "APAR7"))
    assert Afdd(_settings(apar_rules=False), ROWS, 1.0).apar is None


def test_the_minimum_fraction_is_learned_on_known_good_operation_then_apar2_judges_against_it() -> None:
    """Heating at minimum outdoor air (damper 0.2) with Q = 0.2 for 40 ticks, then the damper sticks open."""
    a = Afdd(_settings(), ROWS, 1.0)
    heat = _tick(0.2, 0.2, hc=0.4, sat=30.0)
    for c in _run(a, heat, 40):
        assert not _evaluable(c, "APAR2")  # nothing to compare with while learning
        a.learn(c)
    a.freeze()
    assert a.apar is not None and a.apar.q_min == pytest.approx(0.2)
    assert not _violated(_run(a, _tick(0.45, 0.2, hc=0.4, sat=30.0), start=40.0)[-1], "APAR2")  # 0.25 < εf
    stuck = _run(a, _tick(0.6, 0.2, hc=0.4, sat=30.0), start=50.0)
    assert _violated(stuck[-1], "APAR2") and stuck[-1].state == 1


def test_too_few_known_good_samples_leave_apar2_untested_and_a_design_value_needs_none() -> None:
    a = Afdd(_settings(), ROWS, 1.0)
    for c in _run(a, _tick(0.2, 0.2, hc=0.4, sat=30.0), 20):  # 17 settled ticks < 30
        a.learn(c)
    a.freeze()
    assert not _evaluable(_run(a, _tick(0.6, 0.2, hc=0.4, sat=30.0), start=20.0)[-1], "APAR2")
    b = Afdd(_settings(minimum_outdoor_air_fraction=0.2), ROWS, 1.0)
    assert _violated(_run(b, _tick(0.6, 0.2, hc=0.4, sat=30.0))[-1], "APAR2")


def test_supply_off_mixed_air_beyond_apars_tolerance_with_no_coil_is_apar7_both_ways() -> None:
    """εt = 2 K: 2.5 K off trips APAR7 (not FC8, whose √(1.11² + 2.78²) = 2.99 K is wider); 1.5 K does not."""
    mat = RAT + 0.5 * (OAT - RAT)
    for off, expected in ((2.5, True), (-2.5, True), (1.5, False)):
        checks = _run(Afdd(_settings(), ROWS, 1.0), _tick(0.5, 0.5, sat=mat + FAN + off))
        assert checks[-1].state == 2
        assert (_violated(checks[-1], "APAR7"), _violated(checks[-1], "FC8")) == (expected, False), off


def test_supply_warmer_than_return_air_while_cooling_is_apar6() -> None:
    """Mechanical cooling at minimum outdoor air (cooling valve 0.5, damper 0.2)."""
    warm = _run(Afdd(_settings(), ROWS, 1.0), _tick(0.2, 0.2, cc=0.5, sat=RAT + 2.5))
    assert warm[-1].state == 4 and _violated(warm[-1], "APAR6")
    cool = _run(Afdd(_settings(), ROWS, 1.0), _tick(0.2, 0.2, cc=0.5, sat=RAT + 1.5))
    assert _evaluable(cool[-1], "APAR6") and not _violated(cool[-1], "APAR6")


def test_fahrenheit_tags_scale_apars_temperatures_not_its_fractions() -> None:
    a = Afdd(_settings(temperature_unit="F"), ROWS, 1.0)
    assert a.apar is not None
    assert a.apar.e_t == pytest.approx(3.6) and a.apar.min_delta == pytest.approx(10.08)
    assert a.base[[c.name for c in CONDITIONS].index("APAR2C")] == pytest.approx(0.3)


def test_rules_learn_only_at_minimum_outdoor_air_and_stop_after_the_learning_span() -> None:
    r = AparRules(2.0, FAN, 5.6, 0.01, 0.99, None, reference_n=3)
    closed = AparPoints(sat=20.0, mat=21.0, rat=RAT, oat=OAT, damper=0.0)
    r.learn(closed, True)
    assert r.reference == []  # damper closed: not minimum outdoor air
    for q in (0.1, 0.2, 0.3):
        r.learn(AparPoints(sat=20.0, mat=RAT + q * (OAT - RAT), rat=RAT, oat=OAT, damper=0.2), True)
    assert not r.learning and r.q_min == pytest.approx(0.2)
    assert np.isnan(outdoor_air_fraction(20.0, 15.0, 15.0))


def test_the_detector_opens_an_apar_alert_in_fraction_units_and_keeps_the_learned_minimum_across_a_restore() -> None:
    from prometheus_client import CollectorRegistry

    from sentinelle.detect.detectors import BuildContext, build_all
    from sentinelle.detect.detectors.afdd import AfddDetector
    from sentinelle.metrics import Metrics

    from .detect_helpers import LEVELS

    s = _settings()
    st, _ = stage(AHU_TAGS, assets=[{"name": "a", "afdd": s.model_dump()}], clear_normal_steps=4)
    heat = list(_tick(0.2, 0.2, hc=0.4, sat=30.0))
    with st.replaying_history():
        feed(st, AHU_TAGS, [heat] * 40, heat)
    opened = [
        e
        for e in feed(st, AHU_TAGS, [list(_tick(0.6, 0.2, hc=0.4, sat=30.0))] * 10, heat, start=40.0)
        if e.kind == "ahu_fault" and e.event == "opened"
    ]
    assert len(opened) == 1 and "APAR2" in opened[0].message
    assert opened[0].actual == pytest.approx(0.4)
    g = next(iter(st._groups.values()))
    (d,) = [x for x in g.detectors if isinstance(x, AfddDetector)]
    ctx = BuildContext(g.layout, st.settings, LEVELS, Metrics(CollectorRegistry()))
    (c,) = [x for x in build_all(ctx) if isinstance(x, AfddDetector)]
    c.restore(d.state())
    assert c.units[0].apar is not None and c.units[0].apar.q_min == pytest.approx(0.2)
    assert not c.units[0].apar.learning
