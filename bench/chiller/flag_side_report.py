"""Issue 14 on 24 FRESH unseen runs (seeds 3600..3623; 3700..3723 for the second set, RULE.md): the pump speeds
flagging only above their estimate, once.

Rows, residuals alone (no limits, rules, relations or T²): Holt's; the univariate model's (the shipped default
forecaster) refreshed every 8 slots; K1 (the group-learn study's); and the row the development pool chose
(flag_side_dev.json's ``chosen``, given on the command line and checked against the pre-registered rows).
Nothing is chosen here (docs/results/chiller-detection/flag-side/RULE.md).

    python bench/chiller/flag_side_report.py --out DIR --checkpoint PATH --chosen S2 [--cache-dir DIR] \
        [--first-seed 3700]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flag_side_dev import REPORT_SEED, configs, configs_round2
from held_spread_report import run_fresh_report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--checkpoint", type=Path, required=True, help="the blind estimate's checkpoint (asset_blind)")
    ap.add_argument("--chosen", required=True, choices=("S1", "S2", "S3", "S4", "S5"), help="flag_side_dev's")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--first-seed", type=int, default=REPORT_SEED, choices=(REPORT_SEED, REPORT_SEED + 100))
    args = ap.parse_args()
    k1, *cands = configs()
    cands += configs_round2()
    rows = [k1, *(c for c in cands if c.label.startswith(args.chosen + ":"))]
    assert len(rows) == 2
    run_fresh_report(
        args,
        "flag_side_report.py",
        rows,
        args.first_seed,
        f"Seeds {args.first_seed}..{args.first_seed + 23} were scored for the first time by this report; the row was "
        "chosen on the 108-run development pool (seeds 2180..2203, 3200..3223, 2310..2321 and the spent report sets "
        "3400..3423, 3500..3523; flag-side/RULE.md)"
        + ("." if args.first_seed == REPORT_SEED else "; frozen for the second fresh set (flag-side/RULE.md)."),
    )


if __name__ == "__main__":
    main()
