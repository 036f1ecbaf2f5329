"""Residual scoring: how surprising is each tag's new value, given the forecast made before it?

The residual ``actual − forecast median`` is divided by the forecast's own
spread (its 10–90 % interval turned into a standard deviation), so one
threshold serves tags of any unit and any noise level.  Each tag's scaled
residual then goes to its own online River detector
(:class:`river.anomaly.GaussianScorer`), which learns the residual's
distribution and scores how far out a new one lies (0 … 1).  Detectors learn
only from ticks that are neither flagged nor inside an open alert, so a fault
does not teach the threshold that faults are normal.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
from river import anomaly

from ..records import BoolArray, FloatArray, ForecastBatch


class ResidualScorer:
    """Scaled residuals and River anomaly scores for one tag group (fixed row order)."""

    def __init__(
        self,
        n_rows: int,
        levels: tuple[float, ...],
        min_spread: FloatArray,
        grace_period_steps: int,
        score_threshold: float,
        min_sigma: float = 0.0,
    ) -> None:
        self.levels = levels
        self.lo, self.hi = 0, len(levels) - 1
        self.mid = levels.index(0.5)
        z = NormalDist()
        self.width_sigmas = z.inv_cdf(levels[self.hi]) - z.inv_cdf(levels[self.lo])
        self.min_spread = min_spread
        self.threshold = score_threshold
        self.min_sigma = min_sigma
        self.detectors = [anomaly.GaussianScorer(grace_period=grace_period_steps) for _ in range(n_rows)]
        # Each row's latest forecast (levels × horizon) and the slot it was made at: rows
        # are refreshed on their own cadence (forecast.refresh_every_steps), so a tick
        # compares a row's value with the step of its last forecast that lands on it.
        self._n = n_rows
        self._prev: FloatArray | None = None  # (n, levels, H)
        self._prev_ts: FloatArray = np.full(n_rows, np.nan)

    def expected(self, ts: float, period_s: float) -> FloatArray | None:
        """Forecast quantiles (n, levels) made earlier for the slot ending at ``ts`` (NaN rows: none)."""
        if self._prev is None:
            return None
        horizon = self._prev.shape[2]
        with np.errstate(invalid="ignore"):
            steps = np.rint((ts - self._prev_ts) / period_s)
        valid = np.isfinite(steps) & (steps >= 1) & (steps <= horizon)
        if not valid.any():
            return None
        idx = np.where(valid, steps - 1, 0).astype(np.intp)
        exp = self._prev[np.arange(self._n), :, idx]
        exp[~valid] = np.nan
        return np.asarray(exp, dtype=np.float64)

    def remember(self, fb: ForecastBatch) -> None:
        """Keep the batch's new forecasts (all rows, or the rows it refreshed)."""
        q = fb.quantiles
        if self._prev is None:
            self._prev = np.full((self._n, q.shape[1], q.shape[2]), np.nan)
        if fb.rows is None:
            self._prev[:] = q
            self._prev_ts[:] = fb.window.ts
        else:
            self._prev[fb.rows] = q
            self._prev_ts[fb.rows] = fb.window.ts

    def score(
        self, fb: ForecastBatch, learn_mask: BoolArray
    ) -> tuple[FloatArray | None, FloatArray, FloatArray, BoolArray]:
        """Score the batch's actual values, learn from the normal ones; remember its forecasts for the next tick.

        Returns (expected quantiles or None, residual z, score, anomalous), all per row;
        z and score are NaN where there was no forecast or no value.
        ``learn_mask[i]`` says whether row ``i`` may learn from this tick if it is normal.
        """
        exp, z, score, flagged = self.assess(fb)
        self.learn(z, learn_mask & ~flagged)
        return exp, z, score, flagged

    def assess(self, fb: ForecastBatch) -> tuple[FloatArray | None, FloatArray, FloatArray, BoolArray]:
        """:meth:`score` without learning: (expected, z, score, anomalous); remembers the batch's forecasts."""
        w = fb.window
        n = len(w)
        exp = self.expected(w.ts, w.period_s)
        z = np.full(n, np.nan)
        score = np.full(n, np.nan)
        flagged = np.zeros(n, dtype=bool)
        if exp is not None:
            median = exp[:, self.mid]
            sigma = (exp[:, self.hi] - exp[:, self.lo]) / self.width_sigmas
            scale = np.maximum(np.nan_to_num(sigma, nan=0.0), self.min_spread)
            scale = np.maximum(scale, 1e-9 * np.maximum(np.abs(median), 1.0))
            with np.errstate(invalid="ignore"):
                z = (w.values - median) / scale
            dets = self.detectors
            floor = self.min_sigma
            rows = np.flatnonzero(np.isfinite(z))
            # Python floats from one tolist(): indexing a numpy array row by row costs more than the scoring.
            score[rows] = [_score(dets[i], zi, floor) for i, zi in zip(rows.tolist(), z[rows].tolist(), strict=True)]
            flagged = score >= self.threshold
        self.remember(fb)
        return exp, z, score, flagged

    def learn(self, z: FloatArray, mask: BoolArray) -> None:
        """Each row of ``mask`` with a finite ``z`` learns it (the caller leaves anomalous rows out)."""
        dets = self.detectors
        rows = np.flatnonzero(mask & np.isfinite(z))
        for i, zi in zip(rows.tolist(), z[rows].tolist(), strict=True):
            dets[i].learn_one(None, zi)

    def river_state(self) -> dict[str, FloatArray]:
        """Each row's learned Gaussian: count, mean and sum of squared deviations (River's ``Var`` internals).

        Arrays, not a pickle, so a saved state cannot run code; River's private attribute names
        are read here only (the caller records River's version with them).
        """
        var: list[Any] = [d.gaussian._var for d in self.detectors]
        return {
            "n": np.array([v.mean.n for v in var], dtype=np.float64),
            "mean": np.array([v.mean._mean for v in var], dtype=np.float64),
            "sum_squares": np.array([v._S for v in var], dtype=np.float64),
        }

    def restore_river_state(self, arrays: dict[str, FloatArray]) -> None:
        """Rebuild every row's River scorer from :meth:`river_state`'s arrays."""
        grace = self.detectors[0].grace_period if self.detectors else 0
        dets = []
        for n, mean, s in zip(
            arrays["n"].tolist(), arrays["mean"].tolist(), arrays["sum_squares"].tolist(), strict=True
        ):
            det = anomaly.GaussianScorer(grace_period=grace)
            var: Any = det.gaussian._var
            var.mean.n, var.mean._mean, var._S = n, mean, s
            dets.append(det)
        self.detectors = dets


def _score(det: anomaly.GaussianScorer, z: float, min_sigma: float = 0.0) -> float:
    """River's score, with the learned spread floored at ``min_sigma``.

    A tag that holds still (a set point, a closed valve) under a forecaster that
    repeats it exactly teaches its scorer residuals that are all the same, or
    nearly: the learned spread is 0 or far below one quantisation step, and the
    first one-step residual (a valve starting to ramp) scores 0.99 or more.  The
    scaled residual is in units of the forecast's spread, itself at least the tag's
    resolution, so ``min_sigma`` is the smallest spread that makes sense in those
    units: below it the score is the Gaussian's with σ = ``min_sigma``.  With no
    floor (0) a spread of exactly 0 is the point mass it is — the same residual
    scores 0, any other 1 — since River's ``cdf`` divides by zero there and every
    later tick would score 1, an alert that never clears.

    >>> from river import anomaly
    >>> det = anomaly.GaussianScorer(grace_period=2)
    >>> for _ in range(50):
    ...     det.learn_one(None, 0.0)
    >>> _score(det, 1.0), round(_score(det, 1.0, min_sigma=0.5), 4), round(_score(det, 3.0, min_sigma=0.5), 6)
    (1.0, 0.9545, 1.0)
    """
    g = det.gaussian
    if g.n_samples < det.grace_period:
        return 0.0
    sigma: float = g.sigma  # type: ignore[assignment]  # river's Gaussian is untyped
    mu: float = g.mu  # type: ignore[assignment]
    if min_sigma > 0.0 and sigma < min_sigma:
        return math.erf(abs(z - mu) / (min_sigma * math.sqrt(2.0)))
    if sigma == 0.0:
        return 0.0 if z == mu else 1.0
    return float(det.score_one(None, z))
