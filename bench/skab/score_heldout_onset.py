"""Score the held-out split once at ``tune_onset.py``'s frozen choice, beside today's headline; writes its JSON.

    SENTINELLE_DATA_DIR=../shared/data .venv/bin/python bench/skab/score_heldout_onset.py

Run once, after ``tuning_onset.json`` (the choice) was committed: the two configurations — today's headline
(``ASSET_ON`` as frozen at 0f174f2, ``tune_onset.TODAY``; ``ASSET_ON`` is now the choice) and the choice read
from that JSON — go through the daemon's stages with Holt forecasts on all 34 files in the same process, and
each is scored on the tuning split, the held-out split (valve2 + even ``other``) and all files, against issue
13's bounds.  Nothing is chosen here.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tune_asset_alerting import BOUNDS, RESULTS, scores_of
from tune_onset import TODAY
from tune_valve1 import write_json

from sentinelle.evaluation.replay import SharedForecasters, replay, replay_settings
from sentinelle.evaluation.skab import ASSET_ON, file_result, in_tuning_split, skab_recordings
from sentinelle.settings import DetectSettings


def met(held_out: dict[str, Any]) -> dict[str, bool]:
    """Issue 13's three bounds on the held-out split (F1 and FAR as the leaderboard rounds them).

    NAB under both changepoint conventions: the prediction's changes (``nab_standard``) and the
    alert stream's events (``nab_alert_events``, ``evaluation/skab.py``).
    """
    return {
        "f1": held_out["f1"] > BOUNDS["f1"],
        "far_percent": held_out["far_percent"] < BOUNDS["far_percent"],
        "nab_standard": held_out["nab_standard"] > BOUNDS["nab_standard"],
        "nab_alert_events": held_out["alert_events"]["nab_standard"] > BOUNDS["nab_standard"],
    }


def score_all_files(configs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each configuration (overrides of ``ASSET_ON``) on all 34 files in this process, Holt forecasts shared:
    scored on the tuning split, the held-out split, all files and per group, against issue 13's bounds."""
    recs = skab_recordings()
    assert len(recs) == 34
    shared = SharedForecasters()
    rows = []
    started = time.perf_counter()
    for label, config in configs.items():
        settings = replay_settings("holt", DetectSettings(**{**ASSET_ON, **config}))
        files = [file_result(r, replay(r, settings, shared["holt"])) for r in recs]
        splits = {
            "tuning": scores_of([f for f in files if in_tuning_split(f.name)]),
            "held_out": scores_of([f for f in files if not in_tuning_split(f.name)]),
            "all": scores_of(files),
        }
        groups = {g: scores_of([f for f in files if f.group == g]) for g in sorted({f.group for f in files})}
        row = {"label": label, "config": config, **splits, "by_group": groups, "met": met(splits["held_out"])}
        rows.append(row)
        print(f"{time.perf_counter() - started:.0f}s", json.dumps(row), flush=True)
    return rows


def main() -> None:
    tuning = json.loads(RESULTS.joinpath("tuning_onset.json").read_text(encoding="utf-8"))
    configs = {
        "today (ASSET_ON, 0f174f2)": TODAY,
        "chosen on the tuning files (tuning_onset.json)": tuning["chosen"]["config"],
    }
    rows = score_all_files(configs)
    head = {
        "held_out_split": "valve2 + other/{0,2,4,6,8,10,12} (scored once, after the choice was committed)",
        "forecaster": "holt",
        "bounds": "F1 > 0.78, FAR < 13.55 %, NAB standard > 32.42 on the held-out split (issue 13)",
        "chosen_in": "tuning_onset.json (" + tuning["rule"] + ")",
    }
    write_json(RESULTS.joinpath("heldout_onset.json"), head, rows)


if __name__ == "__main__":
    main()
