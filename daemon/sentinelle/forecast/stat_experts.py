"""Cheap statistical experts beside the model: what M4/M5 combinations mix into a learned forecaster.

Why: forecast combinations — a learned model with simple, *different* statistical
forecasters, weighted by fixed shares — won the M4 and M5 competitions.  These experts are
fitted in each window's own context (numpy, vectorised over the batch, no parameters
learned offline), and :func:`~sentinelle.forecast.long_season.blend` moves the model's
quantiles by ``weight · (expert − median)``: the median becomes the convex mix, the spread
is kept.  Whether any of them earns a share is decided on the validation mirror of the
forecast benchmark (``bench/forecast_experts.py``, rule in
``docs/results/forecast-accuracy/experts/RULE.md``), never on its held-out tasks.

The experts (``kind``):

* ``ses``: simple exponential smoothing, the smoothing constant picked per window from
  :data:`ALPHAS` by the context's one-step absolute errors;
* ``damped``: the damped-trend (additive) family — SES and Holt with damping
  φ ∈ {0.8, 0.9, 0.98} — the member picked the same way;
* ``theta``: the Theta method (Hyndman & Billah 2003): the SES forecast plus half the
  context's least-squares slope, ``b/2 · (k − 1 + 1/α)`` at step k;
* ``ar``: a direct linear forecaster: the next H values minus the last one, regressed on
  the last ``ar_lags`` values minus the last one (ridge, one fit per window on its own
  context, gaps interpolated first) — it sees oscillations (control loops) that smoothing
  does not.

The first three run on the deseasonalised context when its autocorrelation has a peak
above :data:`SEASON_MIN_ACF` at a lag in 2..``max_season_steps`` (classical additive
decomposition: a centred moving average, mean-zero phase indices), and put the season back
on the forecast — so on daily load they forecast the weekly cycle instead of flattening it.

>>> t = np.arange(512.0)
>>> x = (0.01 * t)[None, :]
>>> f = stat_expert(x, 4, StatExpert(kind="damped", weight=1.0))
>>> bool(np.abs(f[0] - 0.01 * (512 + np.arange(4))).max() < 0.01)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..records import FloatArray

__all__ = ["ALPHAS", "SEASON_MIN_ACF", "Kind", "StatExpert", "deseasonalise", "fill_gaps", "stat_expert"]

ALPHAS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
"""Smoothing constants the in-context one-step errors choose from."""
DAMPING = (0.8, 0.9, 0.98)
"""Trend damping factors of the ``damped`` family (with trend smoothing ``TREND_SHARE · α``)."""
TREND_SHARE = 0.1
SEASON_MIN_ACF = 0.3
"""Least autocorrelation of the seasonal peak for the context to be deseasonalised."""
WARMUP_STEPS = 32
"""One-step errors of the first steps (while the level settles) do not choose the member."""

Kind = Literal["ses", "damped", "theta", "ar"]


@dataclass(frozen=True, slots=True)
class StatExpert:
    """Settings of the statistical expert (steps are the tag's sample steps)."""

    kind: Kind = "theta"
    weight: float = 0.0
    """Its share in the median at every horizon step (0: off)."""
    max_season_steps: int = 64
    """Longest season removed before smoothing (the smoothing branch's reach)."""
    ar_lags: int = 16
    """Lags of the ``ar`` expert."""
    ar_ridge: float = 0.1
    """Ridge of the ``ar`` expert, relative to its features' mean square."""


def _acf(x: FloatArray, max_lag: int) -> FloatArray:
    """Autocorrelation (B, max_lag + 2) of NaN-gapped rows, each lag's sum divided by its overlapping pairs."""
    seen = np.isfinite(x)
    n = x.shape[1]
    mean = np.where(seen, x, 0.0).sum(1, keepdims=True) / np.maximum(seen.sum(1, keepdims=True), 1)
    centred = np.where(seen, x - mean, 0.0)
    acov = np.fft.irfft(np.abs(np.fft.rfft(centred, n=2 * n)) ** 2, n=2 * n)[:, : max_lag + 2]
    m = seen.astype(np.float64)
    pairs = np.fft.irfft(np.abs(np.fft.rfft(m, n=2 * n)) ** 2, n=2 * n)[:, : max_lag + 2]
    acov = acov / np.maximum(np.round(pairs), 1.0)
    return np.asarray(acov / np.maximum(acov[:, :1], 1e-300), dtype=np.float64)


def season_of(x: FloatArray, max_season_steps: int) -> np.ndarray:
    """Each row's season: the highest local autocorrelation peak in 2..max above :data:`SEASON_MIN_ACF`, else 1
    (on a clean cycle its multiples peak as high; any of them deseasonalises it)."""
    top = min(max_season_steps, x.shape[1] // 3)
    if top < 2:
        return np.ones(x.shape[0], dtype=np.intp)
    a = _acf(x, top)
    mid, left, right = a[:, 2 : top + 1], a[:, 1:top], a[:, 3 : top + 2]
    score = np.where((mid >= left) & (mid >= right) & (mid > SEASON_MIN_ACF), mid, -np.inf)
    j = np.argmax(score, axis=1)
    found = np.isfinite(score[np.arange(len(x)), j])
    return np.where(found, j + 2, 1).astype(np.intp)


def _indices(x: FloatArray, period: int, horizon: int) -> tuple[FloatArray, FloatArray]:
    """Additive seasonal indices of rows with one ``period``: for the context (B, L) and the future (B, H)."""
    b, n = x.shape
    ok = np.isfinite(x)
    total = np.concatenate([np.zeros((b, 1)), np.cumsum(np.where(ok, x, 0.0), axis=1)], axis=1)
    count = np.concatenate([np.zeros((b, 1)), np.cumsum(ok, axis=1)], axis=1)
    t = np.arange(n)
    hi = np.minimum(t - period // 2 + period, n)
    lo = hi - period
    inside = lo >= 0  # a whole period around t
    lo = np.maximum(lo, 0)
    seen = count[:, hi] - count[:, lo]
    trend = (total[:, hi] - total[:, lo]) / np.maximum(seen, 1)
    detrended = np.where(ok & inside[None, :] & (seen > 0), x - trend, np.nan)
    phase = (t - n) % period
    s = np.zeros((b, period))
    for j in range(period):
        col = detrended[:, phase == j]
        has = np.isfinite(col)
        s[:, j] = np.where(has, col, 0.0).sum(1) / np.maximum(has.sum(1), 1)
    s -= s.mean(axis=1, keepdims=True)
    return s[:, phase], s[:, np.arange(horizon) % period]


def deseasonalise(x: FloatArray, horizon: int, max_season_steps: int) -> tuple[FloatArray, FloatArray]:
    """The rows without their season (B, L) and the season to add to their forecasts (B, H); zero where none."""
    period = season_of(x, max_season_steps)
    past = np.zeros_like(x)
    future = np.zeros((x.shape[0], horizon))
    for p in np.unique(period):
        if p > 1:
            rows = period == p
            past[rows], future[rows] = _indices(x[rows], int(p), horizon)
    return x - past, future


def _smoothing(x: FloatArray, horizon: int, trend: bool) -> tuple[FloatArray, FloatArray]:
    """The member of the SES (or damped-trend) family with the lowest in-context one-step MAE, per row:
    its forecast (B, H) and its smoothing constant (B,)."""
    members = [(a, 0.0, 1.0) for a in ALPHAS]
    if trend:
        members += [(a, TREND_SHARE * a, phi) for a in ALPHAS for phi in DAMPING]
    alpha = np.array([m[0] for m in members])
    beta = np.array([m[1] for m in members])  # trend gain per unit one-step error (α·β in Holt's notation)
    phi = np.array([m[2] for m in members])
    b, n = x.shape
    level = np.full((b, len(members)), np.nan)
    slope = np.zeros((b, len(members)))
    error = np.zeros((b, len(members)))
    for t in range(n):
        xt = x[:, t : t + 1]
        ok = np.isfinite(xt)
        fresh = np.isnan(level)
        pred = level + phi * slope
        e = np.where(ok & ~fresh, xt - pred, 0.0)
        if t >= WARMUP_STEPS:
            error += np.abs(e)
        level = np.where(fresh, np.where(ok, xt, np.nan), pred + alpha * e)
        slope = np.where(fresh, 0.0, phi * slope + beta * e)
    best = np.argmin(np.where(np.isfinite(level), error, np.inf), axis=1)
    rows = np.arange(b)
    steps = np.arange(1, horizon + 1)
    damp = np.cumsum(phi[best, None] ** steps[None, :], axis=1)  # Σ φ^i, i = 1..k
    forecast = level[rows, best][:, None] + slope[rows, best][:, None] * damp
    return forecast, alpha[best]


def _slope(x: FloatArray) -> FloatArray:
    """Least-squares slope per step of each row's finite values (0 where fewer than two)."""
    ok = np.isfinite(x)
    t = np.broadcast_to(np.arange(x.shape[1], dtype=np.float64), x.shape)
    n = np.maximum(ok.sum(1), 1)
    tm = np.where(ok, t, 0.0).sum(1) / n
    xm = np.where(ok, x, 0.0).sum(1) / n
    dt = np.where(ok, t - tm[:, None], 0.0)
    var = (dt**2).sum(1)
    cov = (dt * np.where(ok, x - xm[:, None], 0.0)).sum(1)
    return np.asarray(np.where(var > 0, cov / np.maximum(var, 1e-300), 0.0), dtype=np.float64)


def _direct_ar(x: FloatArray, horizon: int, lags: int, ridge: float) -> FloatArray:
    """Direct ridge regression of the next ``horizon`` values on the last ``lags`` ones, all relative to the last
    value, fitted on the row's own context; NaN for rows with a gap in their last ``lags`` steps or too few pairs."""
    b = x.shape[0]
    pairs = sliding_window_view(x, lags + horizon, axis=1)  # (B, n, lags + H)
    anchor = pairs[:, :, lags - 1 : lags]
    feats, targets = pairs[:, :, :lags] - anchor, pairs[:, :, lags:] - anchor
    ok: np.ndarray = np.asarray(np.isfinite(feats).all(2) & np.isfinite(targets).all(2))
    feats = np.where(ok[:, :, None], feats, 0.0)
    targets = np.where(ok[:, :, None], targets, 0.0)
    design = np.concatenate([feats[:, :, :-1], ok[:, :, None].astype(np.float64)], axis=2)  # the anchor's own 0 dropped
    gram = np.einsum("bnp,bnq->bpq", design, design)
    cross = np.einsum("bnp,bnh->bph", design, targets)
    p = lags - 1
    scale = np.maximum(np.einsum("bii->b", gram[:, :p, :p]) / max(p, 1), 1e-12)
    reg = np.zeros_like(gram)
    idx = np.arange(p)
    reg[:, idx, idx] = ridge * scale[:, None]
    reg[:, p, p] = 1e-9 * scale
    enough = ok.sum(1) > 2 * (p + 1)
    gram[~enough] = np.eye(p + 1)  # rows without enough pairs: solvable, answered NaN below
    coef = np.linalg.solve(gram + reg, cross)
    last = x[:, -lags:]
    z = np.concatenate([last[:, :-1] - last[:, -1:], np.ones((b, 1))], axis=1)
    forecast = np.einsum("bp,bph->bh", np.nan_to_num(z), coef) + last[:, -1:]
    good = enough & np.isfinite(z).all(1)
    return np.asarray(np.where(good[:, None], forecast, np.nan), dtype=np.float64)


def fill_gaps(x: FloatArray) -> FloatArray:
    """Interior gaps linearly interpolated, trailing ones held at the last value; leading ones stay NaN.

    >>> fill_gaps(np.array([[np.nan, 1.0, np.nan, 3.0, np.nan]])).tolist()
    [[nan, 1.0, 2.0, 3.0, 3.0]]
    """
    ok = np.isfinite(x)
    n = x.shape[1]
    t = np.arange(n)
    prev = np.maximum.accumulate(np.where(ok, t, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(ok, t, n)[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(x.shape[0])[:, None]
    has_prev, has_next = prev >= 0, nxt < n
    left = x[rows, np.maximum(prev, 0)]
    right = x[rows, np.minimum(nxt, n - 1)]
    frac = np.where(has_next & has_prev, (t - prev) / np.maximum(nxt - prev, 1), 0.0)
    filled = np.where(has_next & has_prev, left + frac * (right - left), left)
    return np.asarray(np.where(ok, x, np.where(has_prev, filled, np.nan)), dtype=np.float64)


def stat_expert(contexts: FloatArray, horizon: int, settings: StatExpert) -> FloatArray:
    """Windows (B, L), NaN for gaps → the expert's forecast (B, horizon); NaN for rows it cannot answer.

    >>> x = np.array([[1.0, 2.0] * 64])
    >>> np.round(stat_expert(x, 3, StatExpert(kind="ses", weight=1.0)), 6).tolist()
    [[1.0, 2.0, 1.0]]
    """
    x = np.asarray(contexts, dtype=np.float64)
    out = np.full((x.shape[0], horizon), np.nan)
    if x.shape[0] == 0 or settings.weight <= 0:
        return out
    if settings.kind == "ar":
        if x.shape[1] < settings.ar_lags + horizon + 1 or settings.ar_lags < 2:
            return out
        return _direct_ar(fill_gaps(x), horizon, settings.ar_lags, settings.ar_ridge)
    plain, season = deseasonalise(x, horizon, settings.max_season_steps)
    forecast, alpha = _smoothing(plain, horizon, trend=settings.kind == "damped")
    if settings.kind == "theta":
        steps = np.arange(1, horizon + 1)
        forecast = forecast + 0.5 * _slope(plain)[:, None] * (steps[None, :] - 1 + 1 / alpha[:, None])
    return np.asarray(forecast + season, dtype=np.float64)
