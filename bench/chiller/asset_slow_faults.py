"""Issue 14 step 3 on DEVELOPMENT seeds: can the asset model's residuals catch the slow faults sooner?

The slow faults (sensor drift, fouling, pump degradation) ramp in; the asset model's estimate
of a tag from the others now also reads the tag's own past and half follows them
(detect/detectors/asset_estimate.py).  The candidate: the sustained-bias chart of that
residual (``detect.asset_estimate_ewma_alpha``), an EWMA scored against its own learned scale.

Runs: one per slow kind from seed 2100 up (``chiller_plan``; never the report's 2000..2023),
each cut at its fault's end (the recovery is not what is measured); the scored normal time
before each onset counts false alarms.  The daemon's residuals only (no rules), Holt forecasts
(residual and horizon) + the package's asset model: the asset model's estimates are computed
once per run and shared by the rows.  The rule, fixed before the runs: the weight detecting the
most slow faults, then the smallest median delay, among the weights with no false alarm; 0 (off)
unless one beats it.

    python bench/chiller/asset_slow_faults.py            # ~3 CPU-minutes of the asset model
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
from sentinelle.evaluation.chiller_report import REPORT_FIRST_SEED, asset_checkpoint
from sentinelle.evaluation.replay import SharedForecasters, replay_settings

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results" / "chiller-detection"
SLOW = ("sensor_drift", "fouling", "pump_degradation")
ALPHAS = (0.0, 0.01, 0.03, 0.1)
FIRST_SEED = 2100


def config(alpha: float) -> Config:
    return Config(
        f"asset model + holt, ewma alpha {alpha}",
        "holt",
        asset=False,
        rules=False,
        detect={"horizon_enabled": True, "asset_estimate_ewma_alpha": alpha},
        asset_model=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--first-seed", type=int, default=FIRST_SEED)
    ap.add_argument("--runs-per-kind", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS / "asset_slow_faults.json")
    args = ap.parse_args()
    plan = chiller_plan(args.runs_per_kind, 0, kinds=SLOW, first_seed=args.first_seed)
    assert not any(REPORT_FIRST_SEED <= r.seed < REPORT_FIRST_SEED + 24 for r in plan), "development seeds only"
    plan = [dataclasses.replace(r, duration_s=r.faults[0].onset_s + r.faults[0].duration_s) for r in plan]
    shared = SharedForecasters(model_threads=1)
    started = time.perf_counter()
    per: dict[float, list[dict[str, Any]]] = {a: [] for a in ALPHAS}
    for run in plan:
        rec, truth = simulate(run)
        shared.begin(run.name)
        for a in ALPHAS:
            c = config(a)
            o = evaluate_run(
                rec, truth, replay_settings("holt", c.detect_settings()), c, shared["holt"],
                shared.estimator(asset_checkpoint()),
            )  # fmt: skip
            per[a].append(record(run, o))
            print(run.name, a, per[a][-1], flush=True)
    table = rows(per, "alpha")
    chosen = float(choose(table, "alpha", 0.0))
    doc = {
        "benchmark": "asset_slow_faults",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seeds": [r.seed for r in plan],
        "plan": f"{args.runs_per_kind} run(s) per slow kind, cut at the fault's end; scored normal time before "
        "each onset counts false alarms",
        "rule": "most slow faults detected, then smallest median delay, among weights with no false alarm; "
        "0 unless one beats it",
        "rows": table,
        "chosen_alpha": chosen,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"chosen alpha {chosen} -> {args.out}")


if __name__ == "__main__":
    main()
