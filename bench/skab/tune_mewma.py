"""Eighth stage on SKAB's tuning split (issue 13): a MEWMA of the steady tags beside the charts; writes its JSON.

    PYTHONPATH=daemon:bench/skab SENTINELLE_DATA_DIR=../shared/data .venv/bin/python bench/skab/tune_mewma.py

Why (``docs/results/skab/mewma/RULE.md``).  At today's headline (``ASSET_ON``, frozen at c92efa9) the held-out F1
is 0.76 against issue 13's 0.78 and the gap is missed fault rows.  On the 23 tuning files
(``why_windows_groups.py``) valve1 loses them: its faults open a median 53 s late (2 of 16 never) while the flow
is 1.3–1.8 σ low over the fault's first minute and one or two other tags 0.5–0.8 σ off — no tag past its own
chart's limit.  The mechanism (``detect.asset_mewma_*``, ``detect/mewma.py``; off by default): a MEWMA of the
steady tags, ``M = zᵀ Σ_z⁻¹ z``, its limit the warm-up quantile of ``M`` × ``asset_mewma_factor`` (floored at white
noise's χ² quantile), its input clipped at ``asset_mewma_clip_sigma``, gated as the seventh pass's slow chart
(``asset_slow_chart_hold_steps`` 5, ``asset_slow_chart_open_only``: it may raise the asset's alert, never hold a
new level after a fault nor prolong an open alert; without them that pass's light charts lost FAR and NAB).

Protocol, written and committed (RULE.md) before this script was first run:

* **Only the 23 tuning files are replayed** (``tune_asset_alerting.tuning_recordings``, asserted), Holt, over
  ``ASSET_ON``; today's row first (it must reproduce the seventh pass's today row).
* **Candidates** (6): ``asset_mewma_alpha`` 0.05, 0.1 × ``asset_mewma_factor`` 3, 6, 9 (a quadratic statistic:
  about 1.7, 2.4, 3 on the charts' linear scale), clip 3 σ, hold 5, open-only.
* **Rule** (:func:`eligible`): pooled tuning F1 (unrounded) ≥ today's + 0.02; FAR < 13.55 % pooled and in each
  tuning group (``valve1``, odd ``other``); NAB standard pooled not lower than today's under both changepoint
  conventions (the alert stream's events and ``|diff|``).  Chosen: the eligible candidate with the highest pooled
  unrounded F1 (ties: higher pooled alert-stream NAB); none eligible: today's settings stay and the held-out
  files are not scored.
* A choice is committed with ``mewma/tuning_mewma.json``; only then are the held-out files scored, once, by
  ``score_heldout_mewma.py`` (the choice beside today's headline in the same process): the eighth look at them.
"""

from __future__ import annotations

import json
from typing import Any

from tune_asset_alerting import GROUPS, RESULTS, run_grid, run_over_asset_on, write_choice
from tune_settle import best_f1

OUT = RESULTS / "mewma"
TODAY: dict[str, Any] = {"asset_mewma_alpha": 0.0}
GATE: dict[str, Any] = {
    "asset_mewma_clip_sigma": 3.0,
    "asset_slow_chart_hold_steps": 5,
    "asset_slow_chart_open_only": True,
}
GRID: dict[str, tuple[Any, ...]] = {
    "asset_mewma_alpha": (0.05, 0.1),
    "asset_mewma_factor": (3.0, 6.0, 9.0),
    **{k: (v,) for k, v in GATE.items()},
}
F1_MARGIN = 0.02
FAR_BOUND = 13.55
RULE = (
    "eligible: pooled tuning F1 (unrounded) >= today's + 0.02, FAR < 13.55 % pooled and in each tuning group "
    "(valve1, other-odd), NAB standard pooled >= today's under both conventions (alert-stream events and |diff|); "
    "the eligible candidate with the highest pooled unrounded F1 (ties: higher pooled alert-stream NAB); none "
    "eligible: today's settings stay and the held-out files are not scored"
)


def eligible(row: dict[str, Any], today: dict[str, Any]) -> bool:
    """The rule's test of one candidate row against today's row (both as ``replay_scores`` returns them).

    >>> def r(f1, far, g_far, nab, events):
    ...     return {"tuning": {"f1_exact": f1, "far_percent": far, "nab_standard": nab,
    ...                        "alert_events": {"nab_standard": events}},
    ...             "by_group": {"valve1": {"far_percent": g_far}, "other": {"far_percent": 1.0}}}
    >>> t = r(0.8256, 4.54, 3.94, 42.99, 44.17)
    >>> eligible(r(0.8456, 13.54, 13.54, 42.99, 44.17), t), eligible(r(0.8455, 5.0, 5.0, 50.0, 50.0), t)
    (True, False)
    >>> eligible(r(0.86, 5.0, 13.55, 50.0, 50.0), t), eligible(r(0.86, 5.0, 5.0, 42.98, 50.0), t)
    (False, False)
    >>> eligible(r(0.86, 5.0, 5.0, 50.0, 44.16), t)
    False
    """
    tun, base = row["tuning"], today["tuning"]
    return (
        tun["f1_exact"] >= base["f1_exact"] + F1_MARGIN - 1e-9
        and all(s["far_percent"] < FAR_BOUND for s in (tun, *(row["by_group"][g] for g in GROUPS)))
        and tun["nab_standard"] >= base["nab_standard"] - 1e-9
        and tun["alert_events"]["nab_standard"] >= base["alert_events"]["nab_standard"] - 1e-9
    )


def main() -> None:
    seventh = json.loads(RESULTS.joinpath("slowchart", "tuning_slow_chart.json").read_text(encoding="utf-8"))
    rows = run_grid({k: (v,) for k, v in TODAY.items()}, run_over_asset_on) + run_grid(GRID, run_over_asset_on)
    today = rows[0]
    assert today["config"] == TODAY and len(rows) == 7
    assert today["tuning"] == seventh["today"]["tuning"], "today's row must reproduce the seventh pass's"
    best = best_f1(rows[1:], today, eligible)
    write_choice(OUT / "tuning_mewma.json", rows, today, best, base="c92efa9", rule=RULE, convention=False)


if __name__ == "__main__":
    main()
