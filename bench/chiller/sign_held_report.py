"""Issue 14 on 24 FRESH unseen runs (seeds 3300..3323, never run before this report): the sign-held width, once.

Rows, residuals alone (no limits, rules, relations or T²): Holt's; the univariate model's (the shipped default
forecaster) refreshed every 8 slots; row 8 of residuals-alone-history.md (C0); and the candidate the development
runs chose (sign_held_dev.json's ``chosen``, given on the command line and checked against the pre-registered
candidates).  Nothing is chosen here (docs/results/chiller-detection/sign-held/RULE.md); the rule runs this only
when a sign-held candidate was chosen.

    python bench/chiller/sign_held_report.py --out DIR --checkpoint PATH --chosen S1 [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from held_spread_dev import CANDIDATES, held_row
from held_spread_report import run_fresh_report
from sign_held_dev import REPORT_SEED, SIGN_CANDIDATES, sign_row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--checkpoint", type=Path, required=True, help="the blind estimate's checkpoint (asset_blind)")
    ap.add_argument("--chosen", required=True, choices=[c[0] for c in SIGN_CANDIDATES], help="sign_held_dev's")
    ap.add_argument("--cache-dir", type=Path, default=None)
    args = ap.parse_args()
    rows = [held_row(*CANDIDATES[0]), *(sign_row(*c) for c in SIGN_CANDIDATES if c[0] == args.chosen)]
    run_fresh_report(
        args,
        "sign_held_report.py",
        rows,
        REPORT_SEED,
        "Seeds 3300..3323 were run for the first time by this report (grep of docs/results/chiller-detection "
        "before it); the settings were chosen on development seeds 2180..2203, 3200..3223 and 2310..2321 "
        "(sign-held/RULE.md).",
    )


if __name__ == "__main__":
    main()
