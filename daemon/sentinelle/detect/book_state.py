"""An alert book's open alerts and recent history as JSON: the part of a scale-out snapshot it owns.

A worker that takes over an asset (``scaleout/worker.py``) restores it so that the asset's
open alerts go on as the same alerts: their next event has the next ``sequence`` (a re-made
event has the same ``event_id`` as the one the previous owner sent), a clearing clears them,
and re-arm, chatter and flood state carry over.

>>> from prometheus_client import CollectorRegistry
>>> from sentinelle.metrics import Metrics
>>> from sentinelle.settings import DetectSettings
>>> from sentinelle.detect.alerts import AlertBook, Observation
>>> book = AlertBook(Metrics(CollectorRegistry()), DetectSettings())
>>> obs = Observation(ts=60.0, actual=5.3, forecast=5.0, lower=4.9, upper=5.1, z=0.1, score=0.0, unit="degC")
>>> _ = book.open_alert(("limit_high", "c1.t"), asset="c1", tag="c1.t", obs=obs, magnitude=0.1, contributors=())
>>> other = AlertBook(Metrics(CollectorRegistry()), DetectSettings())
>>> other.restore(book.state())
>>> other.open[("limit_high", "c1.t")].alert_id, other.open[("limit_high", "c1.t")].events
('c1/c1.t/limit_high/60000', 1)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..records import Contributor
from .alert_records import AlertKey, Observation, OpenAlert

VERSION = 1


def dump_alert(alert: OpenAlert) -> dict[str, Any]:
    d = dataclasses.asdict(alert)
    d["members"] = sorted(alert.members)
    d["last_obs"] = dataclasses.asdict(alert.last_obs) if alert.last_obs is not None else None
    d["last_contributors"] = [dataclasses.astuple(c) for c in alert.last_contributors]
    return d


def load_alert(d: dict[str, Any]) -> OpenAlert:
    d = dict(d)
    d["members"] = set(d["members"])
    d["last_obs"] = Observation(**d["last_obs"]) if d["last_obs"] is not None else None
    d["last_contributors"] = tuple(Contributor(str(t), float(s), float(z)) for t, s, z in d["last_contributors"])
    d["flood_members"] = list(d["flood_members"])
    return OpenAlert(**d)


def dump(
    open_alerts: dict[AlertKey, OpenAlert],
    latest_ts: float,
    rearm: list[Any],
    floods: dict[str, Any],
    in_flood: dict[AlertKey, str],
) -> dict[str, Any]:
    return {
        "version": VERSION,
        "open": [[list(k), dump_alert(a)] for k, a in open_alerts.items()],
        "latest_ts": latest_ts,
        "rearm": rearm,
        "floods": floods,
        "in_flood": [[list(k), a] for k, a in in_flood.items()],
    }


def load(
    state: dict[str, Any],
) -> tuple[dict[AlertKey, OpenAlert], float, list[Any], dict[str, Any], dict[AlertKey, str]]:
    """The parts :func:`dump` wrote; ``ValueError`` for another version (``KeyError``/``TypeError`` if malformed)."""
    if state.get("version") != VERSION:
        raise ValueError(f"alert book state version {state.get('version')!r}; this sentinelle reads {VERSION}")
    open_alerts: dict[AlertKey, OpenAlert] = {(k[0], k[1]): load_alert(a) for k, a in state["open"]}
    in_flood: dict[AlertKey, str] = {(k[0], k[1]): str(a) for k, a in state["in_flood"]}
    return open_alerts, float(state["latest_ts"]), list(state["rearm"]), dict(state["floods"]), in_flood
