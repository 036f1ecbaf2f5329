"""Cost of ``detect.score_band_calibration``: the per-tag scorer alone (``ResidualScorer.score``) at 10,000 tags.

The same batches to a scorer with the calibration off, per tag and per width class, the order alternating tick by
tick so all three meet the same machine load; 50 warm-up ticks, then 350 timed.  Values N(0, 1), forecasts 0 ± 1
with one band in twenty ten times too narrow.

    PYTHONPATH=daemon python bench/nab/band_speed.py
"""

from __future__ import annotations

import time

import numpy as np

from sentinelle.detect.scoring import ResidualScorer
from sentinelle.records import ForecastBatch, WindowBatch
from sentinelle.settings import DetectSettings

N = 10_000
LEVELS = (0.1, 0.5, 0.9)
Z90 = 1.2815515655446004
MODES = ("off", "tag", "width")


def main() -> None:
    rng = np.random.default_rng(0)
    tags = tuple(f"t{i}" for i in range(N))

    def batch(t: int, v: np.ndarray, s: np.ndarray) -> ForecastBatch:
        w = WindowBatch(ts=float(t), period_s=1.0, tags=tags, assets=tags, values=v, contexts=v[:, None])
        q = np.stack([-Z90 * s, np.zeros(N), Z90 * s], axis=1)[:, :, None]
        return ForecastBatch(window=w, levels=LEVELS, quantiles=q, forecaster="x")

    scorers = {
        m: ResidualScorer.from_settings(N, LEVELS, np.zeros(N), DetectSettings(score_band_calibration=m))  # type: ignore[arg-type]
        for m in MODES
    }
    total = dict.fromkeys(MODES, 0.0)
    learn = np.ones(N, dtype=bool)
    for t in range(400):
        b = batch(t, rng.normal(0.0, 1.0, N), np.where(rng.random(N) < 0.05, 0.1, 1.0))
        for m in MODES if t % 2 else MODES[::-1]:
            t0 = time.perf_counter()
            scorers[m].score(b, learn)
            if t >= 50:
                total[m] += time.perf_counter() - t0
    for m in MODES:
        print(f"{m}: {total[m] / 350 / N * 1e6:.3f} µs per sample, {total[m] / 350 * 1e3:.2f} ms per tick at {N} tags")


if __name__ == "__main__":
    main()
