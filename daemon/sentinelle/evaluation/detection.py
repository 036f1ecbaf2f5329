"""Alerts against fault intervals: detected or not, how late, how many false alarms, how many alerts.

The inputs are what the daemon and the simulator already write: alert events
(``opened`` / ``updated`` / ``cleared``, as on Kafka or in ``alerts.jsonl``) and
fault intervals (the simulator's ``ground_truth.jsonl``: kind, asset, tags,
``start_ts``, ``end_ts``).  So the same scoring serves a replayed evaluation and
a recorded demo run.

Definitions (one scored period ``[scored_from, scored_to)`` per run):

* an alert *matches* a fault when it is of the fault's asset and *opened* while
  the fault is present, in ``[start_ts, end_ts)`` — an alert already open before
  the onset did not detect this fault (it was there first), and one opened after
  the end saw the recovery, not the fault;
* a fault is *detected* when at least one alert matches it; its *delay* is the
  first matching opening minus ``start_ts``;
* a *false alarm* is an alert opened in the scored period outside every fault's
  ``[start_ts, end_ts + tolerance_s)`` (faults of any asset: a run's plant has one
  operator; the tolerance leaves the plant's recovery transients out of both
  counts); false alarms per day divide their count by the scored time outside
  those intervals;
* the alert *rate* counts every opening in the scored period: mean per 10 minutes
  over the scored time, and the peak in any 10-minute window (EEMUA 191's
  "about one alarm per 10 minutes" is the budget an operator can handle);
* the alarm-system KPIs (ISA-18.2 / EEMUA 191: per asset, fixed 10-minute periods,
  chattering subjects, bad actors) come from :func:`sentinelle.detect.kpi.alarm_kpis`
  over the same events (the runtime module; this package only calls it).

>>> truth = [FaultInterval("spike", "chiller1", ("chiller1.power_kw",), 100.0, 200.0)]
>>> spans = [AlertSpan("chiller1", "chiller1.power_kw", "forecast_residual", 130.0, 150.0),
...          AlertSpan("chiller1", "chiller1.flow_m3h", "forecast_residual", 500.0, None)]
>>> r = score_run(truth, spans, scored_from=0.0, scored_to=1000.0, tolerance_s=60.0)
>>> [(f.detected, f.delay_s) for f in r.faults], r.false_alarms, r.exposure_s
([(True, 30.0)], 1, 840.0)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..detect.kpi import AlarmKpis as AlarmKpis
from ..detect.kpi import alarm_kpis as alarm_kpis
from ..records import AlertEvent

DAY_S = 86_400.0
RATE_WINDOW_S = 600.0
EEMUA_ALERTS_PER_10_MIN = 1.0
"""EEMUA 191: about one alarm per 10 minutes per operator in steady operation is manageable."""


@dataclass(frozen=True, slots=True)
class FaultInterval:
    """One injected (or labelled) fault: what, where, when (epoch seconds, end exclusive)."""

    kind: str
    asset: str
    tags: tuple[str, ...]
    start_ts: float
    end_ts: float

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> FaultInterval:
        """From one line of the simulator's ground truth (``kind, asset, tags, start_ts, end_ts``)."""
        return cls(
            kind=str(record["kind"]),
            asset=str(record["asset"]),
            tags=tuple(str(t) for t in record.get("tags", ())),
            start_ts=float(record["start_ts"]),
            end_ts=float(record["end_ts"]),
        )


@dataclass(frozen=True, slots=True)
class AlertSpan:
    """One alert from its opening to its clearing (``end_ts`` None: still open at the end)."""

    asset: str
    tag: str
    kind: str
    start_ts: float
    end_ts: float | None


def read_ground_truth(path: Path) -> list[FaultInterval]:
    """The simulator's ``ground_truth.jsonl`` (one JSON object per line)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            out.append(FaultInterval.from_record(json.loads(line)))
    return out


def alert_spans(events: Iterable[AlertEvent]) -> list[AlertSpan]:
    """Pair each alert's ``opened`` with its ``cleared`` (by alert id), in opening order.

    >>> from sentinelle.records import AlertEvent
    >>> def ev(kind, ts, end=None):
    ...     return AlertEvent(kind, "a/t/limit_high/1", "limit_high", "a", "t", "critical", 1.0, ts, end,
    ...                       0.0, 0.0, 0.0, 0.0, 0.0, "", "")
    >>> alert_spans([ev("opened", 1.0), ev("updated", 5.0), ev("cleared", 9.0, 9.0)])
    [AlertSpan(asset='a', tag='t', kind='limit_high', start_ts=1.0, end_ts=9.0)]
    """
    open_: dict[str, AlertEvent] = {}
    closed: list[tuple[AlertEvent, float | None]] = []
    for e in events:
        if e.event == "opened":
            open_[e.alert_id] = e
        elif e.event == "cleared" and e.alert_id in open_:
            closed.append((open_.pop(e.alert_id), e.event_ts))
    closed.extend((e, None) for e in open_.values())
    closed.sort(key=lambda pair: pair[0].start_ts)
    return [AlertSpan(e.asset, e.tag, e.kind, e.start_ts, end) for e, end in closed]


@dataclass(frozen=True, slots=True)
class FaultScore:
    fault: FaultInterval
    detected: bool
    delay_s: float
    """First matching opening minus the fault's start (NaN when not detected)."""
    first_alert: AlertSpan | None


@dataclass(frozen=True, slots=True)
class RunScore:
    """One run's faults and false alarms."""

    faults: list[FaultScore]
    false_alarms: int
    exposure_s: float
    """Scored time outside every fault interval (+ tolerance): the denominator of false alarms per day."""
    scored_s: float
    openings: list[float] = field(default_factory=list)
    """Opening times of every alert in the scored period (for the alert rate)."""
    opened_kinds: list[str] = field(default_factory=list)
    """The alert kind of each opening, in the same order."""
    false_alarm_spans: list[AlertSpan] = field(default_factory=list)


def score_run(
    truth: Sequence[FaultInterval],
    spans: Sequence[AlertSpan],
    scored_from: float,
    scored_to: float,
    tolerance_s: float,
) -> RunScore:
    """Score one run's alerts against its faults; see the module docstring."""
    inside = [s for s in spans if scored_from <= s.start_ts < scored_to]
    faults = []
    for f in truth:
        matches = [s for s in inside if s.asset == f.asset and f.start_ts <= s.start_ts < f.end_ts]
        first = min(matches, key=lambda s: s.start_ts) if matches else None
        faults.append(
            FaultScore(f, first is not None, first.start_ts - f.start_ts if first is not None else math.nan, first)
        )
    windows = _merge([(f.start_ts, f.end_ts + tolerance_s) for f in truth])
    false = [s for s in inside if not any(a <= s.start_ts < b for a, b in windows)]
    covered = sum(max(0.0, min(b, scored_to) - max(a, scored_from)) for a, b in windows)
    return RunScore(
        faults=faults,
        false_alarms=len(false),
        exposure_s=max(0.0, scored_to - scored_from - covered),
        scored_s=max(0.0, scored_to - scored_from),
        openings=[s.start_ts for s in inside],
        opened_kinds=[s.kind for s in inside],
        false_alarm_spans=false,
    )


def _merge(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def peak_per_window(times: Sequence[float], width_s: float = RATE_WINDOW_S) -> int:
    """Most events in any window of ``width_s`` seconds (windows starting at an event).

    >>> peak_per_window([0.0, 100.0, 599.0, 600.0, 2000.0])
    3
    """
    t = np.sort(np.asarray(times, dtype=np.float64))
    if t.size == 0:
        return 0
    ends = np.searchsorted(t, t + width_s, side="left")
    return int((ends - np.arange(t.size)).max())


@dataclass(frozen=True, slots=True)
class AlertRate:
    mean_per_10_min: float
    peak_per_10_min: int
    openings: int
    hours: float

    def summary(self) -> dict[str, Any]:
        return {
            "mean_per_10_min": round(self.mean_per_10_min, 3),
            "peak_per_10_min": self.peak_per_10_min,
            "openings": self.openings,
            "hours": round(self.hours, 2),
            "eemua_191_budget_per_10_min": EEMUA_ALERTS_PER_10_MIN,
        }


def alert_rate(runs: Sequence[tuple[Sequence[float], float]]) -> AlertRate:
    """Alert rate over many runs, each (opening times, scored seconds); the peak is the worst run's.

    >>> r = alert_rate([([0.0, 10.0], 600.0), ([5.0], 1200.0)])
    >>> r.mean_per_10_min, r.peak_per_10_min
    (1.0, 2)
    """
    openings = sum(len(t) for t, _ in runs)
    seconds = sum(s for _, s in runs)
    return AlertRate(
        mean_per_10_min=RATE_WINDOW_S * openings / seconds if seconds else math.nan,
        peak_per_10_min=max((peak_per_window(t) for t, _ in runs), default=0),
        openings=openings,
        hours=seconds / 3600.0,
    )


@dataclass(frozen=True, slots=True)
class KindSummary:
    """Faults of one kind over many runs."""

    kind: str
    faults: int
    detected: int
    delays_s: list[float]

    @property
    def all_detected(self) -> bool:
        return self.faults > 0 and self.detected == self.faults

    def summary(self) -> dict[str, Any]:
        d = np.asarray(self.delays_s, dtype=np.float64)
        return {
            "kind": self.kind,
            "faults": self.faults,
            "detected": self.detected,
            "detection_rate": round(self.detected / self.faults, 3) if self.faults else None,
            "delay_s_mean": round(float(d.mean()), 1) if d.size else None,
            "delay_s_median": round(float(np.median(d)), 1) if d.size else None,
            "delay_s_max": round(float(d.max()), 1) if d.size else None,
        }


def by_kind(scores: Iterable[RunScore]) -> dict[str, KindSummary]:
    """Detection and delay per fault kind, in order of first appearance."""
    acc: dict[str, tuple[int, int, list[float]]] = {}
    for r in scores:
        for f in r.faults:
            n, d, delays = acc.get(f.fault.kind, (0, 0, []))
            if f.detected:
                delays.append(f.delay_s)
            acc[f.fault.kind] = (n + 1, d + int(f.detected), delays)
    return {k: KindSummary(k, n, d, delays) for k, (n, d, delays) in acc.items()}


def false_alarms_per_day(scores: Iterable[RunScore]) -> tuple[float, int, float]:
    """(false alarms per day, their count, exposure in hours) over many runs."""
    runs = list(scores)
    count = sum(r.false_alarms for r in runs)
    exposure = sum(r.exposure_s for r in runs)
    return (DAY_S * count / exposure if exposure else math.nan), count, exposure / 3600.0
