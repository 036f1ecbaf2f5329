"""Forecast residuals: each tag's value against the forecast made before it, scored by River.

The numerics are :class:`~sentinelle.detect.scoring.ResidualScorer`'s (scaled residual z,
one ``GaussianScorer`` per tag).  Subjects: with ``detect.merge_by_asset`` (the default)
one per asset — anomalous while any of its tags is, normal when every scored tag is, its
flagged tags the alert's members ranked by score — otherwise one per tag.  Its per-tag
numbers (forecast, z, score) are the ones every alert's event shows, so its findings carry
them (``rows``).  A tag learns from a tick only when it is not gated, not flagged and not
inside an open residual alert: a fault must not teach the scorer that faults are normal.
A flagged tick with |z| ≥ ``detect.critical_z`` is ``severe`` (``detect.severe_opens_at_once``):
its alert opens at once.

State: each River scorer's running mean, sum of squares and count (River's own
``Gaussian`` internals: versioned by River's version in the blob) and the forecasts
remembered for the next ticks.
"""

from __future__ import annotations

import math
from importlib.metadata import version

import numpy as np

from ...metrics import levels_or_nan
from ...records import BoolArray, FloatArray
from ..scoring import ResidualScorer
from .base import BuildContext, Explanation, Findings, RowNumbers, Spec, Tick, check_tags, findings, pack, unpack

RANK = 10
_VERSION = 1


class ResidualDetector:
    """Residual z and River score per tag; alerts per asset incident or per tag."""

    name = "forecast_residual"

    def __init__(self, ctx: BuildContext) -> None:
        lay = ctx.layout
        s = ctx.settings
        self.layout = lay
        self.metrics = ctx.metrics
        self.levels = ctx.levels
        self.merged = s.merge_by_asset
        self.critical_z = s.critical_z
        self.severe_opens_at_once = s.severe_opens_at_once
        self.scorer = ResidualScorer(
            lay.n,
            ctx.levels,
            np.array([t.min_spread for t in lay.tag_settings]),
            s.grace_period_steps,
            s.score_threshold,
            s.residual_min_sigma,
        )
        self.spec = Spec(
            kind="forecast_residual",
            subjects=lay.subjects if self.merged else lay.tags,
            subject_assets=np.arange(len(lay.asset_names)) if self.merged else lay.asset_index,
            open_k=s.open_k,
            open_n=s.open_n,
            clear_steps=s.clear_normal_steps,
        )
        self._flagged: BoolArray = np.zeros(lay.n, dtype=bool)
        self._z: FloatArray = np.full(lay.n, np.nan)

    def observe(self, tick: Tick) -> Findings:
        lay = self.layout
        exp, z, score, flagged = self.scorer.assess(tick.batch)
        if exp is None:
            exp = levels_or_nan(self.levels, lay.n)
        withheld = flagged & tick.maintenance[lay.asset_index] if tick.maintenance.any() else None
        # Gated rows neither learn nor flag, and show no score.
        gate = tick.gate
        z[gate] = np.nan
        score[gate] = np.nan
        flagged &= ~gate
        scored = np.isfinite(z)
        n_scored = int(scored.sum())
        if n_scored:
            self.metrics.ticks_scored.inc(n_scored)
        self._flagged, self._z = flagged, z
        rows = RowNumbers(expected=exp, z=z, score=score, mid=self.scorer.mid)
        count = int(flagged.sum())
        # A tick far beyond the forecast opens at once (alarms, issue 13.5): where its alert would be critical.
        with np.errstate(invalid="ignore"):
            severe = flagged & (np.abs(z) >= self.critical_z) & self.severe_opens_at_once
        if not self.merged:
            return findings(flagged, scored & ~flagged, score, count=count, rows=rows, withheld=withheld, severe=severe)
        n_assets = len(lay.asset_names)
        any_flagged = np.bincount(lay.asset_index, weights=flagged, minlength=n_assets) > 0
        any_scored = np.bincount(lay.asset_index, weights=scored, minlength=n_assets) > 0
        worst = np.zeros(n_assets)
        if count:
            np.maximum.at(worst, lay.asset_index[flagged], score[flagged])
        any_severe = np.bincount(lay.asset_index, weights=severe, minlength=n_assets) > 0
        return findings(
            any_flagged, any_scored & ~any_flagged, worst, count=count, rows=rows, withheld=withheld, severe=any_severe
        )

    def learn(self, tick: Tick, findings: Findings) -> None:
        is_open = tick.alerts.open(self)
        open_rows = is_open[self.layout.asset_index] if self.merged else is_open
        self.scorer.learn(self._z, ~tick.gate & ~open_rows & ~self._flagged)

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        lay = self.layout
        if not self.merged:
            return Explanation(
                tag=lay.tags[subject],
                obs=tick.obs(subject),
                contributors=tick.contributors(subject),
                magnitude=abs(float(self._z[subject])),
            )
        rows = [r for r in lay.asset_rows[lay.asset_names[subject]] if self._flagged[r]]
        ranked = tick.ranked(rows)
        row = ranked[0] if tag is None else lay.row_of[tag]
        return Explanation(
            tag=lay.tags[row],
            obs=tick.obs(row),
            contributors=tick.contributors(row),
            magnitude=max((abs(float(self._z[r])) for r in rows), default=math.nan),
            members=tuple(lay.tags[r] for r in ranked),
        )

    def state(self) -> bytes:
        prev = self.scorer._prev
        arrays = self.scorer.river_state()
        arrays["prev"] = np.zeros((0, 0, 0)) if prev is None else prev
        arrays["prev_ts"] = self.scorer._prev_ts
        meta = {"river": version("river"), "has_prev": prev is not None, "tags": list(self.layout.tags)}
        return pack(self.name, _VERSION, arrays, meta)

    def restore(self, blob: bytes) -> None:
        arrays, meta = unpack(blob, self.name, _VERSION)
        check_tags(meta, self.layout, self.name)
        self.scorer.restore_river_state(arrays)
        self.scorer._prev = arrays["prev"] if meta["has_prev"] else None
        self.scorer._prev_ts = arrays["prev_ts"]


def build(ctx: BuildContext) -> list[ResidualDetector]:
    return [ResidualDetector(ctx)]
