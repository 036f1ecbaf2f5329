"""Issue 14, part 2 of the coarse-reference study, on part 1's DEVELOPMENT runs: the estimate scale's learning delay.

Part 1 (asset_stride_dev.py) chose the blind estimate reading means of 4 slots, the newest 128 masked;
its slow-fault residual grows to several band spreads, but the estimate detector's scale learns it as it
grows (docs/results/chiller-detection/asset-stride.md).  ``detect.asset_estimate_learn_delay_steps`` D
makes that scale learn each tick D ticks late.  The plan, the candidates and the rule were committed
before any run in docs/results/chiller-detection/asset-stride/RULE-learn-delay.md (2463e64): part 1's 12
development runs (seeds 2180..2203: the nine slow-fault runs and three fault-free hours), part 1's chosen
row with D 0, 300 or 600 (in that order); among candidates with no false alarm the most faults, then
kinds, then the smallest median slow-fault delay; if none is clean the fewest false alarms first; ties to
the earlier.  Only detection is replayed: the estimates are read back from part 1's cache (a window it
did not see is an error, not a new estimate).

Part 3 (``--part 3``; RULE-min-learned.md, fd7a193): the same runs and rule on a grid of (D, L), L being
``detect.asset_estimate_min_learned_steps`` (the scale's learned ticks before it may flag): D 0 L 0, then
D 300 and D 600 each with L 0, 300, 600.

    python bench/chiller/asset_stride_delay_dev.py --checkpoint PATH --cache-root DIR [--part 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from asset_blind_dev import EVERY, RESULTS, SLOW, choose, print_table, run_record, table_row
from asset_stride_dev import FIRST_SEED, RULE, label, stride_row
from asset_stride_diag import _no_model

from sentinelle.evaluation.chiller_eval import Config, chiller_plan, evaluate_run, simulate
from sentinelle.evaluation.chiller_report import interleaved
from sentinelle.evaluation.replay import SharedForecasters, replay_settings

STRIDE, MASK = 4, 128
DELAYS = (0, 300, 600)
GRID = ((0, 0), (300, 0), (300, 300), (300, 600), (600, 0), (600, 300), (600, 600))
"""Part 3's candidates, in the rule's order: (learn delay D, min learned L)."""


def delay_row(delay: int, min_learned: int = 0) -> Config:
    """Part 1's chosen row with the estimate scale learning ``delay`` ticks late, flagging after
    ``min_learned`` learned ticks (0: the shared grace)."""
    name = label(STRIDE, MASK) + f", scale learns {delay} ticks late"
    if min_learned:
        name += f", flags after {min_learned} learned"
    c = stride_row(name, STRIDE, MASK)
    detect = {**c.detect, "asset_estimate_learn_delay_steps": delay} if delay else dict(c.detect)
    if min_learned:
        detect["asset_estimate_min_learned_steps"] = min_learned
    return dataclasses.replace(c, detect=detect)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--cache-root", type=Path, required=True, help="part 1's estimate cache")
    ap.add_argument("--part", type=int, choices=(2, 3), default=2, help="2: D alone; 3: the (D, L) grid")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    grid = GRID if args.part == 3 else tuple((d, 0) for d in DELAYS)
    name = "asset_stride_delay_dev.json" if args.part == 2 else "asset_stride_min_learned_dev.json"
    out: Path = args.out or RESULTS / name
    plan = chiller_plan(3, 3, 3600.0, first_seed=FIRST_SEED)
    plan = interleaved([r for r in plan if not r.faults or r.faults[0].kind in SLOW])
    started = time.perf_counter()
    sf = SharedForecasters(args.cache_root, model_threads=1)
    per: dict[str, list[dict[str, Any]]] = {}
    for run in plan:
        rec, truth = simulate(run)
        sf.begin(run.name)
        est = sf.estimator(args.checkpoint, mask_recent_steps=MASK, every_steps=EVERY, context_stride_steps=STRIDE)
        est.inner = _no_model
        for delay, min_learned in grid:
            c = delay_row(delay, min_learned)
            o = evaluate_run(rec, truth, replay_settings("holt", c.detect_settings()), c, sf["holt"], est)
            r = run_record(run, o)
            per.setdefault(c.label, []).append(r)
            print(run.name, run.seed, c.label, r, round(time.perf_counter() - started), flush=True)
    table = [table_row(name, runs) for name, runs in per.items()]
    chosen = choose(table)
    doc = {
        "benchmark": "asset_stride_delay_dev",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seeds": [r.seed for r in plan],
        "checkpoint": str(args.checkpoint),
        "stride_steps": STRIDE,
        "mask_coarse_slots": MASK,
        "every_steps": EVERY,
        "candidates_delay_min_learned": [list(g) for g in grid],
        "rule": RULE,
        "rows": table,
        "chosen": chosen,
        "seconds": round(time.perf_counter() - started, 1),
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print_table(table, chosen, out, slow_faults=9)


if __name__ == "__main__":
    main()
