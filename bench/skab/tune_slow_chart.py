"""Seventh stage on SKAB's tuning split (issue 13): a slow second EWMA chart beside the fast one; writes its JSON.

    PYTHONPATH=daemon SENTINELLE_DATA_DIR=../shared/data .venv/bin/python bench/skab/tune_slow_chart.py

Why (``docs/results/skab/slowchart/RULE.md``).  At today's headline (``ASSET_ON``, frozen at c92efa9) the held-out
F1 is 0.76 against issue 13's 0.78, and the gap is missed fault rows.  On the 23 tuning files
(``why_rows_lost.py``) 2,009 of the 2,363 missed rows are on ``valve1``: 686 in two faults never detected (the
flow ~1.7 σ low for the whole fault, the fast chart at 0.6–0.9 of its limit), 490 before a late opening (the flow
1.5–2 σ low for the first ~50 s of the fault before it drops further) and 721 after an early clearing (the flow
back within ~1 σ some 40 s before the labelled end, and the weight-0.3 chart follows it at once).  The
mechanism: a second EWMA chart per steady tag of light weight (``detect.asset_slow_chart_alpha``), its limit the
warm-up quantile of its |EWMA| × ``asset_slow_chart_factor``, its input clipped at ±``asset_slow_chart_clip``
warm-up σ to bound its inertia after a large fault (``detect/asset.py``).  Off by default.

Protocol, written and committed before this script was first run:

* **Only the 23 tuning files are replayed** (``tune_asset_alerting.tuning_recordings``, asserted), through the
  daemon's stages with Holt forecasts (cached), over ``ASSET_ON``.
* **Grid** (9 configurations): today's (no slow chart) and ``asset_slow_chart_alpha`` 0.05, 0.02 ×
  ``asset_slow_chart_factor`` 2.5 (the fast chart's), 3.5 × ``asset_slow_chart_clip`` 3 σ, none.
* **Rule** (:func:`eligible`): pooled tuning F1 (unrounded) at least today's + 0.010; FAR at most today's × 1.15,
  pooled and in each tuning group (``valve1``, odd ``other``); alert-stream NAB standard (the headline's
  convention) at least today's × 0.95, pooled and in each group.  The eligible configuration with the highest
  pooled unrounded F1 is chosen (ties: higher pooled alert-stream NAB); none eligible: today's settings stay.
  ``|diff|`` NAB is recorded, not used.
* The choice is committed with ``slowchart/tuning_slow_chart.json``; only then are the held-out files scored,
  once, by ``score_heldout_slow_chart.py`` (the choice and today's headline in the same process).  The held-out
  split was scored in six earlier passes: this is the seventh look.
"""

from __future__ import annotations

from typing import Any

from tune_asset_alerting import RESULTS, run_grid, run_over_asset_on, write_choice
from tune_settle import best_f1, meets_margins

OUT = RESULTS / "slowchart"
TODAY: dict[str, Any] = {"asset_slow_chart_alpha": 0.0}
GRID: dict[str, tuple[Any, ...]] = {
    "asset_slow_chart_alpha": (0.05, 0.02),
    "asset_slow_chart_factor": (2.5, 3.5),
    "asset_slow_chart_clip": (3.0, None),
}
F1_MARGIN = 0.010
FAR_RATIO = 1.15
NAB_RATIO = 0.95
RULE = (
    "eligible: pooled tuning F1 (unrounded) >= today's + 0.010, FAR pooled and in each tuning group (valve1, "
    "other-odd) <= today's x 1.15, alert-stream NAB standard pooled and in each group >= today's x 0.95; the "
    "eligible configuration with the highest pooled unrounded F1 (ties: higher pooled alert-stream NAB); none "
    "eligible: today's settings stay"
)


def eligible(row: dict[str, Any], today: dict[str, Any]) -> bool:
    """The rule's test of one grid row against today's row (both as ``replay_scores`` returns them).

    >>> def r(f1, far, nab, g_far, g_nab):
    ...     group = {"far_percent": g_far, "alert_events": {"nab_standard": g_nab}}
    ...     return {"tuning": {"f1_exact": f1, "far_percent": far, "alert_events": {"nab_standard": nab}},
    ...             "by_group": {"valve1": group, "other": group}}
    >>> t = r(0.8256, 4.54, 44.17, 6.07, 40.0)
    >>> eligible(r(0.8356, 5.22, 41.97, 6.98, 38.0), t), eligible(r(0.8355, 4.0, 45.0, 6.0, 41.0), t)
    (True, False)
    >>> eligible(r(0.85, 5.23, 45.0, 6.0, 41.0), t), eligible(r(0.85, 4.0, 45.0, 6.99, 41.0), t)
    (False, False)
    >>> eligible(r(0.85, 4.0, 41.96, 6.0, 41.0), t), eligible(r(0.85, 4.0, 45.0, 6.0, 37.99), t)
    (False, False)
    """
    return meets_margins(row, today, f1_margin=F1_MARGIN, far_ratio=FAR_RATIO, nab_ratio=NAB_RATIO)


def choose(rows: list[dict[str, Any]], today: dict[str, Any]) -> dict[str, Any]:
    """The rule's choice: the eligible row with the highest F1, else ``today``."""
    return best_f1(rows, today, eligible)


def main() -> None:
    rows = run_grid({k: (v,) for k, v in TODAY.items()}, run_over_asset_on) + run_grid(GRID, run_over_asset_on)
    assert len(rows) == 9
    today = rows[0]
    assert today["config"] == TODAY
    best = choose(rows[1:], today)
    write_choice(OUT / "tuning_slow_chart.json", rows, today, best, base="c92efa9", rule=RULE)


if __name__ == "__main__":
    main()
