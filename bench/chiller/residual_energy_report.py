"""Issue 14 on the report's 24 UNSEEN runs (seeds 2000..2023): the residual energy and the hold-off, run once.

Rows, residuals alone (no limits, rules, relations or T²): Holt's; the univariate model's (the shipped default
forecaster) refreshed every 8 slots; the best row so far (asset-stride/min-learned: the blind estimate, S 4,
M 128, D 300, L 300); and that row with the candidate (W, H) the development runs chose
(residual_energy_dev.json's ``chosen``, given here on the command line and checked against the pre-registered
grid).  Nothing is chosen here (docs/results/chiller-detection/residual-energy/RULE.md).

    python bench/chiller/residual_energy_report.py --out DIR --checkpoint PATH --window W --holdoff H [--cache-dir DIR]
        [--variances C]

``--variances`` C > 0 (part 2, RULE-resolution.md): the residual energy flagging only below C q²/12
(``detect.residual_energy_max_resolution_variances``; residual_energy_resolution_dev.json's choice); part 1's
choice (W 0, H 900) is then a row of the report too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from asset_blind_dev import report_parser, residuals_alone_rows, run_report
from asset_stride_report import MODEL_REFRESH_STEPS
from residual_energy_dev import GRID, GRID2, PART2_HOLDOFF, energy_row


def main() -> None:
    ap = report_parser(__doc__)
    ap.add_argument("--window", type=int, required=True, help="the chosen detect.residual_energy_window_steps")
    ap.add_argument("--holdoff", type=int, required=True, help="the chosen detect.asset_estimate_holdoff_steps")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--variances", type=float, default=0.0, help="part 2's residual_energy_max_resolution_variances")
    args = ap.parse_args()
    if args.variances:
        assert args.holdoff == PART2_HOLDOFF and (args.window, args.variances) in GRID2, "not part 2's"
    else:
        assert (args.window, args.holdoff) in GRID, f"not a pre-registered candidate: {(args.window, args.holdoff)}"
    prefix = "asset model + holt (asset_blind): residuals alone, every 8, "
    rows = [energy_row(0, 0)]
    if args.variances:
        rows += [energy_row(0, PART2_HOLDOFF), energy_row(args.window, args.holdoff, args.variances)]
    elif (args.window, args.holdoff) != (0, 0):
        rows.append(energy_row(args.window, args.holdoff))
    configs = [
        *residuals_alone_rows(MODEL_REFRESH_STEPS),
        *(dataclasses.replace(c, label=prefix + c.label) for c in rows),
    ]
    run_report("bench/chiller/residual_energy_report.py", ap, args, configs)


if __name__ == "__main__":
    main()
