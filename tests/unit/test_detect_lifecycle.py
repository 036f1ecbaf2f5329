"""Alert life cycles on hand-made sequences: one alert per asset incident, per-tag alerts behind a
setting, operating modes with hold-off.

One row per second (ts = row index); forecast medians fixed at the nominal levels with a
spread of 0.1, so a value 3.0 off its forecast has z = 30.  Life cycles: open after 3 of 5
anomalous ticks, clear after 4 normal ticks.
"""

from __future__ import annotations

import pytest

from sentinelle.settings import TagSettings

from .detect_helpers import feed, noisy, stage, summary

TAGS = (
    TagSettings(name="c.t", asset="c", node_id="n1", unit="degC"),
    TagSettings(name="c.p", asset="c", node_id="n2", unit="%"),
    TagSettings(name="d.x", asset="d", node_id="n3"),
)
NOMINAL = [5.0, 50.0, 0.0]


def _incident() -> list[list[float]]:
    """c.p off by +3 (z 30) during 60..69, c.t off by +0.5 (z 5) during 64..69, d normal throughout."""
    rows = noisy(NOMINAL, 60)
    rows += [[5.0, 53.0, 0.0]] * 4  # 60..63
    rows += [[5.5, 53.0, 0.0]] * 6  # 64..69
    rows += noisy(NOMINAL, 20, seed=1)  # 70..89
    return rows


def test_tags_of_one_asset_anomalous_together_make_one_alert() -> None:
    st, m = stage(TAGS)
    events = feed(st, TAGS, _incident(), NOMINAL)
    # Asset c anomalous at 60, 61, 62 -> opens at 62, filed under c.p (the only anomalous tag);
    # c.t joins at 64 -> updated; both normal from 70: 70..73 -> cleared at 73.
    assert summary(events) == [
        ("opened", "forecast_residual", "c.p", 62.0),
        ("updated", "forecast_residual", "c.p", 64.0),
        ("cleared", "forecast_residual", "c.p", 73.0),
    ]
    assert {e.alert_id for e in events} == {"c/c.p/forecast_residual/62000"}
    opened, updated, cleared = events
    assert opened.severity == "critical"  # |z| 30 >= critical_z 8
    assert [c.tag for c in updated.contributors] == ["c.p", "c.t"]  # ranked: score, then |z| (30 > 5)
    assert updated.contributors[0].residual_z == pytest.approx(30.0, abs=0.01)
    assert "c.p, c.t anomalous" in updated.message
    assert cleared.message == "c back to normal"
    assert m.registry.get_sample_value("sentinelle_alerts_active", {"asset": "c", "severity": "critical"}) == 0


def test_per_tag_alerts_stay_available_behind_a_setting() -> None:
    st, _ = stage(TAGS, merge_by_asset=False)
    events = feed(st, TAGS, _incident(), NOMINAL)
    # c.p anomalous 60.. -> opens at 62; c.t 64.. -> opens at 66; both clear at 73.
    assert sorted(summary(events), key=lambda e: (e[3], e[2])) == [
        ("opened", "forecast_residual", "c.p", 62.0),
        ("opened", "forecast_residual", "c.t", 66.0),
        ("cleared", "forecast_residual", "c.p", 73.0),
        ("cleared", "forecast_residual", "c.t", 73.0),
    ]


def test_the_incident_stays_open_while_any_tag_is_anomalous() -> None:
    st, _ = stage(TAGS)
    rows = noisy(NOMINAL, 60)
    rows += [[5.0, 53.0, 0.0]] * 5  # 60..64: c.p
    rows += [[5.5, 50.0, 0.0]] * 5  # 65..69: c.p back, c.t off instead
    rows += noisy(NOMINAL, 10, seed=1)
    events = feed(st, TAGS, rows, NOMINAL)
    # One incident from 62 to 73 (4 normal ticks after the last anomalous one, 69).
    assert [(e.event, e.event_ts) for e in events] == [("opened", 62.0), ("updated", 65.0), ("cleared", 73.0)]


# -- operating modes -------------------------------------------------------------------------------

STOPPED = {"name": "c", "modes": [{"mode": "stopped", "tag": "c.p", "below": 5.0}], "mode_holdoff_s": 10.0}


def test_a_stop_and_its_restart_transient_raise_no_alert_and_teach_nothing() -> None:
    st, m = stage(TAGS, assets=[STOPPED])
    rows = noisy(NOMINAL, 40)
    rows += [[7.0, 0.0, 0.0]] * 10  # 40..49: pump stopped, the water warms up (z 20 on c.t)
    rows += [[6.0, 50.0, 0.0]] * 6  # 50..55: restart transient, inside the 10 s hold-off (50..59)
    rows += noisy(NOMINAL, 14, seed=1)  # 56..69
    rows += [[5.5, 50.0, 0.0]] * 5  # 70..74: a real anomaly after the hold-off
    events = feed(st, TAGS, rows[:40], NOMINAL)
    detector = st._groups[tuple(t.name for t in TAGS)].scorer
    learned = detector.learned[0]
    events += feed(st, TAGS, rows[40:60], NOMINAL, start=40.0)
    assert detector.learned[0] == learned  # nothing learned while stopped or in hold-off
    events += feed(st, TAGS, rows[60:], NOMINAL, start=60.0)
    assert summary(events) == [("opened", "forecast_residual", "c.t", 72.0)]  # 70, 71, 72

    def value(name: str, labels: dict[str, str]) -> float | None:
        return m.registry.get_sample_value(name, labels)

    assert value("sentinelle_ticks_gated_total", {"reason": "mode"}) == 20  # 10 ticks x 2 tags of c
    assert value("sentinelle_ticks_gated_total", {"reason": "mode_holdoff"}) == 20
    assert value("sentinelle_asset_mode", {"asset": "c", "mode": "running"}) == 1
    assert value("sentinelle_asset_mode", {"asset": "c", "mode": "stopped"}) == 0
    assert value("sentinelle_asset_detection_gated", {"asset": "c"}) == 0
    assert st.modes.mode("c") == "running"


def test_without_the_mode_rule_the_same_stop_alarms() -> None:
    """The control for the test above: the rule is what keeps the stop quiet."""
    st, _ = stage(TAGS)
    rows = noisy(NOMINAL, 40) + [[7.0, 0.0, 0.0]] * 10
    assert summary(feed(st, TAGS, rows, NOMINAL))[:1] == [("opened", "forecast_residual", "c.p", 42.0)]


def test_an_alert_open_when_the_asset_stops_is_cleared_with_the_reason() -> None:
    st, m = stage(TAGS, assets=[STOPPED])
    rows = noisy(NOMINAL, 40)
    rows += [[5.5, 50.0, 0.0]] * 5  # 40..44: c.t anomalous -> opens at 42
    rows += [[5.5, 0.0, 0.0]] * 5  # 45..49: stopped
    events = feed(st, TAGS, rows, NOMINAL)
    assert summary(events) == [
        ("opened", "forecast_residual", "c.t", 42.0),
        ("cleared", "forecast_residual", "c.t", 45.0),
    ]
    assert events[1].message == "c: detection paused (mode stopped)"
    assert m.registry.get_sample_value("sentinelle_asset_detection_gated", {"asset": "c"}) == 1


def test_a_change_between_detecting_modes_still_holds_detection_off() -> None:
    """A load change (two modes that both detect) is a transient too."""
    load = {
        "name": "c",
        "mode_holdoff_s": 5.0,
        "modes": [{"mode": "high_load", "tag": "c.p", "above": 70.0, "detect": True}],
    }
    st, _ = stage(TAGS, assets=[load])
    rows = noisy(NOMINAL, 40)
    rows += [[5.5, 80.0, 0.0]] * 5  # 40..44: high load (hold-off 40..44), c.t and c.p far off their forecasts
    rows += [[5.5, 80.0, 0.0]] * 5  # 45..49: hold-off over, still far off: opens at 47
    events = feed(st, TAGS, rows, NOMINAL)
    assert summary(events) == [("opened", "forecast_residual", "c.p", 47.0)]
