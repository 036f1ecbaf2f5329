"""One builder of :class:`~sentinelle.records.AlertEvent` for tests that need an event but test little of it.

Every field has a plain value unless the test names it, so a test reads as what it cares about (the kind, the
subject, the times) instead of sixteen positional arguments.
"""

from __future__ import annotations

from typing import Any

from sentinelle.records import AlertEvent


def alert_event(**fields: Any) -> AlertEvent:
    """An ``opened`` ``limit_high`` warning on ``a.x`` of asset ``a`` at t = 0, with ``fields`` overriding.

    >>> e = alert_event(kind="relation", subject="a.x#estimate")
    >>> (e.event, e.kind, e.alert_id, e.end_ts)
    ('opened', 'relation', 'a/a.x#estimate/relation', None)
    """
    kind = fields.get("kind", "limit_high")
    asset = fields.get("asset", "a")
    subject = fields.get("subject", fields.get("tag", f"{asset}.x"))
    base: dict[str, Any] = {
        "event": "opened",
        "alert_id": f"{asset}/{subject}/{kind}",
        "kind": kind,
        "asset": asset,
        "tag": f"{asset}.x",
        "severity": "warning",
        "start_ts": 0.0,
        "event_ts": 0.0,
        "end_ts": None,
        "score": 0.0,
        "actual": 0.0,
        "forecast": 0.0,
        "lower": 0.0,
        "upper": 0.0,
        "unit": "",
        "message": "",
    }
    return AlertEvent(**(base | fields))
