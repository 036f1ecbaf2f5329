"""Choose the asset detector's settings on SKAB's valve1 group alone; writes tuning_valve1.json.

    .venv/bin/python bench/skab/tune_valve1.py [--data ../shared/data]

The per-tag part of the prediction does not depend on the asset detector, so it is
replayed once (holt, per-tag only, through the daemon's stages); each grid point then
re-runs only the asset detector and its k-of-n life cycle exactly as ``DetectStage``
does (rows held over missing slots, learning stopped while its alert is open, alert
state forgotten at the end of the warm-up) and ORs the two predictions, which is what
an "alert of the asset is open" prediction is when the two alert kinds are independent.
The rule: the highest valve1 F1 among the configurations whose valve1 FAR is under
13.55 % (Conv-AE's), ties broken by the lower FAR.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from sentinelle.detect.asset import AssetT2Q
from sentinelle.detect.lifecycle import KofN
from sentinelle.evaluation.nab import binary_scores, changepoints_of, skab_nab, times_of
from sentinelle.evaluation.replay import Recording, replay, replay_settings
from sentinelle.evaluation.skab import in_tuning_split, skab_recordings
from sentinelle.settings import DetectSettings

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results" / "skab"
"""Where this script writes its JSON, beside the report it informs."""

GROUP = "valve1"
MAX_FAR_PERCENT = 13.55
GRID: dict[str, tuple[Any, ...]] = {
    "drift": ((1.0, 1 / 30), (0.3, 1 / 30), (0.3, 1 / 60), (0.5, 1 / 30), (0.5, 1 / 60)),  # (share, alpha)
    "explained_variance": (0.7, 0.9, 1.0),
    "smoothing": ((True, 1.0), (True, 0.1), (True, 0.03), (False, 0.3), (False, 0.1)),  # (vector, alpha)
    "ucl_factor": (1.0, 1.5, 2.0, 3.0, 4.0),
    "clear_normal_steps": (10, 60),
}


def asset_prediction(rec: Recording, settings: DetectSettings) -> np.ndarray:
    det = AssetT2Q.from_settings(np.array(rec.min_spread or (0.0,) * len(rec.tags)), settings)
    kofn = KofN(1, settings.open_k, settings.open_n, settings.clear_normal_steps)
    out = np.zeros(len(rec.timestamps), dtype=bool)
    held = np.full(len(rec.tags), np.nan)
    for i, row in enumerate(rec.values):
        held = np.where(np.isfinite(row), row, held)
        if i == rec.test_start:
            kofn.reset()
        score, flagged = det.step(held, learn=not kofn.open[0])
        kofn.step(np.array([flagged]), np.array([math.isfinite(score) and not flagged]))
        out[i] = kofn.open[0]
    return out


def valve1_recordings(description: str) -> list[Recording]:
    """The tuning group's recordings (``--data``: the shared data folder, from the command line)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    return [r for r in skab_recordings(args.data) if r.name.startswith(GROUP + "/")]


def per_tag_predictions(recs: list[Recording]) -> dict[str, np.ndarray]:
    """The per-tag part (holt, default settings), replayed once: it does not depend on the asset detector."""
    return {r.name: replay(r, replay_settings("holt", DetectSettings())).anomalous for r in recs}


def group_scores(recs: list[Recording], predictions: list[np.ndarray]) -> dict[str, Any]:
    """F1 / FAR / MAR and NAB standard of one configuration's predictions (one per recording),
    on each recording's test rows as SKAB's protocol scores them."""
    pairs, nab_files = [], []
    for r, pred in zip(recs, predictions, strict=True):
        assert r.labels is not None and r.changepoints is not None
        test = np.flatnonzero(r.present)[r.train_rows :]
        ts = r.timestamps[test]
        pairs.append((r.labels[test], pred[test]))
        nab_files.append((times_of(r.changepoints[test], ts), times_of(changepoints_of(pred[test]), ts)))
    return {**binary_scores(pairs).rounded(), "nab_standard": skab_nab(nab_files).scores["standard"]}


def write_grid(out: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply the rule to a grid's rows, write them and the choice to ``out``; the eligible rows, best first."""
    eligible = sorted(
        (r for r in rows if r["far_percent"] < MAX_FAR_PERCENT), key=lambda r: (-r["f1"], r["far_percent"])
    )
    head = {
        "group": GROUP,
        "rule": f"max F1 with FAR < {MAX_FAR_PERCENT} %",
        "chosen": eligible[0] if eligible else None,
    }
    write_json(out, head, rows)
    return eligible


def write_json(out: Path, head: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """``head``'s keys, then the grid with one row per line (a re-run's diff shows which rows moved)."""
    lines = ["{", *(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in head.items()), ' "grid": [']
    lines.append(",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in rows))
    out.write_text("\n".join([*lines, " ]", "}"]) + "\n")


def split_scores(recs: list[Recording], pred: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """``group_scores`` on the tuning split, the held-out split and all files (``pred`` by recording name)."""
    out = {}
    for split, keep in (("tuning", in_tuning_split), ("held_out", lambda n: not in_tuning_split(n)), ("all", None)):
        chosen = [r for r in recs if keep is None or keep(r.name)]
        out[split] = group_scores(chosen, [pred[r.name] for r in chosen])
    return out


def main() -> None:
    recs = valve1_recordings(__doc__.splitlines()[0])
    per_tag = per_tag_predictions(recs)
    rows = []
    for drift, ev, smoothing, factor, clear in itertools.product(*GRID.values()):
        settings = DetectSettings(
            asset_enabled=True,
            asset_drift_share=drift[0],
            asset_drift_alpha=drift[1],
            asset_explained_variance=ev,
            asset_smooth_vector=smoothing[0],
            asset_ewma_alpha=smoothing[1],
            asset_ucl_factor=factor,
            clear_normal_steps=clear,
        )
        scores = group_scores(recs, [asset_prediction(r, settings) | per_tag[r.name] for r in recs])
        config = {
            "asset_drift_share": drift[0],
            "asset_drift_alpha": round(drift[1], 4),
            "asset_explained_variance": ev,
            "asset_smooth_vector": smoothing[0],
            "asset_ewma_alpha": smoothing[1],
            "asset_ucl_factor": factor,
            "clear_normal_steps": clear,
        }
        rows.append({"config": config, **scores})
    eligible = write_grid(RESULTS.joinpath("tuning_valve1.json"), rows)
    for r in eligible[:10]:
        print(r)


if __name__ == "__main__":
    main()
