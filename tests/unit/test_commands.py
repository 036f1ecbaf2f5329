"""Operator commands: strict parsing agrees with the published schemas, and each command is applied once.

The producer side of the contract is ``docs/command.schema.json`` (what may be sent)
and ``docs/command-reply.schema.json`` (what comes back); these tests hold the parser
and the replies to them, and drive the consumer's per-record logic (de-duplication,
rejections counted by reason, silent replay) without a broker.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from prometheus_client import CollectorRegistry

from sentinelle.detect.control import OperatorControl
from sentinelle.detect.maintenance import MaintenanceCalendar, MaintenanceWindow
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent, Command, CommandOutcome
from sentinelle.settings import CommandSettings, KafkaSettings
from sentinelle.sources.command_wire import CommandReply, Rejection, encode_reply, parse_command
from sentinelle.sources.commands import CommandConsumer

DOCS = Path(__file__).resolve().parents[2] / "docs"
NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
NOW_ISO = "2027-01-15T08:00:00Z"


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((DOCS / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


COMMAND_SCHEMA = _validator("command.schema.json")
REPLY_SCHEMA = _validator("command-reply.schema.json")


def _cmd(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"schema_version": 1, "command_id": "c-1", "asset": "chiller1", "by": "ana"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


VALID = {
    "ack one": _cmd(type="ack", alert_id="chiller1/chiller1.chw_temp_c/limit_high/1800000000000"),
    "ack all of the asset": _cmd(type="ack"),
    "ack null alert_id": _cmd(type="ack", alert_id=None, reason="seen, crew on the way"),
    "start": _cmd(type="maintenance.start", until="2027-01-15T16:00:00Z", issued_at=NOW_ISO, reason="filter change"),
    "start with offset and fraction": _cmd(type="maintenance.start", until="2027-01-15T17:00:00.250+01:00"),
    "end": _cmd(type="maintenance.end", issued_at="2027-01-15T12:00:00.5Z"),
}

INVALID = {
    # name: (raw bytes, expected reason)
    "not json": (b"{oops", "invalid_json"),
    "not utf-8": (b'{"a":"\xff"}', "invalid_json"),
    "an array": (b"[1, 2]", "invalid_command"),
    "no version": (json.dumps(_cmd(schema_version=..., type="ack")).encode(), "invalid_command"),
    "version true": (json.dumps(_cmd(schema_version=True, type="ack")).encode(), "invalid_command"),
    "version 2": (json.dumps(_cmd(schema_version=2, type="ack")).encode(), "unsupported_version"),
    "unknown type": (json.dumps(_cmd(type="reboot")).encode(), "unknown_type"),
    "no type": (json.dumps(_cmd()).encode(), "invalid_command"),
    "no command_id": (json.dumps(_cmd(command_id=..., type="ack")).encode(), "invalid_command"),
    "empty command_id": (json.dumps(_cmd(command_id="", type="ack")).encode(), "invalid_command"),
    "command_id with a space": (json.dumps(_cmd(command_id="c 1", type="ack")).encode(), "invalid_command"),
    "numeric command_id": (json.dumps(_cmd(command_id=7, type="ack")).encode(), "invalid_command"),
    "no by": (json.dumps(_cmd(by=..., type="ack")).encode(), "invalid_command"),
    "unknown field": (json.dumps(_cmd(type="ack", priority="high")).encode(), "invalid_command"),
    "start without until": (json.dumps(_cmd(type="maintenance.start")).encode(), "invalid_command"),
    "until without zone": (
        json.dumps(_cmd(type="maintenance.start", until="2027-01-15T16:00:00")).encode(),
        "invalid_command",
    ),
    "until not a date": (
        json.dumps(_cmd(type="maintenance.start", until="2027-02-30T16:00:00Z")).encode(),
        "invalid_command",
    ),
    "until before issued_at": (
        json.dumps(_cmd(type="maintenance.start", until="2027-01-15T07:00:00Z", issued_at=NOW_ISO)).encode(),
        "invalid_command",
    ),
    "end with until": (
        json.dumps(_cmd(type="maintenance.end", until="2027-01-15T16:00:00Z")).encode(),
        "invalid_command",
    ),
    "maintenance with alert_id": (json.dumps(_cmd(type="maintenance.end", alert_id="x")).encode(), "invalid_command"),
    "ack with numeric alert_id": (json.dumps(_cmd(type="ack", alert_id=5)).encode(), "invalid_command"),
}


BEYOND_THE_SCHEMA = {
    "until before issued_at",  # JSON Schema cannot compare two fields
    "until not a date",  # only `format: date-time` catches it, and this jsonschema has no date-time checker
}


@pytest.mark.parametrize("name", list(VALID))
def test_valid_commands_parse_and_match_the_schema(name: str) -> None:
    payload = VALID[name]
    assert list(COMMAND_SCHEMA.iter_errors(payload)) == []
    cmd = parse_command(json.dumps(payload).encode(), record_ts_ms=1_700_000_000_123)
    assert isinstance(cmd, Command), cmd
    assert (cmd.command_id, cmd.type, cmd.asset, cmd.by) == ("c-1", payload["type"], "chiller1", "ana")
    if "issued_at" not in payload:
        assert cmd.issued_at == 1_700_000_000.123  # the record's timestamp stands in
    if payload["type"] == "maintenance.start":
        assert cmd.until is not None and cmd.until > cmd.issued_at


def test_parsed_times_and_fields() -> None:
    cmd = parse_command(json.dumps(VALID["start"]).encode(), record_ts_ms=0)
    assert isinstance(cmd, Command)
    assert (cmd.issued_at, cmd.until, cmd.reason) == (NOW, NOW + 8 * 3600, "filter change")
    cmd = parse_command(json.dumps(VALID["start with offset and fraction"]).encode(), record_ts_ms=0)
    assert isinstance(cmd, Command) and cmd.until == NOW + 8 * 3600 + 0.25
    cmd = parse_command(json.dumps(VALID["ack one"]).encode(), record_ts_ms=0)
    assert isinstance(cmd, Command) and cmd.alert_id == "chiller1/chiller1.chw_temp_c/limit_high/1800000000000"


@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_commands_are_rejected_with_a_reason_and_the_schema_agrees(name: str) -> None:
    raw, reason = INVALID[name]
    result = parse_command(raw, record_ts_ms=0)
    assert isinstance(result, Rejection), result
    assert result.reason == reason
    assert result.message
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return
    if name not in BEYOND_THE_SCHEMA:
        assert list(COMMAND_SCHEMA.iter_errors(payload)), f"the schema accepts {name!r}"


def test_rejection_echoes_what_could_be_read() -> None:
    result = parse_command(json.dumps(_cmd(type="reboot", command_id="c-77")).encode(), record_ts_ms=0)
    assert isinstance(result, Rejection)
    assert (result.command_id, result.type, result.asset) == ("c-77", "reboot", "chiller1")
    assert parse_command(None, record_ts_ms=0) == Rejection("invalid_json", "the record has no value (a tombstone)")


@pytest.mark.parametrize(
    "reply",
    [
        CommandReply("accepted", None, "ok", "c-1", "ack", "chiller1", None, 0, 4, NOW, "sentinelle", ("a/b/c/1",)),
        CommandReply("rejected", "unknown_type", "unknown type", "c-2", "reboot", "chiller1", None, 2, 9, NOW, "s"),
        CommandReply("rejected", "invalid_json", "not JSON", None, None, None, None, 0, 0, NOW + 0.5, "s"),
        CommandReply("duplicate", None, "already applied", "c-1", "ack", "chiller1", "x", 0, 5, NOW, "sentinelle"),
    ],
)
def test_replies_match_their_schema(reply: CommandReply) -> None:
    key, value, headers = encode_reply(reply)
    payload = json.loads(value)
    assert list(REPLY_SCHEMA.iter_errors(payload)) == []
    assert key == (reply.asset or "").encode()
    assert dict(headers) == {"schema_version": b"1", "status": reply.status.encode()}


def test_reply_schema_rejects_a_rejection_without_reason() -> None:
    payload = CommandReply("rejected", None, "?", "c", "ack", "a", None, 0, 0, NOW, "s").to_dict()
    assert list(REPLY_SCHEMA.iter_errors(payload))


# --- applying commands ---------------------------------------------------------------------


class FakeBook:
    """Acknowledges alerts it was told are open, once each."""

    def __init__(self, open_alerts: dict[str, str]) -> None:
        self.open_alerts = dict(open_alerts)  # alert_id -> asset
        self.acked: list[tuple[str, str, float]] = []

    def acknowledge(self, asset: str, alert_id: str | None, *, by: str, at_ts: float, reason: str) -> CommandOutcome:
        ids = [a for a, owner in self.open_alerts.items() if owner == asset and alert_id in (None, a)]
        if not ids:
            return CommandOutcome("rejected", "no such open alert", "unknown_alert")
        for a in ids:
            self.acked.append((a, by, at_ts))
            del self.open_alerts[a]
        return CommandOutcome(
            "accepted", "acknowledged", alert_ids=tuple(ids), events=tuple(_ack_event(a) for a in ids)
        )


def _ack_event(alert_id: str) -> AlertEvent:
    return AlertEvent(
        "acknowledged",
        alert_id,
        "limit_high",
        "chiller1",
        "chiller1.chw_temp_c",
        "critical",
        NOW,
        NOW,
        None,
        1.0,
        6.0,
        5.0,
        4.8,
        5.2,
        "degC",
        "acknowledged",
    )


def _command(kind: str, **kw: Any) -> Command:
    fields: dict[str, Any] = {"command_id": "c-1", "type": kind, "asset": "chiller1", "by": "ana", "issued_at": NOW}
    fields.update(kw)
    return Command(**fields)


def _control(book: FakeBook | None = None, calendar: MaintenanceCalendar | None = None) -> OperatorControl:
    b = book or FakeBook({})
    return OperatorControl({"chiller1", "ahu1"}, calendar or MaintenanceCalendar(), lambda: b, max_maintenance_s=86_400)


def test_maintenance_start_adds_a_window_from_issue_to_until() -> None:
    control = _control()
    out = control.apply_command(_command("maintenance.start", until=NOW + 3600), now=NOW + 5, replay=False)
    assert out.status == "accepted" and out.reason is None
    cal = control.calendar
    assert not cal.in_maintenance("chiller1", NOW - 1)
    assert cal.in_maintenance("chiller1", NOW) and cal.in_maintenance("chiller1", NOW + 3599)
    assert not cal.in_maintenance("chiller1", NOW + 3600)
    assert not cal.in_maintenance("ahu1", NOW + 10)
    (window,) = cal.windows("chiller1")
    assert (window.origin, window.window_id, window.by) == ("command", "c-1", "ana")


@pytest.mark.parametrize(
    ("command", "now", "reason"),
    [
        (_command("maintenance.start", until=NOW + 3600), NOW + 3600, "expired"),  # waited in the topic too long
        (_command("maintenance.start", until=NOW + 86_401), NOW, "too_long"),
        (_command("maintenance.start", asset="pump9", until=NOW + 60), NOW, "unknown_asset"),
        (_command("maintenance.end"), NOW, "not_in_maintenance"),
        (_command("ack", asset="pump9"), NOW, "unknown_asset"),
        (_command("ack", alert_id="nope"), NOW, "unknown_alert"),
    ],
)
def test_commands_that_cannot_apply_are_rejected_with_their_reason(command: Command, now: float, reason: str) -> None:
    control = _control()
    out = control.apply_command(command, now=now, replay=False)
    assert (out.status, out.reason) == ("rejected", reason)
    assert len(control.calendar) == 0


def test_maintenance_end_cuts_command_and_configured_windows() -> None:
    cal = MaintenanceCalendar([MaintenanceWindow("chiller1", NOW - 60, NOW + 600, "config", "config:0")])
    control = _control(calendar=cal)
    control.apply_command(_command("maintenance.start", command_id="c-2", until=NOW + 7200), now=NOW, replay=False)
    out = control.apply_command(
        _command("maintenance.end", command_id="c-3", issued_at=NOW + 30), now=NOW, replay=False
    )
    assert out.status == "accepted"
    assert cal.in_maintenance("chiller1", NOW + 29)
    assert not cal.in_maintenance("chiller1", NOW + 30)
    assert not cal.in_maintenance("chiller1", NOW + 500)


def test_ack_goes_to_the_live_book_and_is_skipped_on_replay() -> None:
    book = FakeBook({"a-1": "chiller1", "a-2": "chiller1", "b-1": "ahu1"})
    control = _control(book)
    skipped = control.apply_command(_command("ack", alert_id="a-1"), now=NOW, replay=True)
    assert skipped.status == "accepted" and not skipped.events and book.acked == []
    out = control.apply_command(_command("ack", alert_id="a-1"), now=NOW, replay=False)
    assert out.alert_ids == ("a-1",) and [e.event for e in out.events] == ["acknowledged"]
    out = control.apply_command(_command("ack", command_id="c-2"), now=NOW, replay=False)
    assert out.alert_ids == ("a-2",)  # every open alert of the asset, not ahu1's
    assert [a for a, _, _ in book.acked] == ["a-1", "a-2"]


# --- the consumer's per-record logic, without a broker ----------------------------------


class RecordingHandler:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def apply_command(self, command: Command, *, now: float, replay: bool) -> CommandOutcome:
        self.calls.append((command.command_id, replay))
        if command.asset == "pump9":
            return CommandOutcome("rejected", "unknown asset", "unknown_asset")
        if command.asset == "boom":
            raise RuntimeError("a bug")
        return CommandOutcome("accepted", "ok", events=(_ack_event(command.command_id),))


def _record(value: bytes | None, offset: int, timestamp: int = 1_700_000_000_000) -> SimpleNamespace:
    return SimpleNamespace(topic="sentinelle.commands", partition=0, offset=offset, timestamp=timestamp, value=value)


async def _noop(events: list[AlertEvent]) -> None:
    return None


def _consumer(handler: RecordingHandler) -> tuple[CommandConsumer, Metrics]:
    metrics = Metrics(CollectorRegistry(auto_describe=True))
    consumer = CommandConsumer(
        CommandSettings(enabled=True),
        KafkaSettings(),
        metrics,
        handler,
        _noop,
        clock=lambda: NOW,
    )
    return consumer, metrics


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(f"sentinelle_{name}_total", labels) or 0.0


def test_a_command_id_is_applied_once_and_duplicates_are_answered() -> None:
    handler = RecordingHandler()
    consumer, metrics = _consumer(handler)
    raw = json.dumps(_cmd(type="ack", command_id="c-5")).encode()
    reply, events = consumer.applier.apply(_record(raw, 0), replay=False)
    assert reply is not None and reply.status == "accepted" and [e.alert_id for e in events] == ["c-5"]
    reply, events = consumer.applier.apply(_record(raw, 1), replay=False)
    assert reply is not None and (reply.status, reply.offset, events) == ("duplicate", 1, [])
    assert handler.calls == [("c-5", False)]
    assert _value(metrics, "commands", type="ack", status="accepted") == 1
    assert _value(metrics, "commands", type="ack", status="duplicate") == 1


def test_malformed_records_are_counted_by_reason_and_answered() -> None:
    handler = RecordingHandler()
    consumer, metrics = _consumer(handler)
    for offset, (raw, _reason) in enumerate(INVALID.values()):
        reply, events = consumer.applier.apply(_record(raw, offset), replay=False)
        assert reply is not None and reply.status == "rejected" and events == []
        assert list(REPLY_SCHEMA.iter_errors(reply.to_dict())) == []
    assert handler.calls == []
    expected: dict[str, int] = {}
    for _raw, reason in INVALID.values():
        expected[reason] = expected.get(reason, 0) + 1
    for reason, n in expected.items():
        assert _value(metrics, "commands_rejected", reason=reason) == n, reason
    assert _value(metrics, "commands", type="unknown", status="rejected") >= 3


def test_rejection_by_the_handler_and_a_bug_in_it_are_answered_not_raised() -> None:
    handler = RecordingHandler()
    consumer, metrics = _consumer(handler)
    reply, _ = consumer.applier.apply(_record(json.dumps(_cmd(type="ack", asset="pump9")).encode(), 0), replay=False)
    assert reply is not None and (reply.status, reply.reason) == ("rejected", "unknown_asset")
    raw = json.dumps(_cmd(type="ack", asset="boom", command_id="c-9")).encode()
    reply, _ = consumer.applier.apply(_record(raw, 1), replay=False)
    assert reply is not None and reply.status == "rejected"
    assert _value(metrics, "commands_rejected", reason="unknown_asset") == 1


def test_replay_applies_silently_and_remembers_ids() -> None:
    handler = RecordingHandler()
    consumer, metrics = _consumer(handler)
    raw = json.dumps(_cmd(type="maintenance.end", command_id="c-1")).encode()
    assert consumer.applier.apply(_record(raw, 0), replay=True) == (None, [])
    assert consumer.applier.apply(_record(b"garbage", 1), replay=True) == (None, [])
    assert handler.calls == [("c-1", True)]
    assert _value(metrics, "commands_replayed") == 1
    assert _value(metrics, "commands_rejected", reason="invalid_json") == 0
    # The same command re-sent after the restart is a duplicate, not a second application.
    reply, _ = consumer.applier.apply(_record(raw, 2), replay=False)
    assert reply is not None and reply.status == "duplicate"
    assert handler.calls == [("c-1", True)]


def test_a_record_without_timestamp_is_dated_by_the_clock() -> None:
    handler = RecordingHandler()
    consumer, _ = _consumer(handler)
    seen: list[float] = []

    class Capture(RecordingHandler):
        def apply_command(self, command: Command, *, now: float, replay: bool) -> CommandOutcome:
            seen.append(command.issued_at)
            return CommandOutcome("accepted", "ok")

    consumer.applier.handler = Capture()
    consumer.applier.apply(_record(json.dumps(_cmd(type="ack")).encode(), 0, timestamp=-1), replay=False)
    assert seen == [NOW]
