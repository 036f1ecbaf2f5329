"""The alert book's records: an open alert's state, and what a detector saw at one tick.

Apart from :mod:`.alerts` (the book: opening, updating, re-arming, clearing, acknowledging) so that
the detectors, the messages (:mod:`.messages`) and the scale-out snapshots (:mod:`.book_state`) can
name these records without the book.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..records import AlertKind, Contributor, DataQualityReason, Severity

__all__ = ["AlertKey", "Observation", "OpenAlert"]

AlertKey = tuple[AlertKind, str]
"""(kind, subject): the subject is a tag, an asset, or ``tag#reason`` for data-quality alerts."""


@dataclass(slots=True)
class OpenAlert:
    alert_id: str
    kind: AlertKind
    asset: str
    tag: str
    start_ts: float
    severity: Severity
    peak: float
    """Largest magnitude so far: |z|, exceedance in tag units, or ratio to the rule's limit."""
    last_event_ts: float
    reason: DataQualityReason | None = None
    members: set[str] = field(default_factory=set)
    """Tags that have been part of the alert (asset incidents): a new one makes an ``updated`` event."""
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    last_obs: Observation | None = None
    """The numbers of its latest event, repeated by an ``acknowledged`` event (an operator adds no data)."""
    last_contributors: tuple[Contributor, ...] = ()
    events: int = 0
    """Events published so far: the next event's ``sequence`` (its ``event_id`` depends on it)."""
    subject: str = ""
    period_s: float = 1.0
    """Period of the tag group the alert came from: its re-arm time is in these steps."""
    latched: bool = False
    """Its subject was chattering when it opened: re-armed for the chatter window."""
    reactivations: int = 0
    pending_until: float | None = None
    """Its condition cleared: the data time until which its ``cleared`` waits for the subject to come back."""
    flood_members: list[str] = field(default_factory=list)
    """``flood`` alerts: the grouped openings, ``kind:subject``."""


@dataclass(frozen=True, slots=True)
class Observation:
    """What the detector saw for the alert's tag at one tick, for an event's numbers.

    ``z`` is the detector's own signed number: the residual z, the rate (units per
    second), the balance's relative error, the seconds a tag has been flat or a
    spike's height, depending on the kind.
    """

    ts: float
    actual: float
    forecast: float
    lower: float
    upper: float
    z: float
    score: float
    unit: str
