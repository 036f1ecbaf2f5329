"""Diagnosis only: K1's estimate detector traced tick by tick on development runs (the flag-side study).

Saves, per run, each tag's value, the estimate's levels, the residual ``z``, the score, the scale's location, spread
and learned count to ``OUT/tr_<seed>.npz`` (read by hand; nothing is chosen here).  Runs are named ``SET:NAME``
(``SET``: dev, dev32, ff, 3400, 3500; ``NAME``: a run name or ``*``), each set's grouped estimates read from its
cache (never written).

    python bench/chiller/flag_side_trace.py --out DIR --roots DEV DEV3200 FREE R3400 R3500 '3500:*' dev:sensor_drift-1
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from asset_blind_dev import EVERY, run_record
from asset_stride_delay_dev import MASK, STRIDE
from group_learn_dev import configs
from pump_group_dev import SPEEDS

from sentinelle.detect.detectors import asset_estimate as ae
from sentinelle.detect.detectors.base import Findings, Tick
from sentinelle.evaluation.chiller_eval import chiller_plan, evaluate_run, simulate
from sentinelle.evaluation.replay import SharedForecasters, replay_settings

FIRST = {"dev": 2180, "dev32": 3200, "ff": 2310, "3400": 3400, "3500": 3500}
TRACE: list[tuple[Any, ...]] = []


def _observe(original: Any) -> Any:
    def observe(self: ae.AssetEstimateDetector, tick: Tick) -> Findings:
        f: Findings = original(self, tick)
        scale = self.scale
        TRACE.append((tick.ts, tick.clean.copy(), self._expected.copy(), self._z.copy(), self._score.copy(),
                      scale.location.copy(), scale.sigma().copy(), scale.learned.copy()))  # fmt: skip
        return f

    return observe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=Path("daemon/sentinelle/forecast/checkpoints/asset_blind"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--roots", type=Path, nargs=5, metavar=("DEV", "DEV32", "FF", "R3400", "R3500"), required=True)
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args()
    roots = dict(zip(FIRST, args.roots, strict=True))
    k1 = configs()[1]
    assert k1.label.startswith("K1")
    ae.AssetEstimateDetector.observe = _observe(ae.AssetEstimateDetector.observe)  # type: ignore[method-assign]
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for want in args.runs:
        key, name = want.split(":")
        first = FIRST[key]
        plan = (
            chiller_plan(0, 12, 3600.0, first_seed=first)
            if key == "ff"
            else chiller_plan(3, 3, 3600.0, first_seed=first)
        )
        sf = SharedForecasters(roots[key], model_threads=1)
        for run in plan:
            if name not in ("*", run.name):
                continue
            rec, truth = simulate(run)
            sf.begin(run.name)
            est = sf.estimator(
                args.checkpoint,
                mask_recent_steps=MASK,
                every_steps=EVERY,
                context_stride_steps=STRIDE,
                mask_groups=SPEEDS,
            )
            TRACE.clear()
            o = evaluate_run(rec, truth, replay_settings("holt", k1.detect_settings()), k1, sf["holt"], est)
            ts, clean, exp, z, score, loc, sig, learned = map(np.array, zip(*TRACE, strict=True))
            np.savez(
                args.out / f"tr_{run.seed}.npz",
                ts=ts, clean=clean, exp=exp, z=z, score=score, loc=loc, sig=sig, learned=learned,
                tags=np.array(rec.tags), scored_from=o.scored_from,
                on=truth[0].start_ts if truth else np.nan, off=truth[0].end_ts if truth else np.nan,
                ftags=np.array(truth[0].tags if truth else []),
            )  # fmt: skip
            r = run_record(run, o)
            print(run.name, run.seed, r["detected"], r["first_alert"], r["false_alarm_alerts"],
                  round(time.perf_counter() - started), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
