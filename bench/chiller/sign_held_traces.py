"""Traces behind sign-held/report.md, on DEVELOPMENT runs only (nothing is chosen here).

From the cached blind estimates (``asset_blind``, means of 4 slots, the newest 128 masked, every 8) of the
development runs of held_spread_dev.py: each tag's residual (actual − the estimate's median) and 10-90 % band.

- ``--what sign``: for the sensor drifts (faulted tag) and the fault-free hours (every tag but the pump speeds),
  the share of scored ticks where the residual's forgetting mean sign (about its median over the first 900
  scored ticks; memory N) reaches Q — how often the sign gate holds the usual width.
- ``--what pump``: for the pump degradations, each tag's residual shift over the fault's full-magnitude stretch
  (onset + 300 s to end − 300 s) against the time before onset, in the pre-onset residual's standard deviations,
  and the band's widening — whether any estimate carries a weakening pump.

    python bench/chiller/sign_held_traces.py --checkpoint PATH --cache-root DIR --new-cache-root DIR \\
        --free-cache-root DIR --what sign|pump
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from asset_blind_dev import EVERY
from asset_stride_delay_dev import MASK, STRIDE
from asset_stride_diag import _no_model, residuals
from held_spread_dev import plans

from sentinelle.evaluation.chiller_eval import simulate
from sentinelle.evaluation.replay import SharedForecasters

REF_TICKS = 900
RAMP_S = 300.0


def sign_share(r: np.ndarray, memory: int, share: float) -> float:
    """Share of finite ticks where the forgetting mean of ``sign(r)`` (rate 1/memory) is at least ``share``."""
    mean, held, n = 0.0, 0, 0
    for v in r:
        if np.isfinite(v):
            mean += (np.sign(v) - mean) / memory
            held += abs(mean) >= share
            n += 1
    return held / max(n, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--cache-root", type=Path, required=True)
    ap.add_argument("--new-cache-root", type=Path, required=True)
    ap.add_argument("--free-cache-root", type=Path, required=True)
    ap.add_argument("--what", choices=("sign", "pump"), required=True)
    ap.add_argument("--memory", type=int, default=120)
    ap.add_argument("--share", type=float, default=0.9)
    args = ap.parse_args()
    roots = {"faults": args.cache_root, "new": args.new_cache_root, "free": args.free_cache_root}
    kinds = ("sensor_drift", None) if args.what == "sign" else ("pump_degradation",)
    for cache, plan in plans():
        sf = SharedForecasters(roots[cache], model_threads=1)
        for run in plan:
            if (run.faults[0].kind if run.faults else None) not in kinds:
                continue
            rec, truth = simulate(run)
            sf.begin(run.name)
            est = sf.estimator(args.checkpoint, mask_recent_steps=MASK, every_steps=EVERY, context_stride_steps=STRIDE)
            est.inner = _no_model  # read back only
            r, spread = residuals(rec, est, STRIDE)
            tags = [t.split(".")[-1] for t in rec.tags]
            first = int(np.flatnonzero(np.isfinite(r[:, 0]))[0])
            on = int(np.searchsorted(rec.timestamps, truth[0].start_ts)) if truth else len(r)
            off = int(np.searchsorted(rec.timestamps, truth[0].end_ts)) if truth else len(r)
            pre = slice(first, min(first + REF_TICKS, on))
            out = []
            for j, tag in enumerate(tags):
                if args.what == "sign":
                    faulted = bool(truth) and rec.tags[j] in truth[0].tags
                    if (truth and not faulted) or tag.startswith("pump"):
                        continue
                    rows = slice(on, off) if faulted else slice(first, None)
                    loc = float(np.nanmedian(r[pre, j]))
                    out.append(f"{tag} {sign_share(r[rows, j] - loc, args.memory, args.share):.2f}")
                else:
                    ramp = round(RAMP_S / rec.period_s)
                    before, during = slice(first, on), slice(on + ramp, off - ramp)
                    shift = (np.nanmean(r[during, j]) - np.nanmean(r[before, j])) / np.nanstd(r[before, j])
                    wider = np.nanmean(spread[during, j]) / np.nanmean(spread[before, j])
                    out.append(f"{tag} {shift:+.1f} sd, band x{wider:.2f}")
            print(run.name, run.seed, " | ".join(out), flush=True)


if __name__ == "__main__":
    main()
