"""Why the MEWMA candidates gained little on SKAB's tuning files (issue 13's eighth pass, after the choice).

    PYTHONPATH=daemon:bench/skab SENTINELLE_DATA_DIR=../shared/data python bench/skab/why_mewma_tuning.py \
        [--json PATH]

Run after ``mewma/tuning_mewma.json`` was committed (nothing is chosen from it; ``mewma/report.md``).  Only the 23
tuning files are replayed (asserted), Holt, over ``ASSET_ON``: today's headline and the best-F1 candidate
(``asset_mewma_alpha`` 0.05 × factor 3, clip 3, hold 5, open-only).  Per fault: the opening delay under each; and,
from the asset detector re-run alone with that MEWMA (ungated: what the statistic itself does), its limit (the
warm-up's 99 % quantile of M × 3, or white noise's χ² floor × 3 when larger), M over its limit at the fault's
first 60 rows (max) and the first row of the fault where it is over 1.  Per file: false rows under each.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from why_rows_lost import runs

from sentinelle.detect import mewma
from sentinelle.detect.asset import AssetT2Q
from sentinelle.evaluation.replay import Recording, replay_settings
from sentinelle.evaluation.skab import ASSET_ON, evaluate_skab, in_tuning_split, skab_recordings
from sentinelle.settings import DetectSettings

CANDIDATE: dict[str, Any] = {
    "asset_mewma_alpha": 0.05,
    "asset_mewma_factor": 3.0,
    "asset_mewma_clip_sigma": 3.0,
    "asset_slow_chart_hold_steps": 5,
    "asset_slow_chart_open_only": True,
}


def mewma_trace(rec: Recording, detect: DetectSettings) -> tuple[np.ndarray, dict[str, float]]:
    """Per slot, M over its limit (NaN in the warm-up); and the limit with its two parts."""
    det = AssetT2Q.from_settings(np.array(rec.min_spread or (0.0,) * len(rec.tags)), detect)
    out = np.full(len(rec.timestamps), np.nan)
    held = np.full(len(rec.tags), np.nan)
    for i, row in enumerate(rec.values):
        held = np.where(np.isfinite(row), row, held)
        score, _ = det.step(held, learn=True)
        if np.isfinite(score):
            out[i] = det.last_mewma
    tags = int(det._mewma_inv.any(axis=0).sum())
    floor = det.mewma_factor * mewma.chi2_quantile(tags, det.quantile)
    return out, {"limit": round(det.mewma_limit, 1), "chi2_floor_x_factor": round(floor, 1), "tags": tags}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    recs = [r for r in skab_recordings() if in_tuning_split(r.name)]
    assert len(recs) == 23 and all(in_tuning_split(r.name) for r in recs)
    today = evaluate_skab(recs, replay_settings("holt", DetectSettings(**ASSET_ON)), "today")
    cand_detect = DetectSettings(**{**ASSET_ON, **CANDIDATE})
    cand = evaluate_skab(recs, replay_settings("holt", cand_detect), "candidate")
    faults, files = [], []
    for ft, fc, rec in zip(today.files, cand.files, recs, strict=True):
        ratio, limit = mewma_trace(rec, cand_detect)
        ratio = ratio[ft.test]
        lab = ft.labels.astype(bool)
        files.append(
            {
                "file": ft.name,
                **limit,
                "false_rows_today": int((ft.predicted & ~lab).sum()),
                "false_rows_candidate": int((fc.predicted & ~lab).sum()),
                "mewma_over_limit_rows_outside_faults": int((ratio[~lab] > 1.0).sum()),
            }
        )
        for a, b in runs(lab):
            row: dict[str, Any] = {"file": ft.name}
            for name, f in (("today", ft), ("candidate", fc)):
                hit = np.flatnonzero(f.predicted[a:b])
                row[f"open_delay_{name}"] = int(hit[0]) if len(hit) else None
            first = ratio[a : min(a + 60, b)]
            over = np.flatnonzero(ratio[a:b] > 1.0)
            row["mewma_max_first_60"] = round(float(np.nanmax(first)), 2)
            row["mewma_first_over_row"] = int(over[0]) if len(over) else None
            faults.append(row)
    for r in files + faults:
        print(json.dumps(r))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"candidate": CANDIDATE, "files": files, "faults": faults}, fh, indent=1)


if __name__ == "__main__":
    main()
