"""NAB through the daemon: every file replayed by :mod:`.stream_eval`, NAB's result files, NAB's scores, the report.

Two detectors per forecaster, each written as NAB result files
(``results/<detector>/<category>/<detector>_<file>.csv``) and scored by
:mod:`.nab_scorer` (NAB's own rules):

* ``sentinelle<Forecaster>`` — the per-row ``anomaly_score``: the detect stage's
  per-tag score of the row's slot (``DetectStage.last_tick.score``, the maximum of every
  detector's calibrated per-tag score; NaN → 0), and each term alone
  (``sentinelle<Forecaster>Residual``, ``…Distribution``: the ablation, same run);
* ``sentinelle<Forecaster>Openings`` — alert openings as operated: 1 on a row
  whose slot opened an alert of the tag's asset (any kind), else 0.

When a forecaster is replayed at a coarser cadence (``refresh_every_steps`` N > 1, e.g. the
model with ``--model-refresh-steps 16``), Holt is also replayed at that cadence on the same files
(``holtEvery<N>``: detectors ``sentinelleHoltEvery<N>…``, the report's row "holt (forecast every N
ticks)"): the like-for-like baseline beside the shipped every-tick Holt, since the cadence alone moves
NAB's score (issue 13: 1.63 of a 2.16-point model − Holt gap, ``docs/results/nab/report.md``).

Scores are given on the held-out split (the headline), the tuning split and all
files (:func:`~.nab_corpus.split_of`, fixed before any tuning), the threshold
optimised over the files scored as NAB's optimiser does, and per category at the
threshold of all files.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..forecast import make_forecaster
from ..records import FloatArray
from ..settings import DetectSettings, ForecastSettings
from .nab_corpus import HELD_OUT, TUNING, NabFile, split_of, write_result
from .nab_scorer import PROFILES, CorpusScore, score_corpus
from .replay import cache_stem
from .stream_eval import StreamResult, evaluate_stream, forecast_stream, median_period, stream_settings

SCOREBOARD: tuple[tuple[str, float, float, float], ...] = (
    ("ARTime", 74.85, 65.15, 80.36),
    ("Numenta HTM", 70.10, 63.12, 74.32),
    ("CAD OSE", 69.90, 66.98, 73.18),
    ("Skyline (earthgecko)", 58.20, 46.20, 63.80),
    ("KNN-CAD", 57.99, 43.41, 64.81),
    ("Random Cut Forest", 51.72, 38.36, 59.75),
    ("Windowed Gaussian", 39.65, 20.87, 47.41),
    ("null", 0.0, 0.0, 0.0),
)
"""``numenta/NAB`` @ ea702d7 ``results/final_results.json``: standard, reward low FP, reward low FN."""

SPLITS = (HELD_OUT, TUNING, "all")


PART_SUFFIX = {
    "forecast_residual": "Residual",
    "distribution_change": "Distribution",
    "contextual_novelty": "Novelty",
    "forecast_drift": "Drift",
}
"""Per-tag score terms (``StreamResult.parts``) scored on their own beside the combined score: the ablation."""


def detector_name(forecaster: str, openings: bool = False, part: str | None = None) -> str:
    """NAB detector names (no ``_`` allowed): ``sentinelleHolt``, ``sentinelleModelOpenings``, ….

    ``forecaster`` may be a run's name such as ``holtEvery16`` (its case kept after the first letter).

    >>> detector_name("holt"), detector_name("model", openings=True), detector_name("holt", part="forecast_residual")
    ('sentinelleHolt', 'sentinelleModelOpenings', 'sentinelleHoltResidual')
    >>> detector_name(cadence_run_name("holt", 16), openings=True)
    'sentinelleHoltEvery16Openings'
    """
    suffix = "Openings" if openings else PART_SUFFIX.get(part, part.capitalize()) if part else ""
    return "sentinelle" + forecaster[:1].upper() + forecaster[1:] + suffix


CADENCE_BASELINE = "holt"
"""The forecaster replayed again at any coarser cadence in the report: the like-for-like baseline."""


def cadence_run_name(forecaster: str, every: int) -> str:
    """The result key of ``forecaster`` replayed with forecasts every ``every`` ticks (no ``_``: NAB's names).

    >>> cadence_run_name("holt", 16), cadence_run_name("holt", 1)
    ('holtEvery16', 'holt')
    """
    return forecaster if every <= 1 else f"{forecaster}Every{every}"


def detector_kind(detector: str) -> str:
    """The report's label of a detector's rows.

    >>> [detector_kind("sentinelleHolt" + s) for s in ("", "Openings", "Residual")]
    ['score', 'openings', 'score: residual alone']
    """
    if detector.endswith("Openings"):
        return "openings"
    for suffix in PART_SUFFIX.values():
        if detector.endswith(suffix):
            return f"score: {suffix.lower()} alone"
    return "score"


@dataclass(frozen=True, slots=True)
class ForecasterRun:
    forecaster: str
    results: dict[str, StreamResult]
    """Per file name."""
    seconds: float
    name: str = ""
    """The run's result key and detectors' stem (default: the forecaster), e.g. ``holtEvery16``."""

    @property
    def key(self) -> str:
        return self.name or self.forecaster


def replay_corpus(
    files: Sequence[NabFile],
    forecaster: str,
    detect: DetectSettings | None = None,
    log: Callable[[str], None] = lambda _m: None,
    forecast_cache: Path | None = None,
    refresh_every_steps: int = 1,
    name: str | None = None,
    model_threads: int | None = None,
    workers: int = 1,
) -> ForecasterRun:
    """Every file through the daemon's stages with one configuration (the shipped defaults but the forecaster).

    ``forecast_cache``: a folder where each file's forecasts are kept (see
    :func:`~.stream_eval.cached_forecasts`): a re-run with other detection settings reuses them.
    ``name``: the run's key (:class:`ForecasterRun`), also its cache subfolder (default: the forecaster).
    ``model_threads``: torch's CPU threads (``forecast.model_threads``; 1 on a loaded shared machine,
    where two threads waiting on each other at every step of the model cost 5× more: same numbers).
    ``workers`` > 1: the files are dealt, largest first, to that many processes, each replaying its
    share as here (files are independent tags: the same results, in ``files``' order).
    """
    key = name or forecaster
    started = time.perf_counter()
    if workers > 1 and len(files) > 1:
        results = _replay_in_processes(
            files, workers, (forecaster, detect, _quiet, forecast_cache, refresh_every_steps, key, model_threads)
        )
        for k, f in enumerate(files, 1):
            r = results[f.name]
            log(f"{key} {k}/{len(files)} {f.name}: {r.slots} slots in {r.seconds:.1f} s")
        return ForecasterRun(forecaster, results, time.perf_counter() - started, key)
    fc = make_forecaster(ForecastSettings(forecaster=forecaster, model_threads=model_threads))  # type: ignore[arg-type]
    out = {}
    for k, f in enumerate(files, 1):
        period = median_period(f.timestamps)
        cache = cache_file(forecast_cache, key, f)
        settings = stream_settings(period, forecaster, detect, refresh_every_steps=refresh_every_steps)
        r = evaluate_stream(f.stream(), settings, fc, period, cache)
        out[f.name] = r
        log(f"{key} {k}/{len(files)} {f.name}: {r.slots} slots in {r.seconds:.1f} s")
    return ForecasterRun(forecaster, out, time.perf_counter() - started, key)


def _quiet(_message: str) -> None:
    """A worker process's log (its files are logged by the parent, in order)."""


def _replay_in_processes(files: Sequence[NabFile], workers: int, args: tuple[Any, ...]) -> dict[str, StreamResult]:
    """:func:`replay_corpus` of each share of ``files`` in its own process (spawned: torch must not be forked)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ordered = sorted(files, key=lambda f: (-len(f.timestamps), f.name))
    shares = [share for share in (ordered[i::workers] for i in range(workers)) if share]
    with ProcessPoolExecutor(len(shares), mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = [pool.submit(replay_corpus, share, *args) for share in shares]
        results = {name: r for run in runs for name, r in run.result().results.items()}
    return {f.name: results[f.name] for f in files}


def cache_file(forecast_cache: Path | None, key: str, f: NabFile) -> Path | None:
    """Where the run ``key`` keeps ``f``'s forecasts under ``forecast_cache`` (None: no cache): one npz per file,
    in a folder that names the model's inference-time mixing (:func:`cache_stem`), so forecasts cached under
    another mixing are recomputed, never read back as today's."""
    return None if forecast_cache is None else forecast_cache / cache_stem(key) / (f.name.replace("/", "__") + ".npz")


def forecast_corpus(
    files: Sequence[NabFile],
    forecaster: str,
    forecast_cache: Path,
    refresh_every_steps: int = 1,
    name: str | None = None,
    model_threads: int | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> float:
    """Only the forecasts of :func:`replay_corpus` (same windows, same cache files), no detection; seconds taken.

    Lets the costly part (the model's forecasts) run apart — in several processes, each on
    its share of the files — before one :func:`evaluate_nab` reads them all back from the cache.
    """
    started = time.perf_counter()
    key = name or forecaster
    fc = make_forecaster(ForecastSettings(forecaster=forecaster, model_threads=model_threads))  # type: ignore[arg-type]
    for k, f in enumerate(files, 1):
        period = median_period(f.timestamps)
        settings = stream_settings(period, forecaster, refresh_every_steps=refresh_every_steps)
        t0 = time.perf_counter()
        n = forecast_stream(f.stream(), settings, fc, period, cache_file(forecast_cache, key, f))
        log(f"{key} forecasts {k}/{len(files)} {f.name}: {n} windows in {time.perf_counter() - t0:.1f} s")
    return time.perf_counter() - started


def write_results(results_dir: Path, files: Sequence[NabFile], run: ForecasterRun) -> None:
    """NAB result files for both detectors of ``run``."""
    for f in files:
        r = run.results[f.name]
        write_result(results_dir, detector_name(run.key), f, r.score)
        write_result(results_dir, detector_name(run.key, openings=True), f, r.opened.astype(np.float64))
        if len(r.parts) > 1:
            for part, score in r.parts.items():
                write_result(results_dir, detector_name(run.key, part=part), f, score)


def score_detector(
    files: Sequence[NabFile], scores: Sequence[FloatArray], split: dict[str, str] | None = None
) -> dict[str, Any]:
    """NAB scores per split and profile, and per category (at the threshold of all the files given).

    ``split``: each file's part (default: :func:`split_of` the files given); a split without
    files given scores None.
    """
    split = split if split is not None else split_of(f.name for f in files)
    out: dict[str, Any] = {}
    for name in SPLITS:
        chosen = [(f.labelled, s) for f, s in zip(files, scores, strict=True) if name == "all" or split[f.name] == name]
        out[name] = {p.name: _summary(score_corpus(chosen, p)) for p in PROFILES} if chosen else None
    categories: dict[str, Any] = {}
    for cat in sorted({f.category for f in files}):
        chosen_cat = [(f.labelled, s) for f, s in zip(files, scores, strict=True) if f.category == cat]
        row = {}
        for p in PROFILES:
            threshold = out["all"][p.name]["threshold"]
            row[p.name] = _summary(score_corpus(chosen_cat, p, threshold=threshold))
        categories[cat] = row
    out["by_category"] = categories
    held: dict[str, Any] = {}
    if out[HELD_OUT] is not None:
        for cat in sorted({f.category for f in files}):
            chosen_cat = [
                (f.labelled, s)
                for f, s in zip(files, scores, strict=True)
                if f.category == cat and split[f.name] == HELD_OUT
            ]
            if chosen_cat:
                threshold = out[HELD_OUT]["standard"]["threshold"]
                held[cat] = _summary(score_corpus(chosen_cat, PROFILES[0], threshold=threshold))
    out["held_out_by_category"] = held
    return out


def _summary(c: CorpusScore) -> dict[str, Any]:
    return {
        "score": round(c.normalised, 2) if math.isfinite(c.normalised) else None,
        "threshold": c.threshold,
        "windows": c.windows,
        "detected": c.detected,
        "false_positive_rows": c.false_positive_rows,
    }


def alarm_kpis(files: Sequence[NabFile], run: ForecasterRun) -> dict[str, Any]:
    """Alert openings as an operator would see them: per file, per 10 minutes (mean, peak), dropped rows."""
    per_file = {}
    total = 0
    peak = 0
    span_s = 0.0
    dropped: dict[str, int] = {}
    for f in files:
        r = run.results[f.name]
        t = f.timestamps[r.opened]
        n = int(r.opened.sum())
        total += n
        per_file[f.name] = n
        if t.size:
            t = np.sort(t)
            peak = max(peak, int(np.max(np.searchsorted(t, t + 600.0, side="left") - np.arange(t.size))))
        span_s += float(np.nanmax(f.timestamps) - np.nanmin(f.timestamps))
        for reason, c in r.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + c
    return {
        "openings": total,
        "openings_per_10_min_mean": total / (span_s / 600.0) if span_s else math.nan,
        "openings_per_10_min_peak": peak,
        "files_with_openings": sum(1 for n in per_file.values() if n),
        "openings_no_anomaly_files": sum(n for name, n in per_file.items() if name.startswith("artificialNoAnomaly")),
        "rows_dropped": dict(sorted(dropped.items())),
        "per_file": per_file,
    }


def evaluate_nab(
    files: Sequence[NabFile],
    forecasters: Sequence[str],
    results_dir: Path,
    detect: DetectSettings | None = None,
    log: Callable[[str], None] = lambda _m: None,
    forecast_cache: Path | None = None,
    only: dict[str, str] | None = None,
    refresh: dict[str, int] | None = None,
    cadence_baseline: str | None = CADENCE_BASELINE,
    model_threads: int | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Replay, write NAB's result files, score: the content of ``results.json``.

    ``only`` maps a forecaster to the one split it replays (``held_out`` or ``tuning``; others: all
    files): the model's forecasts cost ~15 ms each on two shared CPU cores, the whole corpus hours.
    ``refresh`` maps a forecaster to its ``refresh_every_steps`` (default 1: every tick).
    ``cadence_baseline`` (default Holt; None: off) is replayed again at every coarser cadence a
    forecaster was given, on that forecaster's files, as its own result (:func:`cadence_run_name`):
    comparing a forecaster refreshed every N ticks with a baseline refreshed every tick mixes the
    forecaster's quality with the cadence's cost.
    ``model_threads``, ``workers``: how the replay uses the CPU (:func:`replay_corpus`), not what it computes.
    """
    out: dict[str, Any] = {"files": len(files), "rows": sum(f.labelled.rows for f in files), "forecasters": {}}
    split = split_of(f.name for f in files)
    out["split"] = {part: [n for n, s in split.items() if s == part] for part in (HELD_OUT, TUNING)}
    runs = [(name, name, (refresh or {}).get(name, 1), (only or {}).get(name, "all")) for name in forecasters]
    if cadence_baseline is not None:
        extra = [(cadence_run_name(cadence_baseline, n), cadence_baseline, n, p) for _k, _f, n, p in runs if n > 1]
        runs += [r for r in dict.fromkeys(extra) if r[0] not in {k for k, *_ in runs}]
    for key, name, every, part in runs:
        mine = [f for f in files if part == "all" or split[f.name] == part]
        log(f"evaluate nab: {key} ({name}) on {len(mine)} files ({part}), forecasts every {every} steps")
        run = replay_corpus(mine, name, detect, log, forecast_cache, every, key, model_threads, workers)
        write_results(results_dir, mine, run)
        out["forecasters"][key] = {
            "forecaster": name,
            "files": part,
            "refresh_every_steps": every,
            "seconds": round(run.seconds, 1),
            "detectors": {
                detector_name(key): score_detector(mine, [run.results[f.name].score for f in mine], split),
                detector_name(key, openings=True): score_detector(
                    mine, [run.results[f.name].opened.astype(np.float64) for f in mine], split
                ),
            }
            | {
                detector_name(key, part=part): score_detector(
                    mine, [run.results[f.name].parts[part] for f in mine], split
                )
                for part in _parts(run, mine)
            },
            "alarms": alarm_kpis(mine, run),
            "periods_s": {f.name: run.results[f.name].period_s for f in mine},
        }
    return out


def _parts(run: ForecasterRun, files: Sequence[NabFile]) -> list[str]:
    """The score terms every file reported, when there are several (one term is the score itself)."""
    names = [set(run.results[f.name].parts) for f in files]
    common = set.intersection(*names) if names else set()
    order = list(PART_SUFFIX)
    return sorted(common, key=lambda n: (order.index(n) if n in order else len(order), n)) if len(common) > 1 else []
