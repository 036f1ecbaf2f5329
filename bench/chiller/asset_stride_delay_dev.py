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

    python bench/chiller/asset_stride_delay_dev.py --checkpoint PATH --cache-root DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from asset_blind_dev import EVERY, RESULTS, SLOW, choose, run_record, table_row
from asset_stride_dev import FIRST_SEED, RULE, label, stride_row
from asset_stride_diag import _no_model

from sentinelle.evaluation.chiller_eval import Config, chiller_plan, evaluate_run, simulate
from sentinelle.evaluation.chiller_report import interleaved
from sentinelle.evaluation.replay import SharedForecasters, replay_settings

STRIDE, MASK = 4, 128
DELAYS = (0, 300, 600)


def delay_row(delay: int) -> Config:
    """Part 1's chosen row with the estimate scale learning ``delay`` ticks late."""
    c = stride_row(label(STRIDE, MASK) + f", scale learns {delay} ticks late", STRIDE, MASK)
    detect = {**c.detect, "asset_estimate_learn_delay_steps": delay} if delay else c.detect
    return dataclasses.replace(c, detect=detect)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--cache-root", type=Path, required=True, help="part 1's estimate cache")
    ap.add_argument("--out", type=Path, default=RESULTS / "asset_stride_delay_dev.json")
    args = ap.parse_args()
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
        for delay in DELAYS:
            c = delay_row(delay)
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
        "delays": list(DELAYS),
        "rule": RULE,
        "rows": table,
        "chosen": chosen,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    for r in table:
        print(
            r["candidate"],
            f"{r['faults_detected']}/{r['faults']} faults, {r['kinds_detected']} kinds, slow {r['slow_detected']}/9 "
            f"median {r['slow_delay_s_median']}, FA {r['false_alarms']}",
        )
    print(f"chosen: {chosen} -> {args.out}")


if __name__ == "__main__":
    main()
