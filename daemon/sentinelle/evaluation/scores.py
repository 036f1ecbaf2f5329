"""Forecast accuracy scores, shared by the benchmarks and backtests.

* **MASE** — mean absolute error divided by the in-sample mean absolute error of
  the seasonal naive forecast (season ``m``) on the context: scale-free, < 1 beats
  the naive forecast's typical one-step error.
* **WQL** — weighted quantile loss, the CRPS approximation used by Chronos:
  ``mean over levels of 2·Σ pinball / Σ|y|``, accumulated over many forecasts as
  sums of numerators and denominators so big series don't vanish in an average.
* **Coverage** — share of actual values inside the 10–90 % interval (ideal 0.8).
* **Error statistics** — of the median's signed error, *forecast − actual* (the
  electricity study's sign: positive is an over-forecast): mean, median, std,
  max and min, beside the MAE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..records import FloatArray


def mase_scale(context: FloatArray, season: int = 1) -> float:
    """Mean absolute seasonal difference of the context (NaN-aware); NaN if undefined.

    >>> mase_scale(np.array([1.0, 2.0, 4.0, 7.0]))
    2.0
    """
    m = max(int(season), 1)
    if len(context) <= m:
        return math.nan
    d = np.abs(context[m:] - context[:-m])
    d = d[np.isfinite(d)]
    if d.size == 0:
        return math.nan
    scale = float(d.mean())
    return scale if scale > 0 else math.nan


def pinball(y: FloatArray, q: FloatArray, levels: Sequence[float]) -> FloatArray:
    """Pinball loss per level and step: y (H,), q (Q, H) → (Q, H).

    >>> pinball(np.array([1.0]), np.array([[0.0], [2.0]]), [0.1, 0.9]).round(2).tolist()
    [[0.1], [0.1]]
    """
    lv = np.asarray(levels, dtype=np.float64)[:, None]
    diff = y[None, :] - q
    return np.asarray(np.maximum(lv * diff, (lv - 1.0) * diff), dtype=np.float64)


@dataclass(slots=True)
class ScoreAccumulator:
    """Accumulates the scores of many forecasts of one task (dataset × horizon) by one forecaster."""

    levels: tuple[float, ...]
    mase: list[float] = field(default_factory=list)
    abs_errors: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    """Signed errors of the median, forecast − actual."""
    wql_num: float = 0.0
    wql_den: float = 0.0
    inside: int = 0
    counted: int = 0

    def add(self, y: FloatArray, q: FloatArray, scale: float) -> None:
        """One forecast: y (H,), quantiles q (Q, H) in ``levels`` order; ``scale`` from :func:`mase_scale`."""
        ok = np.isfinite(y) & np.isfinite(q).all(axis=0)
        if not ok.any():
            return
        y, q = y[ok], q[:, ok]
        mid = q[self.levels.index(0.5)]
        err = np.abs(y - mid)
        self.abs_errors.extend(err.tolist())
        self.errors.extend((mid - y).tolist())
        if math.isfinite(scale) and scale > 0:
            self.mase.append(float(err.mean()) / scale)
        self.wql_num += float(2.0 * pinball(y, q, self.levels).sum() / len(self.levels))
        self.wql_den += float(np.abs(y).sum())
        lo, hi = q[self.levels.index(0.1)], q[self.levels.index(0.9)]
        self.inside += int(((y >= lo) & (y <= hi)).sum())
        self.counted += int(y.size)

    def summary(self) -> dict[str, float]:
        """The scores; NaN where nothing was counted.

        >>> acc = ScoreAccumulator((0.1, 0.5, 0.9))
        >>> acc.add(np.array([10.0, 12.0]), np.array([[9.0, 9.0], [11.0, 11.0], [13.0, 13.0]]), scale=2.0)
        >>> s = acc.summary()
        >>> s["mae"], s["mase"], s["error_mean"], s["max_error"], s["min_error"], s["coverage_80"]
        (1.0, 0.5, 0.0, 1.0, -1.0, 1.0)
        """
        e = np.asarray(self.errors, dtype=np.float64)
        return {
            "mase": float(np.mean(self.mase)) if self.mase else math.nan,
            "wql": self.wql_num / self.wql_den if self.wql_den > 0 else math.nan,
            "coverage_80": self.inside / self.counted if self.counted else math.nan,
            "mae": float(np.mean(self.abs_errors)) if self.abs_errors else math.nan,
            "error_mean": float(e.mean()) if e.size else math.nan,
            "error_median": float(np.median(e)) if e.size else math.nan,
            "error_std": float(e.std()) if e.size else math.nan,
            "max_error": float(e.max()) if e.size else math.nan,
            "min_error": float(e.min()) if e.size else math.nan,
            "forecasts": float(len(self.mase)),
        }


def geometric_mean(values: Sequence[float]) -> float:
    """Geometric mean of the finite positive values (NaN if none).

    >>> round(geometric_mean([1.0, 4.0]), 6)
    2.0
    """
    v = np.array([x for x in values if math.isfinite(x) and x > 0])
    return float(np.exp(np.log(v).mean())) if v.size else math.nan


def study_metrics(actual: FloatArray, forecast: FloatArray) -> dict[str, float]:
    """The metrics the original electricity study reported, with error = forecast − actual."""
    err = forecast - actual
    return {
        "pred_mean": float(np.mean(forecast)),
        "pred_median": float(np.median(forecast)),
        "pred_std": float(np.std(forecast)),
        "error_mean": float(np.mean(err)),
        "error_median": float(np.median(err)),
        "error_std": float(np.std(err)),
        "mae": float(np.mean(np.abs(err))),
        "max_error": float(np.max(err)),
        "min_error": float(np.min(err)),
        "normalised_mae": float(np.mean(np.abs(err)) / np.mean(np.abs(actual))),
        "normalised_error_mean": float(np.mean(err) / np.mean(np.abs(actual))),
    }
