"""The classic virtual sensor: each tag estimated from the asset's other tags *now*, by online linear regression.

What GE SmartSignal and AVEVA's predictive analytics started from, and the
baseline the asset model (issue 14) must beat: per tag ``j``, a recursive least
squares (RLS) fit of ``y_j(t)`` on the other tags' values at the same instant
``t`` plus an intercept, with exponential forgetting so the fit follows a plant
whose operating point moves.  Numpy only; one step costs a few batched 7×7
products for a 7-tag asset.

Why these choices:

* **Inputs standardised** with the mean and std of a warm-up window (the first
  ``warmup`` rows): temperatures near 5 °C and power near 300 kW then weigh
  alike in the prior and the covariance stays well conditioned.  The intercept
  is the input that replaces the target's own value (so the ``G`` regressions
  share one batched update).
* **Forgetting λ = 0.999** (a memory of ~1000 samples, ~17 min at 1 s) and a
  ridge of 1 (in standardised units, against ~1000 samples' worth of Gram matrix)
  were fixed a priori, not tuned on any scored data.
* **Exponentially weighted ridge, solved each step**, rather than the textbook
  RLS covariance update: with forgetting, the covariance of a direction the
  inputs do not excite (a pump at constant speed, a random walk next to the
  intercept) winds up as λ^-t, and capping it froze the fit (a changed gain was
  never followed — ``tests/unit/test_virtual_sensor.py``).  The ridge keeps
  such directions at zero instead; a batched G×G solve per step is cheap.
* **Gaps**: a missing input is held at its last value; a missing target does not
  update its regression.  Before a regression has seen ``warmup`` rows its
  estimate is NaN (callers fall back to the last value).
* **Quantiles**: Gaussian around the estimate with the exponentially weighted
  RMS of the regression's own one-step-ahead (a priori) errors, so the spread is
  out of sample.

>>> rng = np.random.default_rng(0)
>>> flow = 60 + rng.normal(0, 3, 3000)
>>> dt = 7 + rng.normal(0, 0.5, 3000)
>>> power = 1.163 * flow * dt + rng.normal(0, 1, 3000)    # kW: an energy balance
>>> est, sigma = VirtualSensor(3, warmup=200).run(np.stack([flow, dt, power], axis=1))
>>> bool(np.nanmean(np.abs(est[2000:, 2] - power[2000:])) < 3.0)   # power from flow and ΔT (σ of power: 30 kW)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..records import FloatArray

DEFAULT_FORGETTING = 0.999
"""λ of the recursive least squares: an exponential memory of 1 / (1 − λ) = 1000 samples."""


class VirtualSensor:
    """Exponentially weighted least squares per tag on the other tags' current values (see the module docstring).

    ``run(values)`` takes one asset's rows ``(T, G)`` in time order and returns,
    for every row, each tag's estimate made *before* that row's own value updated
    the fit, and the estimate's σ: an honest online (prequential) estimate.
    """

    def __init__(
        self,
        num_tags: int,
        forgetting: float = DEFAULT_FORGETTING,
        warmup: int = 512,
        ridge: float = 1.0,
    ) -> None:
        if num_tags < 2:
            raise ValueError(f"a virtual sensor needs at least 2 tags, got {num_tags}")
        if not 0 < forgetting <= 1:
            raise ValueError(f"forgetting must be in (0, 1], got {forgetting}")
        if warmup < 2:
            raise ValueError(f"warmup must be ≥ 2 rows, got {warmup}")
        self.num_tags = num_tags
        self.forgetting = forgetting
        self.warmup = warmup
        self.ridge = ridge

    def run(self, values: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Estimates (T, G) and their σ (T, G) in the tags' units; NaN during the warm-up."""
        x = np.asarray(values, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.num_tags:
            raise ValueError(f"expected rows of {self.num_tags} tags, got shape {x.shape}")
        t_count, g = x.shape
        estimates = np.full((t_count, g), np.nan)
        sigmas = np.full((t_count, g), np.nan)
        head = x[: self.warmup]
        with np.errstate(all="ignore"):
            mean = np.where(np.isfinite(head).any(axis=0), np.nanmean(head, axis=0), 0.0)
            std = np.nan_to_num(np.nanstd(head, axis=0), nan=1.0)
        mean = np.nan_to_num(mean)
        std = np.where(std > 1e-9, std, 1.0)
        weights = np.zeros((g, g))
        gram = np.zeros((g, g, g))  # per regression: Σ λ^k z zᵀ
        moment = np.zeros((g, g))  # per regression: Σ λ^k z y
        ridge = self.ridge * np.eye(g)[None]
        msq = np.zeros(g)  # EW mean square of a-priori errors (standardised units)
        seen = np.zeros(g, dtype=np.int64)
        held = np.zeros(g)  # last observed standardised value of each tag
        eye = np.eye(g, dtype=bool)
        lam = self.forgetting
        memory = 1.0 / (1.0 - lam) if lam < 1 else np.inf
        for t in range(t_count):
            row = (x[t] - mean) / std
            observed = np.isfinite(row)
            held = np.where(observed, row, held)
            z = np.where(eye, 1.0, held[None, :])  # (G, G): regression j's inputs, own value → intercept
            pred = np.einsum("gi,gi->g", weights, z)
            ready = seen >= self.warmup
            estimates[t] = np.where(ready, pred * std + mean, np.nan)
            sigmas[t] = np.where(ready, np.sqrt(msq) * std, np.nan)
            if not observed.any():
                continue
            error = np.where(observed, held - pred, 0.0)
            w = observed.astype(np.float64)
            decay = np.where(observed, lam, 1.0)
            gram = gram * decay[:, None, None] + w[:, None, None] * np.einsum("gi,gj->gij", z, z)
            moment = moment * decay[:, None] + (w * held)[:, None] * z
            weights = np.linalg.solve(gram + ridge, moment[..., None])[..., 0]
            alpha = 1.0 / np.minimum(seen + 1, memory)
            msq = np.where(observed, (1 - alpha) * msq + alpha * error**2, msq)
            seen += observed
        return estimates, sigmas


def gaussian_quantiles(estimate: FloatArray, sigma: FloatArray, levels: Sequence[float]) -> FloatArray:
    """Quantiles (…, Q) of N(estimate, σ²) at ``levels``.

    >>> gaussian_quantiles(np.array([10.0]), np.array([1.0]), (0.1, 0.5, 0.9)).round(2).tolist()
    [[8.72, 10.0, 11.28]]
    """
    z = np.array([math.sqrt(2.0) * _erfinv(2.0 * q - 1.0) for q in levels])
    return np.asarray(np.asarray(estimate)[..., None] + np.asarray(sigma)[..., None] * z, dtype=np.float64)


def _erfinv(y: float) -> float:
    """Inverse error function by Newton's method on ``math.erf`` (exact to float precision)."""
    x = 0.0
    for _ in range(60):
        step = (math.erf(x) - y) / (2.0 / math.sqrt(math.pi) * math.exp(-x * x))
        x -= step
        if abs(step) < 1e-15:
            break
    return x
