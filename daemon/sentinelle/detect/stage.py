"""The detect stage: for each forecast batch, score, check limits, advance alert life cycles.

Per tag group (tags sharing a period, in a fixed row order) it keeps a
:class:`ResidualScorer`, the limit rules, and one :class:`KofN` per alert kind.
All per-row work is numpy except the River detector calls and the events of the
few rows whose alert state changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import CollectorRegistry

from ..metrics import Metrics, TagSnapshot, levels_or_nan
from ..records import AlertEvent, AlertKind, Contributor, FloatArray, ForecastBatch
from ..settings import DetectSettings, TagSettings
from .alerts import AlertBook, Observation
from .asset import AssetT2
from .lifecycle import KofN
from .rules import LimitCheck, Limits
from .scoring import ResidualScorer


@dataclass(slots=True)
class _Group:
    tags: tuple[str, ...]
    assets: tuple[str, ...]
    units: tuple[str, ...]
    scorer: ResidualScorer
    limits: Limits
    residual: KofN
    high: KofN
    low: KofN
    asset_rows: dict[str, list[int]] = field(default_factory=dict)
    # Asset-level T² (detect.asset_enabled): one detector per asset, one k-of-n row per asset.
    asset_names: list[str] = field(default_factory=list)
    asset_detectors: dict[str, AssetT2] = field(default_factory=dict)
    asset_state: KofN | None = None
    asset_alert_tag: dict[str, str] = field(default_factory=dict)
    """The tag an open asset alert was filed under (its top contributor when it opened)."""


class DetectStage:
    def __init__(self, tags: Sequence[TagSettings], settings: DetectSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.tag_settings = {t.name: t for t in tags}
        self.book = AlertBook(metrics, settings.critical_z, settings.update_min_interval_s)
        self._groups: dict[tuple[str, ...], _Group] = {}
        self.last_tick: _Tick | None = None
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
            await outbox.put(None)

    @contextlib.contextmanager
    def replaying_history(self) -> Iterator[None]:
        """Detect on past data: detectors learn as usual, but no alert outlives the replay.

        The start-up backfill runs history through :meth:`process` so the River
        detectors are past their grace period at the first live tick.  Alerts it
        raises belong to the past: they go to a scratch book (no event counted, no
        ``alerts_active`` gauge moved) and, at the end, every open alert and k-of-n
        record is forgotten, so the live stream never sees an ``updated`` or
        ``cleared`` of an alert it was not told about.  A condition still present
        opens a fresh alert after ``open_k`` live anomalous ticks.
        """
        live = self.book
        s = self.settings
        self.book = AlertBook(Metrics(CollectorRegistry()), s.critical_z, s.update_min_interval_s)
        try:
            yield
        finally:
            self.book = live
            for g in self._groups.values():
                for tracker in (g.residual, g.high, g.low, g.asset_state):
                    if tracker is not None:
                        tracker.reset()
                g.asset_alert_tag.clear()

    def _group(self, fb: ForecastBatch) -> _Group:
        g = self._groups.get(fb.window.tags)
        if g is not None:
            return g
        w = fb.window
        ts = [self.tag_settings[name] for name in w.tags]
        n = len(ts)
        s = self.settings
        g = _Group(
            tags=w.tags,
            assets=w.assets,
            units=tuple(t.unit for t in ts),
            scorer=ResidualScorer(
                n, fb.levels, np.array([t.min_spread for t in ts]), s.grace_period_steps, s.score_threshold
            ),
            limits=Limits(ts),
            residual=KofN(n, s.open_k, s.open_n, s.clear_normal_steps),
            high=KofN(n, s.open_k, s.open_n, s.clear_normal_steps),
            low=KofN(n, s.open_k, s.open_n, s.clear_normal_steps),
        )
        for i, a in enumerate(w.assets):
            g.asset_rows.setdefault(a, []).append(i)
        if s.asset_enabled:
            g.asset_names = list(g.asset_rows)
            for a, rows in g.asset_rows.items():
                g.asset_detectors[a] = AssetT2(
                    len(rows),
                    np.array([ts[r].min_spread for r in rows]),
                    s.asset_grace_period_steps,
                    s.asset_quantile,
                    s.asset_ucl_factor,
                )
            g.asset_state = KofN(len(g.asset_names), s.open_k, s.open_n, s.clear_normal_steps)
        self._groups[w.tags] = g
        return g

    def process(self, fb: ForecastBatch) -> list[AlertEvent]:
        g = self._group(fb)
        w = fb.window
        values = w.values
        learn = ~g.residual.open
        exp, z, score, flagged = g.scorer.score(fb, learn)
        if exp is None:
            exp = levels_or_nan(fb.levels, len(w))
        finite = np.isfinite(z)
        n_scored = int(finite.sum())
        if n_scored:
            self.metrics.ticks_scored.inc(n_scored)
        n_flagged = int(flagged.sum())
        if n_flagged:
            self.metrics.ticks_anomalous.labels("residual").inc(n_flagged)

        events: list[AlertEvent] = []
        ctx = _Tick(g, w.ts, values, exp, z, score, g.scorer.mid)
        self.last_tick = ctx

        opened, cleared = g.residual.step(flagged, finite & ~flagged)
        for i in opened.tolist():
            events.append(
                self.book.open_alert(
                    "forecast_residual", g.assets[i], g.tags[i], ctx.obs(i), abs(float(z[i])), self._contrib(ctx, i)
                )
            )
        for i in cleared.tolist():
            ev = self.book.clear("forecast_residual", g.tags[i], ctx.obs(i), self._contrib(ctx, i))
            if ev:
                events.append(ev)
        just_opened = set(opened.tolist())
        for i in np.flatnonzero(g.residual.open & flagged).tolist():
            if i in just_opened:
                continue
            ev = self.book.maybe_update(
                "forecast_residual", g.tags[i], ctx.obs(i), abs(float(z[i])), self._contrib(ctx, i)
            )
            if ev:
                events.append(ev)

        if g.asset_state is not None:
            events.extend(self._asset_events(ctx, g.asset_state))

        if g.limits.any:
            high, low = g.limits.check(values)
            sides: tuple[tuple[AlertKind, LimitCheck, KofN, FloatArray], ...] = (
                ("limit_high", high, g.high, g.limits.high),
                ("limit_low", low, g.low, g.limits.low),
            )
            for kind, check, tracker, bound in sides:
                events.extend(self._limit_events(ctx, kind, check.violated, check.inside, tracker, bound))

        self.metrics.tag_state.publish(
            w.period_s,
            TagSnapshot(
                tags=g.tags, assets=g.assets, actual=values, forecast=exp, levels=fb.levels, score=score
            ),
        )
        self.metrics.detect_latency_seconds.observe(time.monotonic() - w.arrived_at)
        return events

    def _limit_events(
        self,
        ctx: _Tick,
        kind: AlertKind,
        violated: np.ndarray,
        inside: np.ndarray,
        tracker: KofN,
        bound: FloatArray,
    ) -> list[AlertEvent]:
        g = ctx.group
        events: list[AlertEvent] = []
        n_violated = int(violated.sum())
        if n_violated:
            self.metrics.ticks_anomalous.labels(kind).inc(n_violated)
        opened, cleared = tracker.step(violated, inside)
        for i in opened.tolist():
            excess = abs(float(ctx.values[i] - bound[i]))
            events.append(
                self.book.open_alert(
                    kind, g.assets[i], g.tags[i], ctx.obs(i), excess, self._contrib(ctx, i), float(bound[i])
                )
            )
        for i in cleared.tolist():
            ev = self.book.clear(kind, g.tags[i], ctx.obs(i), self._contrib(ctx, i), float(bound[i]))
            if ev:
                events.append(ev)
        return events

    def _asset_events(self, ctx: _Tick, tracker: KofN) -> list[AlertEvent]:
        """Score each asset's tag vector (T²), advance the asset's k-of-n, open or clear its alert."""
        g = ctx.group
        n = len(g.asset_names)
        flagged = np.zeros(n, dtype=bool)
        normal = np.zeros(n, dtype=bool)
        t2 = np.full(n, np.nan)
        for k, a in enumerate(g.asset_names):
            t2[k], flagged[k] = g.asset_detectors[a].step(ctx.values[g.asset_rows[a]], learn=not tracker.open[k])
            normal[k] = math.isfinite(t2[k]) and not flagged[k]
        n_flagged = int(flagged.sum())
        if n_flagged:
            self.metrics.ticks_anomalous.labels("asset_state").inc(n_flagged)
        events: list[AlertEvent] = []
        opened, cleared = tracker.step(flagged, normal)
        for k in opened.tolist():
            a = g.asset_names[k]
            u = g.asset_detectors[a].last_u
            rows = g.asset_rows[a]
            top = rows[int(np.nanargmax(np.abs(u)))]
            g.asset_alert_tag[a] = g.tags[top]
            obs, contributors = self._asset_obs(ctx, a, top, float(t2[k]))
            magnitude = float(np.nanmax(np.abs(u)))
            events.append(self.book.open_alert("asset_state", a, g.tags[top], obs, magnitude, contributors))
        for k in cleared.tolist():
            a = g.asset_names[k]
            tag = g.asset_alert_tag.pop(a, None)
            if tag is None:
                continue
            obs, contributors = self._asset_obs(ctx, a, g.tags.index(tag), float(t2[k]))
            ev = self.book.clear("asset_state", tag, obs, contributors)
            if ev:
                events.append(ev)
        return events

    def _asset_obs(self, ctx: _Tick, asset: str, row: int, t2: float) -> tuple[Observation, tuple[Contributor, ...]]:
        """The asset alert's numbers: its tag's value and forecast, the T² as score; tags ranked by |deviation|."""
        g = ctx.group
        rows = g.asset_rows[asset]
        u = g.asset_detectors[asset].last_u
        j = rows.index(row)
        obs = dataclasses.replace(ctx.obs(row), z=float(u[j]), score=t2)
        ranked = sorted(range(len(rows)), key=lambda r: -_nan_to(abs(float(u[r])), -1.0))
        contributors = tuple(
            Contributor(tag=g.tags[rows[r]], score=abs(float(u[r])), residual_z=float(u[r]))
            for r in ranked[: self.settings.max_contributors]
        )
        return obs, contributors

    def _contrib(self, ctx: _Tick, row: int) -> tuple[Contributor, ...]:
        """The asset's tags ranked by anomaly score (then |z|) at this tick; the alert's tag first on ties."""
        g = ctx.group
        rows = g.asset_rows[g.assets[row]]
        ranked = sorted(
            rows,
            key=lambda r: (
                -_nan_to(float(ctx.score[r]), -1.0),
                -_nan_to(abs(float(ctx.z[r])), -1.0),
                r != row,
            ),
        )
        return tuple(
            Contributor(tag=g.tags[r], score=float(ctx.score[r]), residual_z=float(ctx.z[r]))
            for r in ranked[: self.settings.max_contributors]
        )


@dataclass(frozen=True, slots=True)
class _Tick:
    group: _Group
    ts: float
    values: FloatArray
    expected: FloatArray
    z: FloatArray
    score: FloatArray
    mid: int

    def obs(self, i: int) -> Observation:
        e = self.expected[i]
        return Observation(
            ts=self.ts,
            actual=float(self.values[i]),
            forecast=float(e[self.mid]),
            lower=float(e[0]),
            upper=float(e[-1]),
            z=float(self.z[i]),
            score=float(self.score[i]),
            unit=self.group.units[i],
        )


def _nan_to(x: float, default: float) -> float:
    x = float(x)
    return x if math.isfinite(x) else default
