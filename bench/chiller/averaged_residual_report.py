"""Issue 14 on 24 FRESH unseen runs (seeds 3800..3823; 3900..3923 for the second set, RULE.md): the estimate
residual also scored as its mean, once.

Rows, residuals alone (no limits, rules, relations or T²): Holt's; the univariate model's (the shipped default
forecaster) refreshed every 8 slots; K1 (the group-learn study's); S5 (the flag-side study's); and the row the
development pool chose (averaged_residual_dev.json's ``chosen``, given on the command line and checked against the
pre-registered rows).  Nothing is chosen here (docs/results/chiller-detection/averaged-residual/RULE.md).

    python bench/chiller/averaged_residual_report.py --out DIR --checkpoint PATH --chosen A1 [--cache-dir DIR] \
        [--first-seed 3900]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from averaged_residual_dev import CANDIDATES, REPORT_SEED, configs, configs_round2
from flag_side_dev import configs as flag_side_configs
from held_spread_report import run_fresh_report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--checkpoint", type=Path, required=True, help="the blind estimate's checkpoint (asset_blind)")
    names = [*(c[0] for c in CANDIDATES), "B1"]
    ap.add_argument("--chosen", required=True, choices=names, help="averaged_residual_dev's")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--first-seed", type=int, default=REPORT_SEED, choices=(REPORT_SEED, REPORT_SEED + 100))
    args = ap.parse_args()
    k1 = flag_side_configs()[0]
    s5, *cands = configs()
    cands += configs_round2()
    assert k1.label.startswith("K1") and s5.label.startswith("S5")
    rows = [k1, s5, *(c for c in cands if c.label.startswith(args.chosen + ":"))]
    assert len(rows) == 3
    run_fresh_report(
        args,
        "averaged_residual_report.py",
        rows,
        args.first_seed,
        f"Seeds {args.first_seed}..{args.first_seed + 23} were scored for the first time by this report; the row was "
        "chosen on the 108-run development pool (seeds 2180..2203, 3200..3223, 2310..2321 and the spent report sets "
        "3400..3423, 3500..3523; averaged-residual/RULE.md)"
        + ("." if args.first_seed == REPORT_SEED else "; frozen for the second fresh set (averaged-residual/RULE.md)."),
    )


if __name__ == "__main__":
    main()
