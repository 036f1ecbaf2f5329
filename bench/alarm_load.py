"""Alarm load before/after the operator-load mechanisms (issue 13.5), on DEVELOPMENT chiller runs.

Simulates one run per fault kind plus fault-free runs from seeds below 1000 (development seeds:
never the benchmark's, ``evaluation/heldout.py``), replays each through the daemon's stages
(Holt forecaster, per-tag + rules: the daemon as configured) twice — with the severe-tick opening,
re-arm, chattering latch and flood alerts off (the behaviour before), and at the shipped defaults —
and prints the alarm KPIs (``detect/kpi.py``) and the detection numbers of both.  Nothing here
chooses a setting: the defaults were fixed a priori (``settings/detect.py``).

Writes ``bench/results/alarm_load.json`` with the machine it ran on.

    python bench/alarm_load.py                       # 7 fault runs + 2 fault-free, seeds 200..
    python bench/alarm_load.py --first-seed 300 --fault-free 1
    python bench/alarm_load.py --on novelty --out bench/results/alarm_load_novelty.json   # an opt-in detector on
    python bench/alarm_load.py --set novelty_opens_alerts=true --out …   # any detect setting
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from _machine import write_result
from sentinelle.evaluation.chiller_eval import ChillerResult, Config, chiller_plan, evaluate_chiller, simulate
from sentinelle.evaluation.heldout import is_benchmark_seed
from sentinelle.evaluation.replay import replay_settings

OFF: dict[str, Any] = {
    "severe_opens_at_once": False,
    "rearm_steps": 0,
    "rearm_min_s": 0.0,
    "chatter_openings": 0,
    "flood_openings": 0,
}
"""The mechanisms of issue 13.5 turned off: the detect stage as it was before them."""


def _row(label: str, r: ChillerResult) -> dict[str, Any]:
    assert r.kpis is not None
    s = r.summary()
    return {
        "config": label,
        "kinds_detected": f"{s['kinds_detected']}/{s['kinds']}",
        "faults_detected": f"{s['faults_detected']}/{s['faults']}",
        "delay_s_median": s["delay_s_median"],
        "false_alarms": r.false_alarms,
        "alarm_kpis": r.kpis.summary(),
        "per_run_openings": {x["run"]: x["alerts_opened"] for x in s["per_run"]},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--first-seed", type=int, default=200)
    ap.add_argument("--fault-free", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "alarm_load.json")
    ap.add_argument(
        "--on",
        nargs="*",
        default=[],
        choices=["distribution", "novelty", "horizon"],
        help="opt-in detectors turned on in both configurations (detect.<name>_enabled)",
    )
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=JSON",
        help="detect settings set in both configurations, e.g. novelty_opens_alerts=true",
    )
    args = ap.parse_args()
    opt_in: dict[str, Any] = {f"{name}_enabled": True for name in args.on}
    opt_in |= {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    plan = chiller_plan(runs_per_kind=1, fault_free_runs=args.fault_free, first_seed=args.first_seed)
    assert not any(is_benchmark_seed(r.seed) for r in plan), "development seeds only"
    started = time.perf_counter()
    runs = [simulate(r) for r in plan]
    rows = []
    for label, detect in (("before (mechanisms off)", OFF), ("after (shipped defaults)", {})):
        config = Config(label, "holt", asset=False, rules=True, detect=detect | opt_in)
        settings = replay_settings("holt", config.detect_settings())
        result = evaluate_chiller(runs, settings, config)
        rows.append(_row(label, result))
        k = result.kpis
        assert k is not None
        print(f"\n## {label}: {rows[-1]['kinds_detected']} kinds, false alarms {result.false_alarms}")
        print("\n".join(k.markdown()))
    write_result(
        args.out,
        "alarm_load",
        "cpu",
        {
            "forecaster": "holt",
            "configuration": "per-tag + rules",
            "opt_in": {k: opt_in[k] for k in sorted(opt_in)},
            "seeds": [r.seed for r in plan],
        },
        rows,
        runs=[r.name for r in plan],
        seconds=round(time.perf_counter() - started, 1),
    )


if __name__ == "__main__":
    main()
