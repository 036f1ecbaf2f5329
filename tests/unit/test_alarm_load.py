"""Alarms fit for an operator (ISA-18.2 / EEMUA 191), on hand-made sequences through the detect stage.

One row per second.  Each mechanism is shown against a control with the mechanism off
(the control must show the problem, or the test proves nothing): a chattering limit,
one huge residual spike, a flood of one asset; the KPIs on a hand-made event list.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from sentinelle.detect.kpi import alarm_kpis
from sentinelle.detect.maintenance import MaintenanceWindow
from sentinelle.detect.stage import DetectStage
from sentinelle.records import AlertEvent
from sentinelle.settings import TagSettings

from .detect_helpers import OPERATOR_LOAD_OFF, batch, feed, noisy, stage
from .event_helpers import alert_event

SCHEMA = Draft202012Validator(
    json.loads((Path(__file__).resolve().parents[2] / "docs" / "alert-event.schema.json").read_text()),
    format_checker=Draft202012Validator.FORMAT_CHECKER,
)
ON: dict[str, object] = dict(
    severe_opens_at_once=True, rearm_steps=10, rearm_min_s=60.0, chatter_openings=3, flood_openings=10
)
"""The shipped defaults of the operator-load settings (the helper's stage turns them off)."""


def _on_forecast(st: DetectStage, tags: Sequence[TagSettings], rows: Sequence[Sequence[float]]) -> list[AlertEvent]:
    """Feed rows with perfect forecasts (each tick forecasts the next row): only the rules can alarm."""
    events: list[AlertEvent] = []
    for k, values in enumerate(rows):
        events += st.process(batch(tags, float(k), values, rows[min(k + 1, len(rows) - 1)]))
    assert not [e for e in events if e.kind == "forecast_residual"]
    return events


def _opened(events: Sequence[AlertEvent], kind: str | None = None) -> list[AlertEvent]:
    return [e for e in events if e.event == "opened" and (kind is None or e.kind == kind)]


def _valid(events: Sequence[AlertEvent]) -> None:
    for e in events:
        assert list(SCHEMA.iter_errors(json.loads(json.dumps(e.to_dict(), allow_nan=False)))) == []


# -- chattering -----------------------------------------------------------------------------------

LIMITED = (TagSettings(name="c.t", asset="c", node_id="n1", unit="degC", high_limit=5.2),)


def _chatter(on: int, off: int, seconds: int = 600) -> list[list[float]]:
    """c.t above its limit for ``on`` ticks, below for ``off``, repeated for ``seconds`` (after 30 calm ticks)."""
    rows = [[5.0]] * 30
    while len(rows) < 30 + seconds:
        rows += [[5.5]] * on + [[5.0]] * off
    return rows[: 30 + seconds]


@pytest.mark.parametrize(("on", "off"), [(4, 8), (4, 80)])
def test_a_chattering_limit_opens_at_most_3_alerts_in_10_minutes_and_its_chatter_is_counted(on: int, off: int) -> None:
    """(4, 8): back within the re-arm time — one alert goes on; (4, 80): back after it — the latch holds it."""
    control, _ = stage(LIMITED)
    assert len(_opened(_on_forecast(control, LIMITED, _chatter(on, off)))) >= 7  # today: one per cycle

    st, m = stage(LIMITED, **ON)
    events = _on_forecast(st, LIMITED, _chatter(on, off))
    opened = _opened(events)
    assert 1 <= len(opened) <= 3
    reactivated = [e for e in events if e.event == "updated" and e.reactivations > 0]
    assert reactivated, "the returns within the re-arm time are reported as re-activations"
    assert {e.alert_id for e in reactivated} <= {e.alert_id for e in opened}
    assert "re-activated" in reactivated[0].message
    counted = m.registry.get_sample_value(
        "sentinelle_alert_reactivations_total", {"asset": "c", "kind": "limit_high", "subject": "c.t"}
    )
    assert counted == max(e.reactivations for e in events)
    assert m.registry.get_sample_value("sentinelle_alert_openings_total", {"asset": "c", "kind": "limit_high"}) == len(
        opened
    )
    latched = m.registry.get_sample_value("sentinelle_alert_latched_total", {"asset": "c", "kind": "limit_high"})
    assert latched == (1 if off > 60 else None)  # the third alert of the slow chatter is latched
    _valid(events)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_subject_opens_more_than_3_alerts_in_any_10_minutes_whatever_the_chatter(seed: int) -> None:
    """Random on/off runs (1 to 120 ticks each) for 30 minutes: the latch bounds every 10-minute window."""
    rng = np.random.default_rng(seed)
    rows = [[5.0]] * 30
    while len(rows) < 1830:
        rows += [[5.5]] * int(rng.integers(1, 30)) + [[5.0]] * int(rng.integers(1, 120))
    rows = rows[:1830]
    end = float(len(rows))
    control, _ = stage(LIMITED)
    before = alarm_kpis([(_on_forecast(control, LIMITED, rows), 0.0, end)])
    assert before.max_subject_openings_per_10_min > 3
    st, _ = stage(LIMITED, **ON)
    after = alarm_kpis([(_on_forecast(st, LIMITED, rows), 0.0, end)])
    assert 1 <= after.max_subject_openings_per_10_min <= 3
    assert after.reactivations > 0 and after.openings < before.openings


def test_a_cleared_alert_is_sent_once_its_re_arm_time_has_passed() -> None:
    st, m = stage(LIMITED, **ON)
    rows = [[5.0]] * 30 + [[5.5]] * 5 + [[5.0]] * 100  # above 30..34; normal 35..38 -> condition ends at 38
    events = _on_forecast(st, LIMITED, rows)
    assert [(e.event, e.event_ts) for e in events] == [("opened", 32.0), ("cleared", 98.0)]  # 38 + 60 s
    assert events[1].alert_id == events[0].alert_id and events[1].end_ts == 98.0
    assert m.registry.get_sample_value("sentinelle_alerts_active", {"asset": "c", "severity": "critical"}) == 0


# -- one huge spike --------------------------------------------------------------------------------

TAGS = (
    TagSettings(name="c.t", asset="c", node_id="n1", unit="degC"),
    TagSettings(name="c.p", asset="c", node_id="n2", unit="kW"),
)
NOMINAL = [5.0, 100.0]


@pytest.mark.parametrize("merge_by_asset", [True, False])
def test_one_huge_spike_opens_a_critical_alert_at_once(merge_by_asset: bool) -> None:
    rows = [*noisy(NOMINAL, 40), [5.0, 103.0], *noisy(NOMINAL, 20, seed=1)]  # c.p off by 30 spreads at 40 only
    control, _ = stage(TAGS, merge_by_asset=merge_by_asset)
    assert _opened(feed(control, TAGS, rows, NOMINAL)) == []  # k of n waits for 3 of 5: never
    st, _ = stage(TAGS, merge_by_asset=merge_by_asset, **ON)
    events = feed(st, TAGS, rows, NOMINAL)
    (opened,) = _opened(events)
    assert (opened.kind, opened.tag, opened.event_ts, opened.severity) == ("forecast_residual", "c.p", 40.0, "critical")


def test_a_moderate_tick_still_waits_for_k_of_n() -> None:
    """|z| 5 is anomalous but below critical_z 8: one such tick opens nothing, even with severe ticks on."""
    rows = [*noisy(NOMINAL, 40), [5.0, 100.5], *noisy(NOMINAL, 20, seed=1)]
    st, _ = stage(TAGS, **ON)
    assert _opened(feed(st, TAGS, rows, NOMINAL)) == []


# -- flood ------------------------------------------------------------------------------------------

MANY = tuple(TagSettings(name=f"p.t{i:02d}", asset="p", node_id=f"n{i}", high_limit=1.0) for i in range(12))


def _flood_rows(back_at: int = 200, until: int = 720) -> list[list[float]]:
    """Tag i crosses its limit at 30 + 10 i (all 12 within 2 minutes) and stays above until ``back_at``."""
    return [[2.0 if 30 + 10 * i <= k < back_at else 0.0 for i in range(12)] for k in range(until)]


def test_a_flood_of_one_asset_becomes_one_flood_alert_listing_the_rest() -> None:
    control, _ = stage(MANY)
    assert len(_opened(_on_forecast(control, MANY, _flood_rows()))) == 12

    st, m = stage(MANY, **ON)
    events = _on_forecast(st, MANY, _flood_rows())
    ordinary = _opened(events, "limit_high")
    assert [e.tag for e in ordinary] == [f"p.t{i:02d}" for i in range(10)]
    (flood,) = _opened(events, "flood")
    assert (flood.asset, flood.event_ts, flood.members) == ("p", 132.0, ("limit_high:p.t10",))
    flood_events = [e for e in events if e.kind == "flood"]
    assert [e.event for e in flood_events] == ["opened", "updated", "cleared"]
    assert flood_events[1].members == ("limit_high:p.t10", "limit_high:p.t11")
    assert "limit_high:p.t11" in flood_events[1].message
    # The ten ordinary alerts behave as before: they clear (after their re-arm time).
    assert len([e for e in events if e.event == "cleared" and e.kind == "limit_high"]) == 10
    # The flood ends when fewer than 5 openings fall in the last 10 minutes: the 8th was at 100 (+2 for k of n).
    assert flood_events[-1].event_ts == 702.0
    assert m.registry.get_sample_value("sentinelle_alert_flood_members_total", {"asset": "p"}) == 2
    in_window = m.registry.get_sample_value("sentinelle_alert_openings_in_flood_window", {"asset": "p"})
    assert in_window == 3  # at the last tick, 719: the openings at 122, 132, 142
    assert m.registry.get_sample_value("sentinelle_alerts_active", {"asset": "p", "severity": "critical"}) == 0
    _valid(events)


def test_a_flood_waits_for_its_members_to_clear() -> None:
    st, _ = stage(MANY, **ON)
    events = _on_forecast(st, MANY, _flood_rows(back_at=800, until=900))
    (cleared,) = [e for e in events if e.kind == "flood" and e.event == "cleared"]
    # Members back at 800, their conditions end after 4 normal ticks (800..803); the flood at the next tick.
    assert cleared.event_ts == 804.0


# -- KPIs --------------------------------------------------------------------------------------------


def _ev(event: str, ts: float, kind: str, asset: str, subject: str, reactivations: int = 0) -> AlertEvent:
    return alert_event(
        event=event, alert_id=f"{asset}/{subject}/{kind}/{int(ts)}", kind=kind, asset=asset, tag=subject,
        start_ts=ts, event_ts=ts, subject=subject, reactivations=reactivations,
    )  # fmt: skip


def test_kpis_on_a_hand_made_event_list() -> None:
    events = [
        _ev("opened", 10.0, "limit_high", "a", "a.t"),
        _ev("cleared", 15.0, "limit_high", "a", "a.t"),
        _ev("opened", 20.0, "limit_high", "a", "a.t"),
        _ev("opened", 30.0, "limit_high", "a", "a.t"),
        _ev("updated", 40.0, "limit_high", "a", "a.t", reactivations=2),
        _ev("opened", 500.0, "limit_high", "a", "a.t"),
        _ev("opened", 700.0, "flood", "a", "a"),
        _ev("opened", 1900.0, "forecast_residual", "b", "b"),
        _ev("opened", 4000.0, "forecast_residual", "b", "b"),  # after the run's end: not counted
    ]
    k = alarm_kpis([(events, 0.0, 3600.0)])
    # Periods [0, 600) ... [3000, 3600): openings 4, 1, 0, 1, 0, 0.
    assert (k.periods, k.openings, k.peak_per_10_min) == (6, 6, 4)
    assert k.mean_per_10_min == pytest.approx(1.0)
    assert k.share_over_1 == pytest.approx(1 / 6) and k.share_over_10 == 0.0
    a, b = k.per_asset
    assert (a.asset, a.openings, a.peak_per_10_min) == ("a", 5, 4)
    assert a.mean_per_10_min == pytest.approx(5 / 6) and a.share_over_1 == pytest.approx(1 / 6)
    assert (b.asset, b.openings, b.peak_per_10_min, b.share_over_1) == ("b", 1, 1, 0.0)
    assert k.chattering == ("limit_high:a.t",)  # 3 openings within a minute
    assert (k.max_subject_openings_per_10_min, k.over_budget) == (4, ("limit_high:a.t",))
    assert k.bad_actors == (("limit_high:a.t", 4), ("flood:a", 1), ("forecast_residual:b", 1))
    assert (k.reactivations, k.flood_alerts) == (2, 1)
    assert "peak 4 in one period" in k.markdown()[0]


def test_kpis_count_periods_of_every_run_and_assets_missing_from_some() -> None:
    run1 = ([_ev("opened", 100.0, "limit_high", "a", "a.t")], 0.0, 1200.0)
    run2 = ([_ev("opened", 5000.0, "limit_high", "b", "b.t")] * 2, 4800.0, 5400.0)
    k = alarm_kpis([run1, run2])
    assert k.periods == 3 and k.openings == 3
    assert [(x.asset, x.openings, x.share_over_1) for x in k.per_asset] == [
        ("a", 1, 0.0),
        ("b", 2, pytest.approx(1 / 3)),
    ]
    assert k.chattering == () and k.max_subject_openings_per_10_min == 2


def test_operator_load_off_is_the_old_behaviour() -> None:
    """The switches in OPERATOR_LOAD_OFF really turn every mechanism off (the control of every test above)."""
    assert set(OPERATOR_LOAD_OFF) == set(ON)


def test_an_alert_waiting_out_its_re_arm_time_clears_at_once_for_maintenance() -> None:
    st, _ = stage(LIMITED, **ON)
    st.maintenance.calendar.add(MaintenanceWindow("c", 50.0, 60.0, "command", "c-1", by="ana", reason="filter"))
    rows = [[5.0]] * 30 + [[5.5]] * 5 + [[5.0]] * 40  # condition 30..34, ends at 38; re-arm would send at 98
    events = _on_forecast(st, LIMITED, rows)
    assert [(e.event, e.event_ts, e.clear_reason) for e in events] == [
        ("opened", 32.0, None),
        ("cleared", 50.0, "maintenance"),
    ]
    assert "in maintenance until" in events[1].message


def test_a_flood_clears_at_once_when_its_asset_enters_maintenance() -> None:
    st, _ = stage(MANY, **ON)
    st.maintenance.calendar.add(MaintenanceWindow("p", 300.0, 400.0, "command", "c-1", by="ana", reason="overhaul"))
    events = _on_forecast(st, MANY, _flood_rows(back_at=800, until=310))
    flood = [(e.event, e.event_ts, e.clear_reason) for e in events if e.kind == "flood"]
    assert flood == [("opened", 132.0, None), ("updated", 142.0, None), ("cleared", 300.0, "maintenance")]
    assert not st.book.open and not st.book.floods.active
