"""Diagnostic on the DEVELOPMENT runs of asset_stride_dev.py (seeds 2180..): what the coarse reference does
to the estimate residual of a slow fault, and to healthy ones.  Nothing is chosen here (it reads the
development runs after the rule chose).

Per candidate (stride S, coarse mask M) and run, from the estimates asset_stride_dev.py cached (the same
windows in the same order, so every estimate is read back, none computed): each tag's residual
(actual − the estimate's median) in the estimate's own band spreads (10-90 %), on every slot from the end
of the warm-up.  Printed and written: for the faulted tag, the mean over the fault's second half less
the mean over the scored time before onset, in the pre-onset residual's standard deviations and in band
spreads; for every tag of the fault-free runs, the largest |2-minute mean| of the residual less its run
mean (healthy excursions), in the same units.

    python bench/chiller/asset_stride_diag.py --checkpoint PATH --cache-root DIR
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from asset_blind_dev import EVERY, RESULTS
from asset_stride_dev import CANDIDATES, FIRST_SEED
from prometheus_client import CollectorRegistry

from sentinelle.evaluation.chiller_eval import WARMUP_S, chiller_plan, simulate
from sentinelle.evaluation.chiller_report import interleaved
from sentinelle.evaluation.replay import SharedForecasters
from sentinelle.metrics import Metrics
from sentinelle.records import Sample
from sentinelle.settings import WindowSettings
from sentinelle.windows import Windows

SLOW = ("sensor_drift", "fouling", "pump_degradation")


def _no_model(window: Any) -> np.ndarray:
    raise RuntimeError(f"no cached estimate for the window at {window.ts}: not the development run's windows")


def residuals(rec: Any, estimator: Any, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Per slot and tag: actual − median estimate, and the band's spread (NaN where no estimate)."""
    settings = WindowSettings(context_steps=512, allowed_lateness_s=0.0)
    windows = Windows(rec.tag_settings(), settings, Metrics(CollectorRegistry()), coarse_stride_steps=stride)
    n, g = rec.values.shape
    r = np.full((n, g), np.nan)
    spread = np.full((n, g), np.nan)
    t0 = rec.timestamps[0]
    for i in range(n):
        samples = [Sample(t, float(rec.timestamps[i]), float(v)) for t, v in zip(rec.tags, rec.values[i], strict=True)]
        for wb in windows.ingest(samples):
            k = round((wb.ts - t0) / rec.period_s)
            est = estimator(wb)
            r[k] = wb.values - est[:, est.shape[1] // 2]
            spread[k] = est[:, -1] - est[:, 0]
    return r, spread


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--cache-root", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=RESULTS / "asset_stride_diag.json")
    args = ap.parse_args()
    plan = chiller_plan(3, 3, 3600.0, first_seed=FIRST_SEED)
    plan = interleaved([r for r in plan if not r.faults or r.faults[0].kind in SLOW])
    sf = SharedForecasters(args.cache_root, model_threads=1)
    doc: dict[str, Any] = {"seeds": [r.seed for r in plan], "rows": []}
    for run in plan:
        rec, truth = simulate(run)
        sf.begin(run.name)
        warm = int(WARMUP_S / rec.period_s)
        for stride, mask in CANDIDATES:
            est = sf.estimator(args.checkpoint, mask_recent_steps=mask, every_steps=EVERY, context_stride_steps=stride)
            est.inner = _no_model  # read back only: a window the development run did not see is an error
            r, spread = residuals(rec, est, stride)
            row: dict[str, Any] = {"run": run.name, "seed": run.seed, "stride": stride, "mask": mask}
            if truth:
                onset = int(np.searchsorted(rec.timestamps, truth[0].start_ts))
                end = int(np.searchsorted(rec.timestamps, truth[0].end_ts))
                j = rec.tags.index(truth[0].tags[0])
                pre, late = r[warm:onset, j], r[(onset + end) // 2 : end, j]
                sd = float(np.nanstd(pre))
                shift = float(np.nanmean(late) - np.nanmean(pre))
                band = float(np.nanmedian(spread[warm:onset, j]))
                row |= {
                    "tag": rec.tags[j].split(".", 1)[-1],
                    "estimates_before_onset": int(np.isfinite(pre).sum()),
                    "shift_sd": round(shift / sd, 2) if sd > 0 else None,
                    "shift_bands": round(shift / band, 2) if band > 0 else None,
                }
            else:
                worst = {}
                for j, tag in enumerate(rec.tags):
                    x = r[warm:, j]
                    sd = float(np.nanstd(x))
                    band = float(np.nanmedian(spread[warm:, j]))
                    means = [np.nanmean(x[a : a + 120]) for a in range(0, len(x) - 120, 60)]
                    top = max((abs(m - np.nanmean(x)) for m in means if math.isfinite(m)), default=math.nan)
                    worst[tag.split(".", 1)[-1]] = {
                        "max_2min_sd": round(float(top / sd), 2) if sd > 0 else None,
                        "max_2min_bands": round(float(top / band), 2) if band > 0 else None,
                    }
                row["healthy_2min_excursions"] = worst
            doc["rows"].append(row)
            print(json.dumps(row), flush=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
