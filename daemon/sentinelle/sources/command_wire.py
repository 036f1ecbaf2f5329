"""The wire format of operator commands and their replies: strict parsing in, JSON out.

Kept apart from the consumer (``commands.py``) because it is the contract with
every producer a plant writes (``docs/command.schema.json`` and
``docs/command-reply.schema.json``): it is pure (bytes in, records out, no Kafka,
no clock) and tested on its own against the schemas.  A record that is not a
valid command becomes a :class:`Rejection` with a reason, never an exception.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..records import COMMAND_TYPES, Command, CommandStatus, RejectReason

COMMAND_SCHEMA_VERSION: Final = 1
"""Version of ``docs/command.schema.json`` (commands) and ``docs/command-reply.schema.json`` (replies)."""

# --- records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejection:
    """A command record that is not a valid command, with what could be read of it for the reply."""

    reason: RejectReason
    message: str
    command_id: str | None = None
    type: str | None = None
    asset: str | None = None
    alert_id: str | None = None


@dataclass(frozen=True, slots=True)
class CommandReply:
    """The answer to one command record, published on ``commands.reply_topic`` (``docs/command-reply.schema.json``)."""

    status: CommandStatus
    reason: RejectReason | None
    message: str
    command_id: str | None
    type: str | None
    asset: str | None
    alert_id: str | None
    partition: int
    offset: int
    replied_at: float
    daemon: str
    alert_ids: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": COMMAND_SCHEMA_VERSION,
            "command_id": self.command_id,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "type": self.type,
            "asset": self.asset,
            "alert_id": self.alert_id,
            "alert_ids": list(self.alert_ids),
            "partition": self.partition,
            "offset": self.offset,
            "replied_at": _iso(self.replied_at),
            "daemon": self.daemon,
        }


# --- parsing and validation ----------------------------------------------------------------

_Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s]+$")]
_Name = Annotated[str, Field(min_length=1, max_length=200)]
_RFC3339 = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
_Timestamp = Annotated[str, Field(pattern=_RFC3339)]
"""RFC 3339 with a zone (Z or an offset): a time without one would be read in whatever zone the daemon runs in."""


class _CommandModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    schema_version: Literal[1]
    command_id: _Id
    asset: _Name
    by: _Name
    reason: Annotated[str, Field(max_length=1000)] = ""
    issued_at: _Timestamp | None = None


class _MaintenanceStart(_CommandModel):
    type: Literal["maintenance.start"]
    until: _Timestamp


class _MaintenanceEnd(_CommandModel):
    type: Literal["maintenance.end"]


class _Ack(_CommandModel):
    type: Literal["ack"]
    alert_id: Annotated[str, Field(min_length=1, max_length=1000)] | None = None


_COMMAND_ADAPTER: TypeAdapter[_MaintenanceStart | _MaintenanceEnd | _Ack] = TypeAdapter(
    Annotated[_MaintenanceStart | _MaintenanceEnd | _Ack, Field(discriminator="type")]
)


def parse_command(value: bytes | None, *, record_ts_ms: int) -> Command | Rejection:
    """The command in a record's value, or why it is not one.  Never raises.

    ``record_ts_ms`` (the Kafka record's timestamp) stands in for a missing ``issued_at``.

    >>> parse_command(b"not json", record_ts_ms=0).reason
    'invalid_json'
    >>> parse_command(b'{"schema_version":2,"command_id":"c-9"}', record_ts_ms=0).reason
    'unsupported_version'
    >>> parse_command(b'{"schema_version":1,"command_id":"c-9","type":"reboot"}', record_ts_ms=0).reason
    'unknown_type'
    """
    if value is None:
        return Rejection("invalid_json", "the record has no value (a tombstone)")
    try:
        obj = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return Rejection("invalid_json", f"not UTF-8 JSON: {e}"[:300])
    if not isinstance(obj, dict):
        return Rejection("invalid_command", f"a command is a JSON object, not {type(obj).__name__}")
    echo = {
        "command_id": _str_or_none(obj.get("command_id")),
        "type": _str_or_none(obj.get("type")),
        "asset": _str_or_none(obj.get("asset")),
        "alert_id": _str_or_none(obj.get("alert_id")),
    }
    version = obj.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int | float):  # Literal[1] would take true
        return Rejection("invalid_command", "schema_version: must be the number 1", **echo)
    if version != COMMAND_SCHEMA_VERSION:
        return Rejection(
            "unsupported_version",
            f"schema_version {version} is not supported (this daemon reads {COMMAND_SCHEMA_VERSION})",
            **echo,
        )
    kind = obj.get("type")
    if isinstance(kind, str) and kind not in COMMAND_TYPES:
        return Rejection("unknown_type", f"unknown type {kind[:50]!r} (known: {', '.join(COMMAND_TYPES)})", **echo)
    try:
        model = _COMMAND_ADAPTER.validate_json(value, strict=True)
    except ValidationError as e:
        return Rejection("invalid_command", _validation_message(e), **echo)
    try:
        issued_at = _epoch(model.issued_at, "issued_at") if model.issued_at is not None else record_ts_ms / 1000
        until = _epoch(model.until, "until") if isinstance(model, _MaintenanceStart) else None
    except ValueError as e:
        return Rejection("invalid_command", str(e), **echo)
    if until is not None and until <= issued_at:
        return Rejection("invalid_command", "until: must be later than issued_at", **echo)
    return Command(
        command_id=model.command_id,
        type=model.type,
        asset=model.asset,
        by=model.by,
        issued_at=issued_at,
        reason=model.reason,
        alert_id=model.alert_id if isinstance(model, _Ack) else None,
        until=until,
    )


def _epoch(text: str, name: str) -> float:
    """Seconds since the epoch of an RFC 3339 time the schema's pattern already accepted."""
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a valid date and time") from None


def _validation_message(e: ValidationError) -> str:
    """The first problem, naming the field (the discriminator's tag is noise to a producer)."""
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if p not in COMMAND_TYPES) or "command"
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (and {len(e.errors()) - 1} more problems)" if len(e.errors()) > 1 else ""
    return f"{loc}: {msg}{more}"[:500]


def _str_or_none(x: object) -> str | None:
    return x[:1000] if isinstance(x, str) else None


def encode_reply(reply: CommandReply) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key (the asset, empty when unknown), compact JSON value and headers of a reply record.

    >>> r = CommandReply("accepted", None, "ok", "c-1", "ack", "chiller1", None, 0, 7, 1_700_000_000.0, "sentinelle")
    >>> key, value, headers = encode_reply(r)
    >>> key, headers, value[:45]
    (b'chiller1', [('schema_version', b'1'), ('status', b'accepted')], b'{"schema_version":1,"command_id":"c-1","statu')
    """
    value = json.dumps(reply.to_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    headers = [("schema_version", str(COMMAND_SCHEMA_VERSION).encode()), ("status", reply.status.encode())]
    return (reply.asset or "").encode(), value.encode(), headers


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
