"""The detect stage: for each forecast batch, gate, score, check rules, advance alert life cycles.

Per tick of a tag group (tags sharing a period, in a fixed row order):

1. **Modes** (``modes.py``): each asset with mode rules gets its operating mode;
   detection on an asset waits while it is stopped or starting and for a hold-off
   after any change.  Alerts of an asset whose detection pauses are cleared.
   **Maintenance** (``maintenance.py``: configured windows and operator commands)
   pauses an asset the same way, missing-data alerts included, and the alerts it
   keeps from opening are counted.
2. **Data quality** (``quality.py``): missing, stuck and spiking tags, and the ticks
   right after, are *gated*: not scored, not learned from, no process alarm —
   reported as ``data_quality`` alerts instead.
3. **Scoring** (``scoring.py``): residual z and River score of every other tag.
   With ``detect.merge_by_asset`` (the default) the anomalous tags of one asset
   form one ``forecast_residual`` alert for the asset, its tags ranked as
   contributors; otherwise one alert per tag.
4. **Rules** (``rules.py``): static limits, rates of change, energy balances;
   learned relations between an asset's tags (``relations.py``: virtual sensors,
   configured per asset); optionally the asset-level T² (``asset.py``), flagged on
   its score or on that score's anomaly likelihood (``likelihood.py``).
5. **Life cycles** (``lifecycle.py``): k of n to open, a run of normal ticks to clear
   (data-quality alerts open on the first bad tick: their condition already lasted).

All per-row work is numpy except the River detector calls and the events of the
few rows whose alert state changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import CollectorRegistry

from ..metrics import Metrics, TagSnapshot, levels_or_nan
from ..queues import end_of_stream
from ..records import (
    AlertEvent,
    AlertKind,
    BoolArray,
    ClearReason,
    Contributor,
    DataQualityReason,
    FloatArray,
    ForecastBatch,
    IntArray,
)
from ..settings import DetectSettings, TagSettings
from ..timing import slowest_periods
from .alerts import AlertBook, AlertKey, Observation
from .asset import AssetT2Q
from .lifecycle import KofN
from .likelihood import AnomalyLikelihood
from .maintenance import MaintenanceCalendar, MaintenanceGate
from .modes import AssetModes
from .quality import DataQuality, QualityTick
from .relations import RelationCheck
from .rules import BalanceRule, EnergyBalance, Limits, RateOfChange
from .scoring import ResidualScorer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Relation:
    """One configured relation, resolved to rows of its tag group."""

    asset: str
    target: int
    inputs: tuple[int, ...]
    check: RelationCheck


@dataclass(slots=True)
class _Group:
    tags: tuple[str, ...]
    assets: tuple[str, ...]
    units: tuple[str, ...]
    period_s: float
    asset_names: list[str]
    """The group's assets, in first-row order: the rows of every per-asset array."""
    asset_index: IntArray
    """Row → index into ``asset_names``."""
    asset_rows: dict[str, list[int]]
    subjects: list[str]
    """Per asset: the subject of its per-asset alerts (the asset, or asset@period when it spans periods)."""
    scorer: ResidualScorer
    limits: Limits
    high: KofN
    low: KofN
    residual: KofN
    """Per row, or per asset with merge_by_asset."""
    quality: DataQuality
    stuck: KofN
    spike: KofN
    missing: KofN
    """Per asset."""
    rate: RateOfChange
    rate_state: KofN
    balance: EnergyBalance
    balance_state: KofN
    mode_rows: dict[str, int]
    """Tags read by mode rules → their row here."""
    row_of: dict[str, int]
    """Tag → row (an alert's tag to its numbers without a scan of thousands of tags)."""
    relations: list[_Relation]
    relation_state: KofN
    # Asset-level T² (detect.asset_enabled): one detector per asset, one k-of-n row per asset.
    asset_detectors: dict[str, AssetT2Q] = field(default_factory=dict)
    asset_likelihoods: dict[str, AnomalyLikelihood] = field(default_factory=dict)
    """Per asset with detect.asset_likelihood_enabled: the layer that flags instead of the T² score."""
    asset_state: KofN | None = None

    def trackers(self) -> Iterator[KofN]:
        yield from (self.high, self.low, self.residual, self.stuck, self.spike, self.missing)
        yield from (self.rate_state, self.balance_state, self.relation_state)
        if self.asset_state is not None:
            yield self.asset_state


class DetectStage:
    def __init__(
        self,
        tags: Sequence[TagSettings],
        settings: DetectSettings,
        metrics: Metrics,
        calendar: MaintenanceCalendar | None = None,
    ) -> None:
        self.settings = settings
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
        self._latest_mode_values: dict[str, float] = {}
        periods: dict[str, set[float]] = {}
        for t in tags:
            periods.setdefault(t.asset, set()).add(t.period_s)
        self._split_assets = {a for a, p in periods.items() if len(p) > 1}
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
            await end_of_stream(outbox)

    @contextlib.contextmanager
    def replaying_history(self) -> Iterator[None]:
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
        """
        live = self.book
        self.book = AlertBook(Metrics(CollectorRegistry()), self.settings)
        try:
            yield
        finally:
            self.book = live
            for g in self._groups.values():
                for tracker in g.trackers():
                    tracker.reset()

    # -- set-up ---------------------------------------------------------------------

    def _group(self, fb: ForecastBatch) -> _Group:
        g = self._groups.get(fb.window.tags)
        if g is not None:
            return g
        w = fb.window
        ts = [self.tag_settings[name] for name in w.tags]
        n = len(ts)
        s = self.settings
        asset_rows: dict[str, list[int]] = {}
        for i, a in enumerate(w.assets):
            asset_rows.setdefault(a, []).append(i)
        asset_names = list(asset_rows)
        index_of = {a: k for k, a in enumerate(asset_names)}
        n_assets = len(asset_names)
        row = {name: i for i, name in enumerate(w.tags)}
        rules = self._balance_rules(asset_names, row)
        relations = self._relations(asset_names, row, ts, w.period_s)

        def kofn(rows: int) -> KofN:
            return KofN(rows, s.open_k, s.open_n, s.clear_normal_steps)

        def at_once(rows: int) -> KofN:
            # A data-quality condition has already lasted (stuck_after_s, a confirmed spike,
            # missing_after_s) when it is first flagged: it opens at once.
            return KofN(rows, 1, 1, s.clear_normal_steps)

        g = _Group(
            tags=w.tags,
            assets=w.assets,
            units=tuple(t.unit for t in ts),
            period_s=w.period_s,
            asset_names=asset_names,
            asset_index=np.array([index_of[a] for a in w.assets], dtype=np.intp),
            asset_rows=asset_rows,
            subjects=[f"{a}@{w.period_s:g}s" if a in self._split_assets else a for a in asset_names],
            scorer=ResidualScorer.from_settings(n, fb.levels, np.array([t.min_spread for t in ts]), s),
            limits=Limits(ts),
            high=kofn(n),
            low=kofn(n),
            residual=kofn(n_assets if s.merge_by_asset else n),
            quality=DataQuality(ts, s),
            stuck=at_once(n),
            spike=at_once(n),
            missing=at_once(n_assets),
            rate=RateOfChange(ts, w.period_s),
            rate_state=kofn(n),
            balance=EnergyBalance(rules),
            balance_state=kofn(len(rules)),
            mode_rows={tag: row[tag] for tag in self.modes.tags if tag in row},
            row_of=row,
            relations=relations,
            relation_state=kofn(len(relations)),
        )
        if s.asset_enabled:
            for a, rows in asset_rows.items():
                g.asset_detectors[a] = AssetT2Q.from_settings(np.array([ts[r].min_spread for r in rows]), s)
                if s.asset_likelihood_enabled:
                    g.asset_likelihoods[a] = AnomalyLikelihood.from_settings(s)
            g.asset_state = kofn(n_assets)
        self._groups[w.tags] = g
        return g

    def _balance_rules(self, assets: list[str], row: dict[str, int]) -> list[BalanceRule]:
        rules = []
        for a in self.settings.assets:
            e = a.energy_balance
            if e is None or a.name not in assets:
                continue
            names = (e.flow_tag, e.hot_temp_tag, e.cold_temp_tag, e.power_tag)
            if all(name in row for name in names):
                flow, hot, cold, power = (row[name] for name in names)
                rules.append(BalanceRule(a.name, flow, hot, cold, power, e))
            elif any(name in row for name in names):
                # Settings validation rejects this for configured tags; a replay's own tag list may lack some.
                log.warning("asset %s: energy balance tags are not all in one tag group; not checked", a.name)
        return rules

    def _relations(
        self, assets: list[str], row: dict[str, int], ts: Sequence[TagSettings], period_s: float
    ) -> list[_Relation]:
        out = []
        for a in self.settings.assets:
            if a.name not in assets:
                continue
            for r in a.relations:
                names = (r.target, *r.inputs)
                if all(name in row for name in names):
                    target = row[r.target]
                    check = RelationCheck.from_settings(r, period_s, ts[target].min_spread)
                    out.append(_Relation(a.name, target, tuple(row[name] for name in r.inputs), check))
                elif any(name in row for name in names):
                    log.warning("asset %s: relation of %s: tags not in one tag group; not checked", a.name, r.target)
        return out

    # -- one tick ---------------------------------------------------------------------

    def process(self, fb: ForecastBatch) -> list[AlertEvent]:
        g = self._group(fb)
        w = fb.window
        values = w.values
        events: list[AlertEvent] = []

        # 1. Modes, and the rows of assets whose detection waits.
        if g.mode_rows:
            for tag, r in g.mode_rows.items():
                self._latest_mode_values[tag] = float(values[r])
            self.modes.update(w.ts, self._latest_mode_values)
        asset_gate: list[str | None] = [self.modes.gate(a, w.ts) for a in g.asset_names]
        # Maintenance wins over modes: the asset is being worked on, whatever its tags say.
        in_maintenance = self.maintenance.assets(g.asset_names, w.ts)
        if in_maintenance.any():
            asset_gate = ["maintenance" if m else r for m, r in zip(in_maintenance.tolist(), asset_gate, strict=True)]
        self.book.latest_ts = max(self.book.latest_ts, w.ts)
        events.extend(self.book.tick(w.ts, w.period_s))  # alarms (issue 13.5): re-arm expiry, flood end
        asset_gated = np.array([reason is not None for reason in asset_gate], dtype=bool)
        mode_gated = asset_gated[g.asset_index]

        # 2. Data quality.
        dq = g.quality.step(w.ts, values, w.source_down)
        gate = mode_gated | dq.gate
        self._count_gated(g, asset_gate, mode_gated, dq)
        clean = np.where(gate, np.nan, values)

        # 3. Scoring: gated rows neither learn nor flag, and show no score.  Rows of an open alert
        # learn too (winsorised, scoring.py): a new normal is absorbed instead of alarming for ever.
        exp, z, score, flagged = g.scorer.score(fb, ~gate)
        surprise = g.scorer.surprise  # the score before any refractory period: ranks and reports tags
        if exp is None:
            exp = levels_or_nan(fb.levels, len(w))
        self._count_suppressed(g, in_maintenance, flagged, values)
        z[gate] = np.nan
        score[gate] = np.nan
        surprise[gate] = np.nan
        flagged &= ~gate
        scored = np.isfinite(z)
        n_scored = int(scored.sum())
        if n_scored:
            self.metrics.ticks_scored.inc(n_scored)
        n_flagged = int(flagged.sum())
        if n_flagged:
            self.metrics.ticks_anomalous.labels("forecast_residual").inc(n_flagged)
        ctx = _Tick(g, w.ts, values, exp, z, score, g.scorer.mid, surprise)
        self.last_tick = ctx

        if asset_gated.any():
            events.extend(self._pause(ctx, asset_gated, asset_gate))

        if self.settings.merge_by_asset:
            events.extend(self._merged_residual_events(ctx, flagged, scored))
        else:
            events.extend(self._tag_residual_events(ctx, flagged, scored))
        if g.asset_state is not None:
            events.extend(self._asset_events(ctx, g.asset_state, clean, asset_gated, gate))

        # 4. Rules.
        if g.limits.any:
            high, low = g.limits.check(clean)
            events.extend(
                self._rule_events(
                    ctx, "limit_high", high.violated, high.inside, g.high, g.limits.high, np.abs(values - g.limits.high)
                )
            )
            events.extend(
                self._rule_events(
                    ctx, "limit_low", low.violated, low.inside, g.low, g.limits.low, np.abs(values - g.limits.low)
                )
            )
        if g.rate.any:
            rate = g.rate.check(clean)
            with np.errstate(invalid="ignore"):
                ratio = np.abs(rate.rate) / g.rate.limit
            events.extend(
                self._rule_events(
                    ctx,
                    "rate_of_change",
                    rate.violated,
                    rate.inside,
                    g.rate_state,
                    g.rate.limit,
                    ratio,
                    z_override=rate.rate,
                )
            )
        if g.balance.any:
            events.extend(self._balance_events(ctx, clean))
        if g.relations:
            events.extend(self._relation_events(ctx, clean, asset_gated))

        # 5. Data-quality alerts (for the instrument technicians); sensors unplugged for maintenance are expected.
        if in_maintenance.any():
            dq = dataclasses.replace(dq, missing=dq.missing & ~in_maintenance[g.asset_index])
        events.extend(self._quality_events(ctx, dq, mode_gated))

        self.metrics.tag_state.publish(
            w.period_s,
            TagSnapshot(tags=g.tags, assets=g.assets, actual=values, forecast=exp, levels=fb.levels, score=surprise),
        )
        self.metrics.detect_latency_seconds.observe(time.monotonic() - w.arrived_at)
        return events

    def _count_gated(self, g: _Group, asset_gate: Sequence[str | None], mode_gated: BoolArray, dq: QualityTick) -> None:
        gated = self.metrics.ticks_gated
        for k, reason in enumerate(asset_gate):
            if reason is not None:
                gated.labels(reason).inc(len(g.asset_rows[g.asset_names[k]]))
        free = ~mode_gated
        for reason, rows in (
            ("missing", dq.missing),
            ("stuck", dq.stuck),
            ("spike", dq.spike | dq.spike_confirmed),
            ("recovery", dq.recovery),
        ):
            count = int((rows & free).sum())
            if count:
                gated.labels(reason).inc(count)

    def _count_suppressed(self, g: _Group, in_maintenance: BoolArray, flagged: BoolArray, values: FloatArray) -> None:
        """Count the alerts maintenance keeps from opening: residual flags and limit crossings of its assets."""
        rows = in_maintenance[g.asset_index]
        anomalous = flagged & rows
        if g.limits.any and rows.any():
            high, low = g.limits.check(values)
            anomalous |= (high.violated | low.violated) & rows
        self.maintenance.count_suppressed(g.tags, g.asset_names, g.asset_index, in_maintenance, anomalous, values)

    def _pause(self, ctx: _Tick, asset_gated: BoolArray, asset_gate: Sequence[str | None]) -> list[AlertEvent]:
        """Clear the open alerts of assets whose detection waits (missing-data alerts stay)."""
        g = ctx.group
        events: list[AlertEvent] = []
        rows_gated = asset_gated[g.asset_index]
        why = {
            k: self.maintenance.describe(a, ctx.ts)
            if asset_gate[k] == "maintenance"
            else f"{a}: detection paused ({_gate_words(asset_gate[k], self.modes.mode(a))})"
            for k, a in enumerate(g.asset_names)
            if asset_gate[k] is not None
        }
        cause: dict[int, ClearReason] = {
            k: "maintenance" if reason == "maintenance" else "detection_paused"
            for k, reason in enumerate(asset_gate)
            if reason is not None
        }
        per_row: tuple[tuple[AlertKind, KofN, str], ...] = (
            ("limit_high", g.high, ""),
            ("limit_low", g.low, ""),
            ("rate_of_change", g.rate_state, ""),
            ("data_quality", g.stuck, "#stuck"),
            ("data_quality", g.spike, "#spike"),
        )
        if not self.settings.merge_by_asset:
            per_row += (("forecast_residual", g.residual, ""),)
        for kind, tracker, suffix in per_row:
            for i in tracker.force_clear(rows_gated).tolist():
                k = int(g.asset_index[i])
                events += self._clear((kind, g.tags[i] + suffix), ctx, i, why[k], cause[k])
        per_asset: list[tuple[AlertKind, KofN]] = []
        if self.settings.merge_by_asset:
            per_asset.append(("forecast_residual", g.residual))
        if g.asset_state is not None:
            per_asset.append(("asset_state", g.asset_state))
        for kind, tracker in per_asset:
            for k in tracker.force_clear(asset_gated).tolist():
                events += self._clear_subject((kind, g.subjects[k]), ctx, why[k], cause[k])
        in_maintenance = np.array([reason == "maintenance" for reason in asset_gate], dtype=bool)
        if in_maintenance.any():
            # Unlike a paused mode, maintenance also ends the asset's missing-data alert: unplugged is expected.
            for k in g.missing.force_clear(in_maintenance).tolist():
                events += self._clear_subject(("data_quality", f"{g.subjects[k]}#missing"), ctx, why[k], cause[k])
        if g.relations:
            relation_gated = np.array([asset_gated[g.asset_names.index(r.asset)] for r in g.relations])
            for j in g.relation_state.force_clear(relation_gated).tolist():
                rel = g.relations[j]
                k = g.asset_names.index(rel.asset)
                events += self._clear(("relation", g.tags[rel.target]), ctx, rel.target, why[k], cause[k])
        if g.balance.any:
            rule_gated = np.array([asset_gated[g.asset_names.index(r.asset)] for r in g.balance.rules])
            for j in g.balance_state.force_clear(rule_gated).tolist():
                rule = g.balance.rules[j]
                k = g.asset_names.index(rule.asset)
                events += self._clear(("energy_balance", rule.asset), ctx, rule.power, why[k], cause[k])
        paused = {g.asset_names[k]: (why[k], cause[k]) for k in why}  # alarms (issue 13.5): re-armed alerts, floods
        events += self.book.clear_waiting(ctx.ts, paused)  # alarms (issue 13.5)
        return events

    def _clear(
        self, key: AlertKey, ctx: _Tick, row: int, why: str | None = None, clear_reason: ClearReason = "normal"
    ) -> list[AlertEvent]:
        ev = self.book.clear(key, ctx.obs(row), self._contrib(ctx, row), why=why, clear_reason=clear_reason)
        return [ev] if ev is not None else []

    def _clear_subject(
        self, key: AlertKey, ctx: _Tick, why: str | None = None, clear_reason: ClearReason = "normal"
    ) -> list[AlertEvent]:
        """Clear a per-asset alert, with the numbers of the tag it was filed under."""
        alert = self.book.open.get(key)
        if alert is None:
            self.book.forget(key)  # alarms (issue 13.5): a flood member's condition ended
            return []
        row = ctx.group.row_of[alert.tag]
        return self._clear(key, ctx, row, why, clear_reason)

    # -- residual alerts ----------------------------------------------------------------

    def _tag_residual_events(self, ctx: _Tick, flagged: BoolArray, scored: BoolArray) -> list[AlertEvent]:
        """One alert per tag (detect.merge_by_asset = false)."""
        g = ctx.group
        events: list[AlertEvent] = []
        # alarms (issue 13.5): a tick beyond detect.score_severe_sigmas calibrated σ opens at once
        severe = flagged & g.scorer.severe & self.settings.severe_opens_at_once
        opened, cleared = g.residual.step(flagged, scored & ~flagged, severe)  # alarms (issue 13.5): severe opens
        for i in opened.tolist():
            events.append(
                self.book.open_alert(
                    ("forecast_residual", g.tags[i]),
                    asset=g.assets[i],
                    tag=g.tags[i],
                    obs=ctx.obs(i),
                    magnitude=abs(float(ctx.z[i])),
                    contributors=self._contrib(ctx, i),
                )
            )
        for i in cleared.tolist():
            events += self._clear(("forecast_residual", g.tags[i]), ctx, i)
        just_opened = set(opened.tolist())
        for i in np.flatnonzero(g.residual.open & flagged).tolist():
            if i in just_opened:
                continue
            ev = self.book.maybe_update(
                ("forecast_residual", g.tags[i]), ctx.obs(i), abs(float(ctx.z[i])), self._contrib(ctx, i)
            )
            if ev:
                events.append(ev)
        return events

    def _merged_residual_events(self, ctx: _Tick, flagged: BoolArray, scored: BoolArray) -> list[AlertEvent]:
        """One alert per asset incident: anomalous while any of its tags is, normal when all scored tags are."""
        g = ctx.group
        n_assets = len(g.asset_names)
        any_flagged = np.bincount(g.asset_index, weights=flagged, minlength=n_assets) > 0
        any_scored = np.bincount(g.asset_index, weights=scored, minlength=n_assets) > 0
        # alarms (issue 13.5): a tick beyond detect.score_severe_sigmas calibrated σ opens at once
        severe = flagged & g.scorer.severe & self.settings.severe_opens_at_once
        any_severe = np.bincount(g.asset_index, weights=severe, minlength=n_assets) > 0  # alarms (issue 13.5)
        opened, cleared = g.residual.step(any_flagged, any_scored & ~any_flagged, any_severe)  # alarms: severe opens
        events: list[AlertEvent] = []
        just_opened = set(opened.tolist())
        for k in np.flatnonzero(any_flagged & g.residual.open).tolist():
            rows = [r for r in g.asset_rows[g.asset_names[k]] if flagged[r]]
            ranked = self._ranked(ctx, rows)
            members = [g.tags[r] for r in ranked]
            magnitude = max(abs(float(ctx.z[r])) for r in rows)
            key: AlertKey = ("forecast_residual", g.subjects[k])
            if k in just_opened:
                top = ranked[0]
                events.append(
                    self.book.open_alert(
                        key,
                        asset=g.asset_names[k],
                        tag=g.tags[top],
                        obs=ctx.obs(top),
                        magnitude=magnitude,
                        contributors=self._contrib(ctx, top),
                        members=members,
                    )
                )
                continue
            alert = self.book.open.get(key)
            if alert is None:
                continue
            row = g.row_of[alert.tag]
            ev = self.book.maybe_update(key, ctx.obs(row), magnitude, self._contrib(ctx, row), members=members)
            if ev:
                events.append(ev)
        for k in cleared.tolist():
            events += self._clear_subject(("forecast_residual", g.subjects[k]), ctx)
        return events

    def _asset_events(
        self, ctx: _Tick, tracker: KofN, clean: FloatArray, asset_gated: BoolArray, gate: BoolArray
    ) -> list[AlertEvent]:
        """Score each asset's tag vector (T²), advance the asset's k-of-n, open or clear its alert."""
        g = ctx.group
        n = len(g.asset_names)
        flagged = np.zeros(n, dtype=bool)
        normal = np.zeros(n, dtype=bool)
        t2 = np.full(n, np.nan)
        for k, a in enumerate(g.asset_names):
            if asset_gated[k]:
                continue
            rows = g.asset_rows[a]
            # A gated tag makes the vector incomplete (NaN): T² skips the tick, and learns nothing from it.
            learn = not tracker.open[k] and not gate[rows].any()
            det = g.asset_detectors[a]
            t2[k], flagged[k] = det.step(clean[rows], learn=learn)
            likelihood = g.asset_likelihoods.get(a)
            if likelihood is not None and det.frozen:
                if not likelihood.seeded:
                    likelihood.seed(det.warmup_scores)
                flagged[k] = likelihood.step(float(t2[k]), learn=learn)[1]
            normal[k] = math.isfinite(t2[k]) and not flagged[k]
        n_flagged = int(flagged.sum())
        if n_flagged:
            self.metrics.ticks_anomalous.labels("asset_state").inc(n_flagged)
        events: list[AlertEvent] = []
        opened, cleared = tracker.step(flagged, normal)
        for k in opened.tolist():
            a = g.asset_names[k]
            det = g.asset_detectors[a]
            u = det.last_u
            rows = g.asset_rows[a]
            top = rows[int(np.nanargmax(det.contributions))]
            obs, contributors = self._asset_obs(ctx, a, top, float(t2[k]))
            magnitude = float(np.nanmax(np.abs(u)))
            events.append(
                self.book.open_alert(
                    ("asset_state", g.subjects[k]),
                    asset=a,
                    tag=g.tags[top],
                    obs=obs,
                    magnitude=magnitude,
                    contributors=contributors,
                )
            )
        for k in cleared.tolist():
            key: AlertKey = ("asset_state", g.subjects[k])
            alert = self.book.open.get(key)
            if alert is None:
                self.book.forget(key)  # alarms (issue 13.5): a flood member's condition ended
                continue
            obs, contributors = self._asset_obs(ctx, g.asset_names[k], g.row_of[alert.tag], float(t2[k]))
            ev = self.book.clear(key, obs, contributors)
            if ev:
                events.append(ev)
        return events

    def _asset_obs(self, ctx: _Tick, asset: str, row: int, t2: float) -> tuple[Observation, tuple[Contributor, ...]]:
        """The asset alert's numbers: its tag's value and forecast, the score; tags ranked by their contributions."""
        g = ctx.group
        rows = g.asset_rows[asset]
        det = g.asset_detectors[asset]
        u, share = det.last_u, det.contributions
        j = rows.index(row)
        obs = dataclasses.replace(ctx.obs(row), z=float(u[j]), score=t2)
        ranked = sorted(range(len(rows)), key=lambda r: -_nan_to(float(share[r]), -1.0))
        contributors = tuple(
            Contributor(tag=g.tags[rows[r]], score=float(share[r]), residual_z=float(u[r]))
            for r in ranked[: self.settings.max_contributors]
        )
        return obs, contributors

    # -- rule alerts ----------------------------------------------------------------------

    def _rule_events(
        self,
        ctx: _Tick,
        kind: AlertKind,
        violated: BoolArray,
        inside: BoolArray,
        tracker: KofN,
        bound: FloatArray,
        magnitude: FloatArray,
        z_override: FloatArray | None = None,
    ) -> list[AlertEvent]:
        """Per-tag rule alerts (limits, rate of change); ``magnitude`` sets severity and peak."""
        g = ctx.group
        events: list[AlertEvent] = []
        n_violated = int(violated.sum())
        if n_violated:
            self.metrics.ticks_anomalous.labels(kind).inc(n_violated)
        opened, cleared = tracker.step(violated, inside)

        def obs(i: int) -> Observation:
            o = ctx.obs(i)
            return o if z_override is None else dataclasses.replace(o, z=float(z_override[i]))

        for i in opened.tolist():
            events.append(
                self.book.open_alert(
                    (kind, g.tags[i]),
                    asset=g.assets[i],
                    tag=g.tags[i],
                    obs=obs(i),
                    magnitude=float(magnitude[i]),
                    contributors=self._contrib(ctx, i),
                    limit=float(bound[i]),
                )
            )
        for i in cleared.tolist():
            ev = self.book.clear((kind, g.tags[i]), obs(i), self._contrib(ctx, i), float(bound[i]))
            if ev:
                events.append(ev)
        if kind == "rate_of_change":
            just_opened = set(opened.tolist())
            for i in np.flatnonzero(tracker.open & violated).tolist():
                if i not in just_opened:
                    ev = self.book.maybe_update(
                        (kind, g.tags[i]), obs(i), float(magnitude[i]), self._contrib(ctx, i), float(bound[i])
                    )
                    if ev:
                        events.append(ev)
        return events

    def _balance_events(self, ctx: _Tick, clean: FloatArray) -> list[AlertEvent]:
        g = ctx.group
        check = g.balance.check(clean)
        n_violated = int(check.violated.sum())
        if n_violated:
            self.metrics.ticks_anomalous.labels("energy_balance").inc(n_violated)
        opened, cleared = g.balance_state.step(check.violated, check.inside)
        events: list[AlertEvent] = []

        def obs(j: int) -> tuple[Observation, float, float]:
            rule = g.balance.rules[j]
            tol = rule.settings.relative_tolerance
            expected = float(check.expected[j])
            rel = float(check.relative_error[j])
            o = Observation(
                ts=ctx.ts,
                actual=float(ctx.values[rule.power]),
                forecast=expected,
                lower=expected * (1 - tol),
                upper=expected * (1 + tol),
                z=rel,
                score=abs(rel) / tol,
                unit=g.units[rule.power],
            )
            return o, abs(rel) / tol, tol

        for j in opened.tolist():
            rule = g.balance.rules[j]
            o, magnitude, tol = obs(j)
            events.append(
                self.book.open_alert(
                    ("energy_balance", rule.asset),
                    asset=rule.asset,
                    tag=g.tags[rule.power],
                    obs=o,
                    magnitude=magnitude,
                    contributors=self._contrib(ctx, rule.power),
                    limit=tol,
                )
            )
        just_opened = set(opened.tolist())
        for j in np.flatnonzero(g.balance_state.open & check.violated).tolist():
            if j in just_opened:
                continue
            rule = g.balance.rules[j]
            o, magnitude, tol = obs(j)
            ev = self.book.maybe_update(
                ("energy_balance", rule.asset), o, magnitude, self._contrib(ctx, rule.power), tol
            )
            if ev:
                events.append(ev)
        for j in cleared.tolist():
            rule = g.balance.rules[j]
            o, _, tol = obs(j)
            ev = self.book.clear(("energy_balance", rule.asset), o, self._contrib(ctx, rule.power), tol)
            if ev:
                events.append(ev)
        return events

    def _relation_events(self, ctx: _Tick, clean: FloatArray, asset_gated: BoolArray) -> list[AlertEvent]:
        """Check each relation, learn from confidently normal ticks, advance its k-of-n, open or clear its alert."""
        g = ctx.group
        n = len(g.relations)
        flagged = np.zeros(n, dtype=bool)
        normal = np.zeros(n, dtype=bool)
        # Learned only while nothing is wrong with the asset: no alert of any kind open on it.
        busy = {alert.asset for alert in self.book.open.values()}
        for j, rel in enumerate(g.relations):
            if asset_gated[g.asset_names.index(rel.asset)]:
                continue
            # Gated tags are NaN in ``clean``: the tick is skipped, and nothing is learned from it.
            z, flagged[j] = rel.check.step(
                float(clean[rel.target]), clean[list(rel.inputs)], learn=rel.asset not in busy
            )
            normal[j] = math.isfinite(z) and not flagged[j]
        n_flagged = int(flagged.sum())
        if n_flagged:
            self.metrics.ticks_anomalous.labels("relation").inc(n_flagged)
        opened, cleared = g.relation_state.step(flagged, normal)
        events: list[AlertEvent] = []
        just_opened = set(opened.tolist())
        for j in opened.tolist():
            rel = g.relations[j]
            obs, contributors = self._relation_obs(ctx, rel, clean)
            events.append(
                self.book.open_alert(
                    ("relation", g.tags[rel.target]),
                    asset=rel.asset,
                    tag=g.tags[rel.target],
                    obs=obs,
                    magnitude=abs(obs.z),
                    contributors=contributors,
                    limit=rel.check.z_threshold,
                    members=[g.tags[i] for i in rel.inputs],
                )
            )
        for j in np.flatnonzero(g.relation_state.open & flagged).tolist():
            if j in just_opened:
                continue
            rel = g.relations[j]
            obs, contributors = self._relation_obs(ctx, rel, clean)
            ev = self.book.maybe_update(
                ("relation", g.tags[rel.target]),
                obs,
                abs(obs.z),
                contributors,
                rel.check.z_threshold,
                members=[g.tags[i] for i in rel.inputs],
            )
            if ev:
                events.append(ev)
        for j in cleared.tolist():
            rel = g.relations[j]
            obs, contributors = self._relation_obs(ctx, rel, clean)
            ev = self.book.clear(("relation", g.tags[rel.target]), obs, contributors, rel.check.z_threshold)
            if ev:
                events.append(ev)
        return events

    def _relation_obs(
        self, ctx: _Tick, rel: _Relation, clean: FloatArray
    ) -> tuple[Observation, tuple[Contributor, ...]]:
        """The relation alert's numbers: the target against what its inputs imply (band: ± z_threshold spreads);
        contributors: the target (its z), then the inputs by how far each moved the expectation (in spreads)."""
        g = ctx.group
        check = rel.check
        band = check.z_threshold * check.spread
        obs = Observation(
            ts=ctx.ts,
            actual=float(ctx.values[rel.target]),
            forecast=check.expected,
            lower=check.expected - band,
            upper=check.expected + band,
            z=check.z,
            score=abs(check.z),
            unit=g.units[rel.target],
        )
        pushes = check.pushes(clean[list(rel.inputs)])
        ranked = sorted(range(len(rel.inputs)), key=lambda i: -_nan_to(abs(float(pushes[i])), -1.0))
        contributors = (
            Contributor(tag=g.tags[rel.target], score=abs(check.z), residual_z=check.z),
            *(
                Contributor(tag=g.tags[rel.inputs[i]], score=abs(float(pushes[i])), residual_z=float(pushes[i]))
                for i in ranked
            ),
        )
        return obs, contributors[: self.settings.max_contributors]

    # -- data-quality alerts --------------------------------------------------------------

    def _quality_events(self, ctx: _Tick, dq: QualityTick, mode_gated: BoolArray) -> list[AlertEvent]:
        g = ctx.group
        events: list[AlertEvent] = []
        finite = np.isfinite(ctx.values)
        free = ~mode_gated
        kinds: tuple[tuple[DataQualityReason, KofN, BoolArray, BoolArray, FloatArray], ...] = (
            ("stuck", g.stuck, dq.stuck & free, finite & ~dq.stuck & free, dq.stuck_s),
            (
                "spike",
                g.spike,
                dq.spike_confirmed & free,
                finite & ~dq.spike & ~dq.spike_confirmed & free,
                dq.spike_height,
            ),
        )
        for reason, tracker, flagged, normal, measure in kinds:
            if not flagged.any() and not tracker.open.any():
                continue
            opened, cleared = tracker.step(flagged, normal)
            for i in opened.tolist():
                key: AlertKey = ("data_quality", f"{g.tags[i]}#{reason}")
                events.append(
                    self.book.open_alert(
                        key,
                        asset=g.assets[i],
                        tag=g.tags[i],
                        obs=dataclasses.replace(ctx.obs(i), z=float(measure[i])),
                        magnitude=abs(float(measure[i])),
                        contributors=self._contrib(ctx, i),
                        reason=reason,
                    )
                )
            for i in cleared.tolist():
                events += self._clear(("data_quality", f"{g.tags[i]}#{reason}"), ctx, i)
            if reason == "spike":
                just_opened = set(opened.tolist())
                for i in np.flatnonzero(tracker.open & flagged).tolist():
                    if i in just_opened:
                        continue
                    ev = self.book.maybe_update(
                        ("data_quality", f"{g.tags[i]}#spike"),
                        dataclasses.replace(ctx.obs(i), z=float(measure[i])),
                        abs(float(measure[i])),
                        self._contrib(ctx, i),
                    )
                    if ev:
                        events.append(ev)

        # Missing data: one alert per asset, naming its tags without values (a source outage
        # must not become one alert per tag).
        n_assets = len(g.asset_names)
        missing_count = np.bincount(g.asset_index, weights=dq.missing, minlength=n_assets)
        gaps = np.bincount(g.asset_index, weights=~finite, minlength=n_assets)
        flagged_assets = missing_count > 0
        if flagged_assets.any() or g.missing.open.any():
            opened, cleared = g.missing.step(flagged_assets, gaps == 0)
            limit = float(g.quality.missing_after_s.max())
            just_opened = set(opened.tolist())
            for k in np.flatnonzero(flagged_assets).tolist():
                rows = [r for r in g.asset_rows[g.asset_names[k]] if dq.missing[r]]
                members = [g.tags[r] for r in rows]
                key = ("data_quality", f"{g.subjects[k]}#missing")
                # Its source disconnected: say so (one alert per asset, whichever the reason).
                down = dq.source_down is not None and bool(dq.source_down[rows].any())
                why: DataQualityReason = "source_down" if down else "missing"
                if k in just_opened:
                    events.append(
                        self.book.open_alert(
                            key,
                            asset=g.asset_names[k],
                            tag=members[0],
                            obs=ctx.obs(rows[0]),
                            magnitude=float(len(rows)),
                            contributors=self._contrib(ctx, rows[0]),
                            limit=limit,
                            reason=why,
                            members=members,
                        )
                    )
                    continue
                alert = self.book.open.get(key)
                if alert is not None:
                    row = g.row_of[alert.tag]
                    ev = self.book.maybe_update(
                        key, ctx.obs(row), float(len(rows)), self._contrib(ctx, row), limit, members=members
                    )
                    if ev:
                        events.append(ev)
            for k in cleared.tolist():
                events += self._clear_subject(("data_quality", f"{g.subjects[k]}#missing"), ctx)
        return events

    # -- explanations ---------------------------------------------------------------------

    def _ranked(self, ctx: _Tick, rows: list[int]) -> list[int]:
        """Rows by anomaly score, then |z|, highest first (ties: row order)."""
        return sorted(
            rows,
            key=lambda r: (-_nan_to(float(ctx.surprise[r]), -1.0), -_nan_to(abs(float(ctx.z[r])), -1.0), r),
        )

    def _contrib(self, ctx: _Tick, row: int) -> tuple[Contributor, ...]:
        """The asset's tags ranked by anomaly score (then |z|) at this tick; the alert's tag first on ties."""
        g = ctx.group
        rows = g.asset_rows[g.assets[row]]
        ranked = sorted(
            rows,
            key=lambda r: (
                -_nan_to(float(ctx.surprise[r]), -1.0),
                -_nan_to(abs(float(ctx.z[r])), -1.0),
                r != row,
            ),
        )
        return tuple(
            Contributor(tag=g.tags[r], score=float(ctx.surprise[r]), residual_z=float(ctx.z[r]))
            for r in ranked[: self.settings.max_contributors]
        )


def _gate_words(reason: str | None, mode: str | None) -> str:
    if reason == "mode":
        return f"mode {mode}"
    return f"hold-off after a change to mode {mode}"


@dataclass(frozen=True, slots=True)
class _Tick:
    group: _Group
    ts: float
    values: FloatArray
    expected: FloatArray
    z: FloatArray
    score: FloatArray
    """Per row: the scorer's score (with a refractory period, the onset's: what evaluations record)."""
    mid: int
    surprise: FloatArray
    """Per row: the score the flag compares (before any refractory period): what alerts report."""

    def obs(self, i: int) -> Observation:
        e = self.expected[i]
        return Observation(
            ts=self.ts,
            actual=float(self.values[i]),
            forecast=float(e[self.mid]),
            lower=float(e[0]),
            upper=float(e[-1]),
            z=float(self.z[i]),
            score=float(self.surprise[i]),
            unit=self.group.units[i],
        )


def _nan_to(x: float, default: float) -> float:
    x = float(x)
    return x if math.isfinite(x) else default
