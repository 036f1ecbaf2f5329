"""A long-season expert beside the model: the context's own cycle beyond the smoothing branch's reach.

Why: the smoothing branch looks for seasons of at most ``smoothing_max_period`` (64) steps,
and the analog branch matches 32-step patterns anywhere in the context; neither copies a
cycle of a few hundred steps forward as a whole.  Daily load with its yearly cycle (lag 364
in a 512-day context), 15-minute data with its daily cycle (96), hourly data with its
weekly one (168) have such a cycle, and over a long horizon it is most of what can be
known: on the validation mirror of the forecast benchmark (electricity 2015–2018, never
scored) the model's 61-day MASE was 1.79 while the context's year, copied forward and
moved to the current level, scored 1.48 alone.

What it computes, per window (numpy, no parameters learned; a few ms per 1,000 windows):

* Candidate lags: the ``candidates`` highest local peaks of the context's autocorrelation
  (normalised per overlapping pair, so that a long lag is not shrunk by its few pairs) in
  ``min_lag``..(L − horizon − ``level_steps`` − ``backtest_origins`` + 1): every candidate is a
  whole forecast away (P > horizon) and can be backtested at ``backtest_origins`` origins.
* The expert for lag P: ``x[T+k−P] + mean(x[T−a..T]) − mean(x[T−P−a..T−P])`` for k = 1..horizon
  (a = ``level_steps``): last cycle's course, moved to the current level.
* In-context backtest at the newest ``backtest_origins`` origins that leave a whole horizon
  inside the context: the lag with the lowest mean absolute error over all steps is kept;
  per step k its error E_k is compared with the flat current level's, R_k (what a
  forecaster without the cycle says).
* Weight per step k: ``weight · clip(1 − E_k / R_k, 0, 1) · min(1, k / ramp_steps)`` — the
  cycle's skill over the flat level in this very context, growing with the horizon (the model
  knows the next steps better: it reads the newest dynamics), 0 where anything is missing.

:func:`blend` then moves the model's quantiles by ``w_k · (expert_k − median_k)``: the
median becomes the convex mix, the spread is kept.  The settings were chosen on the
validation mirror (``bench/forecast_validation.py``), never on the benchmark's tasks.

>>> t = np.arange(512.0)
>>> x = np.sin(2 * np.pi * t / 100)[None, :]
>>> forecast, weight = long_season_expert(x, 64)
>>> round(float(np.abs(forecast[0] - np.sin(2 * np.pi * (512 + np.arange(64)) / 100)).max()), 6)
0.0
>>> bool(weight[0, 0] < weight[0, -1] <= 1.0)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..records import FloatArray

__all__ = ["LongSeason", "blend", "long_season_expert"]


@dataclass(frozen=True, slots=True)
class LongSeason:
    """Settings of the long-season expert (steps are the tag's sample steps)."""

    weight: float = 0.75
    """Largest share of the expert in the median (0: off)."""
    min_lag: int = 65
    """Shortest cycle looked at: the smoothing branch covers 2..64."""
    level_steps: int = 14
    """Steps averaged for the level now and a cycle ago."""
    candidates: int = 8
    """Autocorrelation peaks backtested."""
    backtest_origins: int = 16
    """Newest in-context origins the candidates and the flat level are scored at."""
    ramp_steps: int = 16
    """The weight reaches its full value at this step of the horizon."""


def _acf(x: FloatArray) -> FloatArray:
    """Autocorrelation (B, L) of NaN-gapped rows, each lag's sum divided by its overlapping pairs."""
    seen = np.isfinite(x)
    count = seen.sum(axis=1, keepdims=True)
    mean = np.where(seen, x, 0.0).sum(axis=1, keepdims=True) / np.maximum(count, 1)
    centred = np.where(seen, x - mean, 0.0)
    length = x.shape[1]
    acov = np.fft.irfft(np.abs(np.fft.rfft(centred, n=2 * length)) ** 2, n=2 * length)[:, :length]
    pairs = np.broadcast_to(np.arange(length, 0, -1, dtype=np.float64), acov.shape).copy()
    gappy = ~seen.all(axis=1)
    if gappy.any():  # pairs of observed steps per lag, for the rows with gaps only
        m = seen[gappy].astype(np.float64)
        pairs[gappy] = np.fft.irfft(np.abs(np.fft.rfft(m, n=2 * length)) ** 2, n=2 * length)[:, :length]
    acov = acov / np.maximum(np.round(pairs), 1.0)
    return np.asarray(acov / np.maximum(acov[:, :1], 1e-300), dtype=np.float64)


def _nanmean(a: FloatArray, axis: int) -> FloatArray:
    """Mean over ``axis`` of the finite values; NaN where there is none (no warning)."""
    ok = np.isfinite(a)
    n = ok.sum(axis=axis)
    total = np.where(ok, a, 0.0).sum(axis=axis)
    return np.asarray(np.where(n > 0, total / np.maximum(n, 1), np.nan), dtype=np.float64)


def _plain_mean(a: FloatArray, axis: int) -> FloatArray:
    return np.asarray(a.mean(axis=axis))


class _Levels:
    """Means of the observed values over ``steps`` steps ending (exclusive) anywhere in the rows, by cumulative sums."""

    def __init__(self, x: FloatArray, steps: int) -> None:
        zero = np.zeros((x.shape[0], 1))
        self.total = np.concatenate([zero, np.cumsum(np.nan_to_num(x), axis=1)], axis=1)
        self.seen = np.concatenate([zero, np.cumsum(np.isfinite(x), axis=1)], axis=1)
        self.steps = steps

    def at(self, ends: np.ndarray) -> FloatArray:
        """Mean of ``x[b, e − steps : e]`` for each ``ends[b, …]`` (NaN where nothing was observed)."""
        rows = np.arange(self.total.shape[0]).reshape((-1,) + (1,) * (ends.ndim - 1))
        total = self.total[rows, ends] - self.total[rows, ends - self.steps]
        n = self.seen[rows, ends] - self.seen[rows, ends - self.steps]
        return np.asarray(np.where(n > 0, total / np.maximum(n, 1), np.nan), dtype=np.float64)


def long_season_expert(
    contexts: FloatArray, horizon: int, settings: LongSeason = LongSeason()
) -> tuple[FloatArray, FloatArray]:
    """Windows (B, L), NaN for gaps → the expert's forecast (B, horizon) and its weight per step (B, horizon).

    Rows too short for any candidate, or without a usable one, get weight 0 (forecast NaN).
    The answer for step k does not depend on ``horizon`` beyond the lags it allows, so the
    daemon passes the model's full horizon and keeps the steps it needs.
    """
    x = np.asarray(contexts, dtype=np.float64)
    b, length = x.shape
    s = settings
    forecast = np.full((b, horizon), np.nan)
    weight = np.zeros((b, horizon))
    lo = max(s.min_lag, horizon + 1, 2)
    hi = length - horizon - s.level_steps - s.backtest_origins + 1
    if s.weight <= 0 or b == 0 or hi < lo:
        return forecast, weight
    acf = _acf(x)
    middle = acf[:, lo : hi + 1]
    left = acf[:, lo - 1 : hi]
    right = acf[:, lo + 1 : hi + 2]  # hi + 1 < length: every peak has both neighbours
    score = np.where((middle >= left) & (middle >= right) & (middle > 0), middle, -np.inf)
    k = min(s.candidates, score.shape[1])
    order = np.argsort(-score, axis=1, kind="stable")[:, :k]
    lags = order + lo  # (B, k)
    has = np.isfinite(np.take_along_axis(score, order, axis=1))

    origins = np.arange(length - horizon - s.backtest_origins + 1, length - horizon + 1)  # (O,)
    # The backtest in float32 (half the memory traffic of its (B, O, H) arrays; errors are only compared),
    # and without NaN bookkeeping when the chunk has no gap.
    mean = _plain_mean if np.isfinite(x).all() else _nanmean
    windows = sliding_window_view(x.astype(np.float32), horizon, axis=1)  # windows[b, j] = x[b, j : j + horizon]
    future = windows[:, origins]  # (B, O, H)
    levels = _Levels(x, s.level_steps)
    level_now = levels.at(np.broadcast_to(origins, (b, len(origins))))  # (B, O)
    flat_error = mean(np.abs(future - level_now[:, :, None].astype(np.float32)), 1)  # (B, H)
    rows = np.arange(b)[:, None]
    best = np.full(b, np.inf)
    best_lag = np.zeros(b, dtype=np.intp)
    best_error = np.full((b, horizon), np.nan)
    for j in range(k):
        lag = lags[:, j]
        back = origins[None, :] - lag[:, None]  # (B, O): the origin a cycle earlier
        if not has[:, j].any():
            continue
        moved = (level_now - levels.at(back)).astype(np.float32)
        past = windows[rows, back]  # (B, O, H)
        past += moved[:, :, None]
        past -= future
        error = mean(np.abs(past, out=past), 1)  # (B, H)
        total = mean(error, 1)
        better = has[:, j] & np.isfinite(total) & (total < best)
        best = np.where(better, total, best)
        best_lag = np.where(better, lag, best_lag)
        best_error = np.where(better[:, None], error, best_error)
    found = np.isfinite(best)
    lag = np.where(found, best_lag, lo)
    steps = np.arange(horizon)
    ahead = x[rows, length - lag[:, None] + steps[None, :]]
    shift = levels.at(np.full((b, 1), length)) - levels.at((length - lag)[:, None])
    forecast = np.where(found[:, None], ahead + shift, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        skill = np.clip(1.0 - best_error / flat_error, 0.0, 1.0)
    ramp = np.minimum(1.0, (steps + 1) / max(s.ramp_steps, 1))
    weight = s.weight * skill * ramp[None, :]
    weight = np.where(np.isfinite(forecast) & np.isfinite(weight), weight, 0.0)
    return forecast, weight


def blend(quantiles: FloatArray, forecast: FloatArray, weight: FloatArray, median_index: int) -> FloatArray:
    """Quantiles (B, Q, H) moved by ``weight · (forecast − median)`` per step (B, H): the median becomes
    the convex mix with the expert, the spread around it is kept.

    >>> q = np.array([[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]])
    >>> blend(q, np.array([[3.0, np.nan]]), np.array([[0.5, 0.0]]), 1)[0].tolist()
    [[1.0, 0.0], [2.0, 1.0], [3.0, 2.0]]
    """
    h = quantiles.shape[2]
    w, f = weight[:, :h], forecast[:, :h]
    shift = np.where(w > 0, w * (f - quantiles[:, median_index, :]), 0.0)
    return np.asarray(quantiles + shift[:, None, :], dtype=np.float64)
