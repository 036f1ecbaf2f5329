"""Issue 13 on chiller DEVELOPMENT seeds 2140..2149: does the step floor open more false alarms?

Step 2 (iv) of the rule in ``bench/nab/tune_step_floor.py`` (commit 2e386f8): ``detect.score_step_floor``
floors the forecast spread at a share of each tag's typical non-zero step, so it changes residual flags and
alert openings; it may ship only if the daemon's shipped rows open no more false alarms with it on the
development runs.  Plan (fixed before any run): ``chiller_plan(1, 3, 3600, first_seed=2140)`` — one run per
fault kind (2140..2146) and three fault-free hours (2147..2149), never the report's 2000..2023; Holt's
shipped row (per-tag + rules) with today's defaults, with the step floor, and with the step floor and
``score_spread_floor = 1.0`` (candidate c; ``score_rest_scope`` and the peak cap do not change alerts, by construction).
The univariate model's rows are not run here (its every-tick forecasts cost the shared CPU too much).

    PYTHONPATH=daemon python bench/chiller/step_floor_dev.py OUT [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from quick_dev import run_quick_dev

from sentinelle.evaluation.chiller_eval import Config

STEP = {"score_step_floor": 0.29, "score_refractory_max_decades": 1000.0}
CONFIGS = (
    Config("holt: per-tag + rules (shipped)", "holt", asset=False, rules=True),
    Config("holt: per-tag + rules, step floor 0.29 + peak cap", "holt", asset=False, rules=True, detect=STEP),
    Config(
        "holt: per-tag + rules, step floor + peak cap + spread floor 1.0",
        "holt",
        asset=False,
        rules=True,
        detect={**STEP, "score_spread_floor": 1.0},
    ),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--cache-dir", type=Path, default=None)
    a = ap.parse_args()
    run_quick_dev(a.out, CONFIGS, a.cache_dir)


if __name__ == "__main__":
    main()
