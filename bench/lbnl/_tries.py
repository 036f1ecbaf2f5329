"""One candidate's day-level record on the tuning days, as tune_afdd.py and tune_apar.py write it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sentinelle.evaluation.lbnl_report import DayResult, day_scores


def day_try(days: Sequence[DayResult]) -> dict[str, Any]:
    """The day scores, then which fault-free days were flagged, which faulted days missed, and the first alerts."""
    return {
        **day_scores(days).summary(),
        "fault_free_flagged": [f"{d.file}/{d.date}" for d in days if d.predicted and not d.faulted],
        "faulted_missed": [f"{d.file}/{d.date} ({d.fault_type})" for d in days if d.faulted and not d.predicted],
        "first_alerts": sorted({d.first_alert for d in days if d.first_alert}),
    }
