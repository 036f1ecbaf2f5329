"""The detect stage: for each forecast batch, gate the tick, run every detector, advance the alert life cycle.

Per tick of a tag group (tags sharing a period, in a fixed row order):

1. **Gate.**  Assets whose detection waits (``gating.py``: a stopped or starting mode, the
   hold-off after a change, maintenance), and data quality (``detectors/data_quality.py``'s
   screen: missing, stuck and spiking tags, and the ticks right after) are not judged by any
   process detector.  The result is a :class:`~.detectors.base.Tick`: values, values with
   gated rows NaN, the gates.
2. **Observe.**  Every detector of the group (``detectors/``: residual, asset T²/Q,
   limits, rate of change, energy balance, relations, data quality) judges the tick into
   :class:`~.detectors.base.Findings`.  The residual detector's per-tag numbers (forecast,
   z, score) become the tick's: every alert's event shows them.
3. **Pause.**  Alerts of assets whose detection waits are cleared (``alerting.py``).
4. **Learn, then alert**, detector by detector in their fixed order: each learns what the
   life cycle allows (no gated tag, no alert open), then its findings go through the one
   life cycle (``alerting.py``: k of n to open, a run of normal ticks to clear, updates).

All per-row work is numpy except the River scorer calls and the events of the few rows
whose alert state changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from ..errors import ConfigError
from ..metrics import Metrics, TagSnapshot
from ..queues import end_of_stream
from ..records import AlertEvent, FloatArray, ForecastBatch, IntArray
from ..settings import DetectSettings, TagSettings
from ..timing import slowest_periods
from .alerting import AlertCycle
from .alerts import AlertBook
from .detectors import BuildContext, Detector, Findings, Layout, RowNumbers, Tick, build_all
from .detectors.base import MovesSubjects
from .detectors.data_quality import QualityScreen, screen
from .detectors.residual import ResidualDetector
from .gating import AssetGate, AssetGates
from .maintenance import MaintenanceCalendar, MaintenanceGate
from .modes import AssetModes
from .rest import Rest, rest_each
from .scoring import ResidualScorer

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Group:
    layout: Layout
    screen: QualityScreen
    detectors: list[Detector]
    cycle: AlertCycle
    mode_rows: dict[str, int]
    """Tags read by mode rules → their row here."""
    rest: Rest
    """The rest period of the published per-tag score (``detect.score_rest_steps``): one entry a row, or with
    ``detect.score_rest_scope = "term"`` one a row and term (the residual's, then each detector's, term-major)."""
    deadband: FloatArray | None = None
    """While history is replayed: each row's deadband (0: none known)."""
    replay_ended: bool = False
    """A history replay ended since this group's last tick: its next tick says so (``Tick.replay_ended``)."""

    @property
    def tags(self) -> tuple[str, ...]:
        return self.layout.tags

    @property
    def scorer(self) -> ResidualScorer:
        """The residual detector's scorer (River detectors and remembered forecasts)."""
        return next(d.scorer for d in self.detectors if isinstance(d, ResidualDetector))


@dataclass(frozen=True, slots=True)
class TickNumbers:
    """The numbers of one processed batch, per row: for evaluations and plots."""

    group: _Group
    ts: float
    values: FloatArray
    expected: FloatArray
    z: FloatArray
    score: FloatArray
    """Per row: the tag's combined score (with a refractory period, the onset's: what evaluations record): the
    residual scorer's, or the maximum of it and every per-tag calibrated score a detector reports
    (``Findings.tag_score``: the smallest tail probability)."""
    mid: int
    surprise: FloatArray
    """Per row: the combined score the flags compare (before any refractory period)."""
    parts: tuple[tuple[str, FloatArray], ...] = ()
    """Each term of ``score`` by detector name (``forecast_residual`` first): ablations read them."""


def combined(
    rows: RowNumbers, found: Sequence[Findings], detectors: Sequence[Detector]
) -> tuple[FloatArray, FloatArray, tuple[tuple[str, FloatArray], ...]]:
    """Per row: the maximum of the residual's score and surprise and each detector's calibrated per-tag ones.

    Every term is ``S/(S+10)`` of a calibrated tail probability's decades, so the maximum is the smallest
    tail probability, and a tag flags (in its detector's alerts) exactly when the maximum reaches the one
    ``detect.score_threshold``.  NaN only where every term is NaN.  Also each term by detector name.
    """
    score, surprise = rows.score, rows.surprise
    parts = [("forecast_residual", rows.score)]
    for d, f in zip(detectors, found, strict=True):
        if f.tag_score is not None:
            score = np.fmax(score, f.tag_score)
            parts.append((d.name, f.tag_score))
        if f.tag_surprise is not None:
            surprise = np.fmax(surprise, f.tag_surprise)
    return score, surprise, tuple(parts)


class DetectStage:
    def __init__(
        self,
        tags: Sequence[TagSettings],
        settings: DetectSettings,
        metrics: Metrics,
        calendar: MaintenanceCalendar | None = None,
        *,
        refresh_every_steps: int = 1,
        estimate_groups: Sequence[Sequence[str]] = (),
    ) -> None:
        self.settings = settings
        self.refresh_every_steps = refresh_every_steps
        """``forecast.refresh_every_steps`` of the batches this stage gets (what ``BuildContext`` tells detectors)."""
        self.estimate_groups = tuple(tuple(g) for g in estimate_groups)
        """``forecast.asset_mask_groups`` of the estimates this stage gets (what ``BuildContext`` tells detectors)."""
        self.metrics = metrics
        self.tag_settings = {t.name: t for t in tags}
        self.book = AlertBook(metrics, settings)
        self.modes = AssetModes(settings.assets, metrics, slowest_periods(tags))
        self.maintenance = MaintenanceGate(
            calendar if calendar is not None else MaintenanceCalendar(),
            metrics,
            (t.asset for t in tags),
            open_k=settings.open_k,
            open_n=settings.open_n,
            clear_steps=settings.clear_normal_steps,
        )
        """Maintenance windows (configured, and from operator commands): an asset in one is gated like a paused
        mode — no alert, no learning — and its open alerts clear with ``clear_reason`` maintenance."""
        self.gate = AssetGate(self.modes, self.maintenance, metrics)
        periods: dict[str, set[float]] = {}
        for t in tags:
            periods.setdefault(t.asset, set()).add(t.period_s)
        self._split_assets = {a for a, p in periods.items() if len(p) > 1}
        self._groups: dict[tuple[str, ...], _Group] = {}
        self._deadbands: dict[str, float] | None = None
        """While history is replayed: tag → deadband of the export (``replaying_history``)."""
        self._pending: dict[tuple[str, ...], tuple[dict[str, np.ndarray], dict[str, Any]]] = {}
        """Saved state of tag groups not built yet (:meth:`restore`): applied when their first batch comes."""
        self.last_tick: TickNumbers | None = None
        """The numbers of the latest batch :meth:`process` saw (forecasts, z, scores): for evaluations and plots."""

    async def run(
        self,
        inbox: asyncio.Queue[ForecastBatch | None],
        outbox: asyncio.Queue[list[AlertEvent] | None],
    ) -> None:
        """Detect on every batch from ``inbox``; ``None`` ends the stage (and is passed on)."""
        try:
            while (fb := await inbox.get()) is not None:
                events = self.process(fb)
                if events:
                    await outbox.put(events)
        finally:
            await end_of_stream(outbox)

    @contextlib.contextmanager
    def replaying_history(self, deadbands: Mapping[str, float] | None = None) -> Iterator[None]:
        """Detect on past data: detectors learn as usual, but no alert outlives the replay.

        The start-up backfill runs history through :meth:`process` so the River
        detectors are past their grace period at the first live tick.  Alerts it
        raises belong to the past: they go to a scratch book (no event counted, no
        ``alerts_active`` gauge moved) and, at the end, every open alert and k-of-n
        record is forgotten, so the live stream never sees an ``updated`` or
        ``cleared`` of an alert it was not told about.  A condition still present
        opens a fresh alert after ``open_k`` live anomalous ticks.  Data-quality and
        mode state (how long a tag has been flat, the asset's mode) is about the
        data, not about alerts, and carries over.

        ``deadbands`` (tag → deadband in tag units, ``HistoryReport.deadbands()``) go with
        the batches' held masks (``WindowBatch.held``) to the detectors, which learn held
        slots as ``detect.history_held`` says (widen or skip); a tag absent has none.

        Detectors see the replay in the tick (``Tick.replay``), and its end in the next tick of
        each tag group (``Tick.replay_ended``, saved with the group's state in between).
        """
        live = self.book
        self.book = AlertBook(Metrics(CollectorRegistry()), self.settings)
        self._deadbands = dict(deadbands or {})
        try:
            yield
        finally:
            self.book = live
            self._deadbands = None
            for g in self._groups.values():
                g.cycle.reset()
                g.deadband = None
                g.replay_ended = True

    def _group(self, fb: ForecastBatch) -> _Group:
        g = self._groups.get(fb.window.tags)
        if g is not None:
            return g
        w = fb.window
        asset_rows: dict[str, list[int]] = {}
        for i, a in enumerate(w.assets):
            asset_rows.setdefault(a, []).append(i)
        index_of = {a: k for k, a in enumerate(asset_rows)}
        ts = tuple(self.tag_settings[name] for name in w.tags)
        layout = Layout(
            tags=w.tags,
            assets=w.assets,
            units=tuple(t.unit for t in ts),
            period_s=w.period_s,
            tag_settings=ts,
            asset_names=tuple(asset_rows),
            asset_index=np.array([index_of[a] for a in w.assets], dtype=np.intp),
            asset_rows=asset_rows,
            subjects=tuple(f"{a}@{w.period_s:g}s" if a in self._split_assets else a for a in asset_rows),
            row_of={name: i for i, name in enumerate(w.tags)},
            max_contributors=self.settings.max_contributors,
        )
        ctx = BuildContext(
            layout, self.settings, fb.levels, self.metrics, self.refresh_every_steps, self.estimate_groups
        )
        detectors = build_all(ctx)
        g = _Group(
            layout=layout,
            screen=screen(layout, ctx),
            detectors=detectors,
            cycle=AlertCycle(layout, detectors, lambda: self.book, self.metrics),
            mode_rows=self.gate.mode_rows(layout),
            rest=Rest(
                layout.n * (1 + len(detectors) if self.settings.score_rest_scope == "term" else 1),
                self.settings.score_rest_steps,
                self.settings.score_rest_level,
                escalate=self.settings.score_rest_escalate,
            ),
        )
        pending = self._pending.pop(w.tags, None)
        if pending is not None:
            try:
                _restore_group(g, *pending)
            except (ConfigError, KeyError, ValueError, TypeError) as e:
                log.warning(
                    "saved detector state of %d tags (%s …) not used, they start cold: %s", len(w.tags), w.tags[0], e
                )
                self.metrics.scaleout_restore_failures.labels("detector").inc()
                return self._group(fb)
        self._groups[w.tags] = g
        return g

    # -- scale-out snapshots ---------------------------------------------------------

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Every tag group's detectors, data-quality screen and alert life cycle, the alert book, the assets' modes.

        Arrays (detector blobs as bytes) and JSON meta, for ``scaleout/state.py``; groups not
        built yet but restored earlier are kept as they were restored.
        """
        arrays: dict[str, np.ndarray] = {}
        groups: list[dict[str, Any]] = []
        for gi, g in enumerate(self._groups.values()):
            p = f"g{gi}~"
            arrays[p + "screen"] = _as_array(g.screen.state())
            arrays[p + "rest"] = g.rest.left.copy()
            arrays[p + "rest_best"] = g.rest.best.copy()
            arrays[p + "rest_prev"] = g.rest.prev.copy()
            for d in g.detectors:
                arrays[f"{p}det~{d.name}"] = _as_array(d.state())
            cycle, quiet = g.cycle.state()
            arrays |= {f"{p}cycle~{k}": v for k, v in cycle.items()}
            groups.append(
                {
                    "tags": list(g.tags),
                    "detectors": [d.name for d in g.detectors],
                    "quiet": quiet,
                    "replay_ended": g.replay_ended,
                }
            )
        for tags, (saved, meta) in self._pending.items():
            p = f"g{len(groups)}~"
            arrays |= {p + k: v for k, v in saved.items()}
            groups.append({**meta, "tags": list(tags)})
        return arrays, {"groups": groups, "book": self.book.state(), "modes": self.modes.state()}

    def restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Take over :meth:`state` of another process (same tags): the book now, each tag group at its first batch."""
        self.book.restore(meta["book"])
        self.modes.restore(meta.get("modes", {}))  # absent in snapshots written before modes were saved
        self._pending = {}
        for gi, gm in enumerate(meta["groups"]):
            p = f"g{gi}~"
            self._pending[tuple(gm["tags"])] = ({k[len(p) :]: v for k, v in arrays.items() if k.startswith(p)}, gm)

    # -- one tick ---------------------------------------------------------------------

    def process(self, fb: ForecastBatch) -> list[AlertEvent]:
        g = self._group(fb)
        w = fb.window
        lay = g.layout
        tick, gates = self._gate(g, fb)
        # 2. Observe; the residual detector's per-tag numbers are what every event shows.
        found = [d.observe(tick) for d in g.detectors]
        rows = next(f.rows for f in found if f.rows is not None)  # the residual detector's, always built
        tick = dataclasses.replace(tick, rows=rows)
        score, surprise, parts = combined(rows, found, g.detectors)
        # What is published and recorded (rested); the flags read their own scores.
        if self.settings.score_rest_scope == "term":
            nan = np.full(lay.n, np.nan)
            score = rest_each(g.rest, [rows.score, *(nan if f.tag_score is None else f.tag_score for f in found)])
        else:
            score = g.rest.apply(score)
        self.last_tick = TickNumbers(g, tick.ts, tick.values, rows.expected, rows.z, score, rows.mid, surprise, parts)
        self.gate.count_suppressed(lay, gates, [f.withheld for f in found if f.withheld is not None], w.values)
        # 3. Held clearings due and floods ended (re-arm, flood.py), pause, 4. learn and alert, detector by detector.
        events = self.book.tick(w.ts, w.period_s)
        if gates.paused.any():
            events += g.cycle.pause(g.detectors, tick, *self.gate.reasons(lay, gates, w.ts))
        for d, f in zip(g.detectors, found, strict=True):
            d.learn(tick, f)
            events += g.cycle.advance(d, tick, f)

        self.metrics.tag_state.publish(
            w.period_s,
            TagSnapshot(
                tags=w.tags,
                assets=w.assets,
                actual=w.values,
                forecast=rows.expected,
                levels=fb.levels,
                score=surprise,
                estimate=fb.estimate,
            ),
        )
        self.metrics.detect_latency_seconds.observe(time.monotonic() - w.arrived_at)
        return events

    def _gate(self, g: _Group, fb: ForecastBatch) -> tuple[Tick, AssetGates]:
        """1. Paused assets (modes, maintenance) and data quality: the tick every detector sees."""
        w = fb.window
        lay = g.layout
        gates = self.gate.assets(lay, g.mode_rows, w.ts, w.values)
        self.book.latest_ts = max(self.book.latest_ts, w.ts)
        replay = self._deadbands is not None
        replay_ended, g.replay_ended = g.replay_ended, False
        quality = g.screen.quality
        if replay and w.held is not None:
            quality.saw_held(w.held)
        if replay_ended and self.settings.history_held_screen_reset:
            quality.forget_replay()
        spike_held = w.held if replay and self.settings.history_held_spike_skip else None
        dq = g.screen.screen(w.ts, w.values, w.source_down, spike_held)
        gated = gates.paused[lay.asset_index] | dq.gate
        self.gate.count_gated(lay, gates, dq)
        tick = Tick(
            layout=lay,
            ts=w.ts,
            batch=fb,
            values=w.values,
            clean=np.where(gated, np.nan, w.values),
            gate=gated,
            paused=gates.paused,
            maintenance=gates.maintenance,
            quality=dq,
            alerts=g.cycle,
            replay=replay,
            replay_ended=replay_ended,
            held=w.held if replay else None,
            deadband=self._group_deadband(g) if replay and w.held is not None else None,
        )
        return tick, gates

    def _group_deadband(self, g: _Group) -> FloatArray:
        if g.deadband is None:
            known = self._deadbands or {}
            g.deadband = np.array([known.get(t, 0.0) for t in g.layout.tags], dtype=np.float64)
        return g.deadband


def _as_array(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.uint8)


def _restore_group(g: _Group, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """One tag group's saved state; raises when it was saved with other detectors or subjects."""
    names = [d.name for d in g.detectors]
    if meta["detectors"] != names:
        raise ConfigError(f"saved with detectors {meta['detectors']}, configured now {names}")
    g.screen.restore(arrays["screen"].tobytes())
    # Absent in snapshots written before the rest period existed, or saved with another detect.score_rest_scope: awake.
    if "rest" in arrays and arrays["rest"].size == g.rest.left.size:
        g.rest.left = np.asarray(arrays["rest"], dtype=np.int64).reshape(g.rest.left.shape)
        for name in ("best", "prev"):  # absent in snapshots written before the escalating rest: none
            key = f"rest_{name}"
            if key in arrays and arrays[key].size == g.rest.left.size:
                setattr(g.rest, name, np.asarray(arrays[key], dtype=np.float64).reshape(g.rest.left.shape))
    moved: dict[str, IntArray] = {}
    for d in g.detectors:
        d.restore(arrays[f"det~{d.name}"].tobytes())
        if isinstance(d, MovesSubjects) and (to := d.moved_subjects()) is not None:
            moved[d.name] = to  # restored from an older version: its alerts' life cycle moves with its subjects
    cycle = {k[len("cycle~") :]: v for k, v in arrays.items() if k.startswith("cycle~")}
    g.cycle.restore(cycle, meta["quiet"], moved)
    g.replay_ended = bool(meta.get("replay_ended", False))  # absent in snapshots written before it was saved
