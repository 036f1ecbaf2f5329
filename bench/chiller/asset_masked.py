"""Issue 14 on DEVELOPMENT seeds: an asset-model estimate blind to the tags' newest slots, for the slow faults.

The asset model's estimate of a tag reads the tag's own newest slots and follows a slow fault
(docs/results/chiller-detection/asset-model-slow-faults.md).  The candidate:
``forecast.asset_mask_recent_steps`` M, the estimate reading every tag's context only up to M
slots before now (and the other tags now), so a drift accumulates over M slots.

Candidates, fixed before the runs: M in 0 (off), 128, 256, 384 (the checkpoint's context is 512;
a diagnostic on seeds 2100..2102 showed the late-fault residual of the faulted tag growing with M
from 128 to 256), each with the estimate made on one slot in 8 (``forecast.asset_estimate_every_steps``
8, fixed a priori for CPU: the 2 shared cores could not afford the model on every slot of the report).
Runs: one per slow kind from seed 2110 (cut at the fault's end), and one
fault-free run of an hour (seed 2113): never the report's 2000..2023.  Detection: the daemon's
residuals only (no rules), Holt's one-step and 16-tick horizon residuals + the asset model's
estimate, as the report's asset rows.  The rule, fixed before the runs: among the candidates
with no false alarm in the scored normal time (before each onset and the whole fault-free run),
the one detecting the most slow faults, then the smallest median delay; 0 (off) unless one beats it.

    python bench/chiller/asset_masked.py            # the asset model on ~1,500 slots, 4 times
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from _slow_sweep import choose, record, rows

from sentinelle.evaluation.chiller_eval import Config, chiller_plan, evaluate_run, simulate
from sentinelle.evaluation.chiller_report import ASSET_ROW_DETECT, REPORT_FIRST_SEED, asset_checkpoint
from sentinelle.evaluation.replay import SharedForecasters, replay_settings

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results" / "chiller-detection"
SLOW = ("sensor_drift", "fouling", "pump_degradation")
MASKS = (0, 128, 256, 384)
FIRST_SEED = 2110
EVERY = 8


def config(mask: int) -> Config:
    return Config(
        f"asset model + holt, mask {mask}",
        "holt",
        asset=False,
        rules=False,
        detect=ASSET_ROW_DETECT,
        asset_model=True,
        asset_mask_recent_steps=mask,
        asset_estimate_every_steps=EVERY,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--first-seed", type=int, default=FIRST_SEED)
    ap.add_argument("--fault-free-s", type=float, default=3600.0)
    ap.add_argument("--out", type=Path, default=RESULTS / "asset_masked.json")
    args = ap.parse_args()
    plan = chiller_plan(1, 1, args.fault_free_s, kinds=SLOW, first_seed=args.first_seed)
    assert not any(REPORT_FIRST_SEED <= r.seed < REPORT_FIRST_SEED + 24 for r in plan), "development seeds only"
    plan = [
        dataclasses.replace(r, duration_s=r.faults[0].onset_s + r.faults[0].duration_s) if r.faults else r for r in plan
    ]
    shared = SharedForecasters(model_threads=1)
    started = time.perf_counter()
    per: dict[int, list[dict[str, Any]]] = {m: [] for m in MASKS}
    for run in plan:
        rec, truth = simulate(run)
        shared.begin(run.name)
        for m in MASKS:
            c = config(m)
            settings = replay_settings("holt", c.detect_settings())
            est = shared.estimator(asset_checkpoint(), mask_recent_steps=m, every_steps=EVERY)
            o = evaluate_run(rec, truth, settings, c, shared["holt"], est)
            per[m].append(record(run, o))
            print(run.name, m, per[m][-1], round(time.perf_counter() - started), flush=True)
    table = rows(per, "mask")
    chosen = int(choose(table, "mask", 0))
    doc = {
        "benchmark": "asset_masked",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seeds": [r.seed for r in plan],
        "plan": "1 run per slow kind, cut at the fault's end, and 1 fault-free run of "
        f"{args.fault_free_s:.0f} s; false alarms: the scored normal time before each onset and the fault-free run",
        "every_steps": EVERY,
        "rule": "most slow faults detected, then smallest median delay, among masks with no false alarm; "
        "0 unless one beats it",
        "rows": table,
        "chosen_mask_recent_steps": chosen,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"chosen mask_recent_steps {chosen} -> {args.out}")


if __name__ == "__main__":
    main()
