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
* ``data_quality``: always a warning — an instrument to check, not a process upset;
* ``flood``: the highest severity of the alerts grouped into it.

Severity only escalates; it never goes back to ``warning`` within one alert.

An operator's load (ISA-18.2 / EEMUA 191) is kept in bounds here, per subject and
per asset: a cleared alert is *re-armed* — its ``cleared`` waits, and a return of
its subject meanwhile continues the same alert with an ``updated`` event
(``chatter.py``: re-arm time and the chattering latch); and an asset that opened
too many alerts recently groups its further openings into one ``flood`` alert
(``flood.py``).  The detect stage calls :meth:`AlertBook.tick` at the start of every
tick so that held ``cleared`` events and flood ends come out on time.

>>> from prometheus_client import CollectorRegistry
>>> from sentinelle.settings import DetectSettings
>>> book = AlertBook(Metrics(CollectorRegistry()), DetectSettings())
>>> obs = Observation(ts=60.0, actual=5.3, forecast=5.0, lower=4.9, upper=5.1, z=0.1, score=0.0, unit="degC")
>>> ev = book.open_alert(("limit_high", "c1.t"), asset="c1", tag="c1.t", obs=obs, magnitude=0.1,
...                      contributors=(), limit=5.2)
>>> ev.alert_id, ev.severity, ev.message
('c1/c1.t/limit_high/60000', 'critical', 'c1.t = 5.3 degC, above its high limit 5.2 degC')
>>> book.clear(("limit_high", "c1.t"), obs, ()) is None  # re-armed: its 'cleared' waits 60 s for c1.t
True
>>> [e.event for e in book.tick(ts=120.0, period_s=1.0)]
['cleared']
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

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
    category_of,
)
from ..settings import DetectSettings
from .alert_records import AlertKey, Observation, OpenAlert
from .chatter import Rearm
from .flood import FloodWatch
from .messages import message

# The records are in alert_records.py; imported from here as well.
__all__ = ["AlertBook", "AlertKey", "Observation", "OpenAlert"]

_REMEMBERED_CLEARED = 10_000
"""Recently cleared alert ids, so a late acknowledgement is answered ``alert_closed``, not ``unknown_alert``."""


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
        self.rearm = Rearm(
            settings.rearm_steps, settings.rearm_min_s, settings.chatter_openings, settings.chatter_window_s
        )
        self.floods = FloodWatch(settings.flood_openings, settings.flood_window_s, settings.flood_clear_openings)
        self.period_s = 1.0
        """Period of the tag group being processed (set by :meth:`tick`)."""
        self._shown_rates: dict[str, int] = {}
        """The per-asset openings gauge as last set."""
        self._in_flood: dict[AlertKey, str] = {}
        """Subjects whose opening joined a flood and whose condition has not cleared yet → their asset."""

    def state(self) -> dict[str, Any]:
        """Open alerts, re-arm, chatter and flood history as JSON (``book_state.py``: scale-out snapshots)."""
        from . import book_state

        return book_state.dump(self.open, self.latest_ts, self.rearm.state(), self.floods.state(), self._in_flood)

    def restore(self, state: dict[str, Any]) -> None:
        """Take over what :meth:`state` saved (another process's book of the same asset); counts its open alerts."""
        from . import book_state

        self.release()
        self.open, latest, rearm, floods, self._in_flood = book_state.load(state)
        self.latest_ts = max(self.latest_ts, latest)
        self.rearm.restore(rearm)
        self.floods.restore(floods)
        for a in self.open.values():
            self.metrics.alerts_active.labels(a.asset, a.severity).inc()

    def release(self) -> None:
        """This process stops holding these alerts (another worker took the asset): un-count them."""
        for a in self.open.values():
            self.metrics.alerts_active.labels(a.asset, a.severity).dec()

    def severity_for(self, kind: AlertKind, magnitude: float) -> Severity:
        if kind in ("limit_high", "limit_low"):
            return "critical"
        if kind in ("data_quality", "flood"):
            return "warning"
        if kind in ("rate_of_change", "energy_balance"):
            return "critical" if magnitude >= self.rule_critical_ratio else "warning"
        return "critical" if magnitude >= self.critical_z else "warning"

    def is_open(self, key: AlertKey) -> bool:
        """Open for a consumer: no ``cleared`` sent yet (a re-armed alert waiting for its subject included)."""
        return key in self.open

    def any_active(self) -> bool:
        """Whether some alert's condition is on now: open and not waiting out its re-arm time.

        What an evaluation scores as a predicted anomalous row: re-arm changes what an operator is
        told, not what was detected.
        """
        return any(a.pending_until is None for a in self.open.values())

    def tick(self, ts: float, period_s: float) -> list[AlertEvent]:
        """Start of a tick of a tag group: the ``cleared`` events that were waiting for it.

        Re-armed alerts whose time ran out clear (with the numbers of the tick their
        condition ended, dated now); floods whose rate fell back and whose members all
        cleared end.  ``period_s`` sets the re-arm time of the alerts clearing in this tick.
        """
        self.latest_ts = max(self.latest_ts, ts)
        self.period_s = period_s
        events = []
        for key, alert in list(self.open.items()):
            if alert.pending_until is not None and ts >= alert.pending_until:
                events.append(self._close(key, alert, self._repeat(alert, ts), alert.last_contributors))
        for asset in sorted(self.floods.active):
            if self.floods.ended(asset, ts) and asset not in self._in_flood.values():
                self.floods.active.discard(asset)
                flood = self.open.get(("flood", asset))
                if flood is not None:
                    events.append(self._close(("flood", asset), flood, self._repeat(flood, ts), ()))
        for asset, recent in self.floods.rates(ts):
            # Set only on change: a label lookup per asset and tick costs ~1 ms at 200 assets.
            if self._shown_rates.get(asset) != recent:
                self.metrics.alert_openings_window.labels(asset).set(recent)
                self._shown_rates[asset] = recent
            if recent == 0:
                del self._shown_rates[asset]
        return events

    def clear_waiting(self, ts: float, paused: dict[str, tuple[str, ClearReason]]) -> list[AlertEvent]:
        """Clear at once the alerts of paused assets (asset → message, reason) that no detector tracks.

        Those waiting out their re-arm time, and floods: an asset entering maintenance or a paused
        mode clears its open alerts now, not after a re-arm time.  Missing-data alerts stay under
        a paused mode (as their trackers do) and clear in maintenance.
        """
        events = []
        for key, alert in list(self.open.items()):
            pause = paused.get(alert.asset)
            if pause is None or (alert.pending_until is None and alert.kind != "flood"):
                continue
            why, cause = pause
            if alert.reason == "missing" and cause != "maintenance":
                continue
            obs = self._repeat(alert, ts)
            events.append(self._close(key, alert, obs, alert.last_contributors, math.nan, why, cause))
            if alert.kind == "flood":
                self.floods.active.discard(alert.asset)
                for member in [k for k, a in self._in_flood.items() if a == alert.asset]:
                    del self._in_flood[member]
        return events

    def forget(self, key: AlertKey) -> None:
        """The condition of ``key`` ended while it had no alert of its own (it had joined a flood)."""
        self._in_flood.pop(key, None)

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
        """Open an alert — or continue the subject's re-armed one, or group the opening into the asset's flood.

        Always one event: ``opened``, or ``updated`` (a re-activation, a flood member joining).
        """
        kind = key[0]
        current = self.open.get(key)
        if current is not None and current.pending_until is not None:
            return self._reactivate(current, obs, magnitude, contributors, limit, members)
        severity = self.severity_for(kind, magnitude)
        if category_of(kind) == "process" and self.floods.flooding(asset, obs.ts):
            return self._join_flood(key, asset, tag, obs, severity, contributors)
        latched = self.rearm.opened(key, obs.ts)
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
            subject=key[1],
            period_s=self.period_s,
            latched=latched,
        )
        self.open[key] = alert
        self.metrics.alerts_active.labels(asset, severity).inc()
        self.metrics.alert_openings.labels(asset, kind).inc()
        if latched:
            self.metrics.alert_latched.labels(asset, kind).inc()
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
        if alert is None or alert.pending_until is not None or not math.isfinite(magnitude):
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
        """The 'cleared' event of the alert under ``key`` (None if none is open); ``why`` replaces the message.

        A normal end is held for the alert's re-arm time (None now; :meth:`tick` sends it later,
        or the subject's return continues the alert); maintenance and paused detection clear at once.
        """
        if key in self._in_flood:
            del self._in_flood[key]
            return None
        alert = self.open.get(key)
        if alert is None:
            return None
        hold = self.rearm.hold_s(alert.period_s, alert.latched)
        if clear_reason == "normal" and hold > 0 and alert.kind != "flood":
            alert.pending_until = obs.ts + hold
            alert.last_obs = obs
            alert.last_contributors = contributors
            return None
        return self._close(key, alert, obs, contributors, limit, why, clear_reason)

    def _close(
        self,
        key: AlertKey,
        alert: OpenAlert,
        obs: Observation,
        contributors: tuple[Contributor, ...],
        limit: float = math.nan,
        why: str | None = None,
        clear_reason: ClearReason = "normal",
    ) -> AlertEvent:
        del self.open[key]
        self.metrics.alerts_active.labels(alert.asset, alert.severity).dec()
        self._cleared[alert.alert_id] = None
        if len(self._cleared) > _REMEMBERED_CLEARED:
            self._cleared.popitem(last=False)
        return self._event("cleared", alert, obs, contributors, limit, [], why, clear_reason)

    def _reactivate(
        self,
        alert: OpenAlert,
        obs: Observation,
        magnitude: float,
        contributors: tuple[Contributor, ...],
        limit: float,
        members: Iterable[str],
    ) -> AlertEvent:
        """The subject came back within the re-arm time: the same alert goes on (chatter, counted)."""
        alert.pending_until = None
        alert.reactivations += 1
        self.metrics.alert_reactivations.labels(alert.asset, alert.kind, alert.subject).inc()
        self._escalate(alert, self.severity_for(alert.kind, magnitude))
        if math.isfinite(magnitude):
            alert.peak = max(alert.peak, magnitude)
        current = sorted(members)
        alert.members |= set(current)
        alert.last_event_ts = obs.ts
        why = (
            f"{message('updated', alert, obs, limit, current)} — re-activated within its re-arm time "
            f"({alert.reactivations} so far)"
        )
        return self._event("updated", alert, obs, contributors, limit, current, why)

    def _join_flood(
        self,
        key: AlertKey,
        asset: str,
        tag: str,
        obs: Observation,
        severity: Severity,
        contributors: tuple[Contributor, ...],
    ) -> AlertEvent:
        """The asset is flooding: this opening becomes a member of its one ``flood`` alert."""
        self._in_flood[key] = asset
        self.metrics.alert_flood_members.labels(asset).inc()
        member = f"{key[0]}:{key[1]}"
        recent = float(self.floods.recent(asset, obs.ts))
        flood = self.open.get(("flood", asset))
        if flood is None:
            flood = OpenAlert(
                alert_id=f"{asset}/{tag}/flood/{round(obs.ts * 1000)}",
                kind="flood",
                asset=asset,
                tag=tag,
                start_ts=obs.ts,
                severity=severity,
                peak=recent,
                last_event_ts=obs.ts,
                subject=asset,
                period_s=self.period_s,
                flood_members=[member],
            )
            self.open[("flood", asset)] = flood
            self.metrics.alerts_active.labels(asset, severity).inc()
            self.metrics.alert_openings.labels(asset, "flood").inc()
            return self._event("opened", flood, obs, contributors, math.nan, [])
        if member not in flood.flood_members:
            flood.flood_members.append(member)
        self._escalate(flood, severity)
        flood.peak = max(flood.peak, recent)
        flood.last_event_ts = obs.ts
        return self._event("updated", flood, obs, contributors, math.nan, [])

    def _escalate(self, alert: OpenAlert, severity: Severity) -> None:
        if severity == "critical" and alert.severity == "warning":
            self.metrics.alerts_active.labels(alert.asset, alert.severity).dec()
            self.metrics.alerts_active.labels(alert.asset, severity).inc()
            alert.severity = severity

    def _repeat(self, alert: OpenAlert, ts: float) -> Observation:
        """The numbers of the alert's latest event, dated ``ts`` (or later, never earlier)."""
        nan = math.nan
        last = alert.last_obs or Observation(alert.last_event_ts, nan, nan, nan, nan, nan, nan, unit="")
        return replace(last, ts=max(last.ts, ts))

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
            obs = self._repeat(alert, self.latest_ts)
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
            message=why if why is not None else message(event, alert, obs, limit, members),
            contributors=contributors,
            reason=alert.reason,
            acknowledged_by=alert.acknowledged_by,
            acknowledged_at=alert.acknowledged_at,
            clear_reason=clear_reason if event == "cleared" else None,
            sequence=sequence,
            subject=alert.subject,
            reactivations=alert.reactivations,
            members=tuple(alert.flood_members),
        )
