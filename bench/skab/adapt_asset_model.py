"""Issue 14, step 3 on SKAB: one LoRA adapter of the asset model for SKAB's pump, from data no report scores.

    SENTINELLE_DATA_DIR=../shared/data nice -n 10 .venv/bin/python bench/skab/adapt_asset_model.py [--minutes 35]

Data: the first 60 % of ``anomaly-free.csv`` (``evaluation.heldout.pretraining_parts``: what the
held-out rules let training read of SKAB), its 8 channels as one asset.  Not the fault files'
leading 400 rows: ``evaluation/heldout.py`` reserves every fault file (valve1, valve2, other) for
evaluation, tuning files included.  The newest 20 % of that part is the adapter's validation
(the manifest's before/after); the last 40 % of the file stays the forecast benchmark's.

Settings fixed before the run (no search): LoRA rank 8, alpha 16 (``finetune``'s defaults), on
``training.asset_finetune.ASSET_TARGET_MODULES``; learning rate 1e-3, batch 8 crops of 8 tags,
validation every 10 steps on 48 windows, patience 6 (and at the end), at most the given minutes on 2 threads.
The adapter is written to ``docs/results/skab/asset-adapter/`` and used by
``sentinelle evaluate --dataset skab --asset-adapter`` and ``bench/skab/tune_asset_adapter.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

from sentinelle.evaluation.chiller_report import asset_checkpoint
from sentinelle.evaluation.datasets import load_skab
from sentinelle.evaluation.heldout import SKAB_PRETRAINING_GROUPS, pretraining_parts
from sentinelle.evaluation.skab import ASSET
from sentinelle.settings import FinetuneSettings
from sentinelle.training.asset_finetune import finetune_asset

OUT = Path(__file__).resolve().parents[2] / "docs" / "results" / "skab" / "asset-adapter"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=35.0)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    series = [
        replace(p, name=f"{ASSET}.{p.meta['channel']}")  # the replay's tag names (evaluation.skab)
        for s in load_skab(groups=sorted(SKAB_PRETRAINING_GROUPS))
        for p in pretraining_parts(s)
    ]
    settings = FinetuneSettings(
        batch_size=8,
        max_steps=args.steps,
        eval_every_steps=10,
        patience_evals=6,
        validation_windows=48,
        max_minutes=args.minutes,
    )
    result = finetune_asset(
        asset_checkpoint(),
        series,
        settings,
        asset=ASSET,
        out_dir=args.out,
        data_note="SKAB anomaly-free.csv, first 60 % (evaluation.heldout.pretraining_parts); no fault file",
    )
    keys = ("forecast", "estimate", "blind_estimate", "total")
    print(
        f"{result.steps} steps, best {result.best_step}, {result.wall_seconds:.0f} s; validation before "
        f"{json.dumps({k: result.before[k] for k in keys})} after {json.dumps({k: result.after[k] for k in keys})}"
    )


if __name__ == "__main__":
    main()
