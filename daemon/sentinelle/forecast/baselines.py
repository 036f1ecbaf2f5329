"""Baseline forecasters: (seasonal) naive and damped Holt, vectorised over tags.

They are cheap (numpy over the whole batch, no per-tag Python), need no
training, and set the bar the language model must clear.  They fit each row from
its own window, so the rows' ``assets`` are accepted and ignored.  Their spread comes
from their own in-sample one-step errors, so a noisy tag gets wide intervals and
a quiet one narrow ones.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from ..records import FloatArray
from .base import last_finite, normal_quantiles


def _nanstd(x: FloatArray, axis: int) -> FloatArray:
    with warnings.catch_warnings():
        # All-NaN rows legitimately give NaN here (a tag without history).
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(np.nanstd(x, axis=axis), dtype=np.float64)


class NaiveForecaster:
    """Last value (``season_steps == 0``) or the value one season ago.

    >>> f = NaiveForecaster(levels=(0.1, 0.5, 0.9), horizon=2)
    >>> q = f.forecast(np.array([[1.0, 2.0, 1.0, 2.0, 1.0]]))
    >>> q[0, 1].tolist()   # the median: the last value, for every step
    [1.0, 1.0]
    """

    def __init__(self, levels: tuple[float, ...], horizon: int, season_steps: int = 0) -> None:
        self.levels = levels
        self.horizon = horizon
        self.season = season_steps
        self.name = "seasonal_naive" if season_steps else "naive"

    def forecast(self, contexts: FloatArray, assets: Sequence[str] | None = None) -> FloatArray:
        _n, length = contexts.shape
        h = np.arange(1, self.horizon + 1)
        m = self.season
        if m and m < length:
            # y[t+h] = y[t+h-m·ceil(h/m)]; gaps fall back to the last finite value.
            back = m * np.ceil(h / m).astype(int) - h  # steps back from the last slot
            median = contexts[:, length - 1 - back]
            fallback = last_finite(contexts)[:, None]
            median = np.where(np.isfinite(median), median, fallback)
            sigma1 = _nanstd(contexts[:, m:] - contexts[:, :-m], axis=1)
            growth = np.sqrt(np.ceil(h / m))
        else:
            median = np.repeat(last_finite(contexts)[:, None], self.horizon, axis=1)
            sigma1 = _nanstd(np.diff(contexts, axis=1), axis=1)
            growth = np.sqrt(h)
        sigma = np.nan_to_num(sigma1, nan=0.0)[:, None] * growth[None, :]
        return normal_quantiles(np.asarray(median, dtype=np.float64), sigma, self.levels)


class HoltForecaster:
    """Damped-trend exponential smoothing (ETS(A,Ad,N)) with fixed smoothing weights.

    Fitted per row by one vectorised pass over the window; gaps skip the update
    (the state carries over).  Interval widths use the ETS(A,Ad,N) variance formula
    with the in-sample one-step error.
    """

    def __init__(
        self,
        levels: tuple[float, ...],
        horizon: int,
        alpha: float = 0.3,
        beta: float = 0.05,
        damping: float = 0.9,
    ) -> None:
        self.levels = levels
        self.horizon = horizon
        self.alpha = alpha
        self.beta = beta
        self.phi = damping
        self.name = "holt"
        j = np.arange(1, horizon + 1)
        phi_cum = np.cumsum(self.phi**j)  # sum_{i=1..j} phi^i
        self._trend_mult = phi_cum
        c = alpha * (1 + beta * phi_cum[:-1])
        self._var_mult = np.concatenate(([1.0], 1.0 + np.cumsum(c**2)))

    def forecast(self, contexts: FloatArray, assets: Sequence[str] | None = None) -> FloatArray:
        n, length = contexts.shape
        a, b, phi = self.alpha, self.alpha * self.beta, self.phi
        level = np.full(n, np.nan)
        trend = np.zeros(n)
        sq = np.zeros(n)
        count = np.zeros(n)
        seen = np.zeros(n)
        for t in range(length):
            y = contexts[:, t]
            fin = np.isfinite(y)
            new = fin & np.isnan(level)
            level = np.where(new, y, level)
            pred = level + phi * trend
            err = np.where(fin & ~new, y - pred, 0.0)
            upd = fin & ~new
            # Skip the first two errors of each row: the state is still settling.
            scored = upd & (seen >= 2)
            sq += np.where(scored, err * err, 0.0)
            count += scored
            seen += upd
            level = np.where(upd, pred + a * err, level)
            trend = np.where(upd, phi * trend + b * err, trend)
        with np.errstate(invalid="ignore", divide="ignore"):
            sigma1 = np.sqrt(np.where(count > 0, sq / np.maximum(count, 1), 0.0))
        median = level[:, None] + trend[:, None] * self._trend_mult[None, :]
        sigma = sigma1[:, None] * np.sqrt(self._var_mult)[None, :]
        return normal_quantiles(median, sigma, self.levels)
