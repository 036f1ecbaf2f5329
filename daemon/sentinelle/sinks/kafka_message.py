"""One alert event as a Kafka record (key, value, headers), and as a record of the on-disk spool.

Key = asset (UTF-8), so every event of an asset lands in one partition and keeps its
order; value = compact JSON of :meth:`AlertEvent.to_dict` (``docs/alert-event.schema.json``);
headers ``schema_version`` and ``event`` so consumers can route without parsing.  An event is
encoded once, in :meth:`KafkaSink.send <sentinelle.sinks.kafka.KafkaSink.send>`, so a malformed one
fails there, not in the delivery task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..records import AlertEvent


@dataclass(frozen=True, slots=True)
class Message:
    """An event already encoded: what the queue, the spool and the producer hold."""

    event_id: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    def to_record(self) -> bytes:
        """The spool's payload: readable JSON (key, value and headers are UTF-8 text)."""
        headers = [[name, value.decode()] for name, value in self.headers]
        record = {"id": self.event_id, "key": self.key.decode(), "value": self.value.decode(), "headers": headers}
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_record(cls, payload: bytes) -> Message:
        """Raises ``ValueError``, ``KeyError`` or ``TypeError`` for a payload this version did not write.

        >>> m = Message("a/t/k/1:0:opened", b"a", b'{"x":1}', (("event", b"opened"),))
        >>> Message.from_record(m.to_record()) == m
        True
        """
        d = json.loads(payload)
        headers = tuple((str(name), str(value).encode()) for name, value in d["headers"])
        return cls(str(d["id"]), str(d["key"]).encode(), str(d["value"]).encode(), headers)


def encode(event: AlertEvent) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the Kafka record of ``event``.

    ``allow_nan=False``: JSON has no NaN, and :meth:`AlertEvent.to_dict` already
    turns non-finite numbers into null; anything else is a bug to report, not to
    publish as invalid JSON.

    >>> from sentinelle.records import AlertEvent
    >>> ev = AlertEvent("opened", "chiller1/chiller1.chw_temp_c/limit_high/1700000000000",
    ...                 "limit_high", "chiller1", "chiller1.chw_temp_c", "warning",
    ...                 1_700_000_000.0, 1_700_000_000.0, None, 1.0, 9.1, 5.0, 4.6, 5.4,
    ...                 "degC", "above the high limit")
    >>> key, value, headers = encode(ev)
    >>> key, headers
    (b'chiller1', [('schema_version', b'1'), ('event', b'opened')])
    >>> json.loads(value)["event_id"]
    'chiller1/chiller1.chw_temp_c/limit_high/1700000000000:0:opened'
    """
    value = json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    headers = [("schema_version", str(event.schema_version).encode()), ("event", event.event.encode())]
    return event.asset.encode(), value.encode(), headers


def message(event: AlertEvent) -> Message:
    """``event`` encoded (:func:`encode`); raises ``TypeError`` or ``ValueError`` when it cannot be."""
    key, value, headers = encode(event)
    return Message(event.event_id, key, value, tuple(headers))
