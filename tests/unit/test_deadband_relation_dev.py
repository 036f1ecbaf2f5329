"""The development decision of the relations' hand-over rule (``bench/deadband_relation_dev.py``) on hand-made runs.

Its three conditions decide a shipped default, so they are tested: R finding a fault later than K, more later
finds against a, an added false alert or a spread no closer to a's each keep the default off.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _module() -> ModuleType:
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("deadband_relation_dev", BENCH / "deadband_relation_dev.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(fa: int, delays: list[int | None], spread: float = 4.4) -> dict[str, Any]:
    kinds = ["sensor_drift", "pump_degradation", "spike"]
    return {
        "false_alerts_fault_free_days": fa,
        "false_alerts_days_8_11": fa,
        "false_alerts_hours_after_live_start": [],
        "faults": [{"kind": k, "delay_s": d} for k, d in zip(kinds, delays, strict=True)],
        "relation_spread_at_fault_onsets": [{"chiller1.power_kw": spread}] * 3,
    }


def _row(a: dict[str, Any], k: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
    m = _module()
    return {"r_vs_k": m.compare(k, r), "r_vs_a": m.compare(a, r), "k_vs_a": m.compare(a, k),
            "gap_r": m.spread_gap(r, a), "gap_k": m.spread_gap(k, a)}  # fmt: skip


def test_r_removing_a_later_find_with_the_spread_closer_to_a_ships() -> None:
    a, k, r = _run(0, [300, 180, None], 4.37), _run(0, [300, 240, None], 4.43), _run(0, [300, 180, None], 4.37)
    d = _module().decide([_row(a, k, r)])
    assert d["ship"] and d["k_later_than_a"] == 1 and d["r_later_than_a"] == 0


def test_a_later_find_an_added_false_alert_or_no_closer_spread_keeps_the_default() -> None:
    a, k = _run(0, [300, 180, 120], 4.37), _run(0, [300, 180, 120], 4.43)
    m = _module()
    later = m.decide([_row(a, k, _run(0, [360, 180, 120], 4.37))])
    assert not later["ship"] and not later["no_fault_later"] and later["r_later_than_k"] == 1
    alert = m.decide([_row(a, k, _run(1, [300, 180, 120], 4.37))])
    assert not alert["ship"] and not alert["no_false_alert_added"]
    same = m.decide([_row(a, k, _run(0, [300, 180, 120], 4.43))])
    assert not same["ship"] and not same["mechanism"] and same["no_fault_later"]
