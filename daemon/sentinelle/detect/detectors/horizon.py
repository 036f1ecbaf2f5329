"""Drift against an old forecast: each tag's value against the forecast made ``detect.horizon_steps`` ticks ago.

A one-step residual follows a slow drift: every forecast starts from the latest value, so a
level that creeps a little each tick never surprises.  The forecast made H ticks earlier
did not see the creep, so the drift accumulates in its residual.  The numerics are the
residual scorer's (:mod:`~sentinelle.detect.surprise`): ``z`` in the old forecast's own
spread at that step (wider than one step's), a winsorised, forgetting usual ``z`` per tag,
two-sided decades of tail probability, ``S/(S+10)``; and its onset only with a refractory
period — so its per-tag score joins the residual's by maximum (``Findings.tag_score``, see
:mod:`.distribution`), and it opens ``forecast_drift`` alerts at ``detect.score_threshold``.

Any forecaster works that returns a horizon of at least H steps (a shorter one: its last
step).  A forecaster refreshing a tag every R ticks (``forecast.refresh_every_steps``)
leaves that tag's H-steps-ago forecast only on the ticks H after a refresh.

Memory per tag: H forecasts' H-th step (a ring of H × levels floats) and a few scalars.
"""

from __future__ import annotations

import numpy as np

from ...records import FloatArray
from ..surprise import RobustScale, forecast_z, log_score, surprisal
from .base import BuildContext, Explanation, Findings, Spec, Tick, check_tags, findings, pack, unpack

RANK = 17
_VERSION = 1


class HorizonDetector:
    name = "forecast_drift"

    def __init__(self, ctx: BuildContext) -> None:
        lay = ctx.layout
        s = ctx.settings
        self.layout = lay
        self.levels = ctx.levels
        self.h = s.horizon_steps
        self.threshold = s.score_threshold
        self.grace = s.grace_period_steps
        self.min_spread = np.array([t.min_spread for t in lay.tag_settings])
        self.scale = RobustScale(lay.n, s.score_memory_steps, s.score_clip_sigmas, s.residual_min_sigma)
        self.ring = np.full((self.h, lay.n, len(ctx.levels)), np.nan)
        """Slot ``k mod H``: the forecast for slot ``k`` made H ticks before it (NaN: none)."""
        self.ring_slot = np.full(self.h, -1, dtype=np.int64)
        self.seen = np.zeros(lay.n, dtype=np.int64)
        self.min_context = s.score_min_context_steps
        self.refractory = s.score_refractory_steps
        self._decay = float(np.exp(-1.0 / self.refractory)) if self.refractory > 0 else 0.0
        self.peak = np.zeros(lay.n)
        self.z: FloatArray = np.full(lay.n, np.nan)
        """Each row's last z against its old forecast (NaN: none measured)."""
        self.surprise: FloatArray = np.full(lay.n, np.nan)
        """Each row's last calibrated score before the refractory period (what the flag compares)."""
        self.spec = Spec.per_tag("forecast_drift", ctx)

    def _slot(self, ts: float) -> int:
        return round(ts / self.layout.period_s)

    def observe(self, tick: Tick) -> Findings:
        n = self.layout.n
        k = self._slot(tick.ts)
        pos = k % self.h
        surprise = np.full(n, np.nan)
        onset = np.full(n, np.nan)
        self.z = np.full(n, np.nan)
        if self.ring_slot[pos] == k:
            z = forecast_z(tick.clean, self.ring[pos], self.levels, self.min_spread)
            ok = np.isfinite(z)
            self.z = z
            r = np.where(ok, self.scale.standardise(z), np.nan)
            decades = surprisal(r)
            ready = ok & (self.scale.learned >= self.grace)
            surprise = np.where(ready, log_score(decades), np.where(ok, 0.0, np.nan))
            if self.refractory > 0:
                peak = self.peak
                self.peak = np.where(ok, np.maximum(peak * self._decay, decades), peak)
                decades = np.where(ok, np.maximum(decades - peak, 0.0), np.nan)
            onset = np.where(ready, log_score(decades), np.where(ok, 0.0, np.nan))
            self.scale.learn(z, ok & ~tick.gate)
        self._remember(tick, k)
        self.surprise = surprise
        measured = np.isfinite(surprise)
        flagged = measured & (surprise >= self.threshold)
        return findings(flagged, measured & ~flagged, surprise, tag_score=onset, tag_surprise=surprise)

    def _remember(self, tick: Tick, k: int) -> None:
        """The batch's forecast for H ticks ahead (its last step if shorter), for the rows it refreshed."""
        fb = tick.batch
        self.seen += np.isfinite(tick.values)
        step = min(self.h, fb.horizon)
        target = k + step
        pos = target % self.h
        if self.ring_slot[pos] != target:
            self.ring[pos] = np.nan
            self.ring_slot[pos] = target
        rows = np.arange(self.layout.n) if fb.rows is None else fb.rows
        q = fb.quantiles[:, :, step - 1].copy()
        q[self.seen[rows] < self.min_context] = np.nan  # a forecast from too short a context is not a drift
        self.ring[pos, rows] = q

    def learn(self, tick: Tick, findings: Findings) -> None:
        """Nothing more to learn: the scale learned every ungated measured row while observing."""

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        return tick.explain_tag(subject, abs(float(self.z[subject])), float(self.h))

    def state(self) -> bytes:
        arrays = {
            "ring": self.ring,
            "ring_slot": self.ring_slot,
            "seen": self.seen,
            "peak": self.peak,
            **{f"scale.{k}": v for k, v in vars(self.scale).items() if isinstance(v, np.ndarray)},
        }
        return pack(self.name, _VERSION, arrays, {"tags": list(self.layout.tags)})

    def restore(self, blob: bytes) -> None:
        arrays, meta = unpack(blob, self.name, _VERSION)
        check_tags(meta, self.layout, self.name)
        for key, value in arrays.items():
            owner, _, attr = key.rpartition(".")
            setattr(self.scale if owner else self, attr, value)


def build(ctx: BuildContext) -> list[HorizonDetector]:
    return [HorizonDetector(ctx)] if ctx.settings.horizon_enabled else []
