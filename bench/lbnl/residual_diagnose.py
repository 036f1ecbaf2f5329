"""Why the asset model's estimate-now residuals do not separate faulted from fault-free LBNL days (tuning days only).

Reads ``residual_dump.py``'s recorded estimates (``<out>/tuning-estimates.pkl``) and the days' occupancy, and
prints, per tag, how well simple day statistics of the residual rank faulted above fault-free days (AUC):

* ``z``: the value's position in the estimate's 10-90 % band, (x − q50) / ((q90 − q10) / 2), floored at the
  tag's resolution as the detector does (roughly);
* ``w``: ``z`` standardised by the *warm-up day's* median and MAD of ``z`` (what the detectors learn);
* day statistics over the scored day (after its first 30 minutes), all day / occupied / unoccupied:
  the share of ticks with |w| > 3 (what per-tick alerts count), mean |w|, |mean w| (a persistent one-sided
  bias), and the scale ratio MAD(z, day) / MAD(z, warm-up);
* the same for the residual of the tag's own last value (x_t − x_{t−1}), the persistence baseline.

    PYTHONPATH=daemon:bench/lbnl python bench/lbnl/residual_diagnose.py --out /tmp/lbnl17
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

from sentinelle.evaluation import lbnl


def auc(pos: list[float], neg: list[float]) -> float:
    """Chance a faulted day's statistic is above a fault-free one's (ties half)."""
    p, n = np.asarray(pos, float), np.asarray(neg, float)
    p, n = p[np.isfinite(p)], n[np.isfinite(n)]
    if not len(p) or not len(n):
        return float("nan")
    gt = (p[:, None] > n[None, :]).sum() + 0.5 * (p[:, None] == n[None, :]).sum()
    return float(gt / (len(p) * len(n)))


def mad(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if len(x) else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("/tmp/lbnl17"))
    args = ap.parse_args()
    rows = pickle.loads((args.out / "tuning-estimates.pkl").read_bytes())
    days = lbnl.lbnl_days()
    mdays = {f"{d.file}/{d.date}": d for d in lbnl.lbnl_days(mode_tags=True)}
    stats: dict[tuple[str, str, str], list[tuple[bool, float]]] = {}
    for day in days:
        name = f"{day.file}/{day.date}"
        if name not in rows:
            continue
        ts, x, est = rows[name]
        start = float(day.timestamps[0]) + lbnl.SETTLE_ROWS * lbnl.PERIOD_S
        md = mdays[name]
        occ_col = next(i for i, t in enumerate(md.tags) if "occupancy" in t)
        occ_of = dict(zip(md.timestamps.tolist(), md.values[:, occ_col].tolist(), strict=True))
        half = np.maximum((est[:, :, 2] - est[:, :, 0]) / 2, 1e-6)
        z = (x - est[:, :, 1]) / half
        own = np.vstack([np.full((1, x.shape[1]), np.nan), np.diff(x, axis=0)])
        warm, scored = ts < float(day.timestamps[0]), ts >= start
        occ = np.array([occ_of.get(t, np.nan) == 1 for t in ts.tolist()])
        for j, tag in enumerate(day.tags):
            short = tag.split(".", 1)[1]
            for kind, r in (("est", z[:, j]), ("last", own[:, j])):
                loc, sc = np.nanmedian(r[warm]), max(mad(r[warm]), 1e-9)
                w = (r - loc) / sc
                for part, keep in (("all", scored), ("occ", scored & occ), ("unocc", scored & ~occ)):
                    if keep.sum() < 30:
                        continue
                    v = w[keep]
                    v = v[np.isfinite(v)]
                    if not len(v):
                        continue
                    for stat, val in (
                        ("share>3", float(np.mean(np.abs(v) > 3))),
                        ("mean|w|", float(np.mean(np.abs(v)))),
                        ("|mean w|", float(abs(np.mean(v)))),
                        ("|median w|", float(abs(np.median(v)))),
                        ("scale ratio", mad(r[keep]) / sc),
                    ):
                        stats.setdefault((kind, part, stat), []).append((day.faulted, val))
                        stats.setdefault((kind, part, f"{stat} {short}"), []).append((day.faulted, val))
    print(f"{'residual':5} {'part':6} {'statistic':60} AUC   faulted median  fault-free median")
    for (kind, part, stat), vals in sorted(stats.items()):
        pos = [v for f, v in vals if f]
        neg = [v for f, v in vals if not f]
        print(f"{kind:5} {part:6} {stat:60} {auc(pos, neg):.2f}  {np.nanmedian(pos):8.3g}  {np.nanmedian(neg):8.3g}")


if __name__ == "__main__":
    main()
