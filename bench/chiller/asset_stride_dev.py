"""Issue 14 on NEW DEVELOPMENT seeds 2180..2203: a long, coarse reference for the blind estimate; which to run unseen.

The blind estimate (``forecast.asset_mask_recent_steps`` 128, made every 8 slots, checkpoint
``forecast/checkpoints/asset_blind``) is blind to 128 s only: it follows a 900 s drift or a 5-minute
pump ramp with that lag, and the slow fault's residual is a plateau the size of healthy excursions
(docs/results/chiller-detection/asset-cusum.md).  With ``forecast.asset_context_stride_steps`` S the
estimate reads each tag's context as means of S slots (the windows' coarse ring, spanning S × 512
slots) with the newest M coarse slots masked: blind to M × S slots.

The plan, the candidates and the rule were committed before any run in
docs/results/chiller-detection/asset-stride/RULE.md (fd880bd), repeated here:
plan ``chiller_plan(3, 3, 3600, first_seed=2180)`` (seeds 2180..2203, the unseen report's shape, none
used before); the row fixed: Holt's residuals and horizon residual + the estimate's residual opening on
16 of 24 ticks (the blind row as it stands), residuals alone; candidates in this order: (S 1, M 128)
today, (S 4, M 128), (S 8, M 128) ((S 8, M 64) dropped before any run, for CPU: RULE.md).  Rule: among
the candidates with no false alarm in the scored normal time, the most faults detected, then the most
kinds, then the smallest median slow-fault delay; if none is clean, the fewest false alarms first; ties
to the earlier candidate.  The chosen one alone is then run once on the unseen seeds
(asset_stride_report.py) beside Holt's, the univariate model's and today's blind row.  No default
changes (the asset model and its mask are off by default).  Cut for CPU after the first run (RULE.md):
only the slow-fault runs and the fault-free hours (12 runs, seeds as the plan assigns them).

    python bench/chiller/asset_stride_dev.py --checkpoint PATH [--cache-root DIR]

A rerun with the same ``--cache-root`` pays only for detection.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from asset_blind_dev import EVERY, RESULTS, SLOW, choose, print_table, run_record, table_row

from sentinelle.evaluation.chiller_eval import Config, chiller_plan, evaluate_run, simulate
from sentinelle.evaluation.chiller_report import ASSET_ROW_DETECT, REPORT_FIRST_SEED, interleaved
from sentinelle.evaluation.replay import SharedForecasters, replay_settings

FIRST_SEED = 2180
CANDIDATES: tuple[tuple[int, int], ...] = ((1, 128), (4, 128), (8, 128))
"""(stride S, coarse mask M), in the rule's order: today's first."""
OPEN = {"asset_estimate_open_k": 16, "asset_estimate_open_n": 24}
"""The blind row's per-tick opening as it stands (asset_blind_dev.json's choice)."""
RULE = (
    "among candidates with no false alarm: most faults, then most kinds, then smallest median slow-fault delay; "
    "if none is clean, the fewest false alarms first; ties to the earlier candidate"
)


def label(stride: int, mask: int) -> str:
    return f"estimate blind to {mask} means of {stride} slots ({mask * stride} s), opens on 16 of 24"


def stride_row(name: str, stride: int, mask: int) -> Config:
    """The blind row (residuals alone, Holt, the estimate made every EVERY, opening on 16 of 24) with the
    estimate's coarse reference: means of ``stride`` slots, the newest ``mask`` of them masked."""
    return Config(
        name,
        "holt",
        asset=False,
        rules=False,
        detect={**ASSET_ROW_DETECT, **OPEN},
        asset_model=True,
        asset_mask_recent_steps=mask,
        asset_estimate_every_steps=EVERY,
        asset_context_stride_steps=stride,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True, help="the blind estimate's checkpoint (asset_blind)")
    ap.add_argument("--cache-root", type=Path, default=Path("/tmp/asset_stride_dev"))
    ap.add_argument("--out", type=Path, default=RESULTS / "asset_stride_dev.json")
    args = ap.parse_args()
    plan = chiller_plan(3, 3, 3600.0, first_seed=FIRST_SEED)
    plan = interleaved([r for r in plan if not r.faults or r.faults[0].kind in SLOW])  # RULE.md, second amendment
    assert not any(REPORT_FIRST_SEED <= r.seed < REPORT_FIRST_SEED + 24 for r in plan), "development seeds only"
    started = time.perf_counter()
    sf = SharedForecasters(args.cache_root, model_threads=1)
    per: dict[str, list[dict[str, Any]]] = {}
    for run in plan:
        rec, truth = simulate(run)
        sf.begin(run.name)
        for stride, mask in CANDIDATES:
            c = stride_row(label(stride, mask), stride, mask)
            estimator = sf.estimator(
                args.checkpoint, mask_recent_steps=mask, every_steps=EVERY, context_stride_steps=stride
            )
            o = evaluate_run(rec, truth, replay_settings("holt", c.detect_settings()), c, sf["holt"], estimator)
            r = run_record(run, o)
            per.setdefault(c.label, []).append(r)
            print(run.name, run.seed, c.label, r, round(time.perf_counter() - started), flush=True)
        sf.save()
    table = [table_row(name, runs) for name, runs in per.items()]
    chosen = choose(table)
    doc = {
        "benchmark": "asset_stride_dev",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seeds": [r.seed for r in plan],
        "checkpoint": str(args.checkpoint),
        "every_steps": EVERY,
        "candidates": [{"stride_steps": s, "mask_coarse_slots": m, "label": label(s, m)} for s, m in CANDIDATES],
        "rule": RULE,
        "rows": table,
        "chosen": chosen,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print_table(table, chosen, args.out, slow_faults=9)


if __name__ == "__main__":
    main()
