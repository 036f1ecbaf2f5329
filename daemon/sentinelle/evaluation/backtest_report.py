"""The backtest's report folder: ``report.json``, ``report.md`` and one plot per tag.

Apart from :mod:`.backtest` (origins, forecasts, scores) because it is presentation: JSON and
Markdown tables of the scores, and for each tag's latest origin one panel per forecaster with the
recent history, the actual future, the median and the 80 % band (matplotlib, Agg canvas).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..records import FloatArray
from .backtest import LEVELS, SCORE_KEYS, BacktestPlan, BacktestResult, Windows
from .datasets import Series

__all__ = ["plot_origin", "write_report"]

_COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9")
"""Matplotlib's default cycle without its grey (C7), which is the history's colour."""
_ERROR_KEYS = ("mae", "error_mean", "error_median", "error_std", "max_error", "min_error")


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
                cells = [_fmt(m.get(k)) for k in (*_ERROR_KEYS, *SCORE_KEYS)]
                lines.append(f"| {n} | " + " | ".join(cells) + " |")
            lines.append("")
        plot = doc["plots"].get(tag)
        if plot:
            lines.append(f"![{tag}, origin {plot['origin']}]({plot['file']})")
            lines.append("")
    return "\n".join(lines) + "\n"
