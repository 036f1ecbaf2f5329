"""Asset-level scoring: all tags of an asset seen together, Hotelling's T² on their state.

A fault often moves several tags a little — less than any one tag's own
threshold — and for as long as it lasts, while a forecast residual only spikes at
the transition (the forecaster follows the new level within a few steps).  So
this detector scores where the asset *is*, not how surprising the last step was:
each tag's value is standardised by the mean and spread the asset showed while
normal, and the vector ``u`` is scored by ``T² = uᵀ R⁻¹ u`` with ``R`` its
correlation matrix.  Two tags that always move together (current and voltage)
then count once, and a combination never seen in normal operation stands out
even when each tag alone looks ordinary.

Mean and covariance are learned online (Welford) from ticks that are neither
flagged nor inside an open asset alert, so a fault is never learned as normal.
A tag's spread is floored at its sensor resolution (``min_spread``): a channel
that happened to be constant while learning (a quantised flow reading) must not
make its first quantisation step an infinite surprise.  The threshold is the
χ² quantile of ``T²`` under Gaussian normal operation (Wilson–Hilferty
approximation), multiplied by ``ucl_factor`` for real data's heavier tails.

>>> import numpy as np
>>> det = AssetT2(n_tags=2, min_spread=np.zeros(2), grace_period_steps=50, quantile=0.999, ucl_factor=1.0)
>>> rng = np.random.default_rng(0)
>>> for _ in range(200):
...     x = rng.normal(size=2)
...     _ = det.step(np.array([x[0], x[0] + 0.1 * x[1]]), learn=True)
>>> t2, flagged = det.step(np.array([1.0, -1.0]), learn=False)   # each tag 1σ, but against their correlation
>>> bool(flagged), round(det.ucl, 1)
(True, 14.1)
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from ..records import FloatArray


def chi2_quantile(q: float, dof: int) -> float:
    """The ``q`` quantile of χ² with ``dof`` degrees of freedom (Wilson–Hilferty; within about 1 % at these tails).

    >>> round(chi2_quantile(0.999, 8), 1)   # exact: 26.12
    26.3
    """
    z = NormalDist().inv_cdf(q)
    k = float(dof)
    return k * (1.0 - 2.0 / (9.0 * k) + z * math.sqrt(2.0 / (9.0 * k))) ** 3


class AssetT2:
    """Hotelling's T² of one asset's tag vector against its learned normal state."""

    def __init__(
        self,
        n_tags: int,
        min_spread: FloatArray,
        grace_period_steps: int,
        quantile: float,
        ucl_factor: float,
        ridge: float = 1e-3,
    ) -> None:
        self.n_tags = n_tags
        self.floor = np.asarray(min_spread, dtype=np.float64) ** 2
        self.grace = grace_period_steps
        self.ucl = chi2_quantile(quantile, n_tags) * ucl_factor
        self.ridge = ridge
        self.count = 0
        self.mean: FloatArray = np.zeros(n_tags)
        self._m2: FloatArray = np.zeros((n_tags, n_tags))
        self._inverse: FloatArray | None = None
        self._scale: FloatArray = np.ones(n_tags)
        self.last_u: FloatArray = np.full(n_tags, np.nan)
        """Each tag's standardised deviation at the last step: how much it contributed."""

    def step(self, x: FloatArray, learn: bool) -> tuple[float, bool]:
        """Score ``x`` (one value per tag; NaN: missing), then learn from it if allowed and not flagged.

        Returns (T², flagged); T² is NaN during the grace period or when a value is missing.
        """
        if not np.isfinite(x).all():
            self.last_u = np.full(self.n_tags, np.nan)
            return math.nan, False
        t2 = math.nan
        flagged = False
        if self.count >= self.grace:
            inverse = self._inverse if self._inverse is not None else self._refresh()
            u = (x - self.mean) / self._scale
            self.last_u = u
            t2 = float(u @ inverse @ u)
            flagged = t2 > self.ucl
        if learn and not flagged:
            self._learn(x)
        return t2, flagged

    def _learn(self, x: FloatArray) -> None:
        self.count += 1
        delta = x - self.mean
        self.mean = self.mean + delta / self.count
        self._m2 += np.outer(delta, x - self.mean)
        self._inverse = None

    def _refresh(self) -> FloatArray:
        cov = self._m2 / max(self.count - 1, 1)
        var = np.diag(cov) + self.floor + 1e-12
        self._scale = np.sqrt(var)
        corr = cov / np.outer(self._scale, self._scale)
        np.fill_diagonal(corr, 1.0)
        corr = (1.0 - self.ridge) * corr + self.ridge * np.eye(self.n_tags)
        inverse: FloatArray = np.asarray(np.linalg.pinv(corr), dtype=np.float64)
        self._inverse = inverse
        return inverse
