"""Data quality: stuck, spiking and missing tags, for the instrument technicians.

The numerics are :class:`~sentinelle.detect.quality.DataQuality`.  It runs before every
other detector as the stage's *screen* (:class:`QualityScreen`): its verdict gates the
tick (``Tick.gate``, ``Tick.clean``), so a frozen transmitter or a spike is neither scored
nor learned from.  The three detectors here only turn that verdict into alerts; their
conditions already lasted when first flagged (``stuck_after_s``, a confirmed spike,
``missing_after_s``), so they open at once (1 of 1).

* ``stuck`` — per tag; findings' ``score``: seconds flat;
* ``spike`` — per tag, on the tick a spike is confirmed; ``score``: its height;
* ``missing`` — per asset (a source outage is one alert, naming its silent tags), not
  cleared by a paused mode (a stopped machine still reports) but by maintenance
  (unplugged is expected); ``score``: how many of its tags are missing.

State: the screen's (how long each tag has been flat or silent, the spike ring); the
detectors keep none.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from ...records import BoolArray, FloatArray
from ..quality import DataQuality, QualityTick
from .base import (
    BuildContext,
    Explanation,
    Findings,
    Layout,
    Spec,
    Suffixed,
    Tick,
    check_tags,
    findings,
    pack,
    unpack,
)

RANK = 90
_VERSION = 1
_SCREEN_ARRAYS = (
    "_flat_value", "_flat_since", "_last_seen", "_recovery_left", "_was_bad", "_steps", "_prev",
    "_episode", "_episode_base", "_episode_band", "_episode_height", "_quiet",
)  # fmt: skip


class QualityScreen:
    """The data-quality verdict of each tick, before any detector sees it."""

    name = "data_quality_screen"

    def __init__(self, layout: Layout, quality: DataQuality) -> None:
        self.layout = layout
        self.quality = quality

    def screen(
        self, ts: float, values: FloatArray, source_down: BoolArray | None = None, held: BoolArray | None = None
    ) -> QualityTick:
        return self.quality.step(ts, values, source_down, held)

    def state(self) -> bytes:
        q = self.quality
        arrays = {a: getattr(q, a) for a in _SCREEN_ARRAYS}
        arrays["steps_pos"] = np.array([q._steps_pos])
        arrays["_replay_held"] = q._replay_held
        return pack(self.name, _VERSION, arrays, {"tags": list(self.layout.tags)})

    def restore(self, blob: bytes) -> None:
        arrays, meta = unpack(blob, self.name, _VERSION)
        check_tags(meta, self.layout, self.name)
        for a in _SCREEN_ARRAYS:
            setattr(self.quality, a, arrays[a])
        self.quality._steps_pos = int(arrays["steps_pos"][0])
        # Absent in a state saved before the replay's held rows were kept: none (nothing to forget).
        self.quality._replay_held = arrays.get("_replay_held", np.zeros(self.quality.n, dtype=bool)).astype(bool)


class _NoState:
    name: str

    def learn(self, tick: Tick, findings: Findings) -> None:
        """Nothing to learn: the screen keeps the state."""

    def state(self) -> bytes:
        return pack(self.name, _VERSION, {})

    def restore(self, blob: bytes) -> None:
        unpack(blob, self.name, _VERSION)


class TagQualityDetector(_NoState):
    """``stuck`` or ``spike`` alerts, one subject per tag."""

    def __init__(self, ctx: BuildContext, reason: Literal["stuck", "spike"]) -> None:
        lay = ctx.layout
        self.name = f"data_quality_{reason}"
        self.layout = lay
        self.reason = reason
        self.spec = Spec(
            kind="data_quality",
            subjects=Suffixed(lay.tags, f"#{reason}"),
            subject_assets=lay.asset_index,
            open_k=1,
            open_n=1,
            clear_steps=ctx.settings.clear_normal_steps,
            reason=reason,
            updates=reason == "spike",
        )

    def observe(self, tick: Tick) -> Findings:
        dq = tick.quality
        free = ~tick.paused[self.layout.asset_index]
        finite = np.isfinite(tick.values)
        if self.reason == "stuck":
            return findings(dq.stuck & free, finite & ~dq.stuck & free, dq.stuck_s, count=0)
        normal = finite & ~dq.spike & ~dq.spike_confirmed & free
        return findings(dq.spike_confirmed & free, normal, dq.spike_height, count=0)

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        measure = float(findings.score[subject])
        return Explanation(
            tag=self.layout.tags[subject],
            obs=dataclasses.replace(tick.obs(subject), z=measure),
            contributors=tick.contributors(subject),
            magnitude=abs(measure),
        )


class MissingDetector(_NoState):
    """``missing`` alerts, one subject per asset."""

    name = "data_quality_missing"

    def __init__(self, ctx: BuildContext) -> None:
        lay = ctx.layout
        self.layout = lay
        self.limit = float(np.max(DataQuality(lay.tag_settings, ctx.settings).missing_after_s, initial=0.0))
        """The longest of the tags' missing times (period-relative: ``timing.missing_after_s``)."""
        self.spec = Spec(
            kind="data_quality",
            subjects=tuple(f"{s}#missing" for s in lay.subjects),
            subject_assets=np.arange(len(lay.asset_names)),
            open_k=1,
            open_n=1,
            clear_steps=ctx.settings.clear_normal_steps,
            reason="missing",
            paused_by_modes=False,
        )
        self._missing: BoolArray = np.zeros(lay.n, dtype=bool)

    def observe(self, tick: Tick) -> Findings:
        lay = self.layout
        n_assets = len(lay.asset_names)
        missing = tick.quality.missing
        if tick.maintenance.any():
            missing = missing & ~tick.maintenance[lay.asset_index]  # sensors unplugged for maintenance are expected
        self._missing = missing
        count = np.bincount(lay.asset_index, weights=missing, minlength=n_assets).astype(np.float64)
        gaps = np.bincount(lay.asset_index, weights=~np.isfinite(tick.values), minlength=n_assets)
        return findings(count > 0, gaps == 0, count, count=0)

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        lay = self.layout
        rows = [r for r in lay.asset_rows[lay.asset_names[subject]] if self._missing[r]]
        row = rows[0] if tag is None else lay.row_of[tag]
        # Its source disconnected: say so (one alert per asset, whichever the reason).
        down = tick.quality.source_down is not None and bool(tick.quality.source_down[rows].any())
        return Explanation(
            tag=lay.tags[row],
            obs=tick.obs(row),
            contributors=tick.contributors(row),
            magnitude=float(len(rows)),
            limit=self.limit,
            members=tuple(lay.tags[r] for r in rows),
            reason="source_down" if down else "missing",
        )


def screen(layout: Layout, ctx: BuildContext) -> QualityScreen:
    return QualityScreen(layout, DataQuality(layout.tag_settings, ctx.settings))


def build(ctx: BuildContext) -> list[TagQualityDetector | MissingDetector]:
    return [TagQualityDetector(ctx, "stuck"), TagQualityDetector(ctx, "spike"), MissingDetector(ctx)]
