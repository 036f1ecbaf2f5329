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
  to the right of each true changepoint (:func:`~.nab.skab_nab`).  That is how SKAB's
  notebooks derive a changepoint series from an *outlier* detector (``notebooks/Conv_AE.ipynb``:
  ``prediction_cp = abs(prediction.diff())``); the changepoint leaderboard also ranks
  changepoint detectors that give their own series (``ruptures``, ``CPDE``: the breakpoints
  set to 1, ``YKatser/CPDE`` ``SKAB_experiment.ipynb``).  So a second convention is scored
  beside it, the daemon's own changepoint output: the rows at which the alert stream
  *sent* an event (``opened``, ``updated``, ``cleared``) of any alert of the asset
  (:meth:`FileResult.alert_changes`; a ``cleared`` held by re-arm counts when it is sent,
  as a consumer receives it).  Truth and
  prediction are both the test rows (``core/utils.py``'s ``preprocess_skab`` splits
  ``df[["anomaly", "changepoint"]]`` with the features): a changepoint inside the 400
  training rows has no window (``other/2``'s fault starts at row 104; older notebooks
  that scored whole files counted its two windows as missed).

Our outlier prediction for a row is "an alert of the pump is open after that
row's slot"; scores use the rows of the file only (the loader's grid also holds
the seconds missing from the file, which the daemon fills by sample-and-hold).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..forecast.base import Forecaster
from ..forecast.batcher import Estimator
from ..records import AlertEvent, AlertEventType, BoolArray, FloatArray
from ..settings import DetectSettings, Settings
from .datasets import load_skab
from .detection import AlarmKpis, alarm_kpis
from .nab import BinaryScores, NabResult, binary_scores, changepoints_of, skab_nab, times_of
from .plots import trace_panels
from .replay import Recording, Trace, replay, resolutions
from .skab_models import AblationRun, issue14_runs

SKAB_TRAIN_ROWS = 400
ALERT_STREAM_CHANGES: tuple[AlertEventType, ...] = ("opened", "updated", "cleared")
"""The alert stream's events that make sentinelle's own changepoint series (``acknowledged`` comes from an
operator, not from the data, and a replay sends none)."""
SKAB_FAULT_GROUPS = ("valve1", "valve2", "other")


def in_tuning_split(name: str) -> bool:
    """Whether a file (``group/number``) is in the split the detection settings are chosen on.

    ``valve1`` and the odd-numbered ``other`` files (23 of 34); held out: ``valve2`` and the
    even-numbered ``other`` files.  Fixed before the EWMA charts' grid was run
    (``bench/skab/tune_charts.py``); the earlier grids used ``valve1`` alone.
    """
    group, number = name.split("/", 1)
    return group == "valve1" or (group == "other" and int(number) % 2 == 1)


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
                min_spread=resolutions(values[present][:train_rows]),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class FileResult:
    name: str
    trace: Trace
    test: np.ndarray
    """Grid indices of the scored rows (rows of the file after the training rows)."""
    labels: BoolArray
    """The ``anomaly`` column on the scored rows."""
    changepoints: BoolArray
    """The ``changepoint`` column on the scored rows."""
    timestamps: FloatArray
    """Timestamps of the scored rows."""

    @property
    def group(self) -> str:
        """``valve1``, ``valve2`` or ``other``."""
        return self.name.split("/", 1)[0]

    @property
    def predicted(self) -> BoolArray:
        """Our outlier prediction on the scored rows: an alert of the asset is open."""
        out: BoolArray = self.trace.anomalous[self.test]
        return out

    def alert_changes(self, events: Collection[str] = ALERT_STREAM_CHANGES) -> BoolArray:
        """Our own changepoint output on the scored rows: the alert stream sent an event of the asset there.

        ``events``: the event types that count (default: every one the replay can send — ``opened``,
        ``updated``, ``cleared``).  An event falls on the first scored row at or after its time (a
        second missing from the file lends its events to the next row; one before the scored rows is not
        scored).  What a consumer of the alert topic receives, not a function of the outlier
        prediction: a condition that dips and comes back within the re-arm time sends one ``updated``
        (a re-activation), not a clearing and an opening.

        >>> ts = np.arange(5, dtype=np.float64)
        >>> ev = [AlertEvent("opened", "a", "asset_state", "pump", "pump.x", "warning", 1.0, 1.5, None,
        ...                  *(0.0,) * 5, "", "")]
        >>> rec = Recording("other/1", "pump", ("pump.x",), ("",), ts, np.zeros((5, 1)), np.ones(5, bool),
        ...                 labels=np.zeros(5, bool), changepoints=np.zeros(5, bool), train_rows=1)
        >>> tr = Trace(*(np.zeros(5, bool),) * 2, *(np.zeros((5, 1)),) * 5, events=ev)
        >>> file_result(rec, tr).alert_changes().tolist()
        [False, True, False, False]
        """
        out = np.zeros(len(self.test), dtype=bool)
        if not len(self.timestamps):
            return out
        # Events before the first scored row (a hand-made trace; a replay keeps none) are not scored.
        times = [e.event_ts for e in self.trace.events if e.event in events and e.event_ts >= self.timestamps[0]]
        if times:
            rows = np.searchsorted(self.timestamps, np.asarray(times, dtype=np.float64), side="left")
            out[rows[rows < len(out)]] = True
        return out


@dataclass(frozen=True, slots=True)
class Scores:
    """SKAB's scores over some files: outliers (counts summed) and changepoints (NAB)."""

    outlier: BinaryScores
    nab: dict[str, float]
    nab_counts: dict[str, float]
    nab_opened_only: dict[str, float]
    nab_alert_events: dict[str, float] = field(default_factory=dict)
    """NAB of the daemon's own changepoint output (:attr:`FileResult.alert_changes`)."""
    nab_alert_events_counts: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            **self.outlier.rounded(),
            "nab_standard": self.nab["standard"],
            "nab_alert_events_standard": self.nab_alert_events.get("standard"),
        }


def _counts(nab: NabResult) -> dict[str, float]:
    return {
        "windows": nab.windows,
        "detected": nab.detected,
        "missed": nab.missed,
        "false_positives": nab.false_positives,
        "mean_delay_s": round(nab.mean_delay, 1),
    }


def score_files(files: Sequence[FileResult]) -> Scores:
    """Score ``files`` together under SKAB's protocol (see the module docstring)."""
    nab_files = []
    nab_opened = []
    nab_events = []
    for f in files:
        true_cp = times_of(f.changepoints, f.timestamps)
        nab_files.append((true_cp, times_of(changepoints_of(f.predicted), f.timestamps)))
        nab_opened.append((true_cp, times_of(f.trace.opened[f.test], f.timestamps)))
        nab_events.append((true_cp, times_of(f.alert_changes(), f.timestamps)))
    nab = skab_nab(nab_files)
    events = skab_nab(nab_events)
    return Scores(
        outlier=binary_scores([(f.labels, f.predicted) for f in files]),
        nab=nab.scores,
        nab_counts=_counts(nab),
        nab_opened_only=skab_nab(nab_opened).scores,
        nab_alert_events=events.scores,
        nab_alert_events_counts=_counts(events),
    )


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
    by_group: dict[str, Scores]
    """The same scores per file group (``valve1`` is the group the asset detector was tuned on)."""
    kpis: AlarmKpis | None = None
    """Alarm-system KPIs (ISA-18.2 / EEMUA 191) over the scored rows of every file."""
    nab_alert_events: dict[str, float] = field(default_factory=dict)
    """NAB of the daemon's own changepoint output, the alert stream's openings and clearings (see the module)."""
    nab_alert_events_counts: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "outlier": {
                **self.outlier.rounded(),
                "tp": self.outlier.tp,
                "tn": self.outlier.tn,
                "fp": self.outlier.fp,
                "fn": self.outlier.fn,
            },
            "changepoint_nab": self.nab,
            "changepoint_counts": self.nab_counts,
            "changepoint_nab_alert_opened_only": self.nab_opened_only,
            "changepoint_nab_alert_events": self.nab_alert_events,
            "changepoint_alert_events_counts": self.nab_alert_events_counts,
            "alerts_per_10_min": {
                "mean": round(self.alerts_per_10_min_mean, 3),
                "peak": round(self.alerts_per_10_min_peak, 3),
                "eemua_191_budget": EEMUA_ALERTS_PER_10_MIN,
            },
            "by_group": {g: sc.row() for g, sc in self.by_group.items()},
            "alarm_kpis": self.kpis.summary() if self.kpis is not None else None,
        }


def file_result(rec: Recording, trace: Trace) -> FileResult:
    """One replayed recording's scored part: labels, changepoints and predictions of the rows after the training rows.

    >>> ts = np.arange(6, dtype=np.float64)
    >>> cp = np.array([0, 1, 0, 0, 1, 0], bool)
    >>> rec = Recording("other/2", "pump", ("pump.x",), ("",), ts, np.zeros((6, 1)), np.ones(6, bool),
    ...                 labels=np.zeros(6, bool), changepoints=cp, train_rows=3)
    >>> fr = file_result(rec, Trace(*(np.zeros(6, bool),) * 2, *(np.zeros((6, 1)),) * 5))
    >>> fr.test.tolist(), fr.changepoints.tolist()
    ([3, 4, 5], [False, True, False])
    """
    test = np.flatnonzero(rec.present)[rec.train_rows :]
    assert rec.labels is not None and rec.changepoints is not None
    return FileResult(rec.name, trace, test, rec.labels[test], rec.changepoints[test], rec.timestamps[test])


def evaluate_skab(
    recordings: Sequence[Recording],
    settings: Settings,
    label: str,
    progress: Callable[[str], None] | None = None,
    forecaster: Forecaster | None = None,
    estimator: Estimator | None = None,
) -> SkabResult:
    """Replay every recording and score the test rows under SKAB's protocol.

    ``forecaster``: an instance to use (a :class:`~.replay.CachedForecaster` shared by the
    ablation's rows); None: the one ``settings`` names, made per file.  ``estimator``: the asset
    model's estimates of now (:func:`~.skab_models.prefilled_estimator`), or None.
    """
    files: list[FileResult] = []
    scored_events: list[tuple[list[AlertEvent], float, float]] = []
    opened_total = 0
    test_seconds = 0.0
    peak = 0.0
    for rec in recordings:
        trace = replay(rec, settings, forecaster, estimator)
        fr = file_result(rec, trace)
        test, ts = fr.test, fr.timestamps
        files.append(fr)
        opened_ts = times_of(trace.opened[test], ts)
        opened_total += len(opened_ts)
        if len(ts):
            test_seconds += float(ts[-1] - ts[0]) + rec.period_s
            peak = max(peak, _peak_per_window(np.asarray(opened_ts), 600.0))
            scored_events.append((trace.events, float(ts[0]), float(ts[-1]) + rec.period_s))
        if progress is not None:
            progress(rec.name)
    total = score_files(files)
    return SkabResult(
        label=label,
        outlier=total.outlier,
        nab=total.nab,
        nab_counts=total.nab_counts,
        nab_opened_only=total.nab_opened_only,
        alerts_per_10_min_mean=600.0 * opened_total / test_seconds if test_seconds else math.nan,
        alerts_per_10_min_peak=peak,
        files=files,
        by_group={g: score_files([f for f in files if f.group == g]) for g in SKAB_FAULT_GROUPS},
        kpis=alarm_kpis(scored_events),
        nab_alert_events=total.nab_alert_events,
        nab_alert_events_counts=total.nab_alert_events_counts,
    )


def _peak_per_window(times: np.ndarray, width: float) -> float:
    """Most events in any window of ``width`` seconds (starting at an event)."""
    if times.size == 0:
        return 0.0
    ends = np.searchsorted(times, times + width, side="left")
    return float((ends - np.arange(times.size)).max())


# -- the report -------------------------------------------------------------------

PLOT_FILES = ("valve1/0", "valve2/0", "other/13")


ASSET_ON: dict[str, Any] = {
    "asset_enabled": True,
    "asset_open_k": 2,
    "asset_open_n": 3,
    "asset_clear_normal_steps": 3,
    "asset_chart_alpha": 0.3,
    "asset_chart_factor": 2.5,
    "asset_settle_steps": 240,
    "asset_settle_after_steps": 60,
    "asset_settle_after_rearm": True,
}
"""The headline's settings over the ``DetectSettings`` defaults: the asset detector on, its alert opening on 2
flagged ticks of 3 (``bench/skab/tune_asset_alerting.py``), limits ×2.5 and clearing after 3 normal ticks
(``bench/skab/tune_onset.py``), EWMA charts of weight 0.3 (``bench/skab/tune_changepoints.py``, issue 13's fifth
pass: FAR bounded in each tuning group), and a settling time of 240 ticks once an asset episode of at least 60
ticks is sent cleared (``bench/skab/tune_settle_rearm.py``, issue 13's sixth pass), all chosen on the tuning
split.  The daemon's defaults keep the charts at 0.15 × 3.5, the shared clearing run (10) and no settling: the
asset detector is off by default, and other reports that turn it on (LBNL, the chiller) were not re-run with
SKAB's choice."""
PREVIOUS_HEADLINE: dict[str, Any] = {**ASSET_ON, "asset_settle_steps": 0}
"""The headline of the previous report (frozen at 4814891): no settling after an asset episode."""
RESIDUALS_OFF: dict[str, Any] = {"score_threshold": 0.999}
"""Per-tag residuals that never flag (a tail probability of 10^-9990): the asset detector's alerts alone."""
ASSET_VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("no EWMA charts (T²+Q alone)", {"asset_chart_alpha": 0.0}),
    ("T²/Q limits ×1.5", {"asset_ucl_factor": 1.5}),
    ("no moving baseline for wandering tags", {"asset_drift_share": 1.0}),
    (
        "the shared life cycle (3 of 5, clear after 10)",
        {"asset_open_k": None, "asset_open_n": None, "asset_clear_normal_steps": None},
    ),
    ("deadband: the asset alert holds while its score is over 0.7", {"asset_clear_score": 0.7}),
    ("asset alert held 30 normal ticks", {"asset_clear_normal_steps": 30}),
)
"""Variants of the asset-level detector, each one change from the headline's settings."""


def ablation_runs(forecaster: str, variants: bool = True) -> list[AblationRun]:
    """Every configuration the report compares; the first is the headline.

    Headline: the chosen forecaster, per-tag scoring and the asset-level detector (T²+Q and the
    per-tag EWMA charts) at :data:`ASSET_ON` (chosen on a tuning split, see the report).  Then
    per-tag only, the asset detector alone, the other built-in forecaster, issue 14's rows (the
    univariate and the asset model, :func:`~.skab_models.issue14_runs`), one-change variants of
    the asset detector, and the previous report's headline.
    To add rows (another forecaster, rules), append to the list this returns.  ``variants`` False:
    without the other forecaster's rows, the one-change variants and the previous headline (a run
    that carries them over from an earlier report, :func:`~.skab_report.kept_runs`).
    """
    runs = [
        AblationRun(f"{forecaster}: per-tag + asset (T²+Q, EWMA charts)", forecaster, ASSET_ON),
        AblationRun(f"{forecaster}: per-tag only", forecaster, {}),
        AblationRun(
            f"{forecaster}: asset only (per-tag residuals never flag)", forecaster, {**ASSET_ON, **RESIDUALS_OFF}
        ),
    ]
    for other in ("holt", "naive"):
        if other != forecaster and variants:
            runs.append(AblationRun(f"{other}: per-tag + asset (T²+Q, EWMA charts)", other, ASSET_ON))
            runs.append(AblationRun(f"{other}: per-tag only", other, {}))
    runs += issue14_runs(ASSET_ON)
    if not variants:
        return runs
    for name, overrides in ASSET_VARIANTS:
        runs.append(AblationRun(f"{forecaster}: per-tag + asset, {name}", forecaster, {**ASSET_ON, **overrides}))
    previous = f"{forecaster}: previous headline (4814891: no settling)"
    runs.append(AblationRun(previous, forecaster, PREVIOUS_HEADLINE))
    return runs


def asset_scores(rec: Recording, detect: DetectSettings) -> FloatArray:
    """The asset detector's score at every slot, re-computed alone on the recording (for plots).

    The same detector and inputs as in the replay (rows held over missing slots, learning
    stopped while its own k-of-n alert is open), without the stage's other alerts.
    """
    from ..detect.asset import AssetT2Q
    from ..detect.lifecycle import KofN

    det = AssetT2Q.from_settings(np.array(rec.min_spread or (0.0,) * len(rec.tags)), detect)
    kofn = KofN(1, detect.open_k, detect.open_n, detect.clear_normal_steps)
    out = np.full(len(rec.timestamps), np.nan)
    held = np.full(len(rec.tags), np.nan)
    for i, row in enumerate(rec.values):
        held = np.where(np.isfinite(row), row, held)
        if i == rec.test_start:
            kofn.reset()
        score, flagged = det.step(held, learn=not kofn.open[0])
        kofn.step(np.array([flagged]), np.array([math.isfinite(score) and not flagged]))
        out[i] = score
    return out


def plot_file(rec: Recording, fr: FileResult, out: Path, detect: DetectSettings | None = None) -> Path:
    """Signals (standardised), one channel with its forecast band, scores, true vs predicted anomalies.

    ``detect``: the settings whose asset score to draw (default: the headline's).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = (rec.timestamps - rec.timestamps[0]) / 60.0
    tr = fr.trace
    fig, axes = plt.subplots(4, 1, figsize=(12, 10), sharex=True)
    j = next((i for i, tag in enumerate(rec.tags) if tag.endswith("Current")), 0)
    trace_panels(axes, t, rec, rec.values[rec.present][: rec.train_rows], tr, j)
    axes[2].set_ylabel("per-tag score")
    axes[2].legend(fontsize=7, loc="lower left")
    asset = asset_scores(rec, detect or DetectSettings(**ASSET_ON))
    twin = axes[2].twinx()
    twin.plot(t, asset, lw=0.8, color="tab:orange", label="asset score: T², Q, charts over their limits (log)")
    twin.axhline(1.0, color="tab:orange", lw=0.6, ls="--")
    twin.set_yscale("log")
    twin.legend(fontsize=7, loc="upper right")
    assert rec.labels is not None
    axes[3].fill_between(t, 0, rec.labels.astype(float), step="mid", color="tab:red", alpha=0.3, label="true anomaly")
    axes[3].plot(
        t, tr.anomalous.astype(float) * 0.8, drawstyle="steps-mid", color="k", lw=1.0, label="predicted (alert open)"
    )
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
