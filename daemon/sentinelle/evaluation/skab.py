"""SKAB under its own protocol, through the daemon's stages.

Protocol (SKAB's "proposed leaderboard", README of ``waico/SKAB`` and its
``core/utils.py``/``core/metrics.py``, the tsad metrics):

* every fault file (``valve1``, ``valve2``, ``other``: 34 files) is one
  experiment; ``anomaly-free.csv`` is not used;
* the first 400 rows of each file are training data (``train_test_split(...,
  train_size=400, shuffle=False)``); only the remaining rows are scored.  Here
  those 400 rows warm the streaming detectors up (see :mod:`.replay`);
* outliers: the per-row prediction against the ``anomaly`` column, counts summed
  over files → F1, FAR, MAR;
* changepoints: the prediction's changes ``|diff(prediction)|`` (the first test row
  taking its own value) against the ``changepoint`` column, NAB with a 60 s window
  to the right of each true changepoint (:func:`~.nab.skab_nab`).

Our outlier prediction for a row is "an alert of the pump is open after that
row's slot"; scores use the rows of the file only (the loader's grid also holds
the seconds missing from the file, which the daemon fills by sample-and-hold).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..records import FloatArray
from ..settings import Settings
from .datasets import load_skab
from .nab import BinaryScores, binary_scores, changepoints_of, skab_nab, times_of
from .replay import Recording, Trace, replay

SKAB_TRAIN_ROWS = 400
SKAB_FAULT_GROUPS = ("valve1", "valve2", "other")
ASSET = "pump"

LEADERBOARD_OUTLIER: tuple[tuple[str, float, float | None, float | None], ...] = (
    ("Conv-AE", 0.78, 13.55, 28.02),
    ("MSET", 0.78, 39.73, 14.13),
    ("T-squared+Q (PCA-based)", 0.76, 26.62, 24.92),
    ("LSTM-AE", 0.74, 29.96, 25.92),
    ("Isolation forest", 0.29, 2.56, 82.89),
)
"""SKAB README (waico/SKAB @ b2c0d46c, "Proposed Leaderboard"): F1, FAR %, MAR %."""
LEADERBOARD_CHANGEPOINT: tuple[tuple[str, float, float, float], ...] = (
    ("MSCRED", 32.42, 16.53, 40.28),
    ("Isolation forest", 26.16, 19.5, 30.82),
    ("T-squared+Q (PCA-based)", 25.35, 14.51, 31.33),
    ("Conv-AE", 23.61, 21.54, 27.55),
)
"""Same source: NAB standard, low FP, low FN (60 s right-sided windows)."""

EEMUA_ALERTS_PER_10_MIN = 1.0
"""EEMUA 191: about one alarm per 10 minutes per operator in steady operation is manageable."""


def skab_recordings(data_dir: Path | None = None, train_rows: int = SKAB_TRAIN_ROWS) -> list[Recording]:
    """One :class:`Recording` per SKAB fault file, channels in file order."""
    by_file: dict[str, list[Any]] = {}
    for s in load_skab(data_dir, groups=SKAB_FAULT_GROUPS):
        by_file.setdefault(s.meta["file"], []).append(s)
    out = []
    for file, channels in by_file.items():
        values = np.stack([c.values for c in channels], axis=1)
        present = np.isfinite(values).any(axis=1)
        out.append(
            Recording(
                name=file.removesuffix(".csv"),
                asset=ASSET,
                tags=tuple(f"{ASSET}.{c.meta['channel']}" for c in channels),
                units=tuple(c.unit for c in channels),
                timestamps=channels[0].timestamps,
                values=values,
                present=present,
                labels=channels[0].labels,
                changepoints=channels[0].changepoints,
                train_rows=train_rows,
                min_spread=_resolutions(values[present][:train_rows]),
            )
        )
    return out


def _resolutions(train: FloatArray) -> tuple[float, ...]:
    """Each channel's sensor resolution, read from the training rows: its smallest non-zero step.

    The daemon's ``min_spread`` is the sensor resolution; SKAB's Pressure and flow channels
    are quantised (steps of 0.33 bar, 1 L/min), and a forecast spread below one step would
    make every quantisation step look like a surprise.
    """
    out = []
    for col in train.T:
        d = np.abs(np.diff(col[np.isfinite(col)]))
        d = d[d > 1e-9]
        out.append(float(d.min()) if d.size else 0.0)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class FileResult:
    name: str
    trace: Trace
    test: np.ndarray
    """Grid indices of the scored rows (rows of the file after the training rows)."""


@dataclass(frozen=True, slots=True)
class SkabResult:
    label: str
    outlier: BinaryScores
    nab: dict[str, float]
    nab_counts: dict[str, float]
    nab_opened_only: dict[str, float]
    alerts_per_10_min_mean: float
    alerts_per_10_min_peak: float
    files: list[FileResult]

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "outlier": {**self.outlier.rounded(), "tp": self.outlier.tp, "tn": self.outlier.tn,
                        "fp": self.outlier.fp, "fn": self.outlier.fn},
            "changepoint_nab": self.nab,
            "changepoint_counts": self.nab_counts,
            "changepoint_nab_alert_opened_only": self.nab_opened_only,
            "alerts_per_10_min": {"mean": round(self.alerts_per_10_min_mean, 3),
                                  "peak": round(self.alerts_per_10_min_peak, 3),
                                  "eemua_191_budget": EEMUA_ALERTS_PER_10_MIN},
        }


def evaluate_skab(
    recordings: Sequence[Recording],
    settings: Settings,
    label: str,
    progress: Callable[[str], None] | None = None,
) -> SkabResult:
    """Replay every recording and score the test rows under SKAB's protocol."""
    files: list[FileResult] = []
    outlier_pairs = []
    nab_files = []
    nab_opened = []
    opened_total = 0
    test_seconds = 0.0
    peak = 0.0
    for rec in recordings:
        trace = replay(rec, settings)
        test = np.flatnonzero(rec.present)[rec.train_rows :]
        files.append(FileResult(rec.name, trace, test))
        assert rec.labels is not None and rec.changepoints is not None
        ts = rec.timestamps[test]
        pred = trace.anomalous[test]
        outlier_pairs.append((rec.labels[test], pred))
        true_cp = times_of(rec.changepoints[test], ts)
        nab_files.append((true_cp, times_of(changepoints_of(pred), ts)))
        opened_ts = times_of(trace.opened[test], ts)
        nab_opened.append((true_cp, opened_ts))
        opened_total += len(opened_ts)
        if len(ts):
            test_seconds += float(ts[-1] - ts[0]) + rec.period_s
            peak = max(peak, _peak_per_window(np.asarray(opened_ts), 600.0))
        if progress is not None:
            progress(rec.name)
    nab = skab_nab(nab_files)
    return SkabResult(
        label=label,
        outlier=binary_scores(outlier_pairs),
        nab=nab.scores,
        nab_counts={"windows": nab.windows, "detected": nab.detected, "missed": nab.missed,
                    "false_positives": nab.false_positives, "mean_delay_s": round(nab.mean_delay, 1)},
        nab_opened_only=skab_nab(nab_opened).scores,
        alerts_per_10_min_mean=600.0 * opened_total / test_seconds if test_seconds else math.nan,
        alerts_per_10_min_peak=peak,
        files=files,
    )


def _peak_per_window(times: np.ndarray, width: float) -> float:
    """Most events in any window of ``width`` seconds (starting at an event)."""
    if times.size == 0:
        return 0.0
    ends = np.searchsorted(times, times + width, side="left")
    return float((ends - np.arange(times.size)).max())


# -- the report -------------------------------------------------------------------

PLOT_FILES = ("valve1/0", "valve2/0", "other/13")


def ablation_runs(forecaster: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, forecaster, DetectSettings overrides) of every configuration the report compares.

    The first row is the headline: the chosen forecaster with per-tag and asset-level scoring at
    their defaults.  The T² threshold variants show how sensitive the result is to the one
    threshold set by hand (``asset_ucl_factor`` 2 was chosen before looking at SKAB).
    """
    runs: list[tuple[str, str, dict[str, Any]]] = [
        (f"{forecaster}: per-tag + asset T²", forecaster, {"asset_enabled": True}),
        (f"{forecaster}: per-tag only", forecaster, {}),
    ]
    for other in ("holt", "naive"):
        if other != forecaster:
            runs.append((f"{other}: per-tag + asset T²", other, {"asset_enabled": True}))
            runs.append((f"{other}: per-tag only", other, {}))
    runs.append((f"{forecaster}: per-tag + asset T², UCL ×1", forecaster,
                 {"asset_enabled": True, "asset_ucl_factor": 1.0}))
    runs.append((f"{forecaster}: per-tag + asset T², UCL ×4", forecaster,
                 {"asset_enabled": True, "asset_ucl_factor": 4.0}))
    return runs


def write_report(results: Sequence[SkabResult], out: Path, meta: dict[str, Any]) -> None:
    """``report.json`` and ``report.md`` in ``out``."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    doc = {
        **meta,
        "protocol": PROTOCOL,
        "leaderboard_outlier": [{"algorithm": a, "f1": f, "far_percent": far, "mar_percent": mar}
                                for a, f, far, mar in LEADERBOARD_OUTLIER],
        "leaderboard_changepoint": [{"algorithm": a, "standard": s, "reward_low_fp": lf, "reward_low_fn": ln}
                                    for a, s, lf, ln in LEADERBOARD_CHANGEPOINT],
        "runs": [r.summary() for r in results],
    }
    (out / "report.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "report.md").write_text(_markdown(results, meta))


PROTOCOL = {
    "files": "34 fault files (valve1 0-15, valve2 0-3, other 1-14); anomaly-free.csv unused",
    "split": "first 400 rows of each file = warm-up (SKAB: train_test_split(train_size=400, shuffle=False)); "
             "scored rows = the rest",
    "outlier": "prediction per row = an alert of the asset open after that row's slot; F1 = TP/(TP+(FN+FP)/2), "
               "FAR = FP/(FP+TN), MAR = FN/(FN+TP), counts summed over files",
    "changepoint": "prediction = |diff(outlier prediction)| on the scored rows (first row = its own value); "
                   "NAB with 60 s windows right of each true changepoint, tsad 'improved' scale, cut right window",
    "sources": "waico/SKAB README (Proposed Leaderboard) and core/utils.py, core/metrics.py @ b2c0d46c; "
               "waico/tsad tsad/evaluating/evaluating.py; numenta/NAB nab/scorer.py",
}


def _markdown(results: Sequence[SkabResult], meta: dict[str, Any]) -> str:
    head = results[0]
    lines = [
        "# SKAB v0.9 — sentinelle, streaming, under SKAB's proposed-leaderboard protocol",
        "",
        f"Generated {meta.get('generated', '')} by `sentinelle evaluate --dataset skab` "
        f"({meta.get('machine', '')}); {meta.get('seconds', 0):.0f} s for all runs.",
        "",
        "Every file is replayed row by row through the daemon's own stages (Windows → ForecastBatcher → "
        "DetectStage, no look-ahead); the first 400 rows warm the detectors up as the daemon's start-up "
        "backfill does (they learn; alerts raised there are dropped) and are not scored. Detectors keep "
        "learning online from ticks that are neither flagged nor inside an open alert.",
        "",
        "## Outlier detection (column `anomaly`)",
        "",
        "| Algorithm | F1 | FAR, % | MAR, % |",
        "|---|---|---|---|",
    ]
    o = head.outlier.rounded()
    lines.append(f"| **sentinelle ({head.label})** | **{o['f1']}** | **{o['far_percent']}** | **{o['mar_percent']}** |")
    for a, f, far, mar in LEADERBOARD_OUTLIER:
        lines.append(f"| {a} | {f} | {far} | {mar} |")
    lines += [
        "",
        "## Changepoint detection (column `changepoint`, NAB, 60 s right-sided windows)",
        "",
        "| Algorithm | NAB (standard) | NAB (LowFP) | NAB (LowFN) |",
        "|---|---|---|---|",
        f"| **sentinelle ({head.label})** | **{head.nab['standard']}** | **{head.nab['reward_low_fp']}** | "
        f"**{head.nab['reward_low_fn']}** |",
    ]
    for a, s, lf, ln in LEADERBOARD_CHANGEPOINT:
        lines.append(f"| {a} | {s} | {lf} | {ln} |")
    c = head.nab_counts
    lines += [
        "",
        f"Changepoints: {c['windows']} windows, {c['detected']} detected (mean delay {c['mean_delay_s']} s), "
        f"{c['missed']} missed, {c['false_positives']} detections outside windows. Scoring only alert *openings* "
        f"as detections (not the clearings SKAB's diff also counts): NAB standard "
        f"{head.nab_opened_only['standard']}.",
        "",
        "## Alert rate (scored rows)",
        "",
        f"Alerts opened per 10 minutes: mean {head.alerts_per_10_min_mean:.2f}, peak "
        f"{head.alerts_per_10_min_peak:.0f} (EEMUA 191 budget: about {EEMUA_ALERTS_PER_10_MIN:.0f} per 10 minutes "
        "in steady state; every SKAB file holds one fault, so this is an upper bound of steady-state rates).",
        "",
        "Not reached: the issue's targets (F1 above 0.78 with FAR under 13.55 %, NAB standard above 32.42). "
        "Per-tag forecast residuals alone flag only the transitions (the forecaster follows a faulted level "
        "within seconds); the asset-level T² on the tags' state is what finds the sustained faults.",
        "",
        "## Ablation",
        "",
        "| Configuration | F1 | FAR, % | MAR, % | NAB std | NAB LowFP | NAB LowFN | alerts/10 min (mean, peak) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        o = r.outlier.rounded()
        lines.append(
            f"| {r.label} | {o['f1']} | {o['far_percent']} | {o['mar_percent']} | {r.nab['standard']} | "
            f"{r.nab['reward_low_fp']} | {r.nab['reward_low_fn']} | {r.alerts_per_10_min_mean:.2f}, "
            f"{r.alerts_per_10_min_peak:.0f} |"
        )
    lines += [
        "",
        "Rules (static limits, rate of change, stuck sensor) are not in the ablation: SKAB's testbed comes "
        "with no configured limits, and limits derived from the scored files would be tuning on the test set.",
        "",
        "## Plots",
        "",
        *[f"![{name}]({name.replace('/', '_')}.png)" for name in PLOT_FILES],
        "",
    ]
    return "\n".join(lines)


def plot_file(rec: Recording, fr: FileResult, out: Path) -> Path:
    """Signals (standardised), one channel with its forecast band, per-tag scores, true vs predicted anomalies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = (rec.timestamps - rec.timestamps[0]) / 60.0
    tr = fr.trace
    fig, axes = plt.subplots(4, 1, figsize=(12, 10), sharex=True)
    train = rec.values[rec.present][: rec.train_rows]
    mu, sd = np.nanmean(train, axis=0), np.nanstd(train, axis=0) + 1e-9
    for j, tag in enumerate(rec.tags):
        axes[0].plot(t, (rec.values[:, j] - mu[j]) / sd[j], lw=0.6, label=tag.split(".", 1)[1])
    axes[0].set_ylabel("standardised value")
    axes[0].legend(fontsize=6, ncol=4, loc="upper left")
    j = next((i for i, tag in enumerate(rec.tags) if tag.endswith("Current")), 0)
    axes[1].plot(t, rec.values[:, j], lw=0.7, color="k", label=f"{rec.tags[j]} actual")
    axes[1].plot(t, tr.forecast[:, j], lw=0.7, color="tab:blue", label=f"forecast ({tr.forecaster}, median)")
    axes[1].fill_between(t, tr.lower[:, j], tr.upper[:, j], color="tab:blue", alpha=0.25, label="10–90 %")
    axes[1].legend(fontsize=7, loc="upper left")
    scored = np.isfinite(tr.score).any(axis=1)
    top = np.full(len(t), np.nan)
    top[scored] = np.nanmax(tr.score[scored], axis=1)
    axes[2].plot(t, top, lw=0.6, color="tab:purple", label="max per-tag score")
    axes[2].set_ylim(0, 1.02)
    axes[2].legend(fontsize=7, loc="lower left")
    assert rec.labels is not None
    axes[3].fill_between(t, 0, rec.labels.astype(float), step="mid", color="tab:red", alpha=0.3, label="true anomaly")
    axes[3].plot(t, tr.anomalous.astype(float) * 0.8, drawstyle="steps-mid", color="k", lw=1.0,
                 label="predicted (alert open)")
    if rec.changepoints is not None:
        for x in t[rec.changepoints]:
            axes[3].axvline(x, color="tab:green", lw=0.8)
    for ax in axes:
        ax.axvspan(t[0], t[rec.test_start] if rec.test_start < len(t) else t[-1], color="0.9", zorder=0)
    axes[3].legend(fontsize=7, loc="upper left")
    axes[3].set_xlabel("minutes from the file's start (grey: warm-up rows, not scored; green: true changepoints)")
    fig.suptitle(f"SKAB {rec.name}")
    fig.tight_layout()
    path = out / f"{rec.name.replace('/', '_')}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
