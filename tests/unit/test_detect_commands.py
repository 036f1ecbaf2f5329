"""Maintenance and acknowledgement in the detect stage, on hand-made sequences.

While an asset is in maintenance: its open alerts clear (``clear_reason`` maintenance),
nothing opens, its detectors do not learn, the gauge says so and the alerts kept from
opening are counted.  An acknowledgement publishes one ``acknowledged`` event, the
alert stays open, and its later events say who acknowledged it.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from sentinelle.detect.control import OperatorControl
from sentinelle.detect.maintenance import MaintenanceWindow, calendar_from_settings
from sentinelle.detect.stage import DetectStage
from sentinelle.errors import ConfigError
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent, Command
from sentinelle.settings import CommandSettings, MaintenanceSettings, TagSettings, load_settings

from .detect_helpers import feed, noisy, stage

TAGS = (
    TagSettings(name="c.t", asset="c", node_id="n1", unit="degC", high_limit=5.2),
    TagSettings(name="c.p", asset="c", node_id="n2", unit="kW"),
    TagSettings(name="d.x", asset="d", node_id="n3"),
)
NOMINAL = [5.0, 100.0, 0.0]
HOT = [5.5, 100.0, 0.0]
"""c.t above its high limit 5.2, forecast to be there: a limit alert and no residual one."""
SCHEMA = Draft202012Validator(
    json.loads((Path(__file__).resolve().parents[2] / "docs" / "alert-event.schema.json").read_text()),
    format_checker=Draft202012Validator.FORMAT_CHECKER,
)


def _get(m: Metrics, name: str, **labels: str) -> float:
    return m.registry.get_sample_value(name, labels) or 0.0


def _window(asset: str, start: float, end: float) -> MaintenanceWindow:
    return MaintenanceWindow(asset, start, end, "command", "c-1", by="ana", reason="filter change")


def test_maintenance_clears_open_alerts_and_keeps_new_ones_from_opening() -> None:
    st, m = stage(TAGS)
    st.maintenance.calendar.add(_window("c", 40.0, 60.0))
    hot = [[5.5, 100.0, 0.0]] * 40  # c.t above its high limit from tick 30 to 69, through the whole window
    events = feed(st, TAGS, noisy(NOMINAL, 30) + hot, NOMINAL)
    limit = [e for e in events if e.kind == "limit_high"]
    assert [(e.event, e.event_ts, e.clear_reason) for e in limit] == [
        ("opened", 32.0, None),  # 3 of 5
        ("cleared", 40.0, "maintenance"),  # first tick in maintenance
        ("opened", 62.0, None),  # the condition is still there after it: a new alert
    ]
    assert limit[0].alert_id != limit[2].alert_id
    assert "in maintenance until" in limit[1].message and "ana" in limit[1].message
    assert limit[1].to_dict()["clear_reason"] == "maintenance"
    assert list(SCHEMA.iter_errors(limit[1].to_dict())) == []
    assert not [e for e in events if e.asset == "d"]
    # One alert kept from opening (the open rule met at 42 and held), two rows gated for 20 ticks.
    assert _get(m, "sentinelle_alerts_suppressed_total", asset="c", reason="maintenance") == 1
    assert _get(m, "sentinelle_ticks_gated_total", reason="maintenance") == 40
    assert _get(m, "sentinelle_asset_maintenance", asset="c") == 0  # over at 60
    assert m.registry.get_sample_value("sentinelle_asset_maintenance", {"asset": "d"}) == 0


def test_the_gauge_follows_the_data_time() -> None:
    st, m = stage(TAGS)
    st.maintenance.calendar.add(_window("c", 10.0, 20.0))
    feed(st, TAGS, noisy(NOMINAL, 15), NOMINAL)
    assert _get(m, "sentinelle_asset_maintenance", asset="c") == 1
    assert _get(m, "sentinelle_asset_maintenance", asset="d") == 0


def test_detectors_do_not_learn_during_maintenance() -> None:
    """What a machine does while being worked on must not widen what its detectors find normal.

    During the window c.p's residual swings wider and wider, each swing only a little
    wider than the last — a detector that learned from it would end up taking z = 3 as
    normal.  Afterwards a z = 5 offset must still open an alert.
    """
    st, _ = stage(TAGS)
    st.maintenance.calendar.add(_window("c", 60.0, 260.0))
    swings = [min(0.3 * 1.05**k, 8.0) * (1 if k % 2 else -1) for k in range(200)]
    works = [[5.0, 100.0 + 0.1 * z, 0.0] for z in swings]
    after = [[5.0, 100.5, 0.0]] * 6  # z = +5, now outside maintenance
    events = feed(st, TAGS, noisy(NOMINAL, 60) + works + after, NOMINAL)
    residual = [(e.event, e.event_ts) for e in events if e.kind == "forecast_residual"]
    assert residual == [("opened", 262.0)]


def test_a_residual_alert_during_a_fault_clears_for_maintenance() -> None:
    st, _ = stage(TAGS)
    st.maintenance.calendar.add(_window("c", 70.0, 100.0))
    fault = [[5.0, 103.0, 0.0]] * 20  # c.p 3 kW off (z = 30) from 60
    events = feed(st, TAGS, noisy(NOMINAL, 60) + fault, NOMINAL)
    residual = [(e.event, e.event_ts, e.clear_reason) for e in events if e.kind == "forecast_residual"]
    assert residual == [("opened", 62.0, None), ("cleared", 70.0, "maintenance")]


def _open_limit_alert() -> tuple[DetectStage, Metrics, AlertEvent]:
    st, m = stage(TAGS)
    events = feed(st, TAGS, noisy(NOMINAL, 30), NOMINAL) + feed(st, TAGS, [HOT] * 5, HOT, start=30.0)
    (opened,) = [e for e in events if e.event == "opened" and e.kind == "limit_high"]
    return st, m, opened


def test_ack_publishes_once_and_the_alert_stays_open_until_it_clears() -> None:
    st, m, opened = _open_limit_alert()
    book = st.book
    out = book.acknowledge("c", opened.alert_id, by="ana", at_ts=1_700_000_000.0, reason="crew on site")
    assert (out.status, out.alert_ids) == ("accepted", (opened.alert_id,))
    (ack,) = out.events
    assert (ack.event, ack.alert_id, ack.acknowledged_by, ack.acknowledged_at) == (
        "acknowledged",
        opened.alert_id,
        "ana",
        1_700_000_000.0,
    )
    assert ack.event_ts == 34.0  # the newest tick: never older than the alert's earlier events
    assert ack.end_ts is None and ack.actual == 5.5 and "crew on site" in ack.message
    payload = ack.to_dict()
    assert list(SCHEMA.iter_errors(payload)) == []
    assert payload["acknowledged_at"] == "2023-11-14T22:13:20.000Z"
    assert _get(m, "sentinelle_alert_events_total", event="acknowledged") == 1

    again = book.acknowledge("c", opened.alert_id, by="bob", at_ts=1_700_000_100.0, reason="")
    assert (again.status, again.reason, again.events) == ("rejected", "already_acknowledged", ())
    assert _get(m, "sentinelle_alerts_active", asset="c", severity="critical") == 1

    # It clears like any alert, and says who acknowledged it.
    events = feed(st, TAGS, [[5.0, 100.0, 0.0]] * 5, NOMINAL, start=35.0)
    (cleared,) = [e for e in events if e.event == "cleared" and e.kind == "limit_high"]
    assert (cleared.alert_id, cleared.acknowledged_by, cleared.clear_reason) == (opened.alert_id, "ana", "normal")
    assert list(SCHEMA.iter_errors(cleared.to_dict())) == []
    late = book.acknowledge("c", opened.alert_id, by="bob", at_ts=1_700_000_200.0, reason="")
    assert (late.status, late.reason) == ("rejected", "alert_closed")


def test_ack_of_unknown_alerts_and_of_a_whole_asset() -> None:
    st, _, opened = _open_limit_alert()
    book = st.book
    assert book.acknowledge("c", "c/c.t/limit_high/1", by="a", at_ts=0.0, reason="").reason == "unknown_alert"
    assert book.acknowledge("d", opened.alert_id, by="a", at_ts=0.0, reason="").reason == "unknown_alert"
    assert book.acknowledge("d", None, by="a", at_ts=0.0, reason="").reason == "no_open_alert"
    out = book.acknowledge("c", None, by="a", at_ts=0.0, reason="")
    assert out.alert_ids == (opened.alert_id,) and len(out.events) == 1
    assert book.acknowledge("c", None, by="a", at_ts=0.0, reason="").reason == "already_acknowledged"


def test_commands_reach_the_stage_through_the_control() -> None:
    st, _ = stage(TAGS)
    control = OperatorControl({"c", "d"}, st.maintenance.calendar, lambda: st.book, max_maintenance_s=3600)
    feed(st, TAGS, noisy(NOMINAL, 30), NOMINAL)
    feed(st, TAGS, [HOT] * 5, HOT, start=30.0)
    ack = control.apply_command(Command("k-1", "ack", "c", "ana", issued_at=100.0), now=100.0, replay=False)
    assert [e.event for e in ack.events] == ["acknowledged"]
    start = Command("k-2", "maintenance.start", "c", "ana", issued_at=36.0, until=50.0)
    assert control.apply_command(start, now=36.0, replay=False).status == "accepted"
    events = feed(st, TAGS, [HOT] * 20, HOT, start=35.0)
    assert [(e.event, e.event_ts, e.clear_reason) for e in events] == [
        ("cleared", 36.0, "maintenance"),
        ("opened", 52.0, None),
    ]


def test_configured_windows_and_their_validation(tmp_path: Path) -> None:
    tags = [{"name": "c.t", "asset": "c", "node_id": "n1"}]
    s = load_settings(
        tags=tags,
        maintenance={"windows": [{"asset": "c", "start": "2026-12-01T06:00:00Z", "end": "2026-12-01T08:00:00+01:00"}]},
    )
    cal = calendar_from_settings(s.maintenance)
    (w,) = cal.windows("c")
    assert (w.start_ts, w.end_ts, w.origin, w.window_id) == (1_796_104_800.0, 1_796_108_400.0, "config", "config:0")
    bad = [
        (
            {"asset": "z", "start": "2026-12-01T06:00:00Z", "end": "2026-12-01T07:00:00Z"},
            "maintenance.windows[0].asset",
        ),
        ({"asset": "c", "start": "2026-12-01T06:00:00", "end": "2026-12-01T07:00:00Z"}, "maintenance.windows[0].start"),
        ({"asset": "c", "start": "2026-12-01T06:00:00Z", "end": "2026-12-01T06:00:00Z"}, "maintenance.windows[0]"),
    ]
    for window, field in bad:
        with pytest.raises(ConfigError, match=re.escape(field)):
            load_settings(tags=tags, maintenance={"windows": [window]})
    with pytest.raises(ConfigError, match=r"commands\.enabled"):
        load_settings(tags=tags, kafka={"enabled": False}, commands={"enabled": True})


def test_the_example_config_documents_commands_and_maintenance() -> None:
    """config/sentinelle.toml shows the [commands] defaults, and its commented window loads when uncommented."""
    text = (Path(__file__).resolve().parents[2] / "config" / "sentinelle.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    assert CommandSettings(**data["commands"]) == CommandSettings()
    section = text[text.index("\n[maintenance]") : text.index("\n# ---", text.index("\n[maintenance]"))]
    uncommented = "\n".join(line.removeprefix("# ") for line in section.splitlines())
    windows = MaintenanceSettings(**tomllib.loads(uncommented)["maintenance"]).windows
    assert [(w.asset, w.end.timestamp() - w.start.timestamp()) for w in windows] == [("chiller1", 8 * 3600.0)]


def test_the_schema_holds_the_new_fields_to_their_events() -> None:
    st, _, opened = _open_limit_alert()
    out = st.book.acknowledge("c", opened.alert_id, by="ana", at_ts=1_700_000_000.0, reason="")
    ack = out.events[0].to_dict()
    assert list(SCHEMA.iter_errors(ack)) == []
    broken = [
        {**ack, "acknowledged_by": None},  # an acknowledgement without who
        {**ack, "acknowledged_at": None},  # ... or without when
        {**opened.to_dict(), "clear_reason": "normal"},  # a clear reason on an opened event
        {**opened.to_dict(), "event": "cleared", "end_ts": ack["event_ts"], "clear_reason": None},
        {**opened.to_dict(), "event": "cleared", "end_ts": ack["event_ts"], "clear_reason": "tired"},
    ]
    for payload in broken:
        assert list(SCHEMA.iter_errors(payload)), payload
