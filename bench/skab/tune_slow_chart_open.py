"""Seventh stage, third grid (issue 13): the slow chart raises the asset's alert, never prolongs one; writes its JSON.

    PYTHONPATH=daemon SENTINELLE_DATA_DIR=../shared/data .venv/bin/python bench/skab/tune_slow_chart_open.py

Why (``docs/results/skab/slowchart/RULE.md``, "third grid").  In the second grid (``tune_slow_chart_hold.py``,
tuning files only) the hold cut the first grid's false rows by half, but the best F1 rows still failed FAR (8.48 %
at weight 0.05 × 2.5, hold 5, against 5.22 %).  Where their false rows lay (``why_rows_lost.py`` at that row):
valve1/5 158 rows after its fault, other/9 61, on the slow chart of the flow — the flow comes back inside the slow
chart's limit at the fault's end and settles a little off its old level while the alert is still within its
re-arm time, so a *new* excursion of the slow chart begins, its own, and holds the alert for good (it is never
sent cleared; the settling time never starts).  ``detect.asset_slow_chart_open_only``: an excursion that begins
while the asset's alert is open as sent (its condition, or within the re-arm time after it) is spent from its
start.  Designed after seeing both grids' rows and that diagnosis (said in the report).

Protocol, written and committed before this script was first run:

* **Only the 23 tuning files are replayed** (asserted), Holt, over ``ASSET_ON``.
* **Grid** (4 configurations and today's, which must reproduce the first grid's today row):
  ``asset_slow_chart_alpha`` 0.05, 0.1 × ``asset_slow_chart_factor`` 2.5, 3.5, with ``asset_slow_chart_hold_steps``
  5 (hold 20 lost F1 or FAR to hold 5 in three of the second grid's four pairs), ``asset_slow_chart_clip`` 3 σ and
  ``asset_slow_chart_open_only`` on.
* **Rule**: ``tune_slow_chart.eligible`` against today's row, unchanged, applied to the rows of *all three* grids:
  the eligible configuration with the highest pooled unrounded F1 (ties: higher pooled alert-stream NAB); none
  eligible: today's settings stay.
* Then the held-out split is scored once by ``score_heldout_slow_chart.py`` with that choice beside today's (it
  was scored at today's headline alone after the second grid, no configuration chosen: the seventh look; a choice
  here makes the eighth, the first of a new configuration in this pass).
"""

from __future__ import annotations

import json
from typing import Any

from tune_asset_alerting import run_grid, run_over_asset_on, write_choice
from tune_slow_chart import OUT, RULE, TODAY, choose

GRID: dict[str, tuple[Any, ...]] = {
    "asset_slow_chart_alpha": (0.05, 0.1),
    "asset_slow_chart_factor": (2.5, 3.5),
    "asset_slow_chart_hold_steps": (5,),
    "asset_slow_chart_clip": (3.0,),
    "asset_slow_chart_open_only": (True,),
}


def main() -> None:
    first = json.loads(OUT.joinpath("tuning_slow_chart.json").read_text(encoding="utf-8"))
    second = json.loads(OUT.joinpath("tuning_slow_chart_hold.json").read_text(encoding="utf-8"))
    rows = run_grid({k: (v,) for k, v in TODAY.items()}, run_over_asset_on) + run_grid(GRID, run_over_asset_on)
    today = rows[0]
    assert today["config"] == TODAY and len(rows) == 5
    assert today["tuning"] == first["today"]["tuning"], "today's row must reproduce the first grid's"
    best = choose(first["grid"][1:] + second["grid"][1:] + rows[1:], today)
    rule = RULE + "; chosen over the rows of all three grids (tuning_slow_chart.json, _hold.json and this)"
    write_choice(OUT / "tuning_slow_chart_open.json", rows, today, best, base="c92efa9", rule=rule, convention=False)


if __name__ == "__main__":
    main()
