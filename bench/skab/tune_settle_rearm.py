"""Sixth stage, second grid (issue 13): settling that starts when the alert is sent cleared; writes its JSON.

    PYTHONPATH=daemon SENTINELLE_DATA_DIR=../shared/data .venv/bin/python bench/skab/tune_settle_rearm.py

Why (``docs/results/skab/settle/RULE.md``, "second grid").  The first grid's rows (``tune_settle.py``, tuning
files only) showed settling from the condition's first clearing *losing* rows of faults: on SKAB the asset
condition dips for a few ticks inside a fault (the flow's chart near its limit, ``valve1``), the clearing run is
3 ticks, so a dip ended the episode and its settling time held the fault's return.  The alert stream already
merges such dips (re-arm: a return within the re-arm time continues the same alert), so the episode an operator
sees ends when the stream sends ``cleared``.  ``detect.asset_settle_after_rearm`` starts the settling time there.
Designed after seeing the first grid's first rows on the tuning files (said in the report).

Protocol, written and committed before this script was first run:

* **Only the 23 tuning files are replayed** (asserted), Holt, over ``ASSET_ON``.
* **Grid** (7 configurations): today's (settling off) and ``asset_chart_alpha`` 0.3, 0.2 ×
  ``asset_settle_steps`` 60, 120, 240 with ``asset_settle_after_rearm`` on and ``asset_settle_after_steps`` 60
  (an episode of at least a minute, the re-arm time's unit; set a priori).
* **Rule**: ``tune_settle.eligible`` against today's row of this run, unchanged; the choice is made over the rows
  of *both* grids (the first grid's JSON and this one; today's row is the same configuration in both and must
  score the same): the eligible configuration with the highest pooled unrounded F1 (ties: higher alert-stream
  NAB); none eligible: today's settings stay.
* Then the held-out split is scored once by ``score_heldout_settle.py`` with that choice beside today's.
"""

from __future__ import annotations

import json
from typing import Any

from tune_asset_alerting import run_grid, run_over_asset_on, write_choice
from tune_settle import OUT, RULE, TODAY, choose

GRID: dict[str, tuple[Any, ...]] = {
    "asset_chart_alpha": (0.3, 0.2),
    "asset_settle_steps": (60, 120, 240),
    "asset_settle_after_steps": (60,),
    "asset_settle_after_rearm": (True,),
}
TODAY_GRID: dict[str, tuple[Any, ...]] = {k: (v,) for k, v in TODAY.items()}


def main() -> None:
    first = json.loads(OUT.joinpath("tuning_settle.json").read_text(encoding="utf-8"))
    rows = run_grid(TODAY_GRID, run_over_asset_on) + run_grid(GRID, run_over_asset_on)
    today = rows[0]
    assert today["config"] == TODAY
    assert today["tuning"] == first["today"]["tuning"], "today's row must reproduce the first grid's"
    best = choose(first["grid"] + rows[1:], today)
    rule = RULE + "; chosen over the rows of both grids (tuning_settle.json and this)"
    write_choice(OUT / "tuning_settle_rearm.json", rows, today, best, base="4814891", rule=rule, convention=False)


if __name__ == "__main__":
    main()
