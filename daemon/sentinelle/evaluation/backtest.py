"""Backtests: rolling-origin forecasts over a period, base vs adapted model vs baselines → a report folder.

What ``sentinelle backtest`` runs, so that a plant engineer sees on the plant's
own history how good each forecaster is before trusting its alerts.

1. **Origins** (:func:`cut_windows`): per series, ``origins`` forecast origins
   evenly spaced over ``[start, end)`` such that every origin has at least
   ``min_context_steps`` steps of history and its longest horizon ends before
   ``end``.  The context is the ``context_steps`` steps before the origin (NaN
   padded on the left when shorter), the target the ``max(horizons)`` steps from
   the origin on.  Every forecaster gets exactly the same windows.
2. **Forecasts**: each forecaster maps contexts (n, context_steps) to quantiles
   (n, 9, H) at the levels 0.1 … 0.9 (:data:`LEVELS`).  The base model and the
   adapted model share one loaded checkpoint (``engine.ModelForecaster``, the
   adapter picked per row by asset); the baselines are seasonal naive, damped
   Holt and, when ``statsforecast`` is installed, AutoETS.
3. **Scores** (:mod:`.scores`), per tag and horizon ``h`` over the first ``h``
   steps of every origin: MAE; mean, median, std, max and min of the median's
   error (*forecast − actual*); MASE (scale: the context's mean absolute
   seasonal difference); WQL; 80 % coverage.  ``overall`` pools every tag for
   the unit-free scores (MASE, WQL, coverage).
4. **Report** (:func:`.backtest_report.write_report`): ``report.json``, ``report.md`` and one PNG
   per tag (``plots/<tag>.png``): for the tag's last origin, one panel per
   forecaster with the recent history, the actual future, the median and the
   80 % band.

A backtest is only honest on data the adapter never trained on: the CLI's
default ``start`` is the end of the adapter's training data (its manifest).

>>> import numpy as np
>>> from sentinelle.evaluation.datasets import Series
>>> s = Series("t", "x", np.arange(40.0), np.arange(40.0), 1.0)
>>> w = cut_windows([s], BacktestPlan(horizons=(1, 4), origins=3, context_steps=8, min_context_steps=8))
>>> w.origin_index.tolist(), w.contexts.shape, w.targets[0].tolist()
([8, 22, 36], (3, 8), [8.0, 9.0, 10.0, 11.0])
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError
from ..forecast.baselines import HoltForecaster, NaiveForecaster
from ..records import FloatArray
from .datasets import Series
from .scores import ScoreAccumulator, mase_scale

log = logging.getLogger(__name__)

LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Quantile levels every forecaster of a backtest returns."""

ForecastFn = Callable[[FloatArray], FloatArray]
"""Contexts (n, context_steps) → quantiles (n, len(LEVELS), H) in the series' units."""

IntArray = npt.NDArray[np.int64]

SCORE_KEYS = ("mase", "wql", "coverage_80")
"""The unit-free scores, pooled over every tag in ``overall``."""


@dataclass(frozen=True, slots=True)
class BacktestPlan:
    """Where to put origins and what to score."""

    horizons: tuple[int, ...] = (1, 16)
    origins: int = 20
    """Origins per series (fewer when the period is short)."""
    start: float | None = None
    """First allowed origin, epoch seconds (None: as early as the context allows)."""
    end: float | None = None
    """Targets must lie before this, epoch seconds (None: the end of the data)."""
    context_steps: int = 512
    season: int = 1
    """Season of seasonal naive and of the MASE scale, in steps."""
    min_context_steps: int = 32

    @property
    def horizon(self) -> int:
        return max(self.horizons)


@dataclass(frozen=True, slots=True)
class Windows:
    """The forecast windows of a backtest, one row per (series, origin)."""

    series: list[Series]
    row_series: IntArray
    origin_index: IntArray
    origin_ts: FloatArray
    contexts: FloatArray
    targets: FloatArray


@dataclass(slots=True)
class BacktestResult:
    plan: BacktestPlan
    windows: Windows
    forecasts: dict[str, FloatArray]
    scores: dict[str, dict[str, dict[str, dict[str, float]]]]
    """tag → ``h<horizon>`` → forecaster → scores."""
    overall: dict[str, dict[str, dict[str, float]]]
    """``h<horizon>`` → forecaster → unit-free scores pooled over tags."""
    timings_s: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def cut_windows(series: Sequence[Series], plan: BacktestPlan) -> Windows:
    """Contexts and targets at evenly spaced origins (see the module docstring)."""
    if not plan.horizons or min(plan.horizons) < 1:
        raise ConfigError("horizons must be ≥ 1", field="horizons")
    if plan.origins < 1:
        raise ConfigError("at least one origin is needed", field="origins")
    if plan.season < 1:
        raise ConfigError(f"a season is at least 1 step, not {plan.season}", field="season")
    if plan.context_steps < 1:
        raise ConfigError(f"at least one step of context is needed, not {plan.context_steps}", field="context")
    h, c = plan.horizon, plan.context_steps
    rows: list[tuple[int, int]] = []
    for k, s in enumerate(series):
        ts = s.timestamps
        first = max(plan.min_context_steps, 0 if plan.start is None else int(np.searchsorted(ts, plan.start - 1e-9)))
        stop = len(s) if plan.end is None else int(np.searchsorted(ts, plan.end - 1e-9))
        last = stop - h
        if last < first:
            log.warning(
                "%s: no origin in the period with %d steps of context and %d ahead", s.name, plan.min_context_steps, h
            )
            continue
        picks = np.unique(np.linspace(first, last, min(plan.origins, last - first + 1)).round().astype(np.int64))
        rows.extend((k, int(o)) for o in picks)
    if not rows:
        raise ConfigError(
            f"no series has {plan.min_context_steps} steps of history and {h} steps ahead in the period", field="data"
        )
    contexts = np.full((len(rows), c), np.nan)
    targets = np.full((len(rows), h), np.nan)
    for i, (k, o) in enumerate(rows):
        values = series[k].values
        past = values[max(0, o - c) : o]
        contexts[i, c - len(past) :] = past
        targets[i] = values[o : o + h]
    row_series = np.array([k for k, _ in rows], dtype=np.int64)
    origin_index = np.array([o for _, o in rows], dtype=np.int64)
    origin_ts = np.array([series[k].timestamps[o] for k, o in rows], dtype=np.float64)
    return Windows(list(series), row_series, origin_index, origin_ts, contexts, targets)


def run_backtest(series: Sequence[Series], forecasters: Mapping[str, ForecastFn], plan: BacktestPlan) -> BacktestResult:
    """Forecast every window with every forecaster and score them per tag and horizon.

    A forecaster that raises is reported in ``failures`` and left out of the
    scores; the others still run.
    """
    windows = cut_windows(series, plan)
    forecasts: dict[str, FloatArray] = {}
    timings: dict[str, float] = {}
    failures: dict[str, str] = {}
    expected = (len(windows.targets), len(LEVELS), plan.horizon)
    for name, fn in forecasters.items():
        t = time.perf_counter()
        try:
            q = np.asarray(fn(windows.contexts), dtype=np.float64)
            if q.shape != expected:
                raise ValueError(f"returned shape {q.shape}, expected {expected}")
        except Exception as e:  # a failing forecaster must not hide the others' results
            log.error("backtest: forecaster %r failed: %s", name, e)
            failures[name] = str(e)
            continue
        timings[name] = round(time.perf_counter() - t, 3)
        forecasts[name] = q
    scores: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    overall: dict[str, dict[str, dict[str, float]]] = {}
    scales = np.array([mase_scale(c, plan.season) for c in windows.contexts])
    for h in plan.horizons:
        key = f"h{h}"
        pooled = {name: ScoreAccumulator(LEVELS) for name in forecasts}
        for k, s in enumerate(windows.series):
            rows = np.flatnonzero(windows.row_series == k)
            if not len(rows):
                continue
            per = scores.setdefault(s.name, {}).setdefault(key, {})
            for name, q in forecasts.items():
                acc = ScoreAccumulator(LEVELS)
                for i in rows.tolist():
                    acc.add(windows.targets[i, :h], q[i, :, :h], float(scales[i]))
                    pooled[name].add(windows.targets[i, :h], q[i, :, :h], float(scales[i]))
                per[name] = acc.summary()
        overall[key] = {name: {k: a.summary()[k] for k in (*SCORE_KEYS, "forecasts")} for name, a in pooled.items()}
    return BacktestResult(plan, windows, forecasts, scores, overall, timings, failures)


# -- forecasters ---------------------------------------------------------------------


def baseline_forecasters(horizon: int, season: int, skip: Sequence[str] = ()) -> dict[str, ForecastFn]:
    """Seasonal naive, AutoETS (when statsforecast is installed) and damped Holt, at :data:`LEVELS`."""
    out: dict[str, ForecastFn] = {}
    if "seasonal_naive" not in skip:
        out["seasonal_naive"] = NaiveForecaster(LEVELS, horizon, season if season > 1 else 0).forecast
    if "autoets" not in skip:
        try:
            import statsforecast  # noqa: F401  (only whether it is there)
        except ImportError:
            log.info("statsforecast is not installed: AutoETS left out of the backtest")
        else:
            out["autoets"] = lambda contexts: autoets(contexts, horizon, season)
    if "holt" not in skip:
        out["holt"] = HoltForecaster(LEVELS, horizon).forecast
    return out


def autoets(contexts: FloatArray, horizon: int, season: int) -> FloatArray:
    """statsforecast's AutoETS per window (gaps interpolated), its prediction intervals read as quantiles.

    The central 20/40/60/80 % intervals give the levels 0.1 … 0.9 around the
    mean.  A window AutoETS cannot fit gets NaN (left out of the scores).
    """
    from statsforecast.models import AutoETS

    out = np.full((len(contexts), len(LEVELS), horizon), np.nan)
    for i, c in enumerate(contexts):
        y = _gap_free(c)
        if len(y) < 3:
            continue
        try:
            with warnings.catch_warnings():
                # Numerical warnings of ETS fits on flat or short windows; the fit still returns.
                warnings.simplefilter("ignore", RuntimeWarning)
                f = AutoETS(season_length=season if len(y) > 2 * season else 1).forecast(
                    y=y, h=horizon, level=[20, 40, 60, 80]
                )
        except Exception as e:  # statsforecast raises bare Exceptions on degenerate windows
            log.debug("AutoETS failed on window %d: %s", i, e)
            continue
        out[i] = np.stack(
            [f["lo-80"], f["lo-60"], f["lo-40"], f["lo-20"], f["mean"], f["hi-20"], f["hi-40"], f["hi-60"], f["hi-80"]]
        )
    return out


def model_forecasters(
    base: Path,
    horizon: int,
    *,
    adapter: Path | None = None,
    device: str = "cpu",
    threads: int | None = 2,
) -> dict[str, ForecastFn]:
    """``base`` (the checkpoint) and, with ``adapter``, ``adapted`` — one loaded model for both.

    Raises :class:`~sentinelle.errors.ModelError` naming the file when the base or
    the adapter is unusable (wrong base, corrupt files): a backtest that silently
    fell back to the base would report the base's scores as the adapter's.
    """
    from ..forecast.engine import ModelForecaster

    model = ModelForecaster(base, LEVELS, horizon, device=device, threads=threads)
    out: dict[str, ForecastFn] = {"base": model.forecast}
    if adapter is not None:
        asset = "adapted"
        model.add_adapter(asset, adapter)
        out["adapted"] = lambda contexts: model.forecast(contexts, [asset] * len(contexts))
    return out


def _gap_free(c: FloatArray) -> FloatArray:
    """Statistical baselines need gap-free input: drop leading NaNs, interpolate the rest."""
    idx = np.flatnonzero(np.isfinite(c))
    if idx.size == 0:
        return np.zeros(0)
    c = c[idx[0] :]
    ok = np.isfinite(c)
    return np.asarray(np.interp(np.arange(len(c)), np.flatnonzero(ok), c[ok]), dtype=np.float64)
