"""Try accepting a new steady state (an automated "new normal") on SKAB's valve1 group alone.

    .venv/bin/python bench/skab/tune_new_normal_valve1.py [--data ../shared/data]

Writes tuning_new_normal_valve1.json.  The idea: when the asset alert has been open and the
state has stopped moving — the EWMA (weight ``beta``) of the standardised vector stayed
within ``bound`` (RMS over tags, in warm-up σ) of where it settled for ``hold_steps`` ticks —
the steady state is accepted as normal, the way an operator acknowledges a new normal: the
alert clears (reason ``new_normal``) and the detector scores against the accepted state *as
well as* its warm-up state (the smaller score counts, at most three accepted states), so a
later return to the warm-up state is not an alarm.  The risk: a long steady fault is
accepted.  As in ``tune_likelihood_valve1.py`` the per-tag part is replayed once and each
grid point re-runs only the asset detector (headline settings, likelihood layer included)
and its k-of-n life cycle.  A first exploratory version re-learned the mean alone (no
memory of the warm-up state); on valve1 it raised FAR to 28–38 % (each fault's end alarmed).
The rule: the highest valve1 F1 among configurations whose valve1 FAR is under 13.55 %,
ties broken by the lower FAR.
"""

from __future__ import annotations

import copy
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

MAX_ACCEPTED = 3
GRID: dict[str, tuple[Any, ...]] = {
    "beta": (0.1, 0.03),
    "bound": (0.25, 0.5, 1.0),
    "hold_steps": (30, 60, 120, 300, 600),
}


def asset_prediction(rec: Recording, settings: DetectSettings, new_normal: dict[str, Any] | None) -> np.ndarray:
    det = AssetT2Q.from_settings(np.array(rec.min_spread or (0.0,) * len(rec.tags)), settings)
    likelihood = AnomalyLikelihood.from_settings(settings) if settings.asset_likelihood_enabled else None
    kofn = KofN(1, settings.open_k, settings.open_n, settings.clear_normal_steps)
    out = np.zeros(len(rec.timestamps), dtype=bool)
    held = np.full(len(rec.tags), np.nan)
    accepted: list[AssetT2Q] = []
    settled: np.ndarray | None = None
    anchor: np.ndarray | None = None
    run, run_sum = 0, np.zeros(len(rec.tags))
    for i, row in enumerate(rec.values):
        held = np.where(np.isfinite(row), row, held)
        if i == rec.test_start:
            kofn.reset()
        learn = not kofn.open[0]
        score, flagged = det.step(held, learn=learn)
        for state in accepted:
            other, _ = state.step(held, learn=False)
            if math.isfinite(other) and other < score:
                score = other
        flagged = math.isfinite(score) and score > 1.0
        if likelihood is not None and det.frozen:
            if not likelihood.seeded:
                likelihood.seed(det.warmup_scores)
            flagged = likelihood.step(score, learn=learn)[1]
        kofn.step(np.array([flagged]), np.array([math.isfinite(score) and not flagged]))
        if new_normal is not None and det.frozen and np.isfinite(held).all():
            beta = new_normal["beta"]
            settled = det.last_u.copy() if settled is None else (1 - beta) * settled + beta * det.last_u
            if not kofn.open[0]:
                anchor, run = None, 0
            else:
                if anchor is None or math.sqrt(float(np.mean((settled - anchor) ** 2))) > new_normal["bound"]:
                    anchor, run, run_sum = settled.copy(), 0, np.zeros(len(rec.tags))
                run += 1
                run_sum += held
                if run >= new_normal["hold_steps"]:
                    state = copy.deepcopy(det)
                    level = ~det.drifting
                    state.mean[level] = (run_sum / run)[level]
                    state.last_t2, state.last_q = 0.0, 0.0
                    accepted = [*accepted, state][-MAX_ACCEPTED:]
                    kofn.force_clear(np.array([True]))
                    anchor, run, settled = None, 0, None
        out[i] = kofn.open[0]
    return out


def main() -> None:
    recs = valve1_recordings(__doc__.splitlines()[0])
    per_tag = per_tag_predictions(recs)
    settings = DetectSettings(asset_enabled=True)
    configs: list[dict[str, Any] | None] = [None]
    configs += [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    rows = []
    for config in configs:
        scores = group_scores(recs, [asset_prediction(r, settings, config) | per_tag[r.name] for r in recs])
        rows.append({"new_normal": config, **scores})
    write_grid(RESULTS.joinpath("tuning_new_normal_valve1.json"), rows)
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
