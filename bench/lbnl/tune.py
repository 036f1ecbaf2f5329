"""Choose LBNL detection settings on the tuning half only (evaluation/lbnl.py split_of): prints the tuning days'
day-level counts per configuration; the held-out days are never replayed here (issue 13).

    PYTHONPATH=daemon SENTINELLE_DATA_DIR=../shared/data python bench/lbnl/tune.py 'score_tail_calibration=True' ...

Each argument is one configuration: comma-separated detect overrides (``holdoff=SECONDS`` sets the mode
hold-off; ``warmdays=N`` the warm-up days; ``nomodes`` / ``noasset`` drop the mode rules / the asset detector).
"""

from __future__ import annotations

import sys
from typing import Any

from sentinelle.evaluation import lbnl
from sentinelle.evaluation.datasets import LBNL_FILES
from sentinelle.evaluation.lbnl import alerts_per_day, asset_warmup, day_scores, evaluate_lbnl
from sentinelle.evaluation.replay import SharedForecasters, replay_settings
from sentinelle.settings import DetectSettings


def main() -> None:
    shared = SharedForecasters()
    days = {m: lbnl.lbnl_days(mode_tags=m) for m in (False, True)}
    for arg in sys.argv[1:] or [""]:
        over: dict[str, Any] = {"asset_enabled": True}
        modes, holdoff, warm = True, lbnl.MODE_HOLDOFF_S, lbnl.WARMUP_DAYS
        for kv in filter(None, arg.split(",")):
            if kv == "nomodes":
                modes = False
            elif kv == "noasset":
                over["asset_enabled"] = False
            elif kv.startswith("warmdays="):
                warm = int(kv.split("=")[1])
            elif kv.startswith("holdoff="):
                holdoff = float(kv.split("=")[1])
            else:
                k, v = kv.split("=")
                over[k] = type(DetectSettings.model_fields[k].default)(eval(v))
        lbnl.MODE_HOLDOFF_S = holdoff
        over = asset_warmup(warm) | over
        rules = tuple(lbnl.mode_rules(f) for f in LBNL_FILES) if modes else ()
        settings = replay_settings("holt", DetectSettings(**over, assets=rules))
        r = evaluate_lbnl(days[modes], settings, arg, forecaster=shared["holt"], only_split="tuning", warmup_days=warm)
        sc = day_scores(r.days)
        kinds: dict[str, int] = {}
        for d in r.days:
            if not d.faulted:
                for k, n in d.opened_by_kind:
                    kinds[k] = kinds.get(k, 0) + n
        print(
            f"{arg or 'defaults'}: tuning faulted {sc.tp}/{sc.tp + sc.fn}, fault-free flagged {sc.fp}/{sc.fp + sc.tn}, "
            f"alerts/day {alerts_per_day(r.days)}, fault-free openings {kinds} ({r.seconds:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
