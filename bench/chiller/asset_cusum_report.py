"""Issue 14 on the report's 24 UNSEEN runs (seeds 2000..2023): the CUSUM candidate asset_cusum_dev.py chose, run once.

Rows, residuals alone (no limits, rules, relations or T²): Holt's, the univariate model's (the shipped
default forecaster), the blind estimate's row as it stood (``asset_blind`` checkpoint, mask 128, every 8,
opening on 16 of 24) and that row with the estimate-residual CUSUM at the ``k`` and ``h`` the development
seeds chose (asset_cusum_dev.json's ``chosen``, given here on the command line).  Nothing is chosen here.
With a ``--cache-dir`` holding this checkpoint's estimates of these runs, only detection is computed.

    python bench/chiller/asset_cusum_report.py --out DIR --checkpoint PATH --k K --h H [--cache-dir DIR]
"""

from __future__ import annotations

from pathlib import Path

from asset_blind_dev import blind_row, report_parser, residuals_alone_rows, run_report
from asset_cusum_dev import candidates


def main() -> None:
    ap = report_parser(__doc__)
    ap.add_argument("--k", type=float, required=True, help="the chosen CUSUM reference (standard units)")
    ap.add_argument("--h", type=float, required=True, help="the chosen CUSUM decision interval (standard units)")
    ap.add_argument("--cache-dir", type=Path, default=None)
    args = ap.parse_args()
    rows = candidates()
    base = next(iter(rows))
    chosen = f"{base.removesuffix(', no CUSUM')}, CUSUM k {args.k} h {args.h:g}"
    assert chosen in rows, f"not a pre-registered candidate: {chosen}"
    prefix = "asset model + holt (asset_blind): residuals alone, estimate blind to the newest 128 slots, made every 8, "
    configs = [
        *residuals_alone_rows(),
        blind_row(prefix + base.removeprefix("blind estimate, "), rows[base]),
        blind_row(prefix + chosen.removeprefix("blind estimate, "), rows[chosen]),
    ]
    run_report("bench/chiller/asset_cusum_report.py", ap, args, configs)


if __name__ == "__main__":
    main()
