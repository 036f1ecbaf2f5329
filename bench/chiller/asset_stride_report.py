"""Issue 14 on the report's 24 UNSEEN runs (seeds 2000..2023): the coarse reference asset_stride_dev.py chose, run once.

Rows, residuals alone (no limits, rules, relations or T²): Holt's; the univariate model's (the shipped
default forecaster) refreshed every 8 slots (per tick it costs about 100 minutes of this shared machine
for the 24 runs: RULE.md); and the blind row with the stride ``S`` and coarse mask ``M`` that the
development seeds chose (asset_stride_dev.json's ``chosen``, given here on the command line and checked
against the pre-registered candidates).  Nothing is chosen here.  Today's blind row (S 1, M 128) is the
asset-cusum report's "no CUSUM" row (same checkpoint, settings and seeds) unless it is the choice.

    python bench/chiller/asset_stride_report.py --out DIR --checkpoint PATH --stride S --mask M [--cache-dir DIR]
        [--delay D] [--min-learned L]

``--delay`` D > 0 (part 2, RULE-learn-delay.md): the row as part 1 chose it (S 4, M 128) with the estimate
scale learning D ticks late (``detect.asset_estimate_learn_delay_steps``; asset_stride_delay_dev.json's
choice), in place of the plain one.  ``--min-learned`` L (part 3, RULE-min-learned.md): and flagging only
after L learned ticks (``detect.asset_estimate_min_learned_steps``; asset_stride_min_learned_dev.json's
choice).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from asset_blind_dev import report_parser, residuals_alone_rows, run_report
from asset_stride_delay_dev import DELAYS, GRID, MASK, STRIDE, delay_row
from asset_stride_dev import CANDIDATES, label, stride_row

MODEL_REFRESH_STEPS = 8


def main() -> None:
    ap = report_parser(__doc__)
    ap.add_argument("--stride", type=int, required=True, help="the chosen forecast.asset_context_stride_steps")
    ap.add_argument("--mask", type=int, required=True, help="the chosen mask, in coarse slots")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--delay", type=int, default=0, help="part 2's chosen detect.asset_estimate_learn_delay_steps")
    ap.add_argument("--min-learned", type=int, default=0, help="part 3's detect.asset_estimate_min_learned_steps")
    args = ap.parse_args()
    assert (args.stride, args.mask) in CANDIDATES, f"not a pre-registered candidate: {(args.stride, args.mask)}"
    assert args.delay in DELAYS and (not args.delay or (args.stride, args.mask) == (STRIDE, MASK)), "not part 2's"
    assert not args.min_learned or (args.delay, args.min_learned) in GRID, "not part 3's"
    name = label(args.stride, args.mask)
    late = args.delay or args.min_learned
    chosen = delay_row(args.delay, args.min_learned) if late else stride_row(name, args.stride, args.mask)
    prefix = "asset model + holt (asset_blind): residuals alone, every 8, "
    configs = [
        *residuals_alone_rows(MODEL_REFRESH_STEPS),
        dataclasses.replace(chosen, label=prefix + chosen.label),
    ]
    run_report("bench/chiller/asset_stride_report.py", ap, args, configs)


if __name__ == "__main__":
    main()
