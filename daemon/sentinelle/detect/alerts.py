"""Alert records and their events: what an operator and a Kafka consumer see.

The book holds every open alert under a key ``(kind, subject)``: the subject is
what the alert is about — a tag (limits, rate of change, per-tag residuals), an
asset (merged residual incidents, asset T², energy balance, missing data), the
target tag of a learned relation, or a
tag and a data-quality reason (``stuck`` and ``spike`` may follow each other on
one tag).  An alert's id is readable and stable for its whole life —
``{asset}/{tag}/{kind}/{start_ms}``, ``tag`` being the tag the alert was filed
under when it opened (for an asset incident, its top contributor then) — so a
consumer can deduplicate replays and an operator can find it in logs.

Severity, documented for consumers in ``docs/alerts.md``:

* ``limit_high`` / ``limit_low``: always critical (a configured limit is a hard boundary);
* ``forecast_residual`` / ``asset_state`` / ``relation``: critical once |z| reaches ``detect.critical_z``;
* ``rate_of_change`` / ``energy_balance``: critical once the violation reaches
  ``detect.rule_critical_ratio`` times its limit (rate) or tolerance (balance);
* ``data_quality``: always a warning — an instrument to check, not a process upset.

Severity only escalates; it never goes back to ``warning`` within one alert.

>>> from prometheus_client import CollectorRegistry
>>> from sentinelle.settings import DetectSettings
>>> book = AlertBook(Metrics(CollectorRegistry()), DetectSettings())
>>> obs = Observation(ts=60.0, actual=5.3, forecast=5.0, lower=4.9, upper=5.1, z=0.1, score=0.0, unit="degC")
>>> ev = book.open_alert(("limit_high", "c1.t"), asset="c1", tag="c1.t", obs=obs, magnitude=0.1,
...                      contributors=(), limit=5.2)
>>> ev.alert_id, ev.severity, ev.message
('c1/c1.t/limit_high/60000', 'critical', 'c1.t = 5.3 degC, above its high limit 5.2 degC')
>>> book.clear(("limit_high", "c1.t"), obs, ()).event
'cleared'
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from ..metrics import Metrics
from ..records import (
    AlertEvent,
    AlertEventType,
    AlertKind,
    ClearReason,
    CommandOutcome,
    Contributor,
    DataQualityReason,
    Severity,
)
from ..settings import DetectSettings

AlertKey = tuple[AlertKind, str]
"""(kind, subject): the subject is a tag, an asset, or ``tag#reason`` for data-quality alerts."""

_PER_ASSET_WORDING: frozenset[AlertKind] = frozenset({"asset_state", "energy_balance", "relation"})

_REMEMBERED_CLEARED = 10_000
"""Recently cleared alert ids, so a late acknowledgement is answered ``alert_closed``, not ``unknown_alert``."""


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


class AlertBook:
    """Open alerts of the whole daemon and the gauge of open alerts."""

    def __init__(self, metrics: Metrics, settings: DetectSettings) -> None:
        self.metrics = metrics
        self.critical_z = settings.critical_z
        self.rule_critical_ratio = settings.rule_critical_ratio
        self.update_min_interval_s = settings.update_min_interval_s
        self.open: dict[AlertKey, OpenAlert] = {}
        self.latest_ts = -math.inf
        """Data time of the newest tick the detect stage processed: an acknowledgement is dated by it."""
        self._cleared: collections.OrderedDict[str, None] = collections.OrderedDict()

    def severity_for(self, kind: AlertKind, magnitude: float) -> Severity:
        if kind in ("limit_high", "limit_low"):
            return "critical"
        if kind == "data_quality":
            return "warning"
        if kind in ("rate_of_change", "energy_balance"):
            return "critical" if magnitude >= self.rule_critical_ratio else "warning"
        return "critical" if magnitude >= self.critical_z else "warning"

    def is_open(self, key: AlertKey) -> bool:
        return key in self.open

    def open_alert(
        self,
        key: AlertKey,
        *,
        asset: str,
        tag: str,
        obs: Observation,
        magnitude: float,
        contributors: tuple[Contributor, ...],
        limit: float = math.nan,
        reason: DataQualityReason | None = None,
        members: Iterable[str] = (),
    ) -> AlertEvent:
        kind = key[0]
        severity = self.severity_for(kind, magnitude)
        alert = OpenAlert(
            alert_id=f"{asset}/{tag}/{kind}/{round(obs.ts * 1000)}",
            kind=kind,
            asset=asset,
            tag=tag,
            start_ts=obs.ts,
            severity=severity,
            peak=magnitude if math.isfinite(magnitude) else 0.0,
            last_event_ts=obs.ts,
            reason=reason,
            members=set(members),
        )
        self.open[key] = alert
        self.metrics.alerts_active.labels(asset, severity).inc()
        if reason is not None:
            self.metrics.data_quality_alerts.labels(reason).inc()
        return self._event("opened", alert, obs, contributors, limit, sorted(alert.members))

    def maybe_update(
        self,
        key: AlertKey,
        obs: Observation,
        magnitude: float,
        contributors: tuple[Contributor, ...],
        limit: float = math.nan,
        members: Iterable[str] = (),
    ) -> AlertEvent | None:
        """An 'updated' event when the alert escalated (at once), grew 50 % past its peak or gained a tag.

        The last two at most once per ``update_min_interval_s``; a tag that joins while
        updates are throttled is reported with the next allowed update.
        """
        alert = self.open.get(key)
        if alert is None or not math.isfinite(magnitude):
            return None
        current = set(members)
        severity = self.severity_for(alert.kind, magnitude)
        escalated = severity == "critical" and alert.severity == "warning"
        allowed = obs.ts - alert.last_event_ts >= self.update_min_interval_s
        worse = magnitude > 1.5 * alert.peak
        joined = not current <= alert.members
        alert.peak = max(alert.peak, magnitude)
        if not (escalated or (allowed and (worse or joined))):
            return None
        if escalated:
            self.metrics.alerts_active.labels(alert.asset, alert.severity).dec()
            self.metrics.alerts_active.labels(alert.asset, severity).inc()
            alert.severity = severity
        alert.members |= current
        alert.last_event_ts = obs.ts
        return self._event("updated", alert, obs, contributors, limit, sorted(current))

    def clear(
        self,
        key: AlertKey,
        obs: Observation,
        contributors: tuple[Contributor, ...],
        limit: float = math.nan,
        why: str | None = None,
        clear_reason: ClearReason = "normal",
    ) -> AlertEvent | None:
        """The 'cleared' event of the alert under ``key`` (None if none is open); ``why`` replaces the message."""
        alert = self.open.pop(key, None)
        if alert is None:
            return None
        self.metrics.alerts_active.labels(alert.asset, alert.severity).dec()
        self._cleared[alert.alert_id] = None
        if len(self._cleared) > _REMEMBERED_CLEARED:
            self._cleared.popitem(last=False)
        return self._event("cleared", alert, obs, contributors, limit, [], why, clear_reason)

    def acknowledge(self, asset: str, alert_id: str | None, *, by: str, at_ts: float, reason: str) -> CommandOutcome:
        """Acknowledge the open alert ``alert_id`` of ``asset`` (None: all its open alerts not yet acknowledged).

        Each one gets an ``acknowledged`` event — with the numbers of its latest event,
        dated by the newest tick — and keeps ``acknowledged_by`` / ``acknowledged_at`` in
        its later events; it stays open until its condition clears.  An alert is
        acknowledged once: a second acknowledgement is rejected, not re-published.
        """
        if alert_id is None:
            of_asset = [a for a in self.open.values() if a.asset == asset]
            targets = [a for a in of_asset if a.acknowledged_by is None]
            if not targets:
                if of_asset:
                    return CommandOutcome(
                        "rejected", f"every open alert of {asset} is already acknowledged", "already_acknowledged"
                    )
                return CommandOutcome("rejected", f"{asset} has no open alert", "no_open_alert")
        else:
            found = next((a for a in self.open.values() if a.alert_id == alert_id and a.asset == asset), None)
            if found is None:
                if alert_id in self._cleared:
                    return CommandOutcome("rejected", f"alert {alert_id} has already cleared", "alert_closed")
                return CommandOutcome("rejected", f"{asset} has no open alert {alert_id}", "unknown_alert")
            if found.acknowledged_by is not None:
                return CommandOutcome(
                    "rejected",
                    f"alert {alert_id} was already acknowledged by {found.acknowledged_by}",
                    "already_acknowledged",
                )
            targets = [found]
        note = f": {reason}" if reason else ""
        events = []
        for alert in targets:
            alert.acknowledged_by = by
            alert.acknowledged_at = at_ts
            nan = math.nan
            last = alert.last_obs or Observation(alert.last_event_ts, nan, nan, nan, nan, nan, nan, unit="")
            obs = replace(last, ts=max(last.ts, self.latest_ts))
            why = f"{alert.alert_id} acknowledged by {by}{note}"
            events.append(self._event("acknowledged", alert, obs, alert.last_contributors, math.nan, [], why))
        ids = tuple(a.alert_id for a in targets)
        return CommandOutcome("accepted", f"acknowledged {', '.join(ids)}", events=tuple(events), alert_ids=ids)

    def _event(
        self,
        event: AlertEventType,
        alert: OpenAlert,
        obs: Observation,
        contributors: tuple[Contributor, ...],
        limit: float,
        members: list[str],
        why: str | None = None,
        clear_reason: ClearReason | None = None,
    ) -> AlertEvent:
        self.metrics.alert_events.labels(event).inc()
        if event != "acknowledged":
            alert.last_obs = obs
            alert.last_contributors = contributors
        sequence = alert.events
        alert.events += 1
        return AlertEvent(
            event=event,
            alert_id=alert.alert_id,
            kind=alert.kind,
            asset=alert.asset,
            tag=alert.tag,
            severity=alert.severity,
            start_ts=alert.start_ts,
            event_ts=obs.ts,
            end_ts=obs.ts if event == "cleared" else None,
            score=obs.score if alert.kind == "forecast_residual" else alert.peak,
            actual=obs.actual,
            forecast=obs.forecast,
            lower=obs.lower,
            upper=obs.upper,
            unit=obs.unit,
            message=why if why is not None else _message(event, alert, obs, limit, members),
            contributors=contributors,
            reason=alert.reason,
            acknowledged_by=alert.acknowledged_by,
            acknowledged_at=alert.acknowledged_at,
            clear_reason=clear_reason if event == "cleared" else None,
            sequence=sequence,
        )


def _message(event: AlertEventType, alert: OpenAlert, obs: Observation, limit: float, members: list[str]) -> str:
    unit = f" {obs.unit}" if obs.unit else ""
    if event == "cleared":
        if alert.reason in ("missing", "source_down") or alert.kind in _PER_ASSET_WORDING or len(alert.members) > 1:
            return f"{alert.asset} back to normal"
        return f"{alert.tag} back to normal at {obs.actual:.4g}{unit}"
    if alert.kind == "limit_high":
        return f"{alert.tag} = {obs.actual:.4g}{unit}, above its high limit {limit:.4g}{unit}"
    if alert.kind == "limit_low":
        return f"{alert.tag} = {obs.actual:.4g}{unit}, below its low limit {limit:.4g}{unit}"
    if alert.kind == "rate_of_change":
        return f"{alert.tag} changing at {obs.z:+.3g}{unit}/s, beyond its rate limit ±{limit:.3g}{unit}/s"
    if alert.kind == "energy_balance":
        return (
            f"{alert.asset}: {alert.tag} = {obs.actual:.4g}{unit} but flow and temperatures give "
            f"{obs.forecast:.4g}{unit} ({obs.z:+.1%}, tolerance ±{limit:.0%})"
        )
    if alert.kind == "relation":
        inputs = ", ".join(members)
        side = "lower" if obs.z < 0 else "higher"
        return (
            f"{alert.asset}: {alert.tag} = {obs.actual:.4g}{unit}, {side} than {inputs} imply "
            f"({obs.forecast:.4g}{unit}, z = {obs.z:+.1f}, limit ±{limit:.3g})"
        )
    if alert.kind == "data_quality":
        if alert.reason == "stuck":
            return f"{alert.tag} stuck at {obs.actual:.4g}{unit} for {obs.z:.0f} s (data quality)"
        if alert.reason == "spike":
            return f"{alert.tag} jumped by {obs.z:+.4g}{unit} for one or two samples and came back (data quality)"
        names = ", ".join(members) if members else alert.tag
        if alert.reason == "source_down":
            return f"{alert.asset}: source disconnected, no values from {names} (data quality)"
        return f"{alert.asset}: no usable value for {limit:.0f} s or more from {names} (data quality)"
    detail = (
        f"{alert.tag} = {obs.actual:.4g}{unit}, forecast {obs.forecast:.4g}{unit} "
        f"[{obs.lower:.4g}, {obs.upper:.4g}] (z = {obs.z:+.1f})"
    )
    if alert.kind == "asset_state" or len(members) > 1:
        return f"{alert.asset}: {', '.join(members) or alert.tag} anomalous; {detail}"
    return detail
