"""Issue 13 on chiller DEVELOPMENT seeds 2140..2149: what the residual band's calibration does to the daemon's alerts.

Information only (the NAB rule ``docs/results/nab/band-cal/RULE.md`` passed no candidate, so nothing ships and no
decision rests on this): ``detect.score_band_calibration`` widens over-sure forecast bands, which changes residual
flags and alert openings; does the daemon's shipped row, with it on, find the same faults and open no more false
alarms on the chiller?  Plan as ``step_floor_dev.py``: ``chiller_plan(1, 3, 3600, first_seed=2140)`` — one run per
fault kind (2140..2146) and three fault-free hours (2147..2149), never the report's 2000..2023; the shipped row
(per-tag + rules) of the forecaster named, with today's defaults, with ``"tag"`` and with ``"width"``.

    PYTHONPATH=daemon python bench/chiller/band_cal_dev.py OUT holt|model [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from quick_dev import run_quick_dev

from sentinelle.evaluation.chiller_eval import Config


def configs(fc: str) -> tuple[Config, ...]:
    return (
        Config(f"{fc}: per-tag + rules (shipped)", fc, asset=False, rules=True),
        Config(
            f"{fc}: per-tag + rules, band calibration per tag",
            fc,
            asset=False,
            rules=True,
            detect={"score_band_calibration": "tag"},
        ),
        Config(
            f"{fc}: per-tag + rules, band calibration per width class",
            fc,
            asset=False,
            rules=True,
            detect={"score_band_calibration": "width"},
        ),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("forecaster", choices=("holt", "model"))
    ap.add_argument("--cache-dir", type=Path, default=None)
    a = ap.parse_args()
    run_quick_dev(a.out, configs(a.forecaster), a.cache_dir)


if __name__ == "__main__":
    main()
