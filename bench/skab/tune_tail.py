"""SKAB tuning split only (valve1 + odd ``other`` files): the headline configuration with and without the
per-tag surprise's excursion record (``detect.score_tail_calibration``, detect/tail.py), through the daemon's
whole detect stage (issue 13).  The held-out files are not replayed here.

    PYTHONPATH=daemon SENTINELLE_DATA_DIR=../shared/data python bench/skab/tune_tail.py ['k=v,k=v' ...]
"""

from __future__ import annotations

import sys
from typing import Any

from sentinelle.evaluation.replay import SharedForecasters, replay_settings
from sentinelle.evaluation.skab import ASSET_ON, evaluate_skab, in_tuning_split, score_files, skab_recordings
from sentinelle.settings import DetectSettings


def main() -> None:
    recs = [r for r in skab_recordings() if in_tuning_split(r.name)]
    shared = SharedForecasters()
    for arg in sys.argv[1:] or ["", "score_tail_calibration=True"]:
        over: dict[str, Any] = dict(ASSET_ON)
        for kv in filter(None, arg.split(",")):
            k, v = kv.split("=")
            over[k] = type(DetectSettings.model_fields[k].default)(eval(v))
        res = evaluate_skab(recs, replay_settings("holt", DetectSettings(**over)), arg, forecaster=shared["holt"])
        sc = score_files(res.files)
        print(f"{arg or 'headline'}: tuning {sc.row()} nab counts {sc.nab_counts}", flush=True)


if __name__ == "__main__":
    main()
