"""Where the tuning files lose F1 and NAB, per group: window kinds hit under both conventions, and the faults' shift.

    PYTHONPATH=daemon:bench/skab SENTINELLE_DATA_DIR=../shared/data python bench/skab/why_windows_groups.py \
        [detect overrides JSON] [--json PATH]

Issue 13's eighth pass, step 1 (``docs/results/skab/mewma/RULE.md``).  Only the 23 tuning files are replayed
(asserted), Holt, over ``ASSET_ON``.  Per tuning group (``valve1``, odd ``other``): the outlier scores; per window
kind (``start``, ``start+60``, ``end-60``, ``end``: ``why_nab_tuning.window_kinds``) the windows hit under
``|diff|`` of the prediction and under the alert stream's events, their mean position score (early is near 1)
and the NAB points each convention leaves there (a window missed costs the whole ``A_TP - A_FN``, a late hit
part of it); the opening delay per fault.  And, a property of the data rather than of any detector, each fault's
mean standardised shift over its first 60 s (the warm-up's mean and spread, as the asset detector learns them):
the largest single tag's |shift| beside the Mahalanobis length of the whole shift vector under the warm-up's
correlation — whether evidence summed over the tags is larger than the largest tag's alone.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from typing import Any

import numpy as np
from why_nab_tuning import KINDS, window_kinds
from why_rows_lost import runs, tuning_replay

from sentinelle.detect.asset import AssetT2Q
from sentinelle.evaluation.nab import STANDARD, changepoints_of, right_windows, skab_position_score, times_of
from sentinelle.evaluation.replay import Recording
from sentinelle.evaluation.skab import (
    FileResult,
    score_files,
)
from sentinelle.settings import DetectSettings


def window_hits(f: FileResult, detections: np.ndarray) -> list[tuple[str, float | None]]:
    """Per true changepoint of ``f``: its kind and the position score of its first detection (None: missed)."""
    ts = f.timestamps
    wins = right_windows(times_of(f.changepoints, ts), 60.0)
    det_t = np.array(times_of(detections, ts))
    out: list[tuple[str, float | None]] = []
    for k, (a, b) in zip(window_kinds(f), wins, strict=True):
        inside = det_t[(det_t >= a) & (det_t <= b)]
        pos = (inside[0] - a) / (b - a) if inside.size and b > a else (0.0 if inside.size else None)
        out.append((k, None if pos is None else skab_position_score(pos, STANDARD)))
    return out


def shift_first_minute(f: FileResult, rec: Recording, detect: DetectSettings) -> list[dict[str, Any]]:
    """Per fault: the mean standardised shift over its first 60 rows, largest tag and Mahalanobis length."""
    det = AssetT2Q.from_settings(np.array(rec.min_spread or (0.0,) * len(rec.tags)), detect)
    u = np.full((len(rec.timestamps), len(rec.tags)), np.nan)
    held = np.full(len(rec.tags), np.nan)
    for i, row in enumerate(rec.values):
        held = np.where(np.isfinite(row), row, held)
        score, _ = det.step(held, learn=True)
        if np.isfinite(score):
            u[i] = det.last_u
    u = u[f.test]
    corr = det._basis @ np.diag(1.0 / det._inv_eigen) @ det._basis.T
    short = [t.split(".")[-1] for t in rec.tags]
    out = []
    for a, b in runs(f.labels.astype(bool)):
        m = np.nanmean(u[a : min(a + 60, b)], axis=0)
        steady = ~det.drifting
        ms = np.where(steady, m, 0.0)
        j = int(np.argmax(np.abs(ms)))
        mahal = float(np.sqrt(ms[steady] @ np.linalg.solve(corr[np.ix_(steady, steady)], ms[steady])))
        out.append(
            {
                "file": f.name,
                "largest_tag": short[j],
                "largest_shift_sigma": round(float(ms[j]), 2),
                "mahalanobis_sigma": round(mahal, 2),
                "shift_sigma": {s: round(float(v), 2) for s, v in zip(short, ms, strict=True) if abs(v) >= 0.5},
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("overrides", nargs="?", default="{}")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    detect, recs, res = tuning_replay(json.loads(args.overrides))
    out: dict[str, Any] = {"overrides": json.loads(args.overrides), "groups": {}, "faults": []}
    for group in ("valve1", "other"):
        files = [f for f in res.files if f.group == group]
        sc = score_files(files)
        g: dict[str, Any] = {
            "files": len(files),
            "outlier": sc.outlier.rounded(),
            "nab_diff": sc.nab["standard"],
            "nab_alert_events": sc.nab_alert_events["standard"],
            "windows": sc.nab_counts["windows"],
        }
        for conv, det in (("diff", lambda f: changepoints_of(f.predicted)), ("events", FileResult.alert_changes)):
            per: dict[str, list[float | None]] = defaultdict(list)
            for f in files:
                for k, s in window_hits(f, det(f)):
                    per[k].append(s)
            g[conv] = {
                k: {
                    "windows": len(per[k]),
                    "hit": sum(s is not None for s in per[k]),
                    "mean_position_score": round(float(np.mean([s for s in per[k] if s is not None])), 2)
                    if any(s is not None for s in per[k])
                    else None,
                    # Points left in the window kind against a hit at its start (position score 1), in NAB units.
                    "nab_points_left": round(
                        100.0
                        * sum(1.0 - (s if s is not None else -1.0) for s in per[k])
                        / (2.0 * sc.nab_counts["windows"]),
                        2,
                    ),
                }
                for k in KINDS
            }
        delays = []
        for f in files:
            lab, pred = f.labels.astype(bool), f.predicted.astype(bool)
            for a, b in runs(lab):
                hit = np.flatnonzero(pred[a:b])
                delays.append(int(hit[0]) if len(hit) else None)
        g["open_delay_rows"] = delays
        out["groups"][group] = g
    for f, r in zip(res.files, recs, strict=True):
        out["faults"] += shift_first_minute(f, r, detect)
    print(json.dumps(out["groups"], indent=1))
    for row in out["faults"]:
        print(json.dumps(row))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
