"""Issue 14 on DEVELOPMENT seeds: the residual's energy (a frozen sensor) and the estimate's hold-off after an alert.

The best row so far (docs/results/chiller-detection/asset-stride/min-learned/report.md, not shipped): Holt's
residuals and horizon residual + the blind estimate (``asset_blind``, means of 4 slots, the newest 128
masked, made every 8, opening on 16 of 24, its scale learning 300 ticks late and flagging after 300
learned) — unseen 6/7 kinds, 16/21, stuck sensor 0/3, 5.2 false alarms per day on supply_temp_c's estimate.
Two mechanisms, each off by default:

- ``detect.residual_energy_window_steps`` W (detect/detectors/residual_energy.py): the one-step residual's
  mean square over W ticks, improbably *small* for the tag (a frozen transmitter's residual collapses);
- ``detect.asset_estimate_holdoff_steps`` H (detect/detectors/asset_estimate.py): for H ticks after the last
  alert on the asset, the estimate residual neither flags nor learns (its reference still holds the fault's
  values).

The plan, the candidates and the rule were committed before any candidate was scored, in
docs/results/chiller-detection/residual-energy/RULE.md; repeated here.  Runs: ``chiller_plan(3, 3, 3600,
first_seed=2180)`` (seeds 2180..2203, all 24) and ``chiller_plan(0, 12, 3600, first_seed=2310)`` (12 fault-free
hours, seeds 2310..2321), every estimate read back from the caches the diagnosis filled (a window they do not
hold is an error).  Candidates: W in (0, 60, 120, 240) × H in (0, 900, 2048), W first, in that order.
Rule: among candidates with no false alarm, the most faults detected, then the most kinds, then the smallest
median slow-fault delay; if none is clean, the fewest false alarms first; ties to the earlier candidate.

Part 2 (``--part 2``; RULE-resolution.md, committed before its runs): the same runs and rule on part 1's choice
(H 900) with the residual energy flagging only near the tag's resolution
(``detect.residual_energy_max_resolution_variances`` c): (W, c) in (0, 0) (part 1's choice), (120, 4),
(120, 16), (240, 16), in that order.

    python bench/chiller/residual_energy_dev.py --checkpoint PATH --cache-root DIR --free-cache-root DIR \
        [--part 2] [--fill]

``--fill``: estimates missing from the caches are computed (the asset model, one thread) and saved, so that a first
run on empty caches makes them; without it a window the caches lack is an error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from asset_blind_dev import EVERY, RESULTS, choose, print_table, run_record, table_row
from asset_stride_delay_dev import MASK, STRIDE, delay_row
from asset_stride_diag import _no_model

from sentinelle.evaluation.chiller_eval import ChillerRun, Config, chiller_plan, evaluate_run, simulate
from sentinelle.evaluation.chiller_report import REPORT_FIRST_SEED
from sentinelle.evaluation.replay import SharedForecasters, replay_settings

WINDOWS = (0, 60, 120, 240)
HOLDOFFS = (0, 900, 2048)
GRID = tuple((w, h) for w in WINDOWS for h in HOLDOFFS)
"""The candidates, in the rule's order: (residual_energy_window_steps W, asset_estimate_holdoff_steps H)."""
GRID2 = ((0, 0.0), (120, 4.0), (120, 16.0), (240, 16.0))
"""Part 2's candidates, in the rule's order: (residual_energy_window_steps W, max resolution variances c), H 900."""
PART2_HOLDOFF = 900
RULE = (
    "among candidates with no false alarm: most faults, then most kinds, then smallest median slow-fault delay; "
    "if none is clean, the fewest false alarms first; ties to the earlier candidate"
)
FAULT_SEED, FREE_SEED, FREE_HOURS = 2180, 2310, 12


def energy_row(window: int, holdoff: int, variances: float = 0.0) -> Config:
    """The best row so far (D 300, L 300) with the residual's energy over ``window`` ticks (flagging only below
    ``variances`` q²/12 when > 0) and the estimate's hold-off of ``holdoff`` ticks after an alert (0: off)."""
    c = delay_row(300, 300)
    name = c.label
    detect = dict(c.detect)
    if window:
        detect["residual_energy_window_steps"] = window
        name += f", residual energy over {window} ticks"
    if window and variances:
        detect["residual_energy_max_resolution_variances"] = variances
        name += f" below {variances:g} q²/12"
    if holdoff:
        detect["asset_estimate_holdoff_steps"] = holdoff
        name += f", estimate held off {holdoff} ticks after an alert"
    return dataclasses.replace(c, label=name, detect=detect)


def plans() -> list[tuple[str, list[ChillerRun]]]:
    """(cache, runs): the 24 runs of seeds 2180..2203, then the 12 fault-free hours of seeds 2310..2321."""
    return [
        ("faults", chiller_plan(3, 3, 3600.0, first_seed=FAULT_SEED)),
        ("free", chiller_plan(0, FREE_HOURS, 3600.0, first_seed=FREE_SEED)),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--cache-root", type=Path, required=True, help="estimates of seeds 2180..2203")
    ap.add_argument("--free-cache-root", type=Path, required=True, help="estimates of seeds 2310..2321")
    ap.add_argument("--part", type=int, choices=(1, 2), default=1)
    ap.add_argument("--fill", action="store_true", help="compute and cache the estimates the caches lack")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    name = "residual_energy_dev.json" if args.part == 1 else "residual_energy_resolution_dev.json"
    out: Path = args.out or RESULTS / "residual-energy" / name
    grid = [(w, h, 0.0) for w, h in GRID] if args.part == 1 else [(w, PART2_HOLDOFF, c) for w, c in GRID2]
    started = time.perf_counter()
    per: dict[str, list[dict[str, Any]]] = {}
    seeds = []
    for cache, plan in plans():
        assert not any(REPORT_FIRST_SEED <= r.seed < REPORT_FIRST_SEED + 24 for r in plan), "development seeds only"
        sf = SharedForecasters(args.cache_root if cache == "faults" else args.free_cache_root, model_threads=1)
        for run in plan:
            seeds.append(run.seed)
            rec, truth = simulate(run)
            sf.begin(run.name)
            est = sf.estimator(args.checkpoint, mask_recent_steps=MASK, every_steps=EVERY, context_stride_steps=STRIDE)
            if not args.fill:
                est.inner = _no_model
            for window, holdoff, variances in grid:
                c = energy_row(window, holdoff, variances)
                o = evaluate_run(rec, truth, replay_settings("holt", c.detect_settings()), c, sf["holt"], est)
                r = run_record(run, o)
                per.setdefault(c.label, []).append(r)
                print(
                    run.name, run.seed, window, holdoff, variances, r, round(time.perf_counter() - started), flush=True
                )
            if args.fill:
                sf.save()
    table = [table_row(name, runs) for name, runs in per.items()]
    chosen = choose(table)
    doc = {
        "benchmark": "residual_energy_dev",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seeds": seeds,
        "checkpoint": str(args.checkpoint),
        "candidates_window_holdoff_variances": [list(g) for g in grid],
        "rule": RULE,
        "rows": table,
        "chosen": chosen,
        "seconds": round(time.perf_counter() - started, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print_table(table, chosen, out, slow_faults=9)


if __name__ == "__main__":
    main()
