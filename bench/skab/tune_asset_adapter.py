"""Issue 14, step 3 on SKAB's tuning split: the asset model's rows with the SKAB adapter; writes its JSON.

    SENTINELLE_DATA_DIR=../shared/data nice -n 10 .venv/bin/python bench/skab/tune_asset_adapter.py \
        --cache .cache/skab [--adapter docs/results/skab/asset-adapter]

Protocol, written and committed before this script first ran:

* **Only the 23 tuning files are replayed** (``tune_asset_alerting.tuning_recordings``, asserted),
  as ``tune_asset_model.py`` does: Holt's one-step residuals, the asset model's estimates every
  16 slots, prefilled in batches — with the LoRA adapter of ``bench/skab/adapt_asset_model.py``
  (trained on the first 60 % of ``anomaly-free.csv`` alone) merged into the asset model.
* **No new choice**: the rows are ``skab_models.adapted_runs`` — the shipped model's three
  asset-model rows at their frozen settings (estimate-now + horizon with chart α 0.1; blind to the
  newest 128 slots, α 0; the headline + the asset model, mask 0, α 0).  No k-of-n, mask or α is
  searched for the adapted model.
* **One decision, by ``tune_asset_model.py``'s rule** (the larger smallest relative margin over
  F1 0.78, NAB 32.42, FAR 13.55 %, each averaged over valve1 and odd ``other``): the adapted
  "headline + asset model" row would replace the headline only if it beats the headline's
  margins on the tuning split (recorded as ``with_headline_beats_headline``).  Either way the
  held-out files are then scored once, by ``sentinelle evaluate --dataset skab --asset-adapter``.

**What happened** (2026-12-06): started at 22:11 UTC after the adapter, stopped after prefilling 6 of
the 23 files — at a load of ~11 on the 2 shared cores a file cost ~36 s, the whole grid about 45 min.
The adapted rows' tuning scores were then taken from the tuning columns of the one report run
(``evaluate --dataset skab --asset-adapter ... --asset-adapter-masks 0``: same files, same frozen
settings, the blind row left out for time), which scored the held-out files in the same pass; the
one decision above read the tuning columns only: the adapted "headline + asset model" (tuning F1
0.79, FAR 17.12 %, NAB 34.48) does not beat the headline (0.82, 7.30 %, 40.12), which stays.

Every row is written to ``tuning_asset_adapter.json``; the unadapted rows and the headline's are
``tuning_asset_model.json``'s (same code and settings; the headline is read from there, not replayed).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from adapt_asset_model import OUT as ADAPTER
from tune_asset_alerting import RESULTS, replay_scores, tuning_recordings
from tune_valve1 import write_json

from sentinelle.evaluation.replay import SharedForecasters
from sentinelle.evaluation.skab import ASSET_ON
from sentinelle.evaluation.skab_models import AssetModelUse, adapted_runs, prefilled_estimator
from sentinelle.settings import DetectSettings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=None, help="keep the asset model's estimates here")
    ap.add_argument("--adapter", type=Path, default=ADAPTER)
    args = ap.parse_args()
    recs = tuning_recordings()
    shared = SharedForecasters()
    started = time.perf_counter()
    # The headline's tuning scores: tune_asset_model.py's row (same code and settings; not replayed again).
    headline = json.loads(RESULTS.joinpath("tuning_asset_model.json").read_text())["grid"][0]
    assert headline["kind"] == "headline"
    rows: list[dict[str, Any]] = []
    estimators: dict[AssetModelUse, Any] = {}
    for run in adapted_runs(ASSET_ON, args.adapter):
        assert run.asset_model is not None and run.forecaster == "holt"
        if run.asset_model not in estimators:
            estimators[run.asset_model] = prefilled_estimator(recs, run.asset_model, shared, args.cache, print)
        est = estimators[run.asset_model]
        rows.append(
            {"label": run.label, **replay_scores(DetectSettings(**run.detect), recs, shared, est.estimate_window)}
        )
        assert est.computed_on_the_spot == 0, "every estimate should come from the prefill"
        print(f"{time.perf_counter() - started:.0f}s", json.dumps(rows[-1]), flush=True)
    with_headline = rows[-1]
    head = {
        "tuning_split": "valve1 + other/{1,3,5,7,9,11,13} (the held-out files were not replayed)",
        "adapter": str(args.adapter.relative_to(RESULTS.parents[2]))
        if args.adapter.is_absolute()
        else str(args.adapter),
        "settings": "frozen in sentinelle/evaluation/skab_models.py (chosen for the shipped model); none searched",
        "headline": {"tuning": headline["tuning"], "balanced_margins": headline["balanced_margins"]},
        "with_headline_beats_headline": with_headline["balanced_margins"] > headline["balanced_margins"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(RESULTS.joinpath("tuning_asset_adapter.json"), head, rows)
    print("with_headline_beats_headline:", head["with_headline_beats_headline"])


if __name__ == "__main__":
    main()
