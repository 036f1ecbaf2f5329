"""Issue 14 on SKAB's tuning split: the asset model's residuals alone and with the headline; writes its JSON.

    SENTINELLE_DATA_DIR=../shared/data nice -n 10 .venv/bin/python bench/skab/tune_asset_model.py --cache .cache/skab

The asset model (``forecast/checkpoints/asset``) estimates each tag from the other tags now
(``detect/detectors/asset_estimate.py``); the horizon residual (``horizon.py``) scores each tag
against the forecast made 16 ticks ago.  Neither was ever run on SKAB.  Its settings for the
report's rows are chosen here, on the 23 tuning files only, then frozen in
``sentinelle/evaluation/skab_models.py`` before the held-out files are scored once by
``sentinelle evaluate --dataset skab``.

Protocol, written before this script first ran:

* **Only the 23 tuning files are replayed** (``tune_asset_alerting.tuning_recordings``, asserted),
  through the daemon's stages, Holt's one-step forecasts for the per-tag residuals (as the
  chiller's asset rows), the asset model's estimates made on one slot in 16
  (``ASSET_EVERY_STEPS``, fixed for CPU: ~0.1 s per 8-tag estimate on the shared cores) and
  computed in batches before the replays (``evaluation/prefill.py``).
* **Candidates**: estimate mask ``forecast.asset_mask_recent_steps`` M 0 (the whole context)
  and 128 (blind to the newest 128 slots, the chiller's choice; 256 and 384 not tried: CPU, and
  SKAB's files give the scored rows 400–900 slots of context) × the estimate's EWMA chart
  ``detect.asset_estimate_ewma_alpha`` 0 (off) and 0.1 (the chiller's 0.1), each
  (a) **alone**: Holt's residuals + horizon + estimate-now, no asset T²/Q/charts;
  (b) **with the headline**: ``ASSET_ON`` + the same.  And the headline (``ASSET_ON``) itself.
* **Rule** (the stages' rule): each of issue 13's three bounds' relative margin —
  ``(F1 − 0.78)/0.78``, ``(NAB standard − 32.42)/32.42``, ``(13.55 − FAR %)/13.55`` — averaged over
  the tuning groups ``valve1`` and odd ``other``; the larger smallest averaged margin wins (ties:
  the second smallest, then M 0 and α 0).
  - the report's "estimate-now + horizon" row: α by the rule among (a) with M 0;
  - its "blind" row: α by the rule among (a) with M 128;
  - its "headline + asset model" row: (M, α) by the rule among (b); it **replaces the headline**
    only if it beats the headline by the rule on the tuning split (then the held-out split is
    scored once and reported; no further choice is made on it).

Every configuration is recorded in ``tuning_asset_model.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

from tune_asset_alerting import RESULTS, replay_scores, tuning_recordings
from tune_valve1 import write_json

from sentinelle.evaluation.replay import SharedForecasters
from sentinelle.evaluation.skab import ASSET_ON
from sentinelle.evaluation.skab_models import ASSET_EVERY_STEPS, AssetModelUse, asset_detect, prefilled_estimator
from sentinelle.settings import DetectSettings

MASKS = (0, 128)
ALPHAS = (0.0, 0.1)


def _rank(row: dict[str, Any]) -> tuple[list[float], bool, bool]:
    """The rule's order: the margins, then M 0, then α 0 (ties go to the simpler setting)."""
    return row["balanced_margins"], row["config"].get("mask", 0) == 0, row["config"].get("alpha", 0.0) == 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=None, help="keep the asset model's estimates here")
    args = ap.parse_args()
    recs = tuning_recordings()
    shared = SharedForecasters()
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []

    def record(kind: str, config: dict[str, Any], scores: dict[str, Any]) -> None:
        rows.append({"kind": kind, "config": config, **scores})
        print(f"{time.perf_counter() - started:.0f}s", json.dumps(rows[-1]), flush=True)

    record("headline", {}, replay_scores(DetectSettings(**ASSET_ON), recs, shared))
    for mask in MASKS:
        est = prefilled_estimator(recs, AssetModelUse(mask), shared, args.cache, progress=print)
        for alpha, kind in itertools.product(ALPHAS, ("alone", "with_headline")):
            base = ASSET_ON if kind == "with_headline" else {}
            detect = DetectSettings(**{**base, **asset_detect(alpha)})
            record(kind, {"mask": mask, "alpha": alpha}, replay_scores(detect, recs, shared, est.estimate_window))
        assert est.computed_on_the_spot == 0, "every estimate should come from the prefill"
    alone = [r for r in rows if r["kind"] == "alone"]
    chosen_alone = max((r for r in alone if r["config"]["mask"] == 0), key=_rank)
    chosen_blind = max((r for r in alone if r["config"]["mask"] == 128), key=_rank)
    chosen_with = max((r for r in rows if r["kind"] == "with_headline"), key=_rank)
    headline = rows[0]
    head = {
        "tuning_split": "valve1 + other/{1,3,5,7,9,11,13} (the held-out files were not replayed)",
        "forecaster": "holt (per-tag one-step residuals), asset model estimates every "
        f"{ASSET_EVERY_STEPS} slots (forecast/checkpoints/asset)",
        "rule": "largest smallest relative margin over F1 > 0.78, NAB standard > 32.42, FAR < 13.55 %, each "
        "margin averaged over the tuning groups valve1 and other-odd (ties: the second smallest, then mask 0, "
        "then alpha 0); the headline + asset model replaces the headline only if it beats it by this rule",
        "chosen_alone": chosen_alone,
        "chosen_blind": chosen_blind,
        "chosen_with_headline": chosen_with,
        "with_headline_beats_headline": _rank(chosen_with)[0] > headline["balanced_margins"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(RESULTS.joinpath("tuning_asset_model.json"), head, rows)
    print("chosen:", json.dumps({k: head[k] for k in head if k.startswith(("chosen", "with"))}))


if __name__ == "__main__":
    main()
