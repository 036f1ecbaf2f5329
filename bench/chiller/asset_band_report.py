"""Issue 14 on the report's 24 UNSEEN runs (seeds 2000..2023): the candidate asset_band_dev.py chose, run once.

Rows, residuals alone (no limits, rules, relations or T²): Holt's, the univariate model's (the shipped
default forecaster), and the asset model's blind estimate as the development runs chose it (checkpoint,
band calibration and chart given on the command line, from asset_band_dev.json's ``chosen``), with
Holt's one-step and horizon residuals beside it as in the report's other blind rows.  Nothing is chosen
here.  With a ``--cache-dir`` holding the univariate model's forecasts of these runs (``<run>-model.pkl``,
as ``sentinelle evaluate --dataset chiller --cache-dir`` writes them) only the asset model's estimates
are computed; the cache must be the checkpoint's own (estimates are cached by mask, not by checkpoint).

    python bench/chiller/asset_band_report.py --out DIR --checkpoint PATH [--calibrate-band]
        [--ewma-alpha A] [--cache-dir DIR]
"""

from __future__ import annotations

from pathlib import Path

from asset_blind_dev import EVERY, MASK, blind_row, report_parser, residuals_alone_rows, run_report

from sentinelle.evaluation.chiller_report import ASSET_ROW_DETECT


def main() -> None:
    ap = report_parser(__doc__, checkpoint_help="the asset checkpoint the development runs chose")
    ap.add_argument("--name", default="", help="the checkpoint's name in the row's label")
    ap.add_argument("--calibrate-band", action="store_true")
    ap.add_argument("--ewma-alpha", type=float, default=0.0)
    ap.add_argument("--cache-dir", type=Path, default=None)
    args = ap.parse_args()
    detect = {**ASSET_ROW_DETECT, "asset_estimate_ewma_alpha": args.ewma_alpha}
    detect["asset_estimate_calibrate_band"] = args.calibrate_band
    label = (
        f"asset model + holt ({args.name or args.checkpoint.name}): residuals alone, estimate blind to the newest "
        f"{MASK} slots, made every {EVERY}, band {'calibrated online' if args.calibrate_band else 'as given'}, "
        f"ewma {args.ewma_alpha}"
    )
    configs = [
        *residuals_alone_rows(),
        blind_row(label, detect),
    ]
    run_report("bench/chiller/asset_band_report.py", ap, args, configs)


if __name__ == "__main__":
    main()
