"""Seventh stage, second grid (issue 13): the slow chart that opens but does not hold; writes its JSON.

    PYTHONPATH=daemon SENTINELLE_DATA_DIR=../shared/data .venv/bin/python bench/skab/tune_slow_chart_hold.py

Why (``docs/results/skab/slowchart/RULE.md``, "second grid").  In the first grid (``tune_slow_chart.py``, tuning
files only) the slow chart found many more fault rows (MAR 26.95 → 15.7–22.4 %) but every row raised FAR past the
rule (11.6–40.8 % against 4.54 %).  Where its false rows lay (``why_rows_lost.py`` at weight 0.05 × 3.5, clip 3):
after the faults' ends — the pump comes back a little off its old level (valve1/15's flow 0.85 σ low for good,
other/9's 2.5–3 σ, other/7's accelerometer), the light chart stays over its limit, the alert never clears, so
the sixth pass's settling time never starts.  ``detect.asset_slow_chart_hold_steps`` (``detect/asset.py``): the
slow chart opens but does not hold — once T², Q or a fast chart have flagged that many ticks in a row in its
excursion, it counts only until they have been normal that many ticks in a row, then not again before it comes
back inside its limit.  Designed after seeing the first grid's rows and that diagnosis (said in the report).

Protocol, written and committed before this script was first run:

* **Only the 23 tuning files are replayed** (asserted), Holt, over ``ASSET_ON``.
* **Grid** (8 configurations and today's, which must reproduce the first grid's today row): ``asset_slow_chart_alpha``
  0.05, 0.1 × ``asset_slow_chart_factor`` 2.5, 3.5 × ``asset_slow_chart_hold_steps`` 5, 20, with
  ``asset_slow_chart_clip`` 3 σ (clip 3 beat no clip in each of the first grid's four pairs).
* **Rule**: ``tune_slow_chart.eligible`` against today's row, unchanged, applied to the rows of *both* grids: the
  eligible configuration with the highest pooled unrounded F1 (ties: higher pooled alert-stream NAB); none
  eligible: today's settings stay.
* Then the held-out split is scored once by ``score_heldout_slow_chart.py`` with that choice beside today's.
"""

from __future__ import annotations

import json
from typing import Any

from tune_asset_alerting import run_grid, run_over_asset_on, write_choice
from tune_slow_chart import OUT, RULE, TODAY, choose

GRID: dict[str, tuple[Any, ...]] = {
    "asset_slow_chart_alpha": (0.05, 0.1),
    "asset_slow_chart_factor": (2.5, 3.5),
    "asset_slow_chart_hold_steps": (5, 20),
    "asset_slow_chart_clip": (3.0,),
}


def main() -> None:
    first = json.loads(OUT.joinpath("tuning_slow_chart.json").read_text(encoding="utf-8"))
    rows = run_grid({k: (v,) for k, v in TODAY.items()}, run_over_asset_on) + run_grid(GRID, run_over_asset_on)
    today = rows[0]
    assert today["config"] == TODAY and len(rows) == 9
    assert today["tuning"] == first["today"]["tuning"], "today's row must reproduce the first grid's"
    best = choose(first["grid"][1:] + rows[1:], today)
    rule = RULE + "; chosen over the rows of both grids (tuning_slow_chart.json and this)"
    write_choice(OUT / "tuning_slow_chart_hold.json", rows, today, best, base="c92efa9", rule=rule, convention=False)


if __name__ == "__main__":
    main()
