"""Distribution change: has the tag's recent window of values stopped looking like its past?

A forecast residual only sees one step at a time; a change of *pattern* — a periodic
signal that goes flat, a level that creeps, noise that doubles, spikes that come more
often — can keep every one-step residual small.  This compares distributions instead, in
the manner of the relative-entropy detector of Wang et al. (2011, "Statistical techniques
for online anomaly detection in data centers"), online, per tag, all rows of a tag group
as numpy arrays (no per-tag Python):

1. **Bins.**  Each value is placed in one of ``bins`` cells cut at fixed standard-normal
   quantiles of the tag's own robust, forgetting location and scale
   (:class:`~.surprise.RobustScale` on the values; scale floored at the tag's
   ``min_spread`` so a flat tag has cells), plus an open cell on each side.
2. **Recent against reference.**  The last ``window_steps`` cells are counted (a ring of
   cell indices, counts updated by +1/−1); a value that leaves the ring enters the
   *reference* histogram, an exponentially forgetting one (``reference_steps``), so the
   two never overlap.  The statistic is the G statistic ``G = 2·W·KL(recent ‖ reference)``
   (χ² with ``cells − 1`` degrees of freedom for independent values).
3. **Calibration.**  Real series are autocorrelated, so ``G`` is not χ²: like the residual
   surprise, ``∛G`` (nearly normal for a χ², Wilson and Hilferty, so a normal tail is not
   too short for it) is judged against the tag's own usual ``∛G`` (a winsorised, forgetting
   location and scale, floored at the χ² null's spread) and turned into the same decades of
   one-sided tail probability (above the median), :func:`~.surprise.log_score` squashed, so
   one ``detect.score_threshold`` means the same on both detectors.
4. **Onset.**  With a refractory period (``detect.score_refractory_steps``) the reported
   score is only what exceeds the tag's recent, decaying peak, as the residual scorer does:
   a change scores once, not for every tick its window still covers it.

Memory per tag: the ring (``window_steps`` bytes), two histograms, a handful of scalars.

>>> rng = np.random.default_rng(1)
>>> d = DistributionShift(1, window_steps=32, bins=8, reference_steps=500, memory_steps=2000,
...                       warmup_steps=100, min_spread=np.zeros(1), refractory_steps=0)
>>> for t in range(600):   # a sine with noise: one-step changes are small
...     _ = d.step(np.array([np.sin(t / 5.0) + 0.05 * rng.normal()]), np.ones(1, bool))
>>> calm = float(np.nanmax([d.step(np.array([np.sin(t / 5.0) + 0.05 * rng.normal()]), np.ones(1, bool))[0]
...                         for t in range(600, 700)]))
>>> flat = float(np.nanmax([d.step(np.array([0.8 + 0.05 * rng.normal()]), np.ones(1, bool))[0]
...                         for t in range(700, 740)]))   # the sine stops near its top: a new distribution
>>> calm < 0.259 < flat
True
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from ..records import BoolArray, FloatArray
from .surprise import RobustScale, log_score, upper_surprisal

G_CLIP_SIGMAS = 3.0
"""Statistics beyond this many usual scales are clipped before they are learned (as residuals are)."""
VALUE_CLIP_SIGMAS = 3.0
"""Values are clipped to this many scales before the location and scale learn them."""
OUTER_SIGMAS = 2.5
"""Values beyond this many of the tag's usual scales fall in the two outer cells."""
_HALF = float(np.log10(2.0))
"""Decades of the upper tail at the median, subtracted so that a usual G scores 0."""
_EPS = 1e-3
"""Additive smoothing of the reference probabilities: a cell never seen is rare, not impossible."""


class DistributionShift:
    """Per row: the recent window's distribution against the row's forgetting reference, calibrated."""

    def __init__(
        self,
        n_rows: int,
        *,
        window_steps: int,
        bins: int,
        reference_steps: int,
        memory_steps: int,
        warmup_steps: int,
        min_spread: FloatArray,
        refractory_steps: int,
        value_memory_steps: int | None = None,
    ) -> None:
        if bins < 2:
            raise ValueError("a distribution needs at least 2 cells")
        self.n = n_rows
        self.window = window_steps
        self.cells = bins + 2
        nd = NormalDist()
        # ``bins`` equiprobable cells of a standard normal, the outer two split at ±2.5σ: ``bins + 2`` cells.
        inner = [nd.inv_cdf(k / bins) for k in range(1, bins)]
        self.cuts = np.array([-OUTER_SIGMAS, *inner, OUTER_SIGMAS])
        self.alpha_ref = 1.0 / reference_steps
        self.warmup = warmup_steps
        self.min_spread = np.asarray(min_spread, dtype=np.float64)
        self.alpha_values = 1.0 / (value_memory_steps or reference_steps)
        self.location = np.zeros(n_rows)
        self.square = np.zeros(n_rows)
        self.seen = np.zeros(n_rows, dtype=np.int64)
        # G of independent values is χ²(k), k = cells − 1, and its cube root nearly normal (Wilson and
        # Hilferty): mean ≈ k^(1/3), spread ≈ k^(1/3)·√(2/9k), the floor of the calibrated scale.
        k = self.cells - 1.0
        self.null_sigma = float(k ** (1 / 3) * np.sqrt(2.0 / (9.0 * k)))
        self.g_scale = RobustScale(n_rows, memory_steps, G_CLIP_SIGMAS, 0.0)
        self.g_scale.location[:] = k ** (1 / 3)
        self.g_scale.square[:] = (self.null_sigma * self.g_scale.consistency) ** 2
        self.ring = np.zeros((n_rows, window_steps), dtype=np.int8)
        self.filled = np.zeros(n_rows, dtype=np.int64)
        """Values each row has binned (the ring is full from ``window_steps``)."""
        self.counts = np.zeros((n_rows, self.cells))
        self.reference = np.full((n_rows, self.cells), 1.0 / self.cells)
        self.ref_weight = np.zeros(n_rows)
        """How much the reference has seen, in values (its prior weighs one)."""
        self.refractory = refractory_steps
        self._decay = float(np.exp(-1.0 / refractory_steps)) if refractory_steps > 0 else 0.0
        self.peak = np.zeros(n_rows)
        self.g: FloatArray = np.full(n_rows, np.nan)
        """Each row's last G statistic (NaN: not measured)."""
        self.r: FloatArray = np.full(n_rows, np.nan)
        """Each row's last calibrated G, ``(G − usual) / usual spread`` (NaN: not measured)."""
        self.surprise: FloatArray = np.full(n_rows, np.nan)
        """Each row's last calibrated score before the refractory period (what a flag compares)."""

    def sigma(self, rows: np.ndarray) -> FloatArray:
        """The rows' value scale: the forgetting RMS deviation, floored at ``min_spread`` (and float rounding)."""
        floor = np.maximum(self.min_spread[rows], 1e-9 * np.maximum(np.abs(self.location[rows]), 1.0))
        return np.asarray(np.maximum(np.sqrt(self.square[rows]), floor), dtype=np.float64)

    def _learn_values(self, rows: np.ndarray, x: FloatArray, sigma: FloatArray) -> None:
        """Winsorised forgetting location and scale of the values (the first value sets the location).

        Not clipped during the warm-up: a scale that starts at zero must be free to grow.
        """
        first = self.seen[rows] == 0
        alpha = np.maximum(1.0 / (self.seen[rows] + 1.0), self.alpha_values)
        d = x - self.location[rows]
        d = np.where(
            self.seen[rows] < self.warmup, d, np.clip(d, -VALUE_CLIP_SIGMAS * sigma, VALUE_CLIP_SIGMAS * sigma)
        )
        self.location[rows] += np.where(first, 1.0, alpha) * d
        self.square[rows] = np.where(first, 0.0, self.square[rows] + alpha * (d * d - self.square[rows]))
        self.seen[rows] += 1

    def step(self, x: FloatArray, learn: BoolArray) -> FloatArray:
        """Bin ``x`` (NaN: skipped), measure every row with a full window; returns the (onset) score per row.

        ``learn``: rows whose calibration may learn from this tick (gated rows: not).  The
        windows and references move for every finite value: they are the stream, not a model.
        """
        ok = np.isfinite(x)
        rows = np.flatnonzero(ok)
        score = np.full(self.n, np.nan)
        self.g = np.full(self.n, np.nan)
        self.r = np.full(self.n, np.nan)
        self.surprise = np.full(self.n, np.nan)
        if rows.size == 0:
            return score
        xr = x[rows]
        sigma = self.sigma(rows)
        u = np.where(self.seen[rows] > 0, (xr - self.location[rows]) / sigma, 0.0)
        cell = np.searchsorted(self.cuts, u).astype(np.int8)
        self._learn_values(rows, xr, sigma)
        pos = self.filled[rows] % self.window
        full = self.filled[rows] >= self.window
        leaving = self.ring[rows, pos]
        # The value leaving the ring joins the reference; the new one joins the ring.
        fr = rows[full]
        if fr.size:
            lv = leaving[full].astype(np.intp)
            self.counts[fr, lv] -= 1.0
            w = np.maximum(1.0 / (1.0 + self.ref_weight[fr]), self.alpha_ref)
            self.reference[fr] *= (1.0 - w)[:, None]
            self.reference[fr, lv] += w
            self.ref_weight[fr] += 1.0
        self.ring[rows, pos] = cell
        self.counts[rows, cell.astype(np.intp)] += 1.0
        self.filled[rows] += 1
        ready = rows[self.ref_weight[rows] >= self.warmup]
        if ready.size == 0:
            return score
        q = self.counts[ready] / self.window
        p = (self.reference[ready] + _EPS) / (1.0 + _EPS * self.cells)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.sum(np.where(q > 0, q * np.log(q / p), 0.0), axis=1)
        g = 2.0 * self.window * kl
        self.g[ready] = g
        gs = self.g_scale
        sig = np.maximum(np.sqrt(gs.square[ready]) / gs.consistency, self.null_sigma)
        y = np.cbrt(g)
        r = (y - gs.location[ready]) / sig
        self.r[ready] = r
        decades = np.maximum(upper_surprisal(r) - _HALF, 0.0)  # 0 at or below the usual ∛G
        self.surprise[ready] = log_score(decades)
        if self.refractory > 0:
            peak = self.peak[ready]
            self.peak[ready] = np.maximum(peak * self._decay, decades)
            decades = np.maximum(decades - peak, 0.0)
        score[ready] = log_score(decades)
        lr = np.zeros(self.n, dtype=bool)
        lr[ready] = True
        lr &= learn
        gg = np.full(self.n, np.nan)
        gg[ready] = y
        gs.learn(gg, lr)
        return score
