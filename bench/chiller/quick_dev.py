"""The quick development run the detection-setting sweeps share: each fault kind once and three fault-free hours.

Seeds from 2140 (development only: no report's seeds), one torch thread, forecasts cached in ``--cache-dir``
when given; the sweep scripts differ only in the configurations they hand it, so that their numbers are
comparable with each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sentinelle.evaluation.chiller_eval import Config
from sentinelle.evaluation.chiller_report import run_evaluation

FIRST_SEED = 2140


def run_quick_dev(out: Path, configs: Sequence[Config], cache_dir: Path | None) -> None:
    """Run ``configs`` on the quick development plan and print the headline row's false alarms."""
    res = run_evaluation(
        out,
        runs_per_kind=1,
        fault_free_runs=3,
        fault_free_s=3600.0,
        first_seed=FIRST_SEED,
        configs=configs,
        cache_dir=cache_dir,
        model_threads=1,
    )
    print(f"headline {res.label}: {res.false_alarms} false alarms; report in {out}/report.md")
