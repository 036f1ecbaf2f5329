"""Alarm-system KPIs (ISA-18.2 / EEMUA 191) over alert events: the load an operator would have lived through.

A pure function over :class:`~sentinelle.records.AlertEvent` lists, so every
evaluation report and any replayed ``alerts.jsonl`` computes them the same way
(``evaluation/`` imports this; nothing here imports ``evaluation/``).  The
running daemon exposes the live counterparts as Prometheus metrics
(``metrics.py``: ``sentinelle_alert_openings_total{asset, kind}``,
``..._reactivations_total``, ``..._flood_members_total``).

Definitions, for runs each scored over ``[start, end)``:

* an *opening* is an ``opened`` event (a ``flood`` alert is one; its members and
  re-activations are not: no new alert reached the operator);
* *periods* are consecutive 10-minute periods from each run's start (a last,
  shorter one counts) — ISA-18.2 counts fixed periods; the *peak* is the most
  openings in one period, the *shares* the periods with more than 1 (EEMUA 191's
  "about one per 10 minutes" is manageable) and more than 10 openings (a flood);
* a *subject* is ``kind:subject`` of the event (a tag, an asset, ``tag#reason``);
  it is *chattering* with ``chatter_openings`` openings within ``chatter_window_s``
  (EEMUA 191: three in a minute); the issue's budget is at most ``subject_budget``
  openings of one subject in any 10 minutes;
* *bad actors*: the subjects with the most openings.

>>> from sentinelle.records import AlertEvent
>>> def opened(ts, subject="c.t", asset="c"):
...     return AlertEvent("opened", f"{asset}/{subject}/limit_high/{ts}", "limit_high", asset, subject,
...                       "critical", ts, ts, None, 0.0, 0.0, 0.0, 0.0, 0.0, "", "", subject=subject)
>>> k = alarm_kpis([([opened(10.0), opened(20.0), opened(30.0), opened(900.0, "d.x", "d")], 0.0, 1200.0)])
>>> k.mean_per_10_min, k.peak_per_10_min, k.share_over_1, k.chattering, k.bad_actors[0]
(2.0, 3, 0.5, ('limit_high:c.t',), ('limit_high:c.t', 3))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..records import AlertEvent

PERIOD_S = 600.0
FLOOD_OPENINGS = 10
"""ISA-18.2 / EEMUA 191: more than 10 alarms in 10 minutes is a flood."""
MANAGEABLE_OPENINGS = 1
"""EEMUA 191: about one alarm per 10 minutes is what an operator can handle in steady operation."""

Run = tuple[Sequence[AlertEvent], float, float]
"""One run's events and its scored period ``[start, end)`` (epoch seconds)."""


@dataclass(frozen=True, slots=True)
class AssetLoad:
    """Openings of one asset over all runs' periods."""

    asset: str
    openings: int
    mean_per_10_min: float
    peak_per_10_min: int
    share_over_1: float
    share_over_10: float


@dataclass(frozen=True, slots=True)
class AlarmKpis:
    hours: float
    periods: int
    openings: int
    mean_per_10_min: float
    """All assets together: one operator's load."""
    peak_per_10_min: int
    share_over_1: float
    share_over_10: float
    per_asset: tuple[AssetLoad, ...]
    chattering: tuple[str, ...]
    """Subjects with ``chatter_openings`` openings within ``chatter_window_s`` in some run."""
    max_subject_openings_per_10_min: int
    over_budget: tuple[str, ...]
    """Subjects with more than ``subject_budget`` openings within 10 minutes in some run."""
    bad_actors: tuple[tuple[str, int], ...]
    reactivations: int
    """Times an alert came back within its re-arm time instead of opening anew (chatter absorbed)."""
    flood_alerts: int

    def summary(self) -> dict[str, Any]:
        """For the reports' JSON."""
        return {
            "hours": round(self.hours, 2),
            "openings": self.openings,
            "openings_per_10_min_mean": _round(self.mean_per_10_min),
            "openings_per_10_min_peak": self.peak_per_10_min,
            "share_of_10_min_periods_over_1": _round(self.share_over_1),
            "share_of_10_min_periods_over_10": _round(self.share_over_10),
            "per_asset": [
                {
                    "asset": a.asset,
                    "openings": a.openings,
                    "per_10_min_mean": _round(a.mean_per_10_min),
                    "per_10_min_peak": a.peak_per_10_min,
                    "share_over_1": _round(a.share_over_1),
                    "share_over_10": _round(a.share_over_10),
                }
                for a in self.per_asset
            ],
            "chattering_subjects": list(self.chattering),
            "max_subject_openings_per_10_min": self.max_subject_openings_per_10_min,
            "subjects_over_budget": list(self.over_budget),
            "bad_actors": [{"subject": s, "openings": n} for s, n in self.bad_actors],
            "reactivations": self.reactivations,
            "flood_alerts": self.flood_alerts,
        }

    def markdown(self, title: str = "Alarm load (ISA-18.2 / EEMUA 191)") -> list[str]:
        """A short report section: one line per KPI, then a table per asset."""
        actors = ", ".join(f"{s} {n}" for s, n in self.bad_actors) or "none"
        lines = [
            f"**{title}** over {self.hours:.1f} h ({self.periods} ten-minute periods): {self.openings} alerts "
            f"opened, mean {self.mean_per_10_min:.2f} per 10 min, peak {self.peak_per_10_min} in one period; "
            f"{self.share_over_1:.1%} of periods over 1 (EEMUA 191: about 1 is manageable), "
            f"{self.share_over_10:.1%} over 10 (a flood); {self.flood_alerts} flood alerts. "
            f"Chattering subjects (3 openings in a minute): {len(self.chattering)}"
            + (f" ({', '.join(self.chattering)})" if self.chattering else "")
            + f"; most openings of one subject in 10 minutes: {self.max_subject_openings_per_10_min}"
            + (f" (over 3: {', '.join(self.over_budget)})" if self.over_budget else "")
            + f"; re-activations absorbed by re-arm: {self.reactivations}. Top bad actors: {actors}.",
            "",
        ]
        if self.per_asset:
            lines += [
                "| asset | openings | per 10 min (mean / peak) | periods > 1 | periods > 10 |",
                "|---|---|---|---|---|",
                *(
                    f"| {a.asset} | {a.openings} | {a.mean_per_10_min:.2f} / {a.peak_per_10_min} | "
                    f"{a.share_over_1:.1%} | {a.share_over_10:.1%} |"
                    for a in self.per_asset
                ),
                "",
            ]
        return lines


def subject_of(e: AlertEvent) -> str:
    """``kind:subject`` of an event (events of older daemons: ``kind:asset/tag``)."""
    return f"{e.kind}:{e.subject or f'{e.asset}/{e.tag}'}"


def alarm_kpis(
    runs: Sequence[Run],
    *,
    period_s: float = PERIOD_S,
    chatter_openings: int = 3,
    chatter_window_s: float = 60.0,
    subject_budget: int = 3,
    top: int = 5,
) -> AlarmKpis:
    """The KPIs of all ``runs`` together; see the module docstring."""
    total: list[np.ndarray] = []
    per_asset: dict[str, list[np.ndarray]] = {}
    bins_per_run: list[int] = []
    counts: dict[str, int] = {}
    chattering: set[str] = set()
    over_budget: set[str] = set()
    max_subject = 0
    reactivations: dict[str, int] = {}
    floods = 0
    seconds = 0.0
    for events, start, end in runs:
        span = max(0.0, end - start)
        seconds += span
        n_bins = max(1, math.ceil(span / period_s))
        bins_per_run.append(n_bins)
        inside = [e for e in events if start <= e.event_ts < end]
        opened = [e for e in inside if e.event == "opened"]
        for e in inside:
            reactivations[e.alert_id] = max(reactivations.get(e.alert_id, 0), e.reactivations)
        floods += sum(1 for e in opened if e.kind == "flood")
        index = np.array([int((e.event_ts - start) // period_s) for e in opened], dtype=np.intp)
        total.append(np.bincount(index, minlength=n_bins))
        for asset in {e.asset for e in opened} | set(per_asset):
            mask = np.array([e.asset == asset for e in opened], dtype=bool)
            hist = np.bincount(index[mask], minlength=n_bins) if mask.size else np.zeros(n_bins, dtype=np.intp)
            per_asset.setdefault(asset, [np.zeros(b, dtype=np.intp) for b in bins_per_run[:-1]]).append(hist)
        times: dict[str, list[float]] = {}
        for e in opened:
            times.setdefault(subject_of(e), []).append(e.event_ts)
        for subject, ts in times.items():
            counts[subject] = counts.get(subject, 0) + len(ts)
            if _most_within(ts, chatter_window_s) >= chatter_openings:
                chattering.add(subject)
            in_10 = _most_within(ts, period_s)
            max_subject = max(max_subject, in_10)
            if in_10 > subject_budget:
                over_budget.add(subject)
    all_bins = np.concatenate(total) if total else np.zeros(0, dtype=np.intp)
    loads = tuple(_load(asset, np.concatenate(h), seconds, period_s) for asset, h in sorted(per_asset.items()))
    overall = _load("", all_bins, seconds, period_s)
    return AlarmKpis(
        hours=seconds / 3600.0,
        periods=int(all_bins.size),
        openings=overall.openings,
        mean_per_10_min=overall.mean_per_10_min,
        peak_per_10_min=overall.peak_per_10_min,
        share_over_1=overall.share_over_1,
        share_over_10=overall.share_over_10,
        per_asset=loads,
        chattering=tuple(sorted(chattering)),
        max_subject_openings_per_10_min=max_subject,
        over_budget=tuple(sorted(over_budget)),
        bad_actors=tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]),
        reactivations=sum(reactivations.values()),
        flood_alerts=floods,
    )


def _load(asset: str, bins: np.ndarray, seconds: float, period_s: float) -> AssetLoad:
    n = int(bins.sum())
    return AssetLoad(
        asset=asset,
        openings=n,
        mean_per_10_min=period_s * n / seconds if seconds else math.nan,
        peak_per_10_min=int(bins.max()) if bins.size else 0,
        share_over_1=float((bins > MANAGEABLE_OPENINGS).mean()) if bins.size else math.nan,
        share_over_10=float((bins > FLOOD_OPENINGS).mean()) if bins.size else math.nan,
    )


def _most_within(times: Sequence[float], width_s: float) -> int:
    """Most of ``times`` in any window ``[t, t + width_s)`` starting at one of them."""
    t = np.sort(np.asarray(times, dtype=np.float64))
    if t.size == 0:
        return 0
    ends = np.searchsorted(t, t + width_s, side="left")
    return int((ends - np.arange(t.size)).max())


def _round(x: float) -> float | None:
    return round(x, 4) if math.isfinite(x) else None
