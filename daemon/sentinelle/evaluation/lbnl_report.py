"""LBNL day-level results and their report: confusion counts per split, fault type and file, alert rates.

:mod:`.lbnl` replays the days; this module counts what they gave (:class:`DayResult` per day,
:func:`day_scores`, :func:`per_fault_type`, :func:`alerts_per_day`) and writes ``report.md``
and ``report.json`` (:func:`write_report`).

>>> day_scores([DayResult("f", "2017-03-11", True, "x", 2, 0), DayResult("f", "2017-04-01", False, None, 0, 0)]).tp
1
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .detection import EEMUA_ALERTS_PER_10_MIN, AlarmKpis, AlertRate
from .lbnl_days import SETTLE_ROWS, SPLITS


@dataclass(frozen=True, slots=True)
class DayResult:
    file: str
    date: str
    faulted: bool
    fault_type: str | None
    alerts_opened: int
    first_alert_minute: int
    """Minutes after midnight of the first opening (-1: none)."""
    first_alert: str = ""
    """Kind and tag of the first alert opened ("" if none)."""
    opened_by_kind: tuple[tuple[str, int], ...] = ()
    """Alerts opened, counted per alert kind."""
    split: str = ""
    """``tuning`` or ``heldout`` (:func:`split_of`)."""

    @property
    def predicted(self) -> bool:
        return self.alerts_opened > 0


@dataclass(frozen=True, slots=True)
class DayScores:
    tp: int
    fn: int
    fp: int
    tn: int

    def summary(self) -> dict[str, Any]:
        faulted, normal = self.tp + self.fn, self.fp + self.tn
        predicted = self.tp + self.fp
        return {
            "tp": self.tp,
            "fn": self.fn,
            "fp": self.fp,
            "tn": self.tn,
            "detection_rate": round(self.tp / faulted, 3) if faulted else None,
            "false_positive_rate": round(self.fp / normal, 3) if normal else None,
            "precision": round(self.tp / predicted, 3) if predicted else None,
            "accuracy": round((self.tp + self.tn) / (faulted + normal), 3) if faulted + normal else None,
        }


def day_scores(days: Sequence[DayResult]) -> DayScores:
    """The day-level confusion counts."""
    tp = sum(1 for d in days if d.faulted and d.predicted)
    fn = sum(1 for d in days if d.faulted and not d.predicted)
    fp = sum(1 for d in days if not d.faulted and d.predicted)
    tn = sum(1 for d in days if not d.faulted and not d.predicted)
    return DayScores(tp, fn, fp, tn)


def per_fault_type(days: Sequence[DayResult]) -> dict[str, tuple[int, int]]:
    """(detected, faulted days) per fault type, sorted by type."""
    out: dict[str, tuple[int, int]] = {}
    for d in days:
        if d.faulted:
            key = d.fault_type or "unknown fault"
            hit, n = out.get(key, (0, 0))
            out[key] = (hit + int(d.predicted), n + 1)
    return dict(sorted(out.items()))


@dataclass(slots=True)
class LbnlResult:
    label: str
    days: list[DayResult]
    skipped: list[str]
    rate: AlertRate
    rate_fault_free: AlertRate
    seconds: float
    kpis: AlarmKpis | None = None
    """Alarm-system KPIs (ISA-18.2 / EEMUA 191) over every scored day's events."""

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "days": day_scores(self.days).summary(),
            "days_per_split": {k: day_scores([d for d in self.days if d.split == k]).summary() for k in SPLITS},
            "per_fault_type": {k: {"detected": h, "days": n} for k, (h, n) in per_fault_type(self.days).items()},
            "per_file": {
                f: day_scores([d for d in self.days if d.file == f]).summary()
                for f in dict.fromkeys(d.file for d in self.days)
            },
            "alerts_per_day": alerts_per_day(self.days),
            "alert_rate": self.rate.summary(),
            "alert_rate_fault_free_days": self.rate_fault_free.summary(),
            "alarm_kpis": self.kpis.summary() if self.kpis is not None else None,
            "not_scored": self.skipped,
            "wall_seconds": round(self.seconds, 1),
            "per_day": [dataclasses.asdict(d) for d in self.days],
        }


# -- the report -------------------------------------------------------------------

PROTOCOL = {
    "data": "shared/data/lbnl_ahu_fdd: SZCAV, SZVAV, MZVAV-2-1, MZVAV-2-2 (1-minute, whole days, label per day)",
    "scored_day": "each labelled day, replayed after the file's nearest other fault-free day (warm-up: the "
    "detectors learn, alerts dropped), moved in time to end where the scored day starts; the scored day's first "
    f"{SETTLE_ROWS} minutes warm up too (the seam between two midnights) and are not scored",
    "prediction": "a day is predicted faulty if an alert of the AHU opened during it",
    "tags": "temperatures, control signals (fan speed, dampers, coil valves), duct static pressure; "
    "set points, fan status and occupancy left out (schedules)",
    "fault_types": "LBNLDataSynthesisInventory.pdf tables 2-2, 3-3, 3-4 (component + failure mode)",
    "heldout": "faulted days are evaluation-only (evaluation/heldout.py); fault-free days may be in pretraining",
}


def write_report(results: Sequence[LbnlResult], out: Path, meta: dict[str, Any]) -> None:
    import json

    out.mkdir(parents=True, exist_ok=True)
    doc = {**meta, "protocol": PROTOCOL, "runs": [r.summary() for r in results]}
    (out / "report.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "report.md").write_text(_markdown(results, meta))


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def _markdown(results: Sequence[LbnlResult], meta: dict[str, Any]) -> str:
    head = results[0]
    lines = [
        "# LBNL air-handling units — day-level fault detection through the daemon's stages",
        "",
        f"Generated {meta.get('generated', '')} by `sentinelle evaluate --dataset lbnl` on {meta.get('machine', '')}; "
        f"{meta.get('seconds', 0):.0f} s for all runs.",
        "",
        *meta.get("summary", []),
        "Each labelled day is replayed minute by minute through Windows → ForecastBatcher → DetectStage after a "
        "warm-up day (the same file's nearest other fault-free day, in the daemon's backfill mode: the detectors "
        f"learn, its alerts are dropped), and the day's own first {SETTLE_ROWS} minutes (the seam between two "
        "midnights). A day is predicted faulty when an alert of the AHU opened during the rest of it. "
        "Labels are per whole day (there is no onset to time), so there is no delay to report.",
        "",
        f"## Headline — {head.label}",
        "",
        "Days are split into a tuning and a held-out half (alternate days per file and label, in date order; "
        "`evaluation/lbnl_days.py` `split_of`). Settings were chosen on the tuning days; the held-out days are the "
        "headline, all days beside them.",
        "",
        "| days | faulted days detected | fault-free days flagged | accuracy |",
        "|---|---|---|---|",
        *(_split_row(name, [d for d in head.days if d.split == key]) for key, name in _SPLIT_NAMES),
        _split_row("all", head.days),
        "",
        "The tables below count all days.",
        "",
        "| fault type | faulted days | detected |",
        "|---|---|---|",
    ]
    for k, (hit, n) in per_fault_type(head.days).items():
        lines.append(f"| {k} | {n} | {hit} ({100 * hit / n:.0f} %) |")
    lines += ["", "| file | detected (faulted days) | flagged (fault-free days) |", "|---|---|---|"]
    for f in dict.fromkeys(d.file for d in head.days):
        fs = day_scores([d for d in head.days if d.file == f])
        lines.append(f"| {f} | {fs.tp}/{fs.tp + fs.fn} | {fs.fp}/{fs.fp + fs.tn} |")
    lines += [
        "",
        f"Alert rate over the scored days: mean {head.rate.mean_per_10_min:.2f} per 10 min, peak "
        f"{head.rate.peak_per_10_min} in a 10-minute window; fault-free days only: mean "
        f"{head.rate_fault_free.mean_per_10_min:.2f}, peak {head.rate_fault_free.peak_per_10_min} (EEMUA 191 "
        f"budget: about {EEMUA_ALERTS_PER_10_MIN:.0f} per 10 minutes).",
        "",
        *(head.kpis.markdown() if head.kpis is not None else []),
        "Not scored: " + ("; ".join(head.skipped) if head.skipped else "none") + ".",
        "",
        "Alerts opened by kind, faulted days: "
        + _kinds(d for d in head.days if d.faulted)
        + "; fault-free days: "
        + _kinds(d for d in head.days if not d.faulted)
        + ".",
        "",
        _count_note(head.days),
        "",
        "## Configurations",
        "",
        "| configuration | held-out: faulted detected, fault-free flagged | tuning: faulted detected, "
        "fault-free flagged | all: faulted detected | all: fault-free flagged | alerts per day: faulted, fault-free "
        "(AUC) | alerts / 10 min (mean, peak) | fault-free days: alerts / 10 min (mean, peak) | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rs = day_scores(r.days)
        a = alerts_per_day(r.days)
        per = {k: day_scores([d for d in r.days if d.split == k]) for k in SPLITS}
        h, t = per["heldout"], per["tuning"]
        lines.append(
            f"| {r.label} | {h.tp}/{h.tp + h.fn}, {h.fp}/{h.fp + h.tn} | {t.tp}/{t.tp + t.fn}, {t.fp}/{t.fp + t.tn} "
            f"| {rs.tp}/{rs.tp + rs.fn} | {rs.fp}/{rs.fp + rs.tn} | {a['faulted_mean']}, "
            f"{a['fault_free_mean']} ({a['auc']}) | {r.rate.mean_per_10_min:.2f}, "
            f"{r.rate.peak_per_10_min} | {r.rate_fault_free.mean_per_10_min:.2f}, {r.rate_fault_free.peak_per_10_min} "
            f"| {r.seconds:.0f} |"
        )
    lines += [
        "",
        *meta.get("notes", []),
        "",
        "## Per day (headline)",
        "",
        "| file | date | split | label | fault type | alerts opened | first alert (h:mm) | first alert |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d in head.days:
        first = "–" if d.first_alert_minute < 0 else f"{d.first_alert_minute // 60}:{d.first_alert_minute % 60:02d}"
        lines.append(
            f"| {d.file} | {d.date} | {d.split} | {'fault' if d.faulted else 'normal'} | {d.fault_type or ''} | "
            f"{d.alerts_opened} | {first} | {d.first_alert} |"
        )
    lines.append("")
    return "\n".join(lines)


_SPLIT_NAMES = (("heldout", "**held-out (headline)**"), ("tuning", "tuning"))


def _split_row(name: str, days: Sequence[DayResult]) -> str:
    sc = day_scores(days).summary()
    return (
        f"| {name} | {sc['tp']}/{sc['tp'] + sc['fn']} ({_pct(sc['detection_rate'])}) | "
        f"{sc['fp']}/{sc['fp'] + sc['tn']} ({_pct(sc['false_positive_rate'])}) | {_pct(sc['accuracy'])} |"
    )


def alerts_per_day(days: Sequence[DayResult]) -> dict[str, float | None]:
    """Alerts opened per faulted and per fault-free day, and the AUC of that count as a day score.

    The AUC is the chance that a faulted day opened more alerts than a fault-free one (ties count half):
    how well the count ranks days, whatever threshold "faulty" would take.

    >>> d = [DayResult("f", "a", True, "x", 3, 0), DayResult("f", "b", False, None, 1, 0),
    ...      DayResult("f", "c", False, None, 3, 0)]
    >>> alerts_per_day(d)
    {'faulted_mean': 3.0, 'fault_free_mean': 2.0, 'auc': 0.75}
    """
    f = [d.alerts_opened for d in days if d.faulted]
    n = [d.alerts_opened for d in days if not d.faulted]
    if not f or not n:
        return {"faulted_mean": None, "fault_free_mean": None, "auc": None}
    wins = sum((a > b) + 0.5 * (a == b) for a in f for b in n)
    return {
        "faulted_mean": round(sum(f) / len(f), 2),
        "fault_free_mean": round(sum(n) / len(n), 2),
        "auc": round(wins / (len(f) * len(n)), 3),
    }


def _count_note(days: Sequence[DayResult]) -> str:
    a = alerts_per_day(days)
    early = [d for d in days if 0 <= d.first_alert_minute < SETTLE_ROWS + 5]
    early_residual = sum(1 for d in early if d.first_alert.startswith("forecast_residual"))
    return (
        f"Alerts opened per day: faulted {a['faulted_mean']}, fault-free {a['fault_free_mean']}; as a day score "
        f"the count ranks a faulted day above a fault-free one with probability (AUC) {a['auc']}. "
        f"On {len(early)} of {len(days)} days the first alert opened within 5 minutes of the start of scoring "
        f"({early_residual} of them forecast-residual alerts): a condition already present at the end of the "
        "warm-up, not an event of the day."
    )


def _kinds(days: Iterable[DayResult]) -> str:
    total: Counter[str] = Counter()
    for d in days:
        total.update(dict(d.opened_by_kind))
    return ", ".join(f"{k} {n}" for k, n in total.most_common()) or "none"
