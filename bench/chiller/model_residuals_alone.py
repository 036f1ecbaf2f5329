"""The univariate model's residuals alone on the chiller report's 24 unseen runs (seeds 2000..2023), as its own report.

Issue 14 asks for this row beside Holt's and the asset model's; ``sentinelle evaluate --dataset chiller``
runs it with every other row (about 30 minutes on this shared machine for the model's forecasts alone),
so it was run by itself into docs/results/chiller-detection/model-residuals-alone/.  Nothing is chosen here.

    python bench/chiller/model_residuals_alone.py --out DIR [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sentinelle.cli.evaluate import _evaluation_meta
from sentinelle.evaluation.chiller_eval import Config
from sentinelle.evaluation.chiller_report import run_evaluation

COMMAND = "python bench/chiller/model_residuals_alone.py --out DIR --cache-dir DIR"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cache-dir", type=Path, default=None)
    args = ap.parse_args()
    config = Config("model: residuals alone", "model", asset=False, rules=False)
    run_evaluation(
        args.out,
        configs=[config],
        cache_dir=args.cache_dir,
        model_threads=1,
        meta={**_evaluation_meta(), "command": COMMAND},
    )


if __name__ == "__main__":
    main()
