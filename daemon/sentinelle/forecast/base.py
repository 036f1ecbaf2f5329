"""The forecaster contract and helpers shared by the baselines."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist
from typing import Protocol

import numpy as np

from ..records import FloatArray


class Forecaster(Protocol):
    """Batch of windows in, quantile forecasts out.

    ``forecast(contexts)`` takes an array of shape (n, context_steps), oldest value
    first, NaN for gaps, and returns shape (n, len(levels), horizon): row ``i``,
    level ``q``, step ``h + 1``.  Rows are independent: a row's forecast must not
    depend on the other rows of the batch.  Quantiles are non-decreasing in level.
    A row without any finite value gets NaN forecasts.  Called from one worker
    thread, never concurrently.

    ``assets``, when given, names the asset of each row (``WindowBatch.assets``):
    a forecaster adapted per asset (the model with per-asset LoRA adapters) uses
    it to pick each row's weights; the others ignore it.  It is optional so a
    caller without asset information still gets forecasts (the base model's).
    """

    name: str
    levels: tuple[float, ...]
    horizon: int

    def forecast(self, contexts: FloatArray, assets: Sequence[str] | None = None) -> FloatArray: ...


def normal_quantiles(median: FloatArray, sigma: FloatArray, levels: tuple[float, ...]) -> FloatArray:
    """Quantiles of N(median, sigma²): (n, H) and (n, H) → (n, len(levels), H)."""
    z = np.array([NormalDist().inv_cdf(q) for q in levels])
    return median[:, None, :] + z[None, :, None] * sigma[:, None, :]


def last_finite(contexts: FloatArray) -> FloatArray:
    """Last finite value of each row (NaN for rows without one).

    >>> last_finite(np.array([[1.0, 2.0, np.nan], [np.nan, np.nan, np.nan]]))
    array([ 2., nan])
    """
    finite = np.isfinite(contexts)
    idx = np.where(finite, np.arange(contexts.shape[1])[None, :], 0)
    last = np.maximum.accumulate(idx, axis=1)[:, -1]
    out = contexts[np.arange(contexts.shape[0]), last]
    out = np.where(finite.any(axis=1), out, np.nan)
    return np.asarray(out, dtype=np.float64)
