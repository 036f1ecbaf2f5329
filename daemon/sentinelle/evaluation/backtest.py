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
4. **Report** (:func:`write_report`): ``report.json``, ``report.md`` and one PNG
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

import datetime as dt
import json
import logging
import math
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

_COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9")
"""Matplotlib's default cycle without its grey (C7), which is the history's colour."""
_ERROR_KEYS = ("mae", "error_mean", "error_median", "error_std", "max_error", "min_error")
_SCORE_KEYS = ("mase", "wql", "coverage_80")


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
        overall[key] = {name: {k: a.summary()[k] for k in (*_SCORE_KEYS, "forecasts")} for name, a in pooled.items()}
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


# -- the report ------------------------------------------------------------------------


def write_report(
    result: BacktestResult, out_dir: Path, *, title: str = "Backtest", meta: Mapping[str, Any] | None = None
) -> list[Path]:
    """``report.json``, ``report.md`` and ``plots/<tag>.png`` in ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "plots").mkdir(exist_ok=True)
    w = result.windows
    plots: dict[str, Any] = {}
    written: list[Path] = []
    for k, s in enumerate(w.series):
        rows = np.flatnonzero(w.row_series == k)
        if not len(rows) or not result.forecasts:
            continue
        i = int(rows[-1])  # the tag's latest origin: the most recent behaviour of the plant
        path = out_dir / "plots" / f"{_slug(s.name)}.png"
        plot_origin(
            s, int(w.origin_index[i]), w.targets[i], {n: q[i] for n, q in result.forecasts.items()}, result.plan, path
        )
        written.append(path)
        median = LEVELS.index(0.5)
        plots[s.name] = {
            "file": str(path.relative_to(out_dir)),
            "origin": _iso(float(w.origin_ts[i])),
            "actual": _clean(w.targets[i]),
            "forecasts": {
                n: {"q10": _clean(q[i, 0]), "q50": _clean(q[i, median]), "q90": _clean(q[i, -1])}
                for n, q in result.forecasts.items()
            },
        }
    plan = result.plan
    doc = {
        "title": title,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        **({"meta": dict(meta)} if meta else {}),
        "plan": {
            "horizons": list(plan.horizons),
            "origins_per_series": plan.origins,
            "start": _iso(plan.start) if plan.start is not None else None,
            "end": _iso(plan.end) if plan.end is not None else None,
            "context_steps": plan.context_steps,
            "season": plan.season,
            "levels": list(LEVELS),
            "error": "forecast − actual (median)",
        },
        "series": {
            s.name: {
                "period_s": s.period_s,
                "origins": int((w.row_series == k).sum()),
                "first_origin": _first_last_origin(w, k)[0],
                "last_origin": _first_last_origin(w, k)[1],
            }
            for k, s in enumerate(w.series)
        },
        "forecasters": list(result.forecasts),
        "failures": result.failures,
        "timings_s": result.timings_s,
        "overall": result.overall,
        "scores": result.scores,
        "plots": plots,
    }
    json_path = out_dir / "report.json"
    json_path.write_text(json.dumps(_json_safe(doc), indent=2) + "\n", encoding="utf-8")
    md_path = out_dir / "report.md"
    md_path.write_text(_markdown(doc), encoding="utf-8")
    return [json_path, md_path, *written]


def plot_origin(
    series: Series,
    origin: int,
    target: FloatArray,
    quantiles: Mapping[str, FloatArray],
    plan: BacktestPlan,
    path: Path,
) -> None:
    """One panel per forecaster: recent history, the actual future, the median and the 80 % band.

    Drawn on a bare :class:`matplotlib.figure.Figure` with the Agg canvas — no
    pyplot, so no global state, no GUI backend and nothing left open.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    h = plan.horizon
    back = min(plan.context_steps, origin, max(3 * h, 48))
    past_t = _datetimes(series.timestamps[origin - back : origin])
    future_t = _datetimes(series.timestamps[origin : origin + h])
    past = series.values[origin - back : origin]
    names = list(quantiles)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(5.2 * cols, 3.4 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    median = LEVELS.index(0.5)
    for j, name in enumerate(names):
        ax = axes[j // cols][j % cols]
        q = quantiles[name]
        color = _COLORS[j % len(_COLORS)]
        ax.plot(past_t, past, color="0.55", lw=1.0, label="history")
        ax.plot(future_t, target[:h], color="black", lw=1.4, label="actual")
        ax.fill_between(future_t, q[0, :h], q[-1, :h], color=color, alpha=0.25, lw=0, label="80 % band")
        ax.plot(future_t, q[median, :h], color=color, lw=1.6, label="median forecast")
        ax.axvline(future_t[0], color="0.3", lw=0.8, ls=":")
        err = q[median, :h] - target[:h]
        mae = float(np.nanmean(np.abs(err))) if np.isfinite(err).any() else math.nan
        ax.set_title(f"{name} — MAE {mae:.4g}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        for label in ax.get_xticklabels():
            label.set_rotation(30)
            label.set_horizontalalignment("right")
    # The y range follows the data and the medians, not the widest band: one baseline's band
    # growing with the horizon would otherwise flatten every panel (bands are clipped instead).
    seen = np.concatenate([past, target[:h], *(q[median, :h] for q in quantiles.values())])
    seen = seen[np.isfinite(seen)]
    if seen.size:
        lo, hi = float(seen.min()), float(seen.max())
        pad = 0.15 * (hi - lo) if hi > lo else max(abs(hi) * 0.01, 1e-6)
        axes[0][0].set_ylim(lo - pad, hi + pad)
    for j in range(len(names), rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    axes[0][0].legend(fontsize=8, loc="best")
    unit = f" [{series.unit}]" if series.unit else ""
    fig.suptitle(f"{series.name}{unit}: forecast from {_iso(float(series.timestamps[origin]))}, {h} steps", fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


# -- pieces --------------------------------------------------------------------------


def _gap_free(c: FloatArray) -> FloatArray:
    """Statistical baselines need gap-free input: drop leading NaNs, interpolate the rest."""
    idx = np.flatnonzero(np.isfinite(c))
    if idx.size == 0:
        return np.zeros(0)
    c = c[idx[0] :]
    ok = np.isfinite(c)
    return np.asarray(np.interp(np.arange(len(c)), np.flatnonzero(ok), c[ok]), dtype=np.float64)


def _first_last_origin(w: Windows, k: int) -> tuple[str | None, str | None]:
    ts = w.origin_ts[w.row_series == k]
    return (_iso(float(ts.min())), _iso(float(ts.max()))) if len(ts) else (None, None)


def _datetimes(ts: FloatArray) -> list[dt.datetime]:
    return [dt.datetime.fromtimestamp(float(t), dt.UTC).replace(tzinfo=None) for t in ts]


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "series"


def _clean(values: FloatArray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64).tolist()]


def _json_safe(value: Any) -> Any:
    """JSON has no NaN: non-finite numbers become null."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.4g}"


def _markdown(doc: dict[str, Any]) -> str:
    plan = doc["plan"]
    names = doc["forecasters"]
    lines = [f"# {doc['title']}", ""]
    lines.append(
        f"Rolling-origin backtest, created {doc['created']}.  Horizons {plan['horizons']} steps, "
        f"up to {plan['origins_per_series']} origins per series"
        + (f" from {plan['start']}" if plan["start"] else "")
        + (f" until {plan['end']}" if plan["end"] else "")
        + f"; context {plan['context_steps']} steps; season {plan['season']} steps.  "
        "Errors are *forecast − actual* of the median; MASE is scaled by the context's mean absolute "
        "seasonal difference; WQL is the weighted quantile loss over the levels 0.1 … 0.9; coverage is the "
        "share of actual values inside the 10–90 % band (ideal 0.80)."
    )
    lines.append("")
    for key, value in doc.get("meta", {}).items():
        lines.append(f"* {key}: {value}")
    for name, why in doc["failures"].items():
        lines.append(f"* **{name} failed**: {why}")
    lines.append("")
    lines.append("## All tags (unit-free scores)")
    lines.append("")
    for h, per in doc["overall"].items():
        lines.append(f"### {h}")
        lines.append("")
        lines.append("| forecaster | MASE | WQL | coverage 80 % | forecasts |")
        lines.append("|---|---|---|---|---|")
        for n in names:
            m = per.get(n, {})
            lines.append(
                f"| {n} | {_fmt(m.get('mase'))} | {_fmt(m.get('wql'))} | {_fmt(m.get('coverage_80'))} | "
                f"{_fmt(m.get('forecasts'))} |"
            )
        lines.append("")
    lines.append("## Per tag")
    lines.append("")
    for tag, per_h in doc["scores"].items():
        info = doc["series"].get(tag, {})
        lines.append(f"### {tag}")
        lines.append("")
        lines.append(
            f"{info.get('origins')} origins, {info.get('first_origin')} … {info.get('last_origin')}, "
            f"period {info.get('period_s')} s."
        )
        lines.append("")
        for h, per in per_h.items():
            lines.append(f"**{h}**")
            lines.append("")
            lines.append(
                "| forecaster | MAE | error mean | error median | error std | max error | min error | "
                "MASE | WQL | coverage 80 % |"
            )
            lines.append("|---|---|---|---|---|---|---|---|---|---|")
            for n in names:
                m = per.get(n, {})
                cells = [_fmt(m.get(k)) for k in (*_ERROR_KEYS, *_SCORE_KEYS)]
                lines.append(f"| {n} | " + " | ".join(cells) + " |")
            lines.append("")
        plot = doc["plots"].get(tag)
        if plot:
            lines.append(f"![{tag}, origin {plot['origin']}]({plot['file']})")
            lines.append("")
    return "\n".join(lines) + "\n"
