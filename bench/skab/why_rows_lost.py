"""Where the tuning files' fault rows are lost at the headline: late opening, early clearing, dips, whole faults.

    PYTHONPATH=daemon SENTINELLE_DATA_DIR=../shared/data python bench/skab/why_rows_lost.py [detect overrides JSON]

Issue 13's seventh pass, step 1 (``docs/results/skab/slowchart/RULE.md``).  Only the 23 tuning files are replayed
(asserted), Holt, over ``ASSET_ON``.  For each labelled fault (a run of ``anomaly`` rows) the missed rows are
split by where they lie against the outlier prediction inside the fault: before its first predicted row (a late
opening), after its last (an early clearing), between (a dip), or the whole fault (never detected).  Beside them,
per fault, the asset statistics' ratios to their limits at the opening, over the fault's first and last minute
(the asset detector re-run alone on the recording: it is frozen after the warm-up, so its statistics are the
replay's; settling and the slow chart's hold aside), and per file where the false rows lie (before the fault,
within 60 s after its end, later) and which statistic was highest there.  Prints one line per fault and file and
the counts per group; ``--json PATH`` writes them.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

import numpy as np

from sentinelle.detect.asset import AssetT2Q
from sentinelle.evaluation.replay import Recording, replay_settings
from sentinelle.evaluation.skab import ASSET_ON, FileResult, SkabResult, evaluate_skab, in_tuning_split, skab_recordings
from sentinelle.settings import DetectSettings

CATEGORIES = ("late_opening", "early_clearing", "dip", "never_detected")


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True, stop exclusive.

    >>> runs(np.array([0, 1, 1, 0, 1], bool))
    [(1, 3), (4, 5)]
    """
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def split_missed(label: np.ndarray, pred: np.ndarray) -> dict[str, int]:
    """Missed rows of one fault (``label`` all True over it) by where they lie against the prediction.

    >>> split_missed(np.ones(8, bool), np.array([0, 0, 1, 0, 1, 1, 0, 0], bool))
    {'late_opening': 2, 'early_clearing': 2, 'dip': 1, 'never_detected': 0}
    >>> split_missed(np.ones(3, bool), np.zeros(3, bool))["never_detected"]
    3
    """
    hit = np.flatnonzero(pred & label)
    out = dict.fromkeys(CATEGORIES, 0)
    if len(hit) == 0:
        out["never_detected"] = int(label.sum())
        return out
    first, last = int(hit[0]), int(hit[-1])
    out["late_opening"] = int((label[:first] & ~pred[:first]).sum())
    out["early_clearing"] = int((label[last + 1 :] & ~pred[last + 1 :]).sum())
    out["dip"] = int((label[first:last] & ~pred[first:last]).sum())
    return out


def components(rec: Recording, detect: DetectSettings) -> tuple[list[str], np.ndarray]:
    """Per slot, each asset statistic over its limit: T², Q, then each tag's EWMA chart (NaN in the warm-up)."""
    det = AssetT2Q.from_settings(np.array(rec.min_spread or (0.0,) * len(rec.tags)), detect)
    short = [t.split(".")[-1] for t in rec.tags]
    names = ["T2", "Q", *(f"chart:{t}" for t in short), *(f"slow:{t}" for t in short)]
    out = np.full((len(rec.timestamps), len(names)), np.nan)
    held = np.full(len(rec.tags), np.nan)
    for i, row in enumerate(rec.values):
        held = np.where(np.isfinite(row), row, held)
        score, _ = det.step(held, learn=True)
        if np.isfinite(score):
            out[i, 0], out[i, 1] = det.last_t2 / det.ucl_t2, det.last_q / det.ucl_q
            n = len(rec.tags)
            if det.chart_alpha > 0:
                out[i, 2 : 2 + n] = np.where(np.isfinite(det._chart_limit), det.last_chart, 0.0)
            out[i, 2 + n :] = np.where(np.isfinite(det._slow_limit), det.last_slow, 0.0) if det.slow_alpha > 0 else 0.0
    return names, out


def faults(f: FileResult, rec: Recording, detect: DetectSettings) -> list[dict[str, Any]]:
    lab, pred = f.labels.astype(bool), f.predicted.astype(bool)
    names, comp = components(rec, detect)
    comp = comp[f.test]
    out = []
    for a, b in runs(lab):
        hit = np.flatnonzero(pred[a:b])
        row: dict[str, Any] = {"file": f.name, "group": f.group, "rows": b - a, **split_missed(lab[a:b], pred[a:b])}
        row["open_delay_rows"] = int(hit[0]) if len(hit) else None
        row["clear_lead_rows"] = int(b - a - 1 - hit[-1]) if len(hit) else None
        row["false_before"] = int(pred[max(a - 120, 0) : a].sum())
        row["false_after"] = int(pred[b : b + 240].sum())
        if len(hit):
            j = a + int(hit[0])
            row["at_opening"] = names[int(np.nanargmax(comp[j]))]
        last = comp[max(b - 60, a) : b]
        row["last_minute_max"] = {names[k]: round(float(np.nanmax(last[:, k])), 2) for k in range(len(names))}
        row["ramp_max"] = {names[k]: round(float(np.nanmax(comp[a : a + 60, k])), 2) for k in range(len(names))}
        out.append(row)
    return out


def false_rows(f: FileResult, rec: Recording, detect: DetectSettings) -> dict[str, Any]:
    """One file's false rows: before its first fault, after its last fault's end (within 60 s, later), and the
    asset statistic highest over its limit at each (counts by name)."""
    lab, pred = f.labels.astype(bool), f.predicted.astype(bool)
    names, comp = components(rec, detect)
    comp = comp[f.test]
    faults_at = np.flatnonzero(lab)
    first, last = (int(faults_at[0]), int(faults_at[-1])) if len(faults_at) else (len(lab), len(lab))
    idx = np.flatnonzero(pred & ~lab)
    top = Counter(names[int(np.nanargmax(comp[i]))] if np.isfinite(comp[i]).any() else "none" for i in idx)
    return {
        "file": f.name,
        "group": f.group,
        "before": int((idx < first).sum()),
        "after_60s": int(((idx > last) & (idx <= last + 60)).sum()),
        "after_later": int((idx > last + 60).sum()),
        "between": int(((idx > first) & (idx < last)).sum()),
        "top_statistic": dict(top.most_common(3)),
    }


def tuning_replay(overrides: dict[str, Any]) -> tuple[DetectSettings, list[Recording], SkabResult]:
    """The 23 tuning files (asserted) replayed with Holt over ``ASSET_ON`` and ``overrides``: the diagnoses' run."""
    detect = DetectSettings(**{**ASSET_ON, **overrides})
    recs = [r for r in skab_recordings() if in_tuning_split(r.name)]
    assert len(recs) == 23 and all(in_tuning_split(r.name) for r in recs)
    return detect, recs, evaluate_skab(recs, replay_settings("holt", detect), "diagnosis")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("overrides", nargs="?", default="{}")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    detect, recs, res = tuning_replay(json.loads(args.overrides))
    rows = [row for f, r in zip(res.files, recs, strict=True) for row in faults(f, r, detect)]
    false = [false_rows(f, r, detect) for f, r in zip(res.files, recs, strict=True)]
    for row in false:
        print("false rows", json.dumps(row))
    totals: dict[str, Counter[str]] = {}
    for row in rows:
        c = totals.setdefault(row["group"], Counter())
        c.update({k: row[k] for k in (*CATEGORIES, "rows")})
        print(json.dumps(row))
    for g, c in totals.items():
        print(g, dict(c))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            out = {"overrides": json.loads(args.overrides), "faults": rows, "totals": totals, "false_rows": false}
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
