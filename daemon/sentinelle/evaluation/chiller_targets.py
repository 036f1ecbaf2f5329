"""The targets issues 13 and 14 set for the chiller report, checked against its rows, with the shortfall.

Issue 13 (alarm management), for the daemon as shipped (rows labelled ``… (shipped)``):
every fault kind detected, no false alarm, no subject opening more than
:data:`SUBJECT_BUDGET` alerts in 10 minutes, and at most :data:`MEAN_BUDGET`
openings per 10 minutes on average over the fault runs.

Issue 14 (the asset model), for its residuals alone (rows labelled ``asset model: …``):
every kind, at least :data:`MIN_FAULTS` faults (of 21), at most :data:`MAX_FA_PER_DAY`
false alarms per day, and every sensor drift and fouling detected within
:data:`SLOW_WITHIN_S` of its onset.

A target is met or not; when not, the line says by how much.

>>> missed(7, 7), missed(5, 7)
('', ' (2 short)')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .chiller_eval import ChillerResult

SLOW_KINDS = ("sensor_drift", "fouling", "pump_degradation")
"""The faults that ramp in slowly: what a one-step residual follows."""
SUBJECT_BUDGET = 3
MEAN_BUDGET = 1.0
MIN_FAULTS = 19
MAX_FA_PER_DAY = 0.5
SLOW_WITHIN_S = 7200.0
"""Issue 14: sensor drift and fouling detected within 2 simulated hours of onset."""


def missed(got: int, want: int) -> str:
    """The shortfall of a count, as text ('' when met)."""
    return "" if got >= want else f" ({want - got} short)"


def _mark(ok: bool) -> str:
    return "met" if ok else "**not met**"


def issue13(r: ChillerResult) -> dict[str, Any]:
    """Issue 13's four conditions on one row."""
    kinds, n = r.kinds_detected, len(r.kinds)
    worst = r.kpis.max_subject_openings_per_10_min if r.kpis is not None else 0
    mean = r.rate_fault_runs.mean_per_10_min if r.rate_fault_runs is not None else r.rate.mean_per_10_min
    checks = {
        "kinds": kinds == n,
        "no_false_alarms": r.false_alarms == 0,
        "subject_budget": worst <= SUBJECT_BUDGET,
        "mean_budget": mean <= MEAN_BUDGET,
    }
    text = (
        f"Issue 13 on *{r.label}*: {_mark(all(checks.values()))} — {kinds}/{n} kinds{missed(kinds, n)}; "
        f"{r.false_alarms} false alarms; at most {worst} openings of one subject in 10 min "
        f"(budget {SUBJECT_BUDGET}{'' if checks['subject_budget'] else f', over by {worst - SUBJECT_BUDGET}'}); "
        f"mean {mean:.2f} openings per 10 min over the fault runs (budget {MEAN_BUDGET:.0f}"
        + ("" if checks["mean_budget"] else f", over by {mean - MEAN_BUDGET:.2f}")
        + ")."
    )
    return {"issue": 13, "row": r.label, "met": all(checks.values()), "checks": checks, "text": text}


def issue14(r: ChillerResult) -> dict[str, Any]:
    """Issue 14's conditions on one asset-model row."""
    kinds, n = r.kinds_detected, len(r.kinds)
    faults = sum(k.detected for k in r.kinds.values())
    total = sum(k.faults for k in r.kinds.values())
    fa = r.false_alarms_per_day
    slow = []
    slow_ok = True
    for kind in ("sensor_drift", "fouling"):
        k = r.kinds.get(kind)
        if k is None:
            continue
        within = sum(1 for d in k.delays_s if d <= SLOW_WITHIN_S)
        slow_ok &= within == k.faults
        worst = f", slowest {max(k.delays_s):.0f} s" if k.delays_s else ""
        slow.append(f"{kind} {within}/{k.faults} within 2 h{missed(within, k.faults)}{worst}")
    checks = {
        "kinds": kinds == n,
        "faults": faults >= MIN_FAULTS,
        "false_alarms": fa <= MAX_FA_PER_DAY,
        "slow_faults": slow_ok,
    }
    text = (
        f"Issue 14 on *{r.label}*: {_mark(all(checks.values()))} — {kinds}/{n} kinds{missed(kinds, n)}; "
        f"{faults}/{total} faults (target ≥ {MIN_FAULTS}"
        + ("" if checks["faults"] else f", {MIN_FAULTS - faults} short")
        + "); "
        f"{fa:.1f} false alarms per day ({r.false_alarms} in {r.exposure_h:.1f} h; target ≤ {MAX_FA_PER_DAY}"
        + ("" if checks["false_alarms"] else f", over by {fa - MAX_FA_PER_DAY:.1f}")
        + "); "
        + "; ".join(slow)
        + "."
    )
    return {"issue": 14, "row": r.label, "met": all(checks.values()), "checks": checks, "text": text}


def target_lines(results: Sequence[ChillerResult]) -> list[dict[str, Any]]:
    """Issue 13 on every shipped row, issue 14 on every asset-model row, in the rows' order."""
    out = []
    for r in results:
        if r.label.endswith("(shipped)"):
            out.append(issue13(r))
        elif r.label.startswith("asset model"):
            out.append(issue14(r))
    return out
