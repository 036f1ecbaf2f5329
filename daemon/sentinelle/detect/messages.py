"""Alert messages: the one sentence for people that every alert event carries.

Its wording may change at any time (``docs/alerts.md``: consumers must not parse it);
the numbers it quotes are the event's own.
"""

from __future__ import annotations

from ..records import AlertEventType, AlertKind
from .alert_records import Observation, OpenAlert

_PER_ASSET_WORDING: frozenset[AlertKind] = frozenset({"asset_state", "energy_balance", "ahu_fault", "relation"})


def message(event: AlertEventType, alert: OpenAlert, obs: Observation, limit: float, members: list[str]) -> str:
    """The one sentence of an event for people (dashboards, tickets); never parsed by consumers."""
    unit = f" {obs.unit}" if obs.unit else ""
    if alert.kind == "flood":
        if event == "cleared":
            return f"{alert.asset}: alarm flood over ({len(alert.flood_members)} alerts were grouped in it)"
        return (
            f"{alert.asset}: alarm flood, {alert.peak:.0f} alerts within the flood window; "
            f"further alerts grouped here: {', '.join(alert.flood_members)}"
        )
    if event == "cleared":
        if alert.reason in ("missing", "source_down") or alert.kind in _PER_ASSET_WORDING or len(alert.members) > 1:
            return f"{alert.asset} back to normal"
        return f"{alert.tag} back to normal at {obs.actual:.4g}{unit}"
    if alert.kind == "limit_high":
        return f"{alert.tag} = {obs.actual:.4g}{unit}, above its high limit {limit:.4g}{unit}"
    if alert.kind == "limit_low":
        return f"{alert.tag} = {obs.actual:.4g}{unit}, below its low limit {limit:.4g}{unit}"
    if alert.kind == "distribution_change":
        return f"{alert.tag} = {obs.actual:.4g}{unit}: its last {limit:.0f} values are distributed unlike its past"
    if alert.kind == "contextual_novelty":
        return f"{alert.tag} = {obs.actual:.4g}{unit}: a sequence of values it has not made before"
    if alert.kind == "forecast_drift":
        return (
            f"{alert.tag} = {obs.actual:.4g}{unit} drifted from what was forecast {limit:.0f} periods ago "
            f"(now forecast {obs.forecast:.4g}{unit})"
        )
    if alert.kind == "rate_of_change":
        return f"{alert.tag} changing at {obs.z:+.3g}{unit}/s, beyond its rate limit ±{limit:.3g}{unit}/s"
    if alert.kind == "energy_balance":
        return (
            f"{alert.asset}: {alert.tag} = {obs.actual:.4g}{unit} but flow and temperatures give "
            f"{obs.forecast:.4g}{unit} ({obs.z:+.1%}, tolerance ±{limit:.0%})"
        )
    if alert.kind == "ahu_fault":
        what = members[0] if members else alert.subject
        code = alert.subject.rsplit("#", 1)[-1]
        return (
            f"{alert.asset}: {what} ({code}, ASHRAE Guideline 36): {obs.z:.2g} times its threshold "
            f"({obs.actual:+.3g} against {limit:.3g}{unit})"
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
            return f"{alert.tag} stuck at {obs.actual:.4g}{unit} for {duration_text(obs.z)} (data quality)"
        if alert.reason == "spike":
            return f"{alert.tag} jumped by {obs.z:+.4g}{unit} for one or two samples and came back (data quality)"
        names = ", ".join(members) if members else alert.tag
        if alert.reason == "source_down":
            return f"{alert.asset}: source disconnected, no values from {names} (data quality)"
        return f"{alert.asset}: no usable value for {duration_text(limit)} or more from {names} (data quality)"
    detail = (
        f"{alert.tag} = {obs.actual:.4g}{unit}, forecast {obs.forecast:.4g}{unit} "
        f"[{obs.lower:.4g}, {obs.upper:.4g}] (z = {obs.z:+.1f})"
    )
    if alert.kind == "asset_state" or len(members) > 1:
        return f"{alert.asset}: {', '.join(members) or alert.tag} anomalous; {detail}"
    return detail


def duration_text(seconds: float) -> str:
    """A duration in the unit an operator reads it in: the data-quality times follow the tag's period.

    >>> duration_text(60.0), duration_text(120.0), duration_text(1800.0), duration_text(216_000.0), duration_text(6e5)
    ('60 s', '120 s', '30 min', '60 h', '6.9 d')
    """
    for unit, size, below in (("s", 1.0, 180.0), ("min", 60.0, 10_800.0), ("h", 3600.0, 259_200.0)):
        if seconds < below:
            return f"{seconds / size:.2g} {unit}" if seconds / size < 10 else f"{seconds / size:.0f} {unit}"
    return f"{seconds / 86_400.0:.2g} d"
