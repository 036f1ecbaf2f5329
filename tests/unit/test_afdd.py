"""The Guideline 36 AHU conditions (detect/afdd.py) and their detector, on hand-made AHU ticks.

Points in °C, commands 0..1, one tick per second; short delays (average 1 s, mode delay 3 ticks, alarm
delay 5 ticks) so that every expected tick can be counted by hand.  Default tolerances: εSAT 1.11 K,
εMAT 2.78 K, fan heat 1.11 K — FC8 trips beyond hypot(1.11, 2.78) = 2.99 K.
"""

from __future__ import annotations

import numpy as np
import pytest

from sentinelle.detect.afdd import CONDITIONS, NAMES, Afdd
from sentinelle.settings import AfddSettings, TagSettings, load_settings

from .ahu_helpers import AHU_TAGS, FAN, ROLES, ROWS, ahu_settings, condition
from .detect_helpers import feed, stage, summary


def _settings(**kw: object) -> AfddSettings:
    return ahu_settings(**{"calibration_s": 0.0, **kw})


def _free_cooling(sat_offset: float) -> np.ndarray:
    """Both valves closed, damper half open: SAT = MAT + fan heat + ``sat_offset``."""
    mat = 15.0
    return np.array([mat + FAN + sat_offset, mat, 22.0, 10.0, 0.0, 0.0, 0.5, 14.0])


def test_free_cooling_supply_off_mixed_air_trips_fc8_only_after_the_mode_delay() -> None:
    a = Afdd(_settings(), ROWS, 1.0)
    ok = [a.check(float(t), _free_cooling(0.5), False) for t in range(5)]
    assert not any(c.violated.any() for c in ok)
    assert ok[0].state == 2
    bad = [a.check(float(5 + t), _free_cooling(3.5), False) for t in range(3)]
    assert [condition(c.violated, "FC8") for c in bad] == [True] * 3
    assert [name for name in NAMES if any(condition(c.violated, name) for c in bad)] == ["FC8"]
    fresh = Afdd(_settings(), ROWS, 1.0)
    first = [fresh.check(float(t), _free_cooling(3.5), False) for t in range(5)]
    # The state must have held 3 ticks (ticks 0..2 are its first) before it is tested.
    assert [condition(c.violated, "FC8") for c in first] == [False, False, False, True, True]


def test_heating_condition_is_not_tested_in_another_state() -> None:
    a = Afdd(_settings(), ROWS, 1.0)
    heating = np.array([12.0, 16.0, 22.0, 0.0, 0.5, 0.0, 0.2, 20.0])  # SAT 5.1 K below MAT + fan heat
    cooling = heating.copy()
    cooling[4], cooling[5] = 0.0, 0.5
    fc5 = next(i for i, c in enumerate(CONDITIONS) if c.name == "FC5")  # evaluable is per condition
    checks = [a.check(float(t), heating, False) for t in range(5)]
    assert checks[-1].state == 1 and condition(checks[-1].violated, "FC5")
    b = Afdd(_settings(), ROWS, 1.0)
    checks = [b.check(float(t), cooling, False) for t in range(5)]
    assert checks[-1].state == 4 and not checks[-1].evaluable[fc5] and not condition(checks[-1].violated, "FC5")


def test_a_missing_command_or_a_paused_asset_tests_nothing_and_restarts_the_mode_delay() -> None:
    a = Afdd(_settings(), ROWS, 1.0)
    for t in range(5):
        a.check(float(t), _free_cooling(3.5), False)
    nan_valve = _free_cooling(3.5)
    nan_valve[5] = np.nan
    assert not a.check(5.0, nan_valve, False).evaluable.any()
    assert not a.check(6.0, _free_cooling(3.5), True).evaluable.any()
    after = [a.check(float(7 + t), _free_cooling(3.5), False) for t in range(4)]
    assert [condition(c.violated, "FC8") for c in after] == [False, False, False, True]


def test_calibration_on_healthy_operation_moves_a_condition_past_the_units_own_offset() -> None:
    """A unit whose supply sensor reads 3.5 K warm in free cooling is healthy; 3.1 K more is not."""
    a = Afdd(_settings(calibration_s=40.0), ROWS, 1.0)
    during = [a.check(float(t), _free_cooling(3.5), False) for t in range(45)]
    for c in during:
        a.learn(c)
    assert a.frozen  # 40 tested ticks collected (the first 3 are the mode delay)
    assert condition(during[10].violated, "FC8")  # before the offset is known, the guideline's threshold
    assert not condition(a.check(45.0, _free_cooling(3.5), False).violated, "FC8")
    assert not condition(a.check(46.0, _free_cooling(6.4), False).violated, "FC8")
    assert condition(a.check(47.0, _free_cooling(6.6), False).violated, "FC8")
    # An offset on the other side stays at the guideline's threshold: the calibration never narrows it.
    assert a.offset[[i for i, c in enumerate(CONDITIONS) if c.name == "FC8"][1]] == 0.0


def test_too_few_healthy_samples_leave_the_guidelines_threshold() -> None:
    a = Afdd(_settings(calibration_s=1000.0), ROWS, 1.0)
    for t in range(20):
        a.learn(a.check(float(t), _free_cooling(3.5), False))
    a.freeze()
    assert a.frozen and not a.offset.any()
    assert condition(a.check(20.0, _free_cooling(3.5), False).violated, "FC8")


def test_hunting_between_states_is_fc4() -> None:
    a = Afdd(_settings(), ROWS, 1.0)
    heat = np.array([20.0, 15.0, 22.0, 10.0, 0.3, 0.0, 0.2, 20.0])
    free = _free_cooling(0.0)
    checks = [a.check(60.0 * t, heat if t % 2 else free, False) for t in range(12)]
    # A change every minute: the 8th change within the hour is one too many.
    assert [condition(c.violated, "FC4") for c in checks].index(True) == 8


def test_fahrenheit_tags_scale_the_tolerances() -> None:
    a = Afdd(_settings(temperature_unit="F"), ROWS, 1.0)
    assert a.e_mat == pytest.approx(5.0) and a.fan == pytest.approx(2.0)


def test_the_detector_opens_one_ahu_fault_after_the_alarm_delay_and_clears_it() -> None:
    s = _settings()
    st, _ = stage(AHU_TAGS, assets=[{"name": "a", "afdd": s.model_dump()}], clear_normal_steps=4)
    rows = [_free_cooling(0.0)] * 5 + [_free_cooling(3.5)] * 10 + [_free_cooling(0.0)] * 8
    nominal = list(_free_cooling(0.0))
    events = [e for e in feed(st, AHU_TAGS, [list(r) for r in rows], nominal) if e.kind == "ahu_fault"]
    # FC8 (not FC12: 3.5 K is under its 3.89) violated from tick 5, the state held since 0: 5 ticks of it ->
    # opens at 9; normal from 15 -> clears at 18.
    assert summary(events) == [("opened", "ahu_fault", "a.sat", 9.0), ("cleared", "ahu_fault", "a.sat", 18.0)]
    opened = events[0]
    assert "FC8" in opened.message and "Guideline 36" in opened.message
    assert opened.actual == pytest.approx(3.5)
    assert opened.upper == pytest.approx(np.hypot(FAN, 25 / 9))


def test_settings_name_the_role_of_an_unknown_tag(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    roles = {role: f"a.{short}" for role, short in zip(ROWS, ROLES, strict=True)} | {"mixed_air_temp_tag": "a.nope"}
    lines = ["[[tags]]\n" + f'name = "a.{r}"\nasset = "a"\nnode_id = "n{i}"\n' for i, r in enumerate(ROLES)]
    afdd = "".join(f'{k} = "{v}"\n' for k, v in roles.items())
    cfg = tmp_path / "s.toml"
    cfg.write_text("\n".join(lines) + '\n[[detect.assets]]\nname = "a"\n[detect.assets.afdd]\n' + afdd)
    with pytest.raises(Exception, match=r"afdd\.mixed_air_temp_tag: unknown tag 'a\.nope'"):
        load_settings(cfg)


def test_state_round_trips_mid_calibration_and_the_clone_judges_alike() -> None:
    from prometheus_client import CollectorRegistry

    from sentinelle.detect.detectors import BuildContext, build_all
    from sentinelle.detect.detectors.afdd import AfddDetector
    from sentinelle.metrics import Metrics

    from .detect_helpers import LEVELS, batch

    s = _settings(calibration_s=30.0)
    st, _ = stage(AHU_TAGS, assets=[{"name": "a", "afdd": s.model_dump()}])
    nominal = list(_free_cooling(0.0))
    for k in range(20):
        st.process(batch(AHU_TAGS, float(k), list(_free_cooling(3.5)), nominal))
    g = next(iter(st._groups.values()))
    (d,) = [x for x in g.detectors if isinstance(x, AfddDetector)]
    ctx = BuildContext(g.layout, st.settings, LEVELS, Metrics(CollectorRegistry()))
    (c,) = [x for x in build_all(ctx) if isinstance(x, AfddDetector)]
    c.restore(d.state())
    for k in range(20, 40):  # calibration ends (30 tested ticks) on both, then both judge 6.6 K alike
        fb = batch(AHU_TAGS, float(k), list(_free_cooling(3.5 if k < 38 else 6.6)), nominal)
        tick, _ = st._gate(g, fb)
        a, b = d.observe(tick), c.observe(tick)
        np.testing.assert_array_equal(a.flagged, b.flagged)
        np.testing.assert_array_equal(a.score, b.score)
        d.learn(tick, a)
        c.learn(tick, b)
    assert d.units[0].frozen and c.units[0].frozen
    np.testing.assert_array_equal(d.units[0].offset, c.units[0].offset)
    assert a.flagged[NAMES.index("FC8")]


def test_calibration_ends_with_the_history_replay() -> None:
    """Offsets learned on the replayed history (known-good operation) hold from the first live tick."""
    s = _settings(calibration_s=10_000.0)
    st, _ = stage(AHU_TAGS, assets=[{"name": "a", "afdd": s.model_dump()}], clear_normal_steps=4)
    nominal = list(_free_cooling(0.0))
    with st.replaying_history():
        feed(st, AHU_TAGS, [list(_free_cooling(3.5))] * 40, nominal)
    live = feed(st, AHU_TAGS, [list(_free_cooling(3.5))] * 10, nominal, start=40.0)
    assert [e for e in live if e.kind == "ahu_fault"] == []  # without the calibration FC8 would open at 44
    later = feed(st, AHU_TAGS, [list(_free_cooling(6.6))] * 6, nominal, start=50.0)
    assert summary([e for e in later if e.kind == "ahu_fault"]) == [("opened", "ahu_fault", "a.sat", 54.0)]


def test_ahus_with_different_alarm_delays_each_keep_their_own() -> None:
    tags = AHU_TAGS + tuple(TagSettings(name=f"b.{r}", asset="b", node_id=f"m{i}") for i, r in enumerate(ROLES))
    fast = _settings(alarm_delay_s=5.0).model_dump()
    slow = {
        k: (v.replace("a.", "b.") if isinstance(v, str) else v)
        for k, v in _settings(alarm_delay_s=8.0).model_dump().items()
    }
    st, _ = stage(tags, assets=[{"name": "a", "afdd": fast}, {"name": "b", "afdd": slow}], clear_normal_steps=4)
    row = list(_free_cooling(3.5)) * 2
    opened = [e for e in feed(st, tags, [row] * 12, row) if e.kind == "ahu_fault" and e.event == "opened"]
    # Both violate from tick 3 (the mode delay): a opens after 5 ticks of it (7), b after 8 (10).
    assert [(e.asset, e.event_ts) for e in opened] == [("a", 7.0), ("b", 10.0)]
