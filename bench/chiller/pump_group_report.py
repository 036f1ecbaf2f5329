"""Issue 14 on 24 FRESH unseen runs (seeds 3300..3323, never scored before this report): the pump speeds masked
together, once.

Rows, residuals alone (no limits, rules, relations or T²): Holt's; the univariate model's (the shipped default
forecaster) refreshed every 8 slots; row 8 of residuals-alone-history.md (C0); and the candidate the development
runs chose (pump_group_dev.json's ``chosen``, given on the command line and checked against the pre-registered
candidates).  Nothing is chosen here (docs/results/chiller-detection/pump-group/RULE.md); the rule runs this only
when a grouped candidate was chosen.

    python bench/chiller/pump_group_report.py --out DIR --checkpoint PATH --chosen G1 [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from held_spread_report import run_fresh_report
from pump_group_dev import REPORT_SEED, configs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--checkpoint", type=Path, required=True, help="the blind estimate's checkpoint (asset_blind)")
    ap.add_argument("--chosen", required=True, choices=("G1", "G2", "H1", "H2"), help="pump_group_dev's")
    ap.add_argument("--cache-dir", type=Path, default=None)
    args = ap.parse_args()
    rows = [c for c in (*configs(1), *configs(2)) if c.label[:2] in ("C0", args.chosen)]
    run_fresh_report(
        args,
        "pump_group_report.py",
        rows,
        REPORT_SEED,
        "Seeds 3300..3323 were scored for the first time by this report; the settings were chosen on development "
        "seeds 2180..2203, 3200..3223 and 2310..2321 (pump-group/RULE.md).",
    )


if __name__ == "__main__":
    main()
