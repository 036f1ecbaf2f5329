"""Choose the Guideline 36 conditions' one free setting on LBNL's tuning half; record every try.

The conditions and their tolerances are ASHRAE Guideline 36's published defaults (section
5.16: εSAT = εRAT = εOAT = 2 °F, εMAT = 5 °F, ΔTSF = 2 °F, 5-minute averages, ModeDelay
15 min, AlarmDelay 30 min) and are not tuned.  The one choice left is whether each
condition's healthy offset is calibrated on the warm-up (known-good) day:
``calibration_s`` = 0 (the guideline's thresholds as they are) or 86,400 (one day of tested
operation, in practice the whole warm-up day).

**Decision rule, fixed before this script was run:** on the *tuning* days only
(``evaluation/lbnl.split_of``), the setting with the larger detection rate minus
false-positive rate (day level, ``ahu_fault`` alerts only) wins; within 0.05 of each other,
0 (no calibration: fewer moving parts).  The held-out days are never replayed here.
(A feasibility look at the same tuning days, computed from the CSVs outside the daemon,
came first; it is why the two candidates are these.)

    PYTHONPATH=daemon SENTINELLE_DATA_DIR=../shared/data python bench/lbnl/tune_afdd.py
"""

from __future__ import annotations

import json
from pathlib import Path

from _tries import day_try

from _machine import write_result
from sentinelle.evaluation import lbnl
from sentinelle.evaluation.datasets import LBNL_FILES
from sentinelle.evaluation.lbnl import evaluate_lbnl
from sentinelle.evaluation.replay import SharedForecasters, replay_settings
from sentinelle.settings import DetectSettings

OUT = Path(__file__).resolve().parents[2] / "docs" / "results" / "lbnl" / "tuning_afdd.json"
CANDIDATES = (0.0, 86400.0)
CLOSE = 0.05


def main() -> None:
    shared = SharedForecasters()
    days = lbnl.lbnl_days(mode_tags=True, setpoints=True)
    tries = []
    for cal in CANDIDATES:
        rules = tuple(lbnl.mode_rules(f, lbnl.afdd_rules(f, cal)) for f in LBNL_FILES)
        settings = replay_settings("holt", DetectSettings(assets=rules))
        r = evaluate_lbnl(
            days, settings, f"calibration_s={cal:g}", forecaster=shared["holt"], only_split="tuning",
            kinds=frozenset({"ahu_fault"}),
        )  # fmt: skip
        tries.append({"calibration_s": cal, **day_try(r.days)})
        print(json.dumps(tries[-1]))
    gain = [t["detection_rate"] - t["false_positive_rate"] for t in tries]
    chosen = tries[0] if gain[1] - gain[0] <= CLOSE else tries[1]
    print(f"chosen calibration_s = {chosen['calibration_s']:g} (gains {gain})")
    write_result(
        OUT, "lbnl_afdd_tuning", "cpu", {"split": "tuning", "forecaster": "holt", "candidates": CANDIDATES}, tries,
        chosen_calibration_s=chosen["calibration_s"],
    )  # fmt: skip


if __name__ == "__main__":
    main()
