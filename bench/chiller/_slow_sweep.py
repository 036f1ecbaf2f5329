"""What the development sweeps over one asset-model setting share (asset_slow_faults.py, asset_masked.py).

Each run's record, the per-setting row (slow faults detected, median delay, false alarms) and the rule
both scripts wrote down before running: the setting with the most slow faults detected, then the
smallest median delay, among those with no false alarm; the "off" value unless one beats it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sentinelle.evaluation.chiller_eval import ChillerRun, RunOutcome


def record(run: ChillerRun, o: RunOutcome) -> dict[str, Any]:
    """One run under one setting (a fault-free run has no fault: ``detected`` None)."""
    faults = o.result.score.faults
    f = faults[0] if faults else None
    return {
        "run": run.name,
        "seed": run.seed,
        "tag": None if f is None else f.fault.tags[0].split(".", 1)[-1],
        "detected": None if f is None else f.detected,
        "delay_s": None if f is None or not f.detected else round(f.delay_s, 1),
        "first_alert": None if f is None or f.first_alert is None else f"{f.first_alert.kind} on {f.first_alert.tag}",
        "false_alarms": o.result.score.false_alarms,
        "openings": len(o.result.score.openings),
    }


def rows(per: dict[Any, list[dict[str, Any]]], key: str) -> list[dict[str, Any]]:
    """One row per setting value, named ``key``, from its runs' records."""
    out = []
    for value, runs in per.items():
        delays = [r["delay_s"] for r in runs if r["delay_s"] is not None]
        out.append(
            {
                key: value,
                "detected": sum(bool(r["detected"]) for r in runs),
                "faults": sum(r["detected"] is not None for r in runs),
                "delay_s_median": float(np.median(delays)) if delays else None,
                "false_alarms": sum(r["false_alarms"] for r in runs),
                "runs": runs,
            }
        )
    return out


def _rank(row: dict[str, Any]) -> tuple[int, float]:
    return row["detected"], -(row["delay_s_median"] or 1e9)


def choose(table: list[dict[str, Any]], key: str, off: Any) -> Any:
    """The rule of the module docstring: the chosen value of ``key``, or ``off``."""
    clean = [r for r in table if r["false_alarms"] == 0]
    best = max(clean, key=_rank, default=None)
    base = next(r for r in table if r[key] == off)
    if best is None or _rank(best) <= _rank(base):
        return off
    return best[key]
