"""Calibrated surprise: where a value falls in its forecast, against how surprising the tag usually is.

Three steps, each vectorised over a tag group's rows (numpy arrays, one entry per tag):

1. :func:`forecast_z` — the actual value's distance from the forecast median in
   units of the forecast's own spread on that side (a split normal through the
   outer quantiles, so a skewed forecast is judged on the side the value fell),
   with the spread floored at the tag's resolution (``TagSettings.min_spread``).
2. :class:`RobustScale` — each tag's usual ``z``: an exponentially weighted,
   winsorised location and scale.  Every learned ``z`` is clipped to
   ``clip_sigmas`` current scales first, so one spike (or a start-up forecast
   made from three points) moves the scale by a bounded factor, and the weights
   forget, so a new normal is absorbed in about ``memory_steps`` ticks.  The
   scale starts at 1 ("the forecast is calibrated"), is learned at rate
   ``1/(prior + n)`` until that reaches ``1/memory_steps``, and is floored at
   ``min_sigma`` forecast spreads: a tag that held still has not shown that it
   is more predictable than its forecast says.
3. :func:`surprisal` — the calibrated ``r = (z − location) / scale`` as the
   decades of its two-sided normal tail probability, ``S = −log10 p``;
   :func:`log_score` squashes it into 0 … 1 as ``S / (S + 10)``: 0.5 is one chance
   in 10¹⁰, 0.26 one in 3,000 (Numenta's ``min(1, S/10)`` ties every ``p < 10⁻¹⁰``
   at 1, which on NAB put hundreds of rows at exactly 1).  Because ``r`` is standard normal on any tag whose residuals
   are, one threshold means the same on every tag.

River's ``stats.EWMean``/``EWVar`` would hold the same numbers, but one object per
tag, called per tick from Python, costs about 10 ms per 10,000 tags for the two
statistics alone; the update below is a handful of array operations
(``bench/detect_speed.py``).

>>> import numpy as np
>>> scale = RobustScale(n_rows=2, memory_steps=200, clip_sigmas=3.0, min_sigma=0.5)
>>> rng = np.random.default_rng(0)
>>> for _ in range(400):
...     _ = scale.learn(np.array([rng.normal(0.0, 2.0), rng.normal(0.0, 0.1)]), np.ones(2, bool))
>>> scale.sigma().round(1).tolist()   # tag 0: its residuals are 2 forecast spreads; tag 1: floored
[2.0, 0.5]
>>> r = scale.standardise(np.array([8.0, 8.0]))
>>> r.round(1).tolist(), surprisal(r).round(1).tolist()
([4.1, 16.0], [4.3, 56.9])
>>> log_score(surprisal(r)).round(2).tolist()
[0.3, 0.85]
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from scipy import special

from ..records import BoolArray, FloatArray

_LN10 = math.log(10.0)
SCORE_DECADES = 10.0
"""Decades of tail probability that make a score of 0.5."""
PRIOR_STEPS = 5
"""Weight of the starting scale (1 forecast spread), in ticks: the first residuals cannot set it alone."""


def forecast_z(
    actual: FloatArray, expected: FloatArray, levels: tuple[float, ...], min_spread: FloatArray
) -> FloatArray:
    """``(actual − median) / spread`` per row, the spread read from the outer quantile on the value's side.

    ``expected`` is (rows, levels); NaN in, NaN out.

    >>> q = np.array([[9.0, 10.0, 14.0], [9.0, 10.0, 14.0], [5.0, 5.0, 5.0]])
    >>> forecast_z(np.array([14.0, 9.0, 5.5]), q, (0.1, 0.5, 0.9), np.array([0.0, 0.0, 0.25])).round(3).tolist()
    [1.282, -1.282, 2.0]
    """
    median, spread = forecast_spread(actual, expected, levels, min_spread)
    with np.errstate(invalid="ignore"):
        return np.asarray((actual - median) / spread, dtype=np.float64)


def forecast_spread(
    actual: FloatArray, expected: FloatArray, levels: tuple[float, ...], min_spread: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """The forecast median and the spread :func:`forecast_z` divides by (floored, never 0), per row.

    >>> q = np.array([[9.0, 10.0, 14.0]])
    >>> [a.round(3).tolist() for a in forecast_spread(np.array([14.0]), q, (0.1, 0.5, 0.9), np.zeros(1))]
    [[10.0], [3.121]]
    """
    z_of = NormalDist().inv_cdf
    lo, hi = 0, len(levels) - 1
    mid = levels.index(0.5)
    median = expected[:, mid]
    upper = (expected[:, hi] - median) / z_of(levels[hi])
    lower = (median - expected[:, lo]) / -z_of(levels[lo])
    above = actual >= median
    spread = np.where(above, upper, lower)
    spread = np.fmax(np.nan_to_num(spread, nan=0.0), min_spread)
    # Scale-free last resort: a forecast certain to the last bit still has float rounding.
    spread = np.maximum(spread, 1e-9 * np.maximum(np.abs(np.nan_to_num(median)), 1.0))
    return np.asarray(median, dtype=np.float64), np.asarray(spread, dtype=np.float64)


def _winsorised_consistency(k: float) -> float:
    """σ of a normal over the fixed point of the winsorised EW RMS with clip ``k`` (slightly below 1)."""
    nd = NormalDist()
    t = 1.0
    for _ in range(100):
        a = k * t
        inside = (2 * nd.cdf(a) - 1) - 2 * a * nd.pdf(a)
        t = math.sqrt(inside + a * a * 2 * (1 - nd.cdf(a)))
    return t


class RobustScale:
    """Per row: exponentially weighted, winsorised location and scale of a stream (see the module docstring)."""

    def __init__(self, n_rows: int, memory_steps: int, clip_sigmas: float, min_sigma: float) -> None:
        self.alpha_min = 1.0 / memory_steps
        self.clip = clip_sigmas
        self.min_sigma = min_sigma
        self.consistency = _winsorised_consistency(clip_sigmas)
        self.location = np.zeros(n_rows)
        self.square = np.full(n_rows, self.consistency**2)  # the winsorised mean square of unit normals
        self.learned = np.zeros(n_rows, dtype=np.int64)
        """Values each row has learned."""
        self.discounted = np.zeros(n_rows, dtype=np.int64)
        """Learned values each row's learning rate no longer counts (:meth:`discount`)."""

    def sigma(self) -> FloatArray:
        """Each row's scale, in the units of what it learns (at least ``min_sigma``)."""
        return np.asarray(np.maximum(np.sqrt(self.square) / self.consistency, self.min_sigma), dtype=np.float64)

    def standardise(self, x: FloatArray) -> FloatArray:
        """``(x − location) / scale`` per row."""
        return np.asarray((x - self.location) / self.sigma(), dtype=np.float64)

    def learn(self, x: FloatArray, mask: BoolArray, extra_var: FloatArray | None = None) -> FloatArray:
        """Learn ``x`` on the rows of ``mask`` (finite values only), winsorised; returns the clipped deviations.

        ``extra_var`` (per row, in squared units of ``x``) is variance the value is known to carry beyond what
        it shows — a held value of a compressed export, known only to within its deadband — added to the
        learned mean square (not to the location).
        """
        rows = np.flatnonzero(mask & np.isfinite(x))
        if rows.size == 0:
            return np.zeros(0)
        alpha = np.maximum(1.0 / (PRIOR_STEPS + self.learned[rows] - self.discounted[rows] + 1), self.alpha_min)
        limit = self.clip * np.sqrt(self.square[rows])
        d = np.clip(x[rows] - self.location[rows], -limit, limit)
        self.location[rows] += alpha * d
        square = d * d if extra_var is None else d * d + extra_var[rows]
        self.square[rows] += alpha * (square - self.square[rows])
        self.learned[rows] += 1
        return np.asarray(d, dtype=np.float64)

    def discount(self, weight_steps: FloatArray) -> None:
        """Let what each row learned so far count as ``weight_steps`` values (never more than it learned).

        The next values are then learned at rate ``1 / (prior + weight + n)``, as if the scale had been
        learned from ``weight_steps`` values only: what it learned is a prior that new data replace within
        about that many values, not within ``memory_steps`` (``detect.history_held_weight_steps``: a
        compressed export's spread, measured in the replay's forecast spreads, gives way to the live one).
        Rows with a weight at or above what they learned are unchanged.

        >>> scale = RobustScale(n_rows=2, memory_steps=5000, clip_sigmas=3.0, min_sigma=0.1)
        >>> for k in range(3000):  # a history that taught residuals of ±2
        ...     _ = scale.learn(np.full(2, 2.0 * (-1) ** k), np.ones(2, bool))
        >>> scale.discount(np.array([100.0, np.inf]))
        >>> for k in range(300):  # then residuals of ±1
        ...     _ = scale.learn(np.full(2, (-1.0) ** k), np.ones(2, bool))
        >>> np.sqrt(scale.square).round(2).tolist()  # the discounted row follows the new data
        [1.33, 1.93]
        """
        w = np.minimum(np.nan_to_num(weight_steps, nan=np.inf, posinf=np.inf), self.learned)
        self.discounted = np.maximum(self.discounted, (self.learned - w).astype(np.int64))


def surprisal(r: FloatArray) -> FloatArray:
    """``−log10`` of the two-sided standard normal tail probability of ``r`` (0 at r = 0; NaN stays NaN).

    >>> surprisal(np.array([0.0, 1.959964, 3.290527, np.nan])).round(3).tolist()
    [0.0, 1.301, 3.0, nan]
    """
    with np.errstate(invalid="ignore"):
        out = -(special.log_ndtr(-np.abs(r)) + math.log(2.0)) / _LN10
    return np.asarray(np.maximum(out, 0.0), dtype=np.float64)


def upper_surprisal(z: FloatArray) -> FloatArray:
    """``−log10`` of the one-sided upper tail probability ``1 − Φ(z)``.

    >>> upper_surprisal(np.array([0.0, 3.090232])).round(3).tolist()
    [0.301, 3.0]
    """
    return np.asarray(-special.log_ndtr(-z) / _LN10, dtype=np.float64)


def log_score(decades: FloatArray) -> FloatArray:
    """Decades of surprise squashed into 0 … 1 without saturating: ``S / (S + 10)`` (NaN stays NaN).

    Monotone, so a threshold on it is a threshold on the tail probability
    (:func:`threshold_probability`); unlike Numenta's ``min(1, S/10)`` it never
    ties strong surprises at 1, so a threshold sweep can still tell them apart.

    >>> log_score(np.array([0.0, 3.5, 10.0, 90.0])).round(3).tolist()
    [0.0, 0.259, 0.5, 0.9]
    """
    return np.asarray(decades / (decades + SCORE_DECADES), dtype=np.float64)


def threshold_probability(score_threshold: float) -> float:
    """The tail probability a score threshold stands for: ``10^(−10 · t / (1 − t))``.

    >>> threshold_probability(0.5), round(threshold_probability(0.25), 6)
    (1e-10, 0.000464)
    """
    return float(10.0 ** (-SCORE_DECADES * score_threshold / (1.0 - score_threshold)))
