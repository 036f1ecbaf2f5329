"""The development decision of ``docs/results/deadband/relation-handover/RULE.md``: ship the relations' hand-over end?

Why a script: the rule's three conditions (R finds no fault later than K and not more later than a; no
false alert added; the relation spread of ``power_kw`` at the pump degradation's onset closer to a's) are
computed the same way for every dev seed from the experiment's JSONs, not by hand.  R and K are two
``--hand-over`` variants of the backfilled configuration on one forecast pass (default ``60r60`` against
``60rinf``); a is the run without backfill.

    .venv/bin/python bench/deadband_relation_dev.py docs/results/deadband/relation-handover --seeds 1600-1603 \
        --out docs/results/deadband/relation-handover/dev_decision.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deadband_aggregate import compare, pick, seeds_of

ON = {"model": "c:", "holt": "c:"}
R_LABEL = "drop 60, relation drop 60"
K_LABEL = "drop 60, relation drop inf"
TARGET = "chiller1.power_kw"
FAULT = "pump_degradation"


def spread_gap(run: dict[str, Any], off: dict[str, Any]) -> float:
    """|spread / a's − 1| of the relation on ``TARGET`` at the onset of ``FAULT``."""
    i = next(k for k, f in enumerate(run["faults"]) if f["kind"] == FAULT)
    on, ref = run["relation_spread_at_fault_onsets"][i][TARGET], off["relation_spread_at_fault_onsets"][i][TARGET]
    return abs(float(on) / float(ref) - 1.0)


def decide(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rule's three conditions over rows of {"r_vs_k", "r_vs_a", "k_vs_a", "gap_r", "gap_k"}."""
    r_later_than_k = sum(len(r["r_vs_k"]["faults_later"]) for r in rows)
    r_later_than_a = sum(len(r["r_vs_a"]["faults_later"]) for r in rows)
    k_later_than_a = sum(len(r["k_vs_a"]["faults_later"]) for r in rows)
    fa_free_r = sum(r["r_vs_k"]["fa_fault_free_on"] for r in rows)
    fa_free_k = sum(r["r_vs_k"]["fa_fault_free_off"] for r in rows)
    fa_all_r = sum(r["r_vs_k"]["fa_days_8_11_on"] for r in rows)
    fa_all_k = sum(r["r_vs_k"]["fa_days_8_11_off"] for r in rows)
    gap_r = sum(r["gap_r"] for r in rows) / len(rows)
    gap_k = sum(r["gap_k"] for r in rows) / len(rows)
    c1 = r_later_than_k == 0 and r_later_than_a <= k_later_than_a
    c2 = fa_free_r <= fa_free_k and fa_all_r <= fa_all_k
    c3 = gap_r < gap_k
    return {
        "pairs": len(rows),
        "r_later_than_k": r_later_than_k,
        "r_earlier_than_k": sum(len(r["r_vs_k"]["faults_earlier"]) for r in rows),
        "r_later_than_a": r_later_than_a,
        "k_later_than_a": k_later_than_a,
        "fa_fault_free_r": fa_free_r,
        "fa_fault_free_k": fa_free_k,
        "fa_days_8_11_r": fa_all_r,
        "fa_days_8_11_k": fa_all_k,
        "mean_spread_gap_r": round(gap_r, 5),
        "mean_spread_gap_k": round(gap_k, 5),
        "no_fault_later": c1,
        "no_false_alert_added": c2,
        "mechanism": c3,
        "ship": c1 and c2 and c3,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--seeds", default="1600-1603")
    ap.add_argument("--prefix", default="dev")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--model-on", default=ON["model"], help="the model's backfilled configuration (report seeds: d:)")
    args = ap.parse_args()
    rows: list[dict[str, Any]] = []
    per: dict[str, Any] = {}
    for s in seeds_of(args.seeds):
        for fc in ("model", "holt"):
            path = args.folder / f"{args.prefix}_{s}_{fc}.json"
            if not path.exists():
                continue
            res = json.loads(path.read_text(encoding="utf-8"))["results"]
            a = pick(res, "a:")
            on = args.model_on if fc == "model" else ON[fc]
            r, k = pick(res, on, R_LABEL), pick(res, on, K_LABEL)
            row: dict[str, Any] = {
                "r_vs_k": compare(k, r),
                "r_vs_a": compare(a, r),
                "k_vs_a": compare(a, k),
                "gap_r": spread_gap(r, a),
                "gap_k": spread_gap(k, a),
            }
            rows.append(row)
            per[f"{s} {fc}"] = row
            print(f"{s} {fc}: delays a {row['r_vs_a']['delays_off']} K {row['k_vs_a']['delays_on']} "
                  f"R {row['r_vs_a']['delays_on']}; FA free a/K/R {row['r_vs_a']['fa_fault_free_off']}/"
                  f"{row['r_vs_k']['fa_fault_free_off']}/{row['r_vs_k']['fa_fault_free_on']}, days 8-11 "
                  f"{row['r_vs_a']['fa_days_8_11_off']}/{row['r_vs_k']['fa_days_8_11_off']}/"
                  f"{row['r_vs_k']['fa_days_8_11_on']}; spread gap K {row['gap_k']:.4f} "
                  f"R {row['gap_r']:.4f}")  # fmt: skip
    if not rows:
        raise SystemExit("no dev results")
    verdict = decide(rows)
    print(verdict)
    if args.out is not None:
        out = {"rule": "docs/results/deadband/relation-handover/RULE.md", "per": per, "decision": verdict}
        args.out.write_text(json.dumps(out, indent=1, default=lambda x: None if math.isinf(x) else x) + "\n")


if __name__ == "__main__":
    main()
