"""Issue 14 on NEW DEVELOPMENT seeds 2150..2173: a CUSUM on the blind estimate's residual, and which to run unseen.

The blind estimate (``forecast.asset_mask_recent_steps`` 128, made every 8 slots, checkpoint
``forecast/checkpoints/asset_blind``) opening on 16 of 24 ticks had no false alarm on the unseen runs
but missed the slow faults (drift, pump degradation): a per-tick threshold needs a large excursion, a
slow fault gives a small one for many minutes.  This script adds the per-tag two-sided CUSUM of the
estimate residual (``detect.asset_estimate_cusum_enabled``, detectors/estimate_cusum.py) and picks its
reference ``k`` and decision interval ``h`` (standard units; the long-run scale's EWMA over
``asset_estimate_cusum_batch_steps`` = 64 ticks, set on the earlier development seeds 2140..2149,
docs/results/chiller-detection/asset-cusum.md).

Plan (fixed before any run): ``chiller_plan(3, 3, 3600, first_seed=2150)``: the unseen report's shape
(three runs per fault kind, each on the tag the report's run of that index uses, and three fault-free
hours) on seeds 2150..2173, never the report's 2000..2023, none used before.
Candidates, fixed before any run, in this order: the blind row as it stands (Holt's residuals and
horizon residual, the estimate's per-tick residual opening on 16 of 24; no CUSUM), then that row with
the CUSUM at ``k`` 0.2 or 0.3 × ``h`` 20, 40 or 80.
The rule, fixed before the runs (asset_blind_dev.py's): among the candidates with no false alarm in the
scored normal time, the most faults detected, then the most kinds, then the smallest median delay of
the slow faults; if every candidate has a false alarm, the fewest first; a tie goes to the earlier
candidate (the fewer changes, the smaller ``k`` and ``h``).  The chosen one alone is then run once on
the unseen seeds (asset_cusum_report.py) beside Holt's and the univariate model's residuals alone.
The CUSUM stays off by default whatever the choice (it needs the asset model, itself off by default);
the chosen ``k`` and ``h`` become those settings' defaults.

    python bench/chiller/asset_cusum_dev.py --checkpoint PATH [--cache-root DIR]

A rerun with the same ``--cache-root`` pays only for detection.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path
from typing import Any

from asset_blind_dev import EVERY, MASK, RESULTS, blind_row, finish, run_record

from sentinelle.evaluation.chiller_eval import chiller_plan, evaluate_run, simulate
from sentinelle.evaluation.chiller_report import ASSET_ROW_DETECT, REPORT_FIRST_SEED
from sentinelle.evaluation.replay import SharedForecasters, replay_settings

FIRST_SEED = 2150
KS = (0.2, 0.3)
HS = (20.0, 40.0, 80.0)
OPEN = {"asset_estimate_open_k": 16, "asset_estimate_open_n": 24}
"""The blind row's per-tick opening as it stands (asset_blind_dev.json's choice)."""


def candidates() -> dict[str, dict[str, Any]]:
    """Label → the row's detect settings, in the docstring's order."""
    out: dict[str, dict[str, Any]] = {"blind estimate, opens on 16 of 24, no CUSUM": {**ASSET_ROW_DETECT, **OPEN}}
    for k, h in itertools.product(KS, HS):
        out[f"blind estimate, opens on 16 of 24, CUSUM k {k} h {h:g}"] = {
            **ASSET_ROW_DETECT,
            **OPEN,
            "asset_estimate_cusum_enabled": True,
            "asset_estimate_cusum_k_sigmas": k,
            "asset_estimate_cusum_h_sigmas": h,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True, help="the blind estimate's checkpoint (asset_blind)")
    ap.add_argument("--cache-root", type=Path, default=Path("/tmp/asset_cusum_dev"))
    ap.add_argument("--out", type=Path, default=RESULTS / "asset_cusum_dev.json")
    args = ap.parse_args()
    plan = chiller_plan(3, 3, 3600.0, first_seed=FIRST_SEED)
    assert not any(REPORT_FIRST_SEED <= r.seed < REPORT_FIRST_SEED + 24 for r in plan), "development seeds only"
    started = time.perf_counter()
    sf = SharedForecasters(args.cache_root, model_threads=1)
    per: dict[str, list[dict[str, Any]]] = {}
    for run in plan:
        rec, truth = simulate(run)
        sf.begin(run.name)
        estimator = sf.estimator(args.checkpoint, mask_recent_steps=MASK, every_steps=EVERY)
        for label, detect in candidates().items():
            c = blind_row(label, detect)
            o = evaluate_run(rec, truth, replay_settings("holt", c.detect_settings()), c, sf["holt"], estimator)
            r = run_record(run, o)
            per.setdefault(label, []).append(r)
            print(run.name, run.seed, label, r, round(time.perf_counter() - started), flush=True)
        sf.save()
    rule = "among candidates with no false alarm: most faults, then most kinds, then smallest median slow-fault delay; "
    rule += "if none is clean, the fewest false alarms first; ties to the earlier candidate"
    finish("asset_cusum_dev", args.out, plan, {"asset_blind": str(args.checkpoint)}, per, {}, started, rule)


if __name__ == "__main__":
    main()
