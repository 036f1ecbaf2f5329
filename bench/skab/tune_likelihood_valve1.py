"""Try the anomaly-likelihood layer over the asset score on SKAB's valve1 group alone.

    .venv/bin/python bench/skab/tune_likelihood_valve1.py [--data ../shared/data]

Writes tuning_likelihood_valve1.json.  As in ``tune_valve1.py``: the per-tag part is
replayed once (holt, per-tag only, through the daemon's stages) and each grid point
re-runs only the asset detector — here with ``detect/likelihood.py`` flagging instead of
the score, seeded with the warm-up's scores and learning from ticks that are not in an
open asset alert and not flagged, as ``DetectStage`` does — and its k-of-n life cycle.
The grid keeps the asset detector's settings chosen by ``tune_valve1.py`` (``DetectSettings``
defaults) apart from the smoothing weight, and holds that headline (layer off, EWMA α 0.3)
for each hysteresis.
The rule: the highest valve1 F1 among configurations whose valve1 FAR is under 13.55 %
(Conv-AE's), ties broken by the lower FAR.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
from tune_valve1 import group_scores, per_tag_predictions, valve1_recordings, write_grid

from sentinelle.detect.asset import AssetT2Q
from sentinelle.detect.lifecycle import KofN
from sentinelle.detect.likelihood import AnomalyLikelihood
from sentinelle.evaluation.replay import Recording
from sentinelle.settings import DetectSettings

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results" / "skab"
"""Where this script writes its JSON, beside the report it informs."""

CLEAR_NORMAL_STEPS = (10, 30, 60)
GRID: dict[str, tuple[Any, ...]] = {
    "asset_ewma_alpha": (1.0, 0.3, 0.1),
    "asset_likelihood_short_steps": (1, 3, 10),
    "asset_likelihood_history_steps": (500, 2000),
    "asset_likelihood_z": (2.0, 2.5, 3.0, 4.0, 5.0),
    "clear_normal_steps": CLEAR_NORMAL_STEPS,
}


def asset_prediction(rec: Recording, settings: DetectSettings) -> np.ndarray:
    det = AssetT2Q.from_settings(np.array(rec.min_spread or (0.0,) * len(rec.tags)), settings)
    likelihood = AnomalyLikelihood.from_settings(settings) if settings.asset_likelihood_enabled else None
    kofn = KofN(1, settings.open_k, settings.open_n, settings.clear_normal_steps)
    out = np.zeros(len(rec.timestamps), dtype=bool)
    held = np.full(len(rec.tags), np.nan)
    for i, row in enumerate(rec.values):
        held = np.where(np.isfinite(row), row, held)
        if i == rec.test_start:
            kofn.reset()
        learn = not kofn.open[0]
        score, flagged = det.step(held, learn=learn)
        if likelihood is not None and det.frozen:
            if not likelihood.seeded:
                likelihood.seed(det.warmup_scores)
            flagged = likelihood.step(score, learn=learn)[1]
        kofn.step(np.array([flagged]), np.array([math.isfinite(score) and not flagged]))
        out[i] = kofn.open[0]
    return out


def main() -> None:
    recs = valve1_recordings(__doc__.splitlines()[0])
    per_tag = per_tag_predictions(recs)
    configs: list[dict[str, Any]] = [
        {"asset_likelihood_enabled": False, "asset_ewma_alpha": 0.3, "clear_normal_steps": c}
        for c in CLEAR_NORMAL_STEPS
    ]
    configs += [
        {"asset_likelihood_enabled": True, **dict(zip(GRID, values, strict=True))}
        for values in itertools.product(*GRID.values())
    ]
    rows = []
    for config in configs:
        settings = DetectSettings(asset_enabled=True, **config)
        scores = group_scores(recs, [asset_prediction(r, settings) | per_tag[r.name] for r in recs])
        rows.append({"config": config, **scores})
    eligible = write_grid(RESULTS.joinpath("tuning_likelihood_valve1.json"), rows)
    for r in eligible[:10]:
        print(r)


if __name__ == "__main__":
    main()
