"""The must-show verdict of issue 17 (``bench/deadband_aggregate.py``) on hand-made runs.

The verdict is what the README row reports, so its counting rules are tested, not just trusted: a fault
found only without backfill is "later", one missed by both is a tie, equal delays are ties, and more false
alerts on the fault-free days fail a seed whatever the delays.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "deadband_aggregate.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deadband_aggregate", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(fa: int, delays: list[int | None]) -> dict[str, Any]:
    return {
        "false_alerts_fault_free_days": fa,
        "false_alerts_days_8_11": fa,
        "false_alerts_hours_after_live_start": [],
        "faults": [{"kind": f"k{i}", "delay_s": d} for i, d in enumerate(delays)],
    }


def test_ties_and_faults_missed_by_both_are_met() -> None:
    row = _module().compare(_run(1, [300, None, 180]), _run(1, [300, None, 120]))
    assert row["met"] and row["faults_later"] == [] and row["faults_earlier"] == ["k2"]


def test_a_fault_found_only_without_backfill_is_later() -> None:
    row = _module().compare(_run(0, [300, 180]), _run(0, [300, None]))
    assert not row["met"] and row["faults_later"] == ["k1"]


def test_one_tick_later_fails_the_seed() -> None:
    row = _module().compare(_run(0, [180]), _run(0, [240]))
    assert not row["met"] and row["faults_later"] == ["k0"]


def test_more_false_alerts_fail_the_seed_fewer_do_not() -> None:
    mod = _module()
    assert not mod.compare(_run(0, [180]), _run(1, [180]))["met"]
    assert mod.compare(_run(1, [180]), _run(0, [180]))["met"]
