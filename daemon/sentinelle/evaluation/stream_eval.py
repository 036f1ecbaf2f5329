"""Replay one ``timestamp,value`` series through the daemon's stages and give every row its slot's result.

A generic stream evaluator (NAB, or any folder of such CSVs): each file is one tag
of its own asset, and its rows go through :class:`~sentinelle.windows.Windows`
(resampling, sample-and-hold, gaps; duplicate and backward timestamps dropped and
counted by the daemon's own checks), the configured forecaster and
:class:`~sentinelle.detect.stage.DetectStage`, in time order, nothing looking ahead.

**The tag's configuration comes from the data**, as a plant engineer would set it:
its period is the median spacing of the file's timestamps (:func:`median_period`),
and a value is held for one period (``max_hold_s``), so a slot that received a
sample is never a gap and a slot that received none is one.  Everything else is the
shipped defaults, one configuration for every file.

**Rows get their own slot's result.**  Slot ``k`` covers ``((k−1)·p, k·p]``
(:func:`~sentinelle.windows.slot_of`); a row accepted by the windows gets the
per-tag score of the tick that closed the slot holding its timestamp, and
``opened`` when an alert opened at that tick.  A row the windows dropped
(duplicate or backward timestamp, a value that is not a number) gets no result
(score 0): the daemon never judged it.

**Batched, and still the live numbers.**  Windows do not depend on forecasts, so
:func:`evaluate_stream` closes every slot of the file first, forecasts all the
windows in large passes (rows are independent: the ``Forecaster`` contract), then
runs :meth:`DetectStage.process` tick by tick in order — what the live pipeline
computes, without its queues.  :func:`evaluate_stream_live` runs the same series
through the live stages (the :class:`ForecastBatcher` on its worker thread); the
tests hold the two equal.

>>> ts = 1_000.0 + 300.0 * np.arange(80) + 4.0      # every 5 min, 4 s past the grid
>>> x = np.sin(np.arange(80) / 5.0); x[60] = 9.0
>>> r = evaluate_stream(Stream("toy", ts, x), stream_settings(300.0, "naive"))
>>> r.period_s, len(r.score), int(r.slot[1] - r.slot[0]), float(r.score[60]) >= float(np.median(r.score))
(300.0, 80, 1, True)
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from ..detect.stage import DetectStage
from ..forecast import make_forecaster
from ..forecast.base import Forecaster
from ..forecast.batcher import ForecastBatcher, ForecastPass, forecast_in_chunks
from ..metrics import Metrics
from ..records import BoolArray, FloatArray, ForecastBatch, IntArray, Sample, WindowBatch
from ..settings import DetectSettings, ForecastSettings, Settings, TagSettings
from ..windows import Windows, slot_of
from .cache_files import UNREADABLE, ignored
from .replay import replay_settings

TAG = "value"
_QUEUE = 256


@dataclass(frozen=True, slots=True)
class Stream:
    """One univariate series, rows in file order (timestamps in seconds since the epoch)."""

    name: str
    timestamps: FloatArray
    values: FloatArray


@dataclass(slots=True)
class StreamResult:
    """What the daemon made of each row of a :class:`Stream`."""

    period_s: float
    score: FloatArray
    """Per row: the detect stage's per-tag score of the row's slot, in [0, 1] (0: none, or the row was dropped)."""
    opened: BoolArray
    """Per row: an alert of the tag's asset opened at the row's slot."""
    slot: IntArray
    """Per row: the slot ``k`` holding the row (−1: the windows dropped the row)."""
    parts: dict[str, FloatArray] = field(default_factory=dict)
    """Per detector that reports a per-tag score (``TickNumbers.parts``): its per-row score, as ``score``
    (which is their maximum): ablations."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Rows the windows skipped, by the daemon's reason (``duplicate``, ``out_of_order``, …)."""
    slots: int = 0
    """Ticks the detect stage processed (gap slots included)."""
    forecaster: str = ""
    seconds: float = 0.0


def median_period(timestamps: FloatArray) -> float:
    """The tag's period: the median of the positive spacings between consecutive rows.

    Duplicate (zero) and backward (negative) steps say nothing about the sampling rate.

    >>> median_period(np.array([0.0, 300.0, 600.0, 600.0, 900.0, 1500.0, 1200.0]))
    300.0
    """
    d = np.diff(np.asarray(timestamps, dtype=np.float64))
    d = d[d > 0]
    if not d.size:
        raise ValueError("a stream needs two distinct timestamps to have a period")
    return float(np.median(d))


def stream_settings(
    period_s: float,
    forecaster: str = "holt",
    detect: DetectSettings | None = None,
    forecast: ForecastSettings | None = None,
    context_steps: int = 512,
    refresh_every_steps: int = 1,
) -> Settings:
    """The daemon's defaults with the named forecaster, one forecast per slot, and a hold of one period.

    ``allowed_lateness_s`` is 0 (a file has no late samples: each slot closes when the next
    row arrives); ``max_hold_s`` is the period, the data's property like the period itself.
    ``refresh_every_steps`` > 1 is the daemon's mode for a forecaster too slow for every tick
    (each tag forecast every R ticks, the earlier multi-step forecast used in between).
    """
    return replay_settings(forecaster, detect, forecast, context_steps, refresh_every_steps, max_hold_s=period_s)


def tag_settings(name: str, period_s: float) -> TagSettings:
    """The stream's one tag: asset ``name``, no limits or rules (a NAB file says nothing about them)."""
    return TagSettings(name=TAG, asset=name, node_id=f"ns=2;s={name}", period_s=period_s)


@dataclass(slots=True)
class _Windows:
    batches: list[WindowBatch]
    row_slot: IntArray
    dropped: dict[str, int]


def close_windows(stream: Stream, settings: Settings, period_s: float) -> _Windows:
    """Feed the rows to :class:`Windows` one by one; every closed slot's window, and each row's slot."""
    metrics = Metrics(CollectorRegistry())
    windows = Windows([tag_settings(stream.name, period_s)], settings.windows, metrics)
    group = windows.groups[0]
    n = len(stream.timestamps)
    row_slot = np.full(n, -1, dtype=np.intp)
    out: list[WindowBatch] = []
    ts_all = np.asarray(stream.timestamps, dtype=np.float64).tolist()
    values = np.asarray(stream.values, dtype=np.float64).tolist()
    last_accepted = -math.inf
    for i, (ts, v) in enumerate(zip(ts_all, values, strict=True)):
        out.extend(windows.ingest([Sample(TAG, ts, v)]))
        # The windows set the tag's newest timestamp only when they accept a sample.
        if group.last_ts[0] == ts and ts != last_accepted:
            row_slot[i] = slot_of(ts, period_s)
            last_accepted = ts
    if math.isfinite(last_accepted):
        # The end of the file closes its last slot as a next row would have (that sample's own slot never closes).
        end = last_accepted + group.timing.allowed_lateness_s + period_s + 1e-6
        out.extend(windows.ingest([Sample(TAG, end, 0.0)]))
    dropped = {
        s.labels["reason"]: round(s.value)
        for m in metrics.samples_dropped.collect()
        for s in m.samples
        if s.name.endswith("_total") and s.value
    }
    return _Windows(out, row_slot, dropped)


def _rows_from_slots(
    row_slot: IntArray, slot_score: dict[int, float], slot_opened: set[int]
) -> tuple[FloatArray, BoolArray]:
    score = np.zeros(len(row_slot))
    opened = np.zeros(len(row_slot), dtype=bool)
    for i, k in enumerate(row_slot.tolist()):
        if k < 0:
            continue
        s = slot_score.get(k, math.nan)
        score[i] = min(max(s, 0.0), 1.0) if math.isfinite(s) else 0.0
        opened[i] = k in slot_opened
    return score, opened


def _parts_from_slots(row_slot: IntArray, slot_parts: dict[str, dict[int, float]]) -> dict[str, FloatArray]:
    return {name: _rows_from_slots(row_slot, by_slot, set())[0] for name, by_slot in slot_parts.items()}


class _Collector:
    """Per slot: the tag's score and whether an alert opened, from each processed tick."""

    def __init__(self, stage: DetectStage, period_s: float) -> None:
        self.stage = stage
        self.period_s = period_s
        self.score: dict[int, float] = {}
        self.parts: dict[str, dict[int, float]] = {}
        self.opened: set[int] = set()
        self.ticks = 0

    def result(self, w: _Windows, forecaster: str, started: float) -> StreamResult:
        """Each row's result from its slot's (both the batched and the live path end here)."""
        score, opened = _rows_from_slots(w.row_slot, self.score, self.opened)
        return StreamResult(
            period_s=self.period_s,
            score=score,
            opened=opened,
            slot=w.row_slot,
            parts=_parts_from_slots(w.row_slot, self.parts),
            dropped=w.dropped,
            slots=self.ticks,
            forecaster=forecaster,
            seconds=time.perf_counter() - started,
        )

    def process(self, fb: ForecastBatch) -> None:
        events = self.stage.process(fb)
        # The window's ts is k·p as windows.py computed it, so this inverts it exactly.
        k = round(fb.window.ts / self.period_s)
        self.ticks += 1
        tick = self.stage.last_tick
        if tick is not None:
            self.score[k] = float(tick.score[0])
            for name, part in tick.parts:
                self.parts.setdefault(name, {})[k] = float(part[0])
        if any(ev.event == "opened" for ev in events):
            self.opened.add(k)


def cached_forecasts(fc: Forecaster, fpass: ForecastPass, max_batch: int, cache: Path | None) -> FloatArray:
    """The forecaster over the pass's contexts, or its answer to the very same contexts saved in ``cache``.

    Forecasts depend on the windows alone (never on detection settings), so an evaluation that
    re-runs detection with another scorer need not pay the model's forecasts again.  The file
    is keyed by a hash of every context row and the forecaster's name: other windows, another
    forecaster, and the forecasts are made afresh (and the file replaced).
    """
    key = hashlib.blake2b(fpass.contexts.tobytes() + fc.name.encode(), digest_size=16).hexdigest()
    if cache is not None and cache.is_file():
        try:
            with cache.open("rb") as fh, np.load(fh) as saved:  # our handle: np.load leaks its own on a bad zip
                if str(saved["key"]) == key:
                    return np.asarray(saved["quantiles"], dtype=np.float64)
        except UNREADABLE as e:  # recomputed and rewritten below
            ignored(cache, e)
    q = forecast_in_chunks(fc, fpass.contexts, fpass.assets, max_batch)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez(tmp, key=np.array(key), quantiles=q)
        tmp.replace(cache)
    return q


def forecast_stream(
    stream: Stream,
    settings: Settings,
    forecaster: Forecaster,
    period_s: float,
    forecast_cache: Path | None,
) -> int:
    """The forecasts :func:`evaluate_stream` would make (or find in ``forecast_cache``), kept there.

    Returns the number of windows forecast.
    """
    w = close_windows(stream, settings, period_s)
    if not w.batches:
        return 0
    fpass = ForecastPass.of(w.batches, settings.forecast.refresh_every_steps)
    cached_forecasts(forecaster, fpass, settings.forecast.max_batch, forecast_cache)
    return int(fpass.contexts.shape[0])


def evaluate_stream(
    stream: Stream,
    settings: Settings,
    forecaster: Forecaster | None = None,
    period_s: float | None = None,
    forecast_cache: Path | None = None,
) -> StreamResult:
    """Windows first, forecasts in large passes, then the detect stage tick by tick (see the module docstring).

    ``period_s``: the tag's period (default: :func:`median_period` of the stream); ``settings``
    should come from :func:`stream_settings` with the same period.  ``forecast_cache``: a file
    for :func:`cached_forecasts`.
    """
    started = time.perf_counter()
    p = period_s if period_s is not None else median_period(stream.timestamps)
    fc = forecaster or make_forecaster(settings.forecast)
    w = close_windows(stream, settings, p)
    stage = DetectStage(
        [tag_settings(stream.name, p)],
        settings.detect,
        Metrics(CollectorRegistry()),
        refresh_every_steps=settings.forecast.refresh_every_steps,
    )
    collect = _Collector(stage, p)
    if w.batches:
        fpass = ForecastPass.of(w.batches, settings.forecast.refresh_every_steps)
        q = cached_forecasts(fc, fpass, settings.forecast.max_batch, forecast_cache)
        for fb in fpass.split(fc.levels, q, fc.name):
            collect.process(fb)
    return collect.result(w, fc.name, started)


def evaluate_stream_live(
    stream: Stream,
    settings: Settings,
    forecaster: Forecaster | None = None,
    period_s: float | None = None,
) -> StreamResult:
    """The same series through the live stages: windows → :class:`ForecastBatcher` (worker thread) → detect."""
    return asyncio.run(_live(stream, settings, forecaster, period_s))


async def _live(
    stream: Stream, settings: Settings, forecaster: Forecaster | None, period_s: float | None
) -> StreamResult:
    started = time.perf_counter()
    p = period_s if period_s is not None else median_period(stream.timestamps)
    metrics = Metrics(CollectorRegistry())
    fc = forecaster or make_forecaster(settings.forecast, metrics)
    stage = DetectStage(
        [tag_settings(stream.name, p)],
        settings.detect,
        metrics,
        refresh_every_steps=settings.forecast.refresh_every_steps,
    )
    batcher = ForecastBatcher(fc, settings.forecast, metrics)
    collect = _Collector(stage, p)
    to_forecast: asyncio.Queue[WindowBatch | None] = asyncio.Queue(maxsize=_QUEUE)
    to_detect: asyncio.Queue[ForecastBatch | None] = asyncio.Queue(maxsize=_QUEUE)
    # Which row went to which slot is close_windows' bookkeeping; the windows the stages see
    # come from a Windows of the producer's own, fed row by row as the daemon's source task would.
    w = close_windows(stream, settings, p)
    windows = Windows([tag_settings(stream.name, p)], settings.windows, metrics)

    async def produce() -> None:
        try:
            for ts, v in zip(stream.timestamps.tolist(), stream.values.tolist(), strict=True):
                for wb in windows.ingest([Sample(TAG, ts, v)]):
                    await to_forecast.put(wb)
            accepted = np.asarray(stream.timestamps)[w.row_slot >= 0]
            if accepted.size:
                end = float(accepted.max()) + windows.groups[0].timing.allowed_lateness_s + p + 1e-6
                for wb in windows.ingest([Sample(TAG, end, 0.0)]):
                    await to_forecast.put(wb)
        finally:
            await to_forecast.put(None)

    async def detect() -> None:
        while (fb := await to_detect.get()) is not None:
            collect.process(fb)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(produce())
        tg.create_task(batcher.run(to_forecast, to_detect))
        tg.create_task(detect())
    return collect.result(w, fc.name, started)
