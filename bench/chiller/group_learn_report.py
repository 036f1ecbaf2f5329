"""Issue 14 on 24 FRESH unseen runs (seeds 3400..3423, never scored before this report): the speeds' own late
learning, once.

Rows, residuals alone (no limits, rules, relations or T²): Holt's; the univariate model's (the shipped default
forecaster) refreshed every 8 slots; row 8 of residuals-alone-history.md (C0); the pump-group study's H1; and the
candidate the development runs chose (group_learn_dev.json's ``chosen``, given on the command line and checked
against the pre-registered candidates).  Nothing is chosen here (docs/results/chiller-detection/group-learn/RULE.md);
the rule runs this only when a candidate was chosen.

    python bench/chiller/group_learn_report.py --out DIR --checkpoint PATH --chosen K1 [--cache-dir DIR] \
        [--first-seed N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from group_learn_dev import CANDIDATES, REPORT_SEED, configs
from held_spread_report import run_fresh_report
from pump_group_dev import configs as pump_configs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--checkpoint", type=Path, required=True, help="the blind estimate's checkpoint (asset_blind)")
    ap.add_argument("--chosen", required=True, choices=[c[0] for c in CANDIDATES], help="group_learn_dev's")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument(
        "--first-seed", type=int, default=REPORT_SEED, help="the fresh set's first seed (3500: CONFIRM.md's second set)"
    )
    args = ap.parse_args()
    c0 = pump_configs(1)[0]
    h1, *cands = configs()
    assert c0.label.startswith("C0") and h1.label.startswith("H1")
    rows = [c0, h1, *(c for c in cands if c.label.startswith(args.chosen + ":"))]
    assert len(rows) == 3
    run_fresh_report(
        args,
        "group_learn_report.py",
        rows,
        args.first_seed,
        f"Seeds {args.first_seed}..{args.first_seed + 23} were scored for the first time by this report; the settings "
        "were chosen on development seeds 2180..2203, 3200..3223 and 2310..2321 (group-learn/RULE.md)"
        + ("." if args.first_seed == REPORT_SEED else "; K1 frozen for a second fresh set (group-learn/CONFIRM.md)."),
    )


if __name__ == "__main__":
    main()
