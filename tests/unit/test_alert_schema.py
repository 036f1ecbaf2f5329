"""The published JSON schema must accept exactly what ``AlertEvent.to_dict()`` produces.

Consumers generate code and validators from ``docs/alert-event.schema.json``;
if the record and the schema drift apart, this test says so before they do.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator

from sentinelle.records import SCHEMA_VERSION, AlertEvent, Contributor

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "alert-event.schema.json"

START = 1_700_000_000.0
ALERT_ID = f"chiller1/chiller1.chw_temp_c/forecast_residual/{int(START * 1000)}"


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _event(event: str, *, event_ts: float, end_ts: float | None = None, **overrides: Any) -> AlertEvent:
    fields: dict[str, Any] = dict(
        event=event,
        alert_id=ALERT_ID,
        kind="forecast_residual",
        asset="chiller1",
        tag="chiller1.chw_temp_c",
        severity="warning",
        start_ts=START,
        event_ts=event_ts,
        end_ts=end_ts,
        score=0.9997,
        actual=7.25,
        forecast=5.02,
        lower=4.81,
        upper=5.23,
        unit="degC",
        message="chw_temp_c 7.25 degC is above its forecast range 4.81..5.23",
        contributors=(
            Contributor("chiller1.chw_temp_c", 0.9997, 10.6),
            Contributor("chiller1.pump_dp_kpa", 0.98, -3.2),
        ),
    )
    fields.update(overrides)
    return AlertEvent(**fields)


def _payloads() -> dict[str, dict[str, Any]]:
    """Each event type as it goes on the wire (JSON text parsed back, as a consumer sees it)."""
    events = {
        "opened": _event("opened", event_ts=START + 3),
        "updated": _event(
            "updated",
            event_ts=START + 45.5,
            severity="critical",
            actual=math.nan,
            score=math.inf,
            contributors=(Contributor("chiller1.chw_temp_c", math.nan, -math.inf),),
        ),
        "cleared": _event("cleared", event_ts=START + 120, end_ts=START + 110.25, contributors=()),
    }
    return {name: json.loads(json.dumps(ev.to_dict(), allow_nan=False)) for name, ev in events.items()}


@pytest.mark.parametrize("name", ["opened", "updated", "cleared"])
def test_each_event_type_validates(validator: Draft202012Validator, name: str) -> None:
    payload = _payloads()[name]
    validator.validate(payload)
    assert payload["schema_version"] == SCHEMA_VERSION == 1
    assert payload["event"] == name


def test_non_finite_numbers_are_null_and_still_valid(validator: Draft202012Validator) -> None:
    updated = _payloads()["updated"]
    assert updated["actual"] is None and updated["score"] is None
    assert updated["contributors"] == [{"tag": "chiller1.chw_temp_c", "score": None, "residual_z": None}]
    validator.validate(updated)


def test_timestamps_are_utc_milliseconds(validator: Draft202012Validator) -> None:
    cleared = _payloads()["cleared"]
    assert cleared["start_ts"] == "2023-11-14T22:13:20.000Z"
    assert cleared["end_ts"] == "2023-11-14T22:15:10.250Z"


def _errors(validator: Draft202012Validator, payload: dict[str, Any]) -> list[str]:
    return [e.message for e in validator.iter_errors(payload)]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda p: p.update(event="acknowledged"), "unknown event type"),
        (lambda p: p.update(kind="limit"), "unknown kind"),
        (lambda p: p.update(schema_version=2), "other schema version"),
        (lambda p: p.update(extra_field=1), "additional property"),
        (lambda p: p.pop("alert_id"), "missing field"),
        (lambda p: p.update(actual="NaN"), "number as a string"),
        (lambda p: p.update(event_ts=1_700_000_003.0), "timestamp as a number"),
        (lambda p: p.update(event_ts="2023-11-14T23:13:23.000+01:00"), "timestamp not in UTC Z form"),
        (lambda p: p.update(end_ts="2023-11-14T22:15:10.250Z"), "end_ts on an opened event"),
        (lambda p: p["contributors"].append({"tag": "x", "score": 0.5}), "contributor without residual_z"),
        (lambda p: p.update(alert_id="chiller1-1700000000000"), "alert_id not in its documented form"),
    ],
)
def test_wrong_events_fail(validator: Draft202012Validator, change: Any, why: str) -> None:
    payload = _payloads()["opened"]
    change(payload)
    assert _errors(validator, payload), f"schema accepted an event with {why}"


def test_cleared_event_without_end_fails(validator: Draft202012Validator) -> None:
    payload = _payloads()["cleared"]
    payload["end_ts"] = None
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(payload)


def test_examples_in_the_consumer_docs_validate(validator: Draft202012Validator) -> None:
    """docs/alerts.md shows every event type and both categories; a stale example misleads every consumer."""
    doc = (SCHEMA_PATH.parent / "alerts.md").read_text(encoding="utf-8")
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", doc, re.S)]
    assert {e["event"] for e in examples} == {"cleared", "opened", "updated", "acknowledged"}
    assert {e["category"] for e in examples} == {"process", "data_quality"}
    sent = set(_payloads()["opened"])
    for example in examples:
        validator.validate(example)
        assert set(example) == sent, f"an example lacks or adds fields: {set(example) ^ sent}"
    assert any(e["kind"] == "flood" and e["members"] for e in examples)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("rate_of_change", None),
        ("energy_balance", None),
        ("relation", None),
        ("data_quality", "stuck"),
        ("data_quality", "missing"),
    ],
)
def test_new_kinds_validate_with_their_category(validator: Draft202012Validator, kind: str, reason: str | None) -> None:
    ev = _event(
        "opened",
        event_ts=START,
        kind=kind,
        reason=reason,
        alert_id=f"chiller1/chiller1.power_kw/{kind}/{int(START * 1000)}",
    )
    payload = json.loads(json.dumps(ev.to_dict(), allow_nan=False))
    validator.validate(payload)
    assert payload["category"] == ("data_quality" if kind == "data_quality" else "process")
    assert payload["reason"] == reason


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda p: p.update(kind="data_quality", category="data_quality"), "data_quality without a reason"),
        (lambda p: p.update(reason="stuck"), "a process alert with a data-quality reason"),
        (lambda p: p.update(kind="data_quality", reason="stuck"), "data_quality filed as a process alert"),
        (lambda p: p.update(kind="data_quality", category="data_quality", reason="noisy"), "unknown reason"),
    ],
)
def test_category_and_reason_must_match_the_kind(validator: Draft202012Validator, change: Any, why: str) -> None:
    payload = _payloads()["opened"]
    change(payload)
    assert _errors(validator, payload), f"schema accepted an event with {why}"


def test_flood_and_re_activation_events_validate(validator: Draft202012Validator) -> None:
    """The fields of issue 13.5: subject, reactivations, members (flood alerts list theirs)."""
    flood = _event(
        "opened",
        event_ts=START,
        kind="flood",
        alert_id=f"chiller1/chiller1.chw_temp_c/flood/{int(START * 1000)}",
        subject="chiller1",
        members=("limit_high:chiller1.chw_temp_c", "forecast_residual:chiller1"),
    )
    again = _event("updated", event_ts=START + 9, subject="chiller1", reactivations=2)
    for ev in (flood, again):
        payload = json.loads(json.dumps(ev.to_dict(), allow_nan=False))
        validator.validate(payload)
    assert json.loads(json.dumps(flood.to_dict()))["members"] == list(flood.members)
    assert json.loads(json.dumps(again.to_dict()))["reactivations"] == 2


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda p: p.update(kind="flood", alert_id=p["alert_id"].replace("forecast_residual", "flood")), "no member"),
        (lambda p: p.update(members=["limit_high:chiller1.t"]), "members on a kind other than flood"),
        (lambda p: p.update(reactivations=-1), "negative re-activations"),
        (
            lambda p: p.update(
                kind="flood", alert_id=p["alert_id"].replace("forecast_residual", "flood"), members=["chiller1.t"]
            ),
            "a member without its kind",
        ),
        (
            lambda p: p.update(
                kind="flood", alert_id=p["alert_id"].replace("forecast_residual", "flood"), members=["dq:chiller1.t"]
            ),
            "a member with an unknown kind",
        ),
    ],
)
def test_wrong_flood_fields_fail(validator: Draft202012Validator, change: Any, why: str) -> None:
    payload = _payloads()["opened"]
    change(payload)
    assert _errors(validator, payload), f"schema accepted an event with {why}"


def test_each_event_of_an_alert_has_its_own_stable_event_id(validator: Draft202012Validator) -> None:
    """event_id = alert id + position in the alert's life + event: distinct per event, the same when re-made."""
    from prometheus_client import CollectorRegistry

    from sentinelle.detect.alerts import AlertBook, AlertKey, Observation
    from sentinelle.metrics import Metrics
    from sentinelle.settings import DetectSettings

    def life() -> list[str]:
        settings = DetectSettings(update_min_interval_s=0.0, rearm_steps=0, rearm_min_s=0.0)
        book = AlertBook(Metrics(CollectorRegistry()), settings)
        key: AlertKey = ("limit_high", "c1.t")
        obs = Observation(ts=60.0, actual=5.3, forecast=5.0, lower=4.9, upper=5.1, z=0.1, score=0.0, unit="degC")
        events = [book.open_alert(key, asset="c1", tag="c1.t", obs=obs, magnitude=0.1, contributors=(), limit=5.2)]
        update = book.maybe_update(key, obs, 1.0, ())
        assert update is not None
        events.append(update)
        ack = book.acknowledge("c1", None, by="ana", at_ts=61.0, reason="").events
        events.extend(ack)
        cleared = book.clear(key, obs, ())
        assert cleared is not None
        events.append(cleared)
        for ev in events:
            validator.validate(ev.to_dict())
            assert ev.to_dict()["event_id"] == ev.event_id
        return [ev.event_id for ev in events]

    ids = life()
    assert ids == [
        "c1/c1.t/limit_high/60000:0:opened",
        "c1/c1.t/limit_high/60000:1:updated",
        "c1/c1.t/limit_high/60000:2:acknowledged",
        "c1/c1.t/limit_high/60000:3:cleared",
    ]
    assert life() == ids  # deterministic: the same data gives the same ids
