"""Score the held-out split once at ``tune_mewma.py``'s committed choice, beside today's headline; writes its JSON.

    PYTHONPATH=daemon:bench/skab SENTINELLE_DATA_DIR=../shared/data .venv/bin/python bench/skab/score_heldout_mewma.py

Run only if ``mewma/tuning_mewma.json`` (committed) chose a candidate (``mewma/RULE.md``): today's headline
(``ASSET_ON`` as frozen at c92efa9, no MEWMA) and the choice go through the daemon's stages with Holt forecasts on
all 34 files in the same process, each scored on the tuning split, the held-out split and all files under both
changepoint conventions.  Nothing is chosen here.  The held-out split was scored in seven earlier passes of issue
13: this is the eighth look.
"""

from __future__ import annotations

import json
from typing import Any

from score_heldout_onset import score_all_files
from tune_mewma import OUT, TODAY
from tune_valve1 import write_json


def main() -> None:
    tuning = json.loads(OUT.joinpath("tuning_mewma.json").read_text(encoding="utf-8"))
    chosen: dict[str, Any] = tuning["chosen"]["config"]
    assert chosen != TODAY, "the rule chose nothing: the held-out files are not scored (RULE.md)"
    rows = score_all_files(
        {"today (ASSET_ON, c92efa9)": TODAY, "chosen on the tuning files (mewma/tuning_mewma.json)": chosen}
    )
    head = {
        "held_out_split": "valve2 + other/{0,2,4,6,8,10,12} (the eighth look; scored once, after the choice was "
        "committed)",
        "forecaster": "holt",
        "bounds": "F1 > 0.78, FAR < 13.55 %, NAB standard > 32.42 on the held-out split (issue 13)",
        "changepoint_conventions": "nab_standard: |diff| of the outlier prediction (SKAB's notebooks for outlier "
        "detectors); alert_events: the alert stream's opened/updated/cleared events (the daemon's own series)",
        "chosen_in": "mewma/tuning_mewma.json (" + tuning["rule"] + ")",
    }
    write_json(OUT.joinpath("heldout_mewma.json"), head, rows)


if __name__ == "__main__":
    main()
