"""Alert records and their events: what an operator and a Kafka consumer see.

An alert belongs to one (asset, tag, kind).  Its id is readable and stable —
``{asset}/{tag}/{kind}/{start_ms}`` — so a consumer can deduplicate replays and
an operator can find it in logs.  Every event carries the asset's tags ranked by
how anomalous they are at that moment: the explanation of the alert.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..metrics import Metrics
from ..records import AlertEvent, AlertEventType, AlertKind, Contributor, Severity


@dataclass(slots=True)
class OpenAlert:
    alert_id: str
    kind: AlertKind
    asset: str
    tag: str
    start_ts: float
    severity: Severity
    peak: float
    """Largest |z| (residual alerts) or exceedance (limit alerts) so far."""
    last_event_ts: float


@dataclass(frozen=True, slots=True)
class Observation:
    """What the detector saw for one tag at one tick, for an event's numbers."""

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

    def __init__(self, metrics: Metrics, critical_z: float, update_min_interval_s: float) -> None:
        self.metrics = metrics
        self.critical_z = critical_z
        self.update_min_interval_s = update_min_interval_s
        self.open: dict[tuple[str, AlertKind], OpenAlert] = {}

    def severity_for(self, kind: AlertKind, magnitude: float) -> Severity:
        if kind in ("limit_high", "limit_low"):
            return "critical"  # a configured limit is a hard process boundary
        return "critical" if magnitude >= self.critical_z else "warning"

    def open_alert(
        self,
        kind: AlertKind,
        asset: str,
        tag: str,
        obs: Observation,
        magnitude: float,
        contributors: tuple[Contributor, ...],
        limit: float = math.nan,
    ) -> AlertEvent:
        severity = self.severity_for(kind, magnitude)
        alert = OpenAlert(
            alert_id=f"{asset}/{tag}/{kind}/{round(obs.ts * 1000)}",
            kind=kind,
            asset=asset,
            tag=tag,
            start_ts=obs.ts,
            severity=severity,
            peak=magnitude,
            last_event_ts=obs.ts,
        )
        self.open[(tag, kind)] = alert
        self.metrics.alerts_active.labels(asset, severity).inc()
        return self._event("opened", alert, obs, contributors, limit)

    def maybe_update(
        self,
        kind: AlertKind,
        tag: str,
        obs: Observation,
        magnitude: float,
        contributors: tuple[Contributor, ...],
        limit: float = math.nan,
    ) -> AlertEvent | None:
        """An 'updated' event when the alert got clearly worse (50 % past its peak or more severe)."""
        alert = self.open.get((tag, kind))
        if alert is None or not math.isfinite(magnitude):
            return None
        severity = self.severity_for(kind, magnitude)
        escalated = severity == "critical" and alert.severity == "warning"
        worse = magnitude > 1.5 * alert.peak and obs.ts - alert.last_event_ts >= self.update_min_interval_s
        if not (escalated or worse):
            alert.peak = max(alert.peak, magnitude)
            return None
        if escalated:
            self.metrics.alerts_active.labels(alert.asset, alert.severity).dec()
            self.metrics.alerts_active.labels(alert.asset, severity).inc()
            alert.severity = severity
        alert.peak = max(alert.peak, magnitude)
        alert.last_event_ts = obs.ts
        return self._event("updated", alert, obs, contributors, limit)

    def clear(
        self,
        kind: AlertKind,
        tag: str,
        obs: Observation,
        contributors: tuple[Contributor, ...],
        limit: float = math.nan,
    ) -> AlertEvent | None:
        alert = self.open.pop((tag, kind), None)
        if alert is None:
            return None
        self.metrics.alerts_active.labels(alert.asset, alert.severity).dec()
        return self._event("cleared", alert, obs, contributors, limit)

    def _event(
        self,
        event: AlertEventType,
        alert: OpenAlert,
        obs: Observation,
        contributors: tuple[Contributor, ...],
        limit: float,
    ) -> AlertEvent:
        self.metrics.alert_events.labels(event).inc()
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
            score=alert.peak if alert.kind != "forecast_residual" else obs.score,
            actual=obs.actual,
            forecast=obs.forecast,
            lower=obs.lower,
            upper=obs.upper,
            unit=obs.unit,
            message=_message(event, alert, obs, limit),
            contributors=contributors,
        )


def _message(event: AlertEventType, alert: OpenAlert, obs: Observation, limit: float) -> str:
    unit = f" {obs.unit}" if obs.unit else ""
    if event == "cleared":
        return f"{alert.tag} back to normal at {obs.actual:.4g}{unit}"
    if alert.kind == "limit_high":
        return f"{alert.tag} = {obs.actual:.4g}{unit}, above its high limit {limit:.4g}{unit}"
    if alert.kind == "limit_low":
        return f"{alert.tag} = {obs.actual:.4g}{unit}, below its low limit {limit:.4g}{unit}"
    return (
        f"{alert.tag} = {obs.actual:.4g}{unit}, forecast {obs.forecast:.4g}{unit} "
        f"[{obs.lower:.4g}, {obs.upper:.4g}] (z = {obs.z:+.1f})"
    )
