"""Why the asset model's residuals flag only SKAB's fault transitions: a diagnosis on the 23 tuning files only.

    SENTINELLE_DATA_DIR=../shared/data nice -n 10 .venv/bin/python bench/skab/why_residuals_tuning.py \
        --cache /tmp/skab-asset --mask 0 --out /tmp/why.json

Issue 14's row "asset model + holt: residuals alone" scores F1 0.30 on the tuning files: its alerts
open at a fault's start and close long before its end.  Two explanations predict different things:

* **the alert closes though the relation stays broken** (life cycle, scale adapting): the estimate
  residual ``r`` (standardised by the detector's own scale) stays beyond the flag threshold over most
  of a fault while the alert is closed;
* **the estimate follows the fault** (it reads the tag's own recent values): ``|r|`` itself falls back
  inside the threshold within seconds, and the estimate's median moves by about as much as the value.

Per fault (each run of labelled rows after the 400 warm-up rows) this records the share of rows with
``max_tag |r|`` ≥ the flag threshold, the share with an estimate alert open, the share with any alert
of the replay open; and for the tag whose value moved most (fault mean against the 60 rows before it,
in units of its healthy residual), the estimate's *follow ratio* (how far the estimate's median moved
over how far the value moved) in the fault's first 16 rows and in the rest.  The row-wise F1/FAR of
"``max_tag |r|`` ≥ threshold" (no life cycle at all) is the ceiling a life-cycle fix could reach.
Nothing is chosen here; the held-out files are never loaded (asserted by ``tuning_recordings``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from tune_asset_alerting import tuning_recordings

from sentinelle.detect.detectors import asset_estimate
from sentinelle.detect.detectors.base import Tick
from sentinelle.evaluation.replay import Recording, SharedForecasters, replay, replay_settings
from sentinelle.evaluation.skab_models import AssetModelUse, asset_detect, prefilled_estimator
from sentinelle.settings import DetectSettings

R_FLAG = 3.6
"""|standardised residual| that reaches ``detect.score_threshold`` 0.259 (p = 10^-3.5 two-sided)."""


class Recorder:
    """Wraps the estimate detector's observe/learn to keep, per slot, its standardised residual and alert state."""

    def __init__(self) -> None:
        self.rows: dict[float, dict[str, Any]] = {}
        cls = asset_estimate.AssetEstimateDetector
        self._observe, self._learn = cls.observe, cls.learn
        rec = self

        def observe(det: asset_estimate.AssetEstimateDetector, tick: Tick) -> Any:
            out = rec._observe(det, tick)
            r = det.scale.standardise(det._z)
            rec.rows[tick.ts] = {
                "r": r.copy(),
                "est": det._expected[:, det.mid].copy(),
                "x": np.asarray(tick.clean, dtype=float).copy(),
                "flag": np.asarray(out.anomalous).copy() if hasattr(out, "anomalous") else None,
            }
            return out

        def learn(det: asset_estimate.AssetEstimateDetector, tick: Tick, found: Any) -> None:
            rec.rows[tick.ts]["open"] = np.asarray(tick.alerts.open(det)).copy()
            rec._learn(det, tick, found)

        cls.observe = observe  # type: ignore[method-assign,assignment]
        cls.learn = learn  # type: ignore[method-assign,assignment]

    def take(self, rec: Recording) -> dict[str, np.ndarray]:
        n, k = rec.values.shape
        out = {name: np.full((n, k), np.nan) for name in ("r", "est", "x")}
        out["open"] = np.zeros((n, k), bool)
        for ts, row in self.rows.items():
            i = round((ts - rec.timestamps[0]) / rec.period_s)
            if 0 <= i < n:
                for name in ("r", "est", "x"):
                    out[name][i] = row[name]
                out["open"][i] = row.get("open", np.zeros(k, bool))
        self.rows.clear()
        return out


def segments(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True as [start, end) index pairs."""
    d = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def f1_far(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    tn = int((~pred & ~truth).sum())
    f1 = 2 * tp / max(2 * tp + fp + fn, 1)
    return {"f1": round(f1, 3), "far_percent": round(100 * fp / max(fp + tn, 1), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--mask", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)  # a shared machine: one thread
    recs = tuning_recordings()
    shared = SharedForecasters()
    est = prefilled_estimator(recs, AssetModelUse(args.mask), shared, args.cache, progress=print)
    recorder = Recorder()
    settings = replay_settings("holt", DetectSettings(**asset_detect(0.0)))
    faults: list[dict[str, Any]] = []
    pooled: dict[str, list[np.ndarray]] = {"truth": [], "beyond": [], "open": [], "any": []}
    for rec in recs:
        trace = replay(rec, settings, shared["holt"], est.estimate_window)
        full = recorder.take(rec)
        assert rec.labels is not None
        keep = np.flatnonzero(rec.present)  # the file's rows (the grid's missing seconds are not labelled)
        d = {k: v[keep] for k, v in full.items()}
        test = np.arange(len(keep)) >= rec.train_rows
        labels = rec.labels[keep].astype(bool)
        anomalous = trace.anomalous[keep]
        truth = labels & test
        absr = np.abs(d["r"])
        beyond = np.nanmax(np.where(np.isfinite(absr), absr, -1.0), axis=1) >= R_FLAG
        est_open: np.ndarray = np.asarray(d["open"].any(axis=1), dtype=bool)
        for name, arr in (("truth", truth), ("beyond", beyond), ("open", est_open), ("any", anomalous)):
            pooled[name].append(arr[test])
        healthy = test & ~labels
        res = d["x"] - d["est"]
        sd = np.nanstd(res[healthy], axis=0) + 1e-9
        for a, b in segments(truth):
            pre = slice(max(a - 60, 0), a)
            shift = (np.nanmean(d["x"][a:b], axis=0) - np.nanmean(d["x"][pre], axis=0)) / sd
            j = int(np.nanargmax(np.abs(shift)))

            def ratio(sl: slice, j: int = j, pre: slice = pre, d: dict[str, np.ndarray] = d) -> float:
                dx = np.nanmean(d["x"][sl, j]) - np.nanmean(d["x"][pre, j])
                de = np.nanmean(d["est"][sl, j]) - np.nanmean(d["est"][pre, j])
                return round(float(de / dx), 2) if abs(dx) > 1e-9 else float("nan")

            def share(lo: int, hi: int, a: int = a, b: int = b, beyond: np.ndarray = beyond) -> float | None:
                lo, hi = a + lo, min(a + hi, b)
                return round(float(beyond[lo:hi].mean()), 3) if hi > lo else None

            faults.append(
                {
                    "file": rec.name,
                    "rows": b - a,
                    "beyond_share": share(0, b - a),
                    "beyond_share_first16": share(0, 16),
                    "beyond_share_16_128": share(16, 128),
                    "beyond_share_after128": share(128, b - a),
                    "estimate_alert_open_share": round(float(est_open[a:b].mean()), 3),
                    "any_alert_share": round(float(anomalous[a:b].mean()), 3),
                    "moved_tag": rec.tags[j],
                    "moved_by_healthy_sd": round(float(shift[j]), 1),
                    "follow_first16": ratio(slice(a, min(a + 16, b))),
                    "follow_rest": ratio(slice(a + 16, b)) if b - a > 16 else None,
                    "median_abs_r_moved_tag_after16": round(float(np.nanmedian(absr[a + 16 : b, j])), 2)
                    if b - a > 16
                    else None,
                }
            )
            print(json.dumps(faults[-1]), flush=True)
    cat = {k: np.concatenate(v) for k, v in pooled.items()}
    summary = {
        "mask": args.mask,
        "faults": len(faults),
        "mean_beyond_share": round(float(np.mean([f["beyond_share"] for f in faults])), 3),
        **{
            f"mean_{k}": round(float(np.mean([f[k] for f in faults if f[k] is not None])), 3)
            for k in ("beyond_share_first16", "beyond_share_16_128", "beyond_share_after128")
        },
        "mean_estimate_alert_open_share": round(float(np.mean([f["estimate_alert_open_share"] for f in faults])), 3),
        "median_follow_first16": float(np.nanmedian([f["follow_first16"] for f in faults])),
        "median_follow_rest": float(np.nanmedian([f["follow_rest"] for f in faults if f["follow_rest"] is not None])),
        "rowwise_beyond_no_lifecycle": f1_far(cat["beyond"], cat["truth"]),
        "rowwise_estimate_alert_open": f1_far(cat["open"], cat["truth"]),
        "rowwise_any_alert": f1_far(cat["any"], cat["truth"]),
    }
    print(json.dumps(summary))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "faults": faults}, indent=1))


if __name__ == "__main__":
    main()
