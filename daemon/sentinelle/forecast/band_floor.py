"""A floor under the model's band from the whole context's one-step errors (``forecast.model_band_floor_holt``).

Why (issue 13, ``docs/results/nab/band-floor/``): the model's own spread floor (``SentinelleTSModel._spread_floor``)
is the smoothing branch's σ — the *best* of its 63 experts' one-step error over the *newest 256 steps* of the
context.  A tag that jumps once a day at 5-minute sampling (288 steps) has no jump in its newest 256 steps just
before the next one, and the best-of-63 error is the calm stretches' own; the head's band is as narrow.  On NAB's
tuning files that is where the model's residual made its heavy tail: the daily ``ec2_cpu`` spikes met a band 0.4
of Holt's (z ≈ 45 against Holt's 18), whose σ is one fixed smoother's error over the whole 512-step context, the
spikes included.  So the model's band is pushed out, level by level, to at least ``factor`` times the band the
damped-Holt baseline (the model's fallback, :class:`~.baselines.HoltForecaster`) quotes from the very same context:
the context's whole record of misses stays in the band, and a tag quieter than that record keeps its narrow band
only down to ``factor`` of it.

It reads only the context (no state, nothing learned), only widens, keeps the median and the order of the levels,
and leaves a row alone where Holt has no band (a flat context, too few values: Holt's band is then 0 or NaN).
"""

from __future__ import annotations

import numpy as np

from ..records import FloatArray
from .baselines import HoltForecaster

__all__ = ["floor_band", "holt_band"]


def floor_band(quantiles: FloatArray, holt: FloatArray, levels: tuple[float, ...], factor: float) -> FloatArray:
    """Quantiles (n, Q, H) with each level's distance from the median at least ``factor`` × Holt's at that level.

    ``holt``: Holt's quantiles (n, Q, H) for the same contexts and levels.  ``factor`` 0 returns the input.

    >>> q = np.array([[[9.0], [10.0], [11.0]]])        # the model: 10 ± 1
    >>> h = np.array([[[0.0], [5.0], [10.0]]])         # Holt: 5 ± 5
    >>> floor_band(q, h, (0.1, 0.5, 0.9), 0.5)[0, :, 0].tolist()
    [7.5, 10.0, 12.5]
    >>> floor_band(q, h, (0.1, 0.5, 0.9), 0.1)[0, :, 0].tolist()   # already wider than 0.1 × Holt's: unchanged
    [9.0, 10.0, 11.0]
    """
    if factor <= 0:
        return quantiles
    m = levels.index(0.5)
    median = quantiles[:, m : m + 1, :]
    offset = np.abs(quantiles - median)
    floor = factor * np.abs(holt - holt[:, m : m + 1, :])
    floor = np.where(np.isfinite(floor), floor, 0.0)  # no Holt band: the model's own
    sign = np.sign(np.asarray(levels, dtype=np.float64) - 0.5)[None, :, None]
    return np.asarray(median + sign * np.maximum(offset, floor), dtype=np.float64)


def holt_band(contexts: FloatArray, levels: tuple[float, ...], horizon: int, holt: HoltForecaster) -> FloatArray:
    """Holt's quantiles (n, Q, H) for ``contexts`` at ``levels`` (NaN where it has none)."""
    if holt.levels != levels or holt.horizon < horizon:
        holt = HoltForecaster(levels, horizon, holt.alpha, holt.beta, holt.phi)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.asarray(holt.forecast(np.asarray(contexts, dtype=np.float64))[:, :, :horizon], dtype=np.float64)
