"""Start-up backfill: the plant's recent history through the daemon's own stages, before it goes live.

Why: a cold daemon needs ``context_steps`` slots before its windows are full and
``grace_period_steps`` scored ticks before a detector may flag anything — with the
defaults at 1 Hz, nine blind minutes after every restart.  The plant's historian
and exports already hold those minutes.

What :func:`run_backfill` does, called by ``app.py`` after the sinks start and
before the OPC-UA sources connect (so before ``READY=1``):

* **Look-back**: ``[now − history.backfill_lookback_s, now)``; by default
  ``context_steps + grace_period_steps`` periods of the slowest tag, so the windows
  are full *and* the detectors have passed their grace period.  An export of a
  past period is read with ``history.backfill_from`` (and ``backfill_until``) in
  the data's own time instead: a look-back from the wall clock would need to
  reach back months to find it.
* **Read**: every ``[[history.sources]]`` through :mod:`sentinelle.sources.history`,
  asking for the configured tags only.  Malformed rows are counted by reason
  (``sentinelle_samples_dropped_total{reason="malformed_…"}``); samples read count
  in ``sentinelle_samples_ingested_total{source="history:<label>"}`` and
  ``sentinelle_backfill_samples_total{source}``.
* **Order**: the samples of all sources are merged and sorted by time (a stable
  sort: on equal time, the source listed first wins and the other is counted as a
  ``duplicate``), then fed to the daemon's own ``Windows.ingest`` — the same
  resampling, hold and checks as live samples.  They are kept as numpy columns
  (21 bytes a sample), not objects, while they wait for the sort.
* **Warm detectors, no historical alerts**: every slot that closes is forecast
  by the daemon's forecaster (``max_batch`` rows per call, on a worker thread;
  with ``refresh_every_steps`` R, a rotating 1/R of its rows, as live) and
  scored by the daemon's ``DetectStage`` inside
  :meth:`~sentinelle.detect.stage.DetectStage.replaying_history`: detectors learn
  as they would have live, but alert events of the historical period are **not
  sent** — they are counted in ``sentinelle_backfill_events_suppressed_total{event}``
  and the alerts are forgotten, so a condition still present at start opens a
  fresh alert after ``open_k`` live anomalous ticks.  The first live slot is
  scored against the forecast made from the last historical slot.
* **Compressed exports** (issue 17): each sample keeps its reader's *held* flag
  (a forward-filled cell, :func:`~sentinelle.sources.history.held_mask`) through
  the sort, as a column beside its time and value; the windows mark each closed
  slot changed or held from it (``WindowBatch.held``), and the detect stage gets
  every tag's deadband (``HistoryReport.deadbands()``, the first source listed
  wins) with ``replaying_history``, so no detector takes a held value for a
  measurement (``detect.history_held``: widen or skip).  The log shows each tag's
  held share and deadband (``HistoryReport.log_summary``).
* **Failure**: a source that cannot be read (file missing, server down, table
  or column missing, read failing midway) stops the start with
  :class:`~sentinelle.errors.SourceUnavailable` (exit 69) when
  ``history.required_at_start`` is set; otherwise it is logged as a warning and the
  daemon starts with what the other sources gave — cold when none gave anything.
  If the forecaster fails during the replay, the rest of the history only fills
  the windows (the live batcher falls back to its baseline by itself).
* **systemd**: a long read must not trip ``TimeoutStartSec``: the backfill sends
  ``EXTEND_TIMEOUT_USEC`` while it works.

Like ``app.py`` this module wires stages together (windows, forecaster, detect);
stages never import it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .detect.stage import DetectStage
from .errors import SentinelleError, SourceUnavailable
from .forecast.base import Forecaster
from .forecast.batcher import ForecastPass, forecast_in_chunks
from .metrics import Metrics
from .notify import sd_notify
from .records import FloatArray, Quality, Sample, WindowBatch
from .settings import Settings
from .sources.history import HistoryReader, HistoryReport, held_mask
from .timing import backfill_lookback_s
from .windows import Windows

log = logging.getLogger(__name__)

FEED_SAMPLES = 10_000
"""Samples per ``Windows.ingest`` call while replaying: small enough to yield to the event loop often."""

_EXTEND_EVERY_S = 5.0
_EXTEND_BY_US = 30_000_000
_QUALITIES = tuple(Quality)


def lookback_s(settings: Settings) -> float:
    """How far back the backfill reads: the setting, or enough to fill windows and pass the grace period."""
    return backfill_lookback_s(settings)


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """What one start-up backfill did."""

    start: float
    end: float
    samples: int
    """Samples read from all sources and fed to the windows."""
    ticks: int
    """Tag groups' slots closed, forecast and scored during the replay."""
    events_suppressed: int
    seconds: float
    reports: tuple[HistoryReport, ...]
    unavailable: tuple[str, ...]
    """Labels of the sources that could not be read (only when not required)."""


class _Columns:
    """Samples as growing numpy columns while they wait to be sorted."""

    def __init__(self, tag_index: dict[str, int], metrics: Metrics) -> None:
        self.tag_index = tag_index
        self.metrics = metrics
        self.tags: list[npt.NDArray[np.int32]] = []
        self.ts: list[FloatArray] = []
        self.values: list[FloatArray] = []
        self.qualities: list[npt.NDArray[np.int8]] = []
        self.held: list[npt.NDArray[np.uint8]] = []
        self.count = 0

    def add(self, chunk: Sequence[Sample]) -> None:
        index = self.tag_index
        mask = np.frombuffer(held_mask(chunk), dtype=np.uint8)
        keep = [i for i, s in enumerate(chunk) if s.tag in index]
        known = [chunk[i] for i in keep]
        if len(known) < len(chunk):
            self.metrics.drop("unknown_tag", len(chunk) - len(known))
        n = len(known)
        self.held.append(mask[np.array(keep, dtype=np.intp)] if len(keep) < len(chunk) else mask.copy())
        self.tags.append(np.fromiter((index[s.tag] for s in known), np.int32, n))
        self.ts.append(np.fromiter((s.source_ts for s in known), np.float64, n))
        # Readers deliver floats (or count what is not one), so the cast loses nothing.
        self.values.append(np.fromiter((float(s.value) for s in known), np.float64, n))  # type: ignore[arg-type]
        self.qualities.append(np.fromiter((int(s.quality) for s in known), np.int8, n))
        self.count += n

    def sorted(self, names: Sequence[str]) -> _Sorted:
        """Everything collected, in time order (the collected columns are released)."""
        tag = np.concatenate(self.tags) if self.tags else np.zeros(0, np.int32)
        ts = np.concatenate(self.ts) if self.ts else np.zeros(0)
        values = np.concatenate(self.values) if self.values else np.zeros(0)
        quality = np.concatenate(self.qualities) if self.qualities else np.zeros(0, np.int8)
        held = np.concatenate(self.held) if self.held else np.zeros(0, np.uint8)
        self.tags, self.ts, self.values, self.qualities, self.held = [], [], [], [], []
        return _Sorted(names, tag, ts, values, quality, held, np.argsort(ts, kind="stable"))


@dataclass(frozen=True, slots=True)
class _Sorted:
    names: Sequence[str]
    tag: npt.NDArray[np.int32]
    ts: FloatArray
    values: FloatArray
    quality: npt.NDArray[np.int8]
    held: npt.NDArray[np.uint8]
    """Per sample: 1 = a held (forward-filled) repeat, not a read value."""
    order: npt.NDArray[np.intp]

    def __len__(self) -> int:
        return len(self.order)

    def samples(self, lo: int, hi: int) -> list[Sample]:
        """Samples ``lo`` to ``hi`` in time order, as the records the windows take."""
        sel = self.order[lo:hi]
        names, qualities = self.names, _QUALITIES
        return [
            Sample(names[i], t, v, qualities[q])
            for i, t, v, q in zip(
                self.tag[sel].tolist(),
                self.ts[sel].tolist(),
                self.values[sel].tolist(),
                self.quality[sel].tolist(),
                strict=True,
            )
        ]

    def held_flags(self, lo: int, hi: int) -> bytes:
        """The held flags of samples ``lo`` to ``hi`` in time order (what ``Windows.ingest`` takes)."""
        return self.held[self.order[lo:hi]].tobytes()


class _StartKeepAlive:
    """EXTEND_TIMEOUT_USEC every few seconds, so systemd waits for a long backfill."""

    def __init__(self) -> None:
        self._last = -_EXTEND_EVERY_S

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self._last >= _EXTEND_EVERY_S:
            self._last = now
            sd_notify(f"EXTEND_TIMEOUT_USEC={_EXTEND_BY_US}")


class _Replay:
    """Closed slots → forecaster → detect, with alert events counted and dropped."""

    def __init__(
        self, forecaster: Forecaster, detect: DetectStage, metrics: Metrics, max_batch: int, refresh_every_steps: int
    ) -> None:
        self.forecaster = forecaster
        self.detect = detect
        self.metrics = metrics
        self.max_batch = max_batch
        self.refresh_every_steps = refresh_every_steps
        self.pending: list[WindowBatch] = []
        self.rows = 0
        self.ticks = 0
        self.suppressed = 0
        self.forecasting = True

    async def add(self, batches: Sequence[WindowBatch]) -> None:
        if not self.forecasting:
            return
        self.pending.extend(batches)
        self.rows += sum(len(b) for b in batches)
        if self.rows >= self.max_batch:
            await self.flush()

    async def flush(self) -> None:
        pending, self.pending, self.rows = self.pending, [], 0
        if not pending or not self.forecasting:
            return
        f = self.forecaster
        # As live: with refresh_every_steps R, a rotating 1/R of each slot's rows is forecast
        # and the others are scored against their last forecast (a model backfill on a CPU
        # would otherwise cost R times the live ticks).
        batch = ForecastPass.of(pending, self.refresh_every_steps)
        try:
            quantiles = await asyncio.to_thread(forecast_in_chunks, f, batch.contexts, batch.assets, self.max_batch)
        except Exception as e:  # the forecaster is foreign code; the daemon must still start
            self.metrics.forecast_errors.labels(f.name).inc()
            log.error("backfill: forecaster %r failed (%s); the rest of the history only fills the windows", f.name, e)
            self.forecasting = False
            return
        for fb in batch.split(f.levels, quantiles, f.name):
            events = self.detect.process(fb)
            for ev in events:
                self.metrics.backfill_events_suppressed.labels(ev.event).inc()
            self.suppressed += len(events)
            self.ticks += 1


async def run_backfill(
    settings: Settings,
    metrics: Metrics,
    windows: Windows,
    forecaster: Forecaster,
    detect: DetectStage,
    *,
    now: float | None = None,
) -> BackfillResult:
    """Read the look-back from every history source and replay it through windows, forecaster and detect.

    Raises :class:`SourceUnavailable` when a source cannot be read and
    ``history.required_at_start`` is set.
    """
    h = settings.history
    began = time.monotonic()
    keep_alive = _StartKeepAlive()
    end = time.time() if now is None else now
    explicit = h.backfill_range(end)
    start, end = explicit if explicit is not None else (end - lookback_s(settings), end)
    names = [t.name for t in settings.tags]
    columns = _Columns({name: i for i, name in enumerate(names)}, metrics)
    log.info(
        "backfill: reading %d history source(s) for %s .. %s (%.0f s)",
        len(h.sources),
        _iso(start),
        _iso(end),
        end - start,
    )
    reports: list[HistoryReport] = []
    unavailable: list[str] = []
    for source in h.sources:
        reader = HistoryReader(source, metrics)
        reader.report.units = {t.name: t.unit for t in settings.tags if t.unit}  # the held/deadband log lines
        reports.append(reader.report)
        ingested = metrics.samples_ingested.labels(f"history:{reader.label}")
        read = metrics.backfill_samples.labels(reader.label)
        try:
            async for chunk in reader.chunks(start, end, set(names), h.chunk_samples):
                columns.add(chunk)
                ingested.inc(len(chunk))
                read.inc(len(chunk))
                keep_alive()
        except SentinelleError as e:
            if h.required_at_start:
                raise SourceUnavailable(f"{e} (history.required_at_start is set)") from e
            log.warning("backfill: %s; continuing without it", e)
            unavailable.append(reader.label)

    replay = _Replay(forecaster, detect, metrics, settings.forecast.max_batch, settings.forecast.refresh_every_steps)
    deadbands: dict[str, float] = {}
    for report in reversed(reports):  # the first source listed wins
        deadbands.update(report.deadbands())
    with detect.replaying_history(deadbands):
        ordered = columns.sorted(names)
        try:
            for lo in range(0, len(ordered), FEED_SAMPLES):
                hi = lo + FEED_SAMPLES
                closed = windows.ingest(ordered.samples(lo, hi), time.monotonic(), ordered.held_flags(lo, hi))
                await replay.add(closed)
                keep_alive()
                await asyncio.sleep(0)  # let signals and the metrics endpoint's callbacks in
            await replay.flush()
        finally:
            windows.stop_marking_held()

    seconds = time.monotonic() - began
    metrics.backfill_seconds.set(seconds)
    result = BackfillResult(
        start=start,
        end=end,
        samples=columns.count,
        ticks=replay.ticks,
        events_suppressed=replay.suppressed,
        seconds=seconds,
        reports=tuple(reports),
        unavailable=tuple(unavailable),
    )
    if columns.count == 0:
        log.warning("backfill: no history in the look-back; starting cold")
    else:
        log.info(
            "backfill: %d samples replayed, %d slots scored, %d historical alert events not sent, %.2f s",
            result.samples,
            result.ticks,
            result.events_suppressed,
            seconds,
        )
    return result


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
