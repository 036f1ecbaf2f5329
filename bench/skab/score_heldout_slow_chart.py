"""Score the held-out split once at ``tune_slow_chart.py``'s frozen choice, beside today's headline; writes its JSON.

    PYTHONPATH=daemon SENTINELLE_DATA_DIR=../shared/data .venv/bin/python bench/skab/score_heldout_slow_chart.py

Run once, after ``slowchart/tuning_slow_chart_open.json`` (the choice over the three grids) was committed: today's
headline (``ASSET_ON`` as frozen at c92efa9: no slow chart, ``tune_slow_chart.TODAY``) and the choice read from
that JSON (the same configuration when none was eligible: then it runs once) go through the daemon's stages with
Holt forecasts on all 34 files in the same process, each scored on the tuning split, the held-out split and all
files under both changepoint conventions, against issue 13's bounds.  Nothing is chosen here.  The held-out split
was scored in six earlier passes; in this pass it was run after the second grid with today's headline alone (no
configuration chosen: the seventh look) and, if the third grid chooses one, once more with it (the eighth, into
``heldout_slow_chart_open.json``).  Overrides are applied over ``ASSET_ON`` *without* the slow chart, so the run is
the same whether or not the choice has been frozen into ``ASSET_ON`` since.
"""

from __future__ import annotations

import json
from typing import Any

from score_heldout_onset import score_all_files
from tune_slow_chart import OUT, TODAY
from tune_valve1 import write_json


def main() -> None:
    tuning = json.loads(OUT.joinpath("tuning_slow_chart_open.json").read_text(encoding="utf-8"))
    chosen: dict[str, Any] = tuning["chosen"]["config"]
    base = {
        "asset_slow_chart_alpha": 0.0,
        "asset_slow_chart_factor": None,
        "asset_slow_chart_clip": None,
        "asset_slow_chart_hold_steps": None,
        "asset_slow_chart_open_only": False,
    }
    configs = {"today (ASSET_ON, c92efa9)": {**base, **TODAY}}
    if chosen != TODAY:
        configs["chosen on the tuning files (slowchart/tuning_slow_chart_open.json)"] = {**base, **chosen}
    rows = score_all_files(configs)
    head = {
        "held_out_split": "valve2 + other/{0,2,4,6,8,10,12} (scored after the choice was committed; the first "
        "held-out run of this pass, after the second grid, had today's headline alone)",
        "forecaster": "holt",
        "bounds": "F1 > 0.78, FAR < 13.55 %, NAB standard > 32.42 on the held-out split (issue 13)",
        "changepoint_conventions": "nab_standard: |diff| of the outlier prediction (SKAB's notebooks for outlier "
        "detectors); alert_events: the alert stream's opened/updated/cleared events (the daemon's own series)",
        "chosen_in": "slowchart/tuning_slow_chart_open.json (" + tuning["rule"] + ")",
    }
    write_json(OUT.joinpath(f"heldout_slow_chart{'_open' if chosen != TODAY else ''}.json"), head, rows)


if __name__ == "__main__":
    main()
