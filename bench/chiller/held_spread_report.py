"""Issue 14 on 24 FRESH unseen runs (seeds 3100..3123, never run before this report): the held spread, run once.

Rows, residuals alone (no limits, rules, relations or T²): Holt's; the univariate model's (the shipped default
forecaster) refreshed every 8 slots; row 8 of residuals-alone-history.md (C0 of held_spread_dev.py); and the
candidate the development runs chose (held_spread_dev.json's ``chosen``, given on the command line and checked
against the pre-registered candidates; none when C0 was chosen).  Nothing is chosen here
(docs/results/chiller-detection/held-spread/RULE.md).

    python bench/chiller/held_spread_report.py --out DIR --checkpoint PATH --chosen C1 [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from asset_stride_report import MODEL_REFRESH_STEPS
from held_spread_dev import CANDIDATES, CANDIDATES2, UNSEEN_FIRST_SEED, held_row

from sentinelle.cli.evaluate import _evaluation_meta
from sentinelle.evaluation.chiller_eval import Config
from sentinelle.evaluation.chiller_report import run_evaluation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--checkpoint", type=Path, required=True, help="the blind estimate's checkpoint (asset_blind)")
    ap.add_argument(
        "--chosen", required=True, choices=[c[0] for c in (*CANDIDATES, *CANDIDATES2)], help="held_spread_dev's choice"
    )
    ap.add_argument("--cache-dir", type=Path, default=None)
    args = ap.parse_args()
    rows = [held_row(*CANDIDATES[0])]
    if args.chosen != CANDIDATES[0][0]:
        first = [held_row(*c) for c in CANDIDATES if c[0] == args.chosen]
        rows += first or [held_row(*c) for c in CANDIDATES2 if c[0] == args.chosen]
    run_fresh_report(
        args,
        "held_spread_report.py",
        rows,
        UNSEEN_FIRST_SEED,
        "Seeds 3100..3123 were run for the first time by this report (grep of docs/results/chiller-detection "
        "before it); the settings were chosen on development seeds 2180..2203, 3200..3223 and 2310..2321 "
        "(held-spread/RULE.md).",
    )


def run_fresh_report(args: argparse.Namespace, script: str, rows: list[Config], first_seed: int, note: str) -> None:
    """The fresh-seed report every residuals-alone study runs once: Holt alone, the univariate model alone
    (refreshed every 8) and ``rows`` (the blind estimate's candidates), one process, one torch thread."""
    prefix = "asset model + holt (asset_blind): residuals alone, every 8, "
    configs = [
        Config("holt: residuals alone", "holt", asset=False, rules=False),
        Config(
            f"model: residuals alone, refreshed every {MODEL_REFRESH_STEPS} slots",
            "model",
            asset=False,
            rules=False,
            refresh_every_steps=MODEL_REFRESH_STEPS,
        ),
        *(dataclasses.replace(c, label=prefix + c.label) for c in rows),
    ]
    command = f"python bench/chiller/{script} --out {args.out} --checkpoint {args.checkpoint} " + (
        f"--chosen {args.chosen}" + (f" --cache-dir {args.cache_dir}" if args.cache_dir else "")
    )
    if getattr(args, "first_seed", None) is not None:
        command += f" --first-seed {args.first_seed}"
    run_evaluation(
        args.out,
        first_seed=first_seed,
        configs=configs,
        cache_dir=args.cache_dir,
        model_threads=1,
        meta={**_evaluation_meta(), "command": command},
        notes=["", note],
        asset_model_path=args.checkpoint,
    )


if __name__ == "__main__":
    main()
