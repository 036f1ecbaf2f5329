"""One candidate's day-level record on the tuning days, and the two-candidate rule of tune_apar.py and tune_leak.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _machine import write_result
from sentinelle.evaluation import lbnl
from sentinelle.evaluation.datasets import LBNL_FILES
from sentinelle.evaluation.lbnl import evaluate_lbnl
from sentinelle.evaluation.lbnl_report import DayResult, day_scores
from sentinelle.evaluation.replay import SharedForecasters, replay_settings
from sentinelle.settings import DetectSettings

ROOT = Path(__file__).resolve().parents[2] / "docs" / "results" / "lbnl"
CLOSE = 0.05
"""Gain (detection rate − false-positive rate) a candidate must add: over Guideline 36 alone to join, and the
second candidate over the first (the published one) to be preferred."""
MAX_FALSE_POSITIVE_RATE = 0.2
"""A candidate flagging more of the tuning fault-free days is out (issue 13's 6/30)."""


def day_try(days: Sequence[DayResult]) -> dict[str, Any]:
    """The day scores, then which fault-free days were flagged, which faulted days missed, and the first alerts."""
    return {
        **day_scores(days).summary(),
        "fault_free_flagged": [f"{d.file}/{d.date}" for d in days if d.predicted and not d.faulted],
        "faulted_missed": [f"{d.file}/{d.date} ({d.fault_type})" for d in days if d.faulted and not d.predicted],
        "first_alerts": sorted({d.first_alert for d in days if d.first_alert}),
    }


def two_candidate_rule(
    setting: str, candidates: tuple[float, float], switch: dict[str, Any], out: Path, kind: str, label: str
) -> None:
    """Replay Guideline 36 + ``switch`` with ``setting`` at each candidate on LBNL's tuning days only (Holt, the
    headline's mode rules, ``ahu_fault`` alerts) and write which one joins the headline, by the rule the two
    scripts' docstrings state: out above :data:`MAX_FALSE_POSITIVE_RATE`; the second candidate only if it gains
    more than :data:`CLOSE` over the first; joins only if it gains more than :data:`CLOSE` over Guideline 36
    alone (``tuning_afdd.json``, ``calibration_s = 0``).  The held-out days are never replayed."""
    g36 = json.loads((ROOT / "tuning_afdd.json").read_text())["results"][0]
    assert g36["calibration_s"] == 0.0
    base_gain = g36["detection_rate"] - g36["false_positive_rate"]
    shared = SharedForecasters()
    days = lbnl.lbnl_days(mode_tags=True, setpoints=True)
    tries = []
    for value in candidates:
        over = {**switch, setting: value}
        rules = tuple(lbnl.mode_rules(f, lbnl.afdd_rules(f, 0.0, **over)) for f in LBNL_FILES)
        settings = replay_settings("holt", DetectSettings(assets=rules))
        r = evaluate_lbnl(
            days, settings, f"{label} {setting}={value:g}", forecaster=shared["holt"], only_split="tuning",
            kinds=frozenset({"ahu_fault"}),
        )  # fmt: skip
        tries.append({setting: value, **day_try(r.days), "seconds": round(r.seconds)})
        print(json.dumps(tries[-1]), flush=True)
    gain = [t["detection_rate"] - t["false_positive_rate"] for t in tries]
    eligible = [t["false_positive_rate"] <= MAX_FALSE_POSITIVE_RATE for t in tries]
    best = None
    if eligible[0] and (not eligible[1] or gain[1] - gain[0] <= CLOSE):
        best = 0
    elif eligible[1]:
        best = 1
    joins = best is not None and gain[best] - base_gain > CLOSE
    chosen = candidates[best] if joins and best is not None else None
    print(f"Guideline 36 alone gain {base_gain:.3f}; {label} gains {gain}; eligible {eligible}; chosen {chosen}")
    write_result(
        out, kind, "cpu",
        {"split": "tuning", "forecaster": "holt", "candidates": candidates, "guideline36_alone": g36},
        tries, **{f"{label.replace(' ', '_')}_joins": joins, f"chosen_{setting}": chosen},
    )  # fmt: skip
