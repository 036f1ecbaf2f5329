"""Drift against an old forecast: each tag's value against the forecast made ``detect.horizon_steps`` ticks ago.

A one-step residual follows a slow drift: every forecast starts from the latest value, so a
level that creeps a little each tick never surprises.  The forecast made H ticks earlier
did not see the creep, so the drift accumulates in its residual.  The numerics are the
residual scorer's (:mod:`~sentinelle.detect.surprise`): ``z`` in the old forecast's own
spread at that step (wider than one step's), a winsorised, forgetting usual ``z`` per tag,
two-sided decades of tail probability, ``S/(S+10)``; and its onset only with a refractory
period — so its per-tag score joins the residual's by maximum (``Findings.tag_score``, see
:mod:`.distribution`), and it opens ``forecast_drift`` alerts at ``detect.score_threshold``.

A forecaster refreshing each tag once in R ticks (``forecast.refresh_every_steps``, a partial
refresh's ``ForecastBatch.rows``; R reaches here as ``BuildContext.refresh_every_steps``) leaves
its multi-step forecast standing for the ticks until the tag's next refresh.  So a row refreshed
at tick k gives, for each target tick k+H+j (j = 0 … R−1), its step H+j: every tick then has, for
every tag refreshed on its cadence, the newest forecast made at least H ticks before (H+j ticks
before, in that forecast's own wider spread at step H+j).  A later refresh of the row overwrites
the targets it covers with a newer forecast, still made at least H ticks before them; a row
refreshed at other ticks than the rest is compared with its own last forecast.  With R = 1 this is
one forecast per target, the H-th step of the forecast made H ticks before.

A forecast shorter than H steps shifts the lag to its horizon h (the target is k+h, its last step,
as with R = 1 always); one shorter than H+j steps gives its last step for the targets beyond it:
the value at k+H+j is then compared with what the forecast made H+j ticks before said for an earlier
tick, k+h.  ``forecast.refresh_every_steps`` ≤ ``forecast.horizon_steps`` keeps that rare.

Memory per tag: a ring of H+R targets × levels floats (each target's one forecast) and a few scalars.
"""

from __future__ import annotations

import logging

import numpy as np

from ...errors import ConfigError
from ...records import FloatArray
from ..surprise import RobustScale, forecast_z, log_score, surprisal
from .base import BuildContext, Explanation, Findings, Spec, Tick, check_tags, findings, pack, unpack

RANK = 17
_VERSION = 2
"""2: the ring holds H + R targets (``horizon_steps`` and ``ring_steps`` in the meta); 1 held H (restored too)."""

log = logging.getLogger(__name__)


class HorizonDetector:
    name = "forecast_drift"

    def __init__(self, ctx: BuildContext) -> None:
        lay = ctx.layout
        s = ctx.settings
        self.layout = lay
        self.levels = ctx.levels
        self.h = s.horizon_steps
        self.r = max(1, ctx.refresh_every_steps)
        self.size = self.h + self.r
        self.threshold = s.score_threshold
        self.grace = s.grace_period_steps
        self.min_spread = np.array([t.min_spread for t in lay.tag_settings])
        self.scale = RobustScale(lay.n, s.score_memory_steps, s.score_clip_sigmas, s.residual_min_sigma)
        self.ring = np.full((self.size, lay.n, len(ctx.levels)), np.nan)
        """Position ``k mod (H+R)``: per row, the newest forecast for slot ``k`` made at least H ticks before it
        (NaN: none)."""
        self.ring_slot = np.full(self.size, -1, dtype=np.int64)
        """Per position: the slot its forecasts are for (-1: none)."""
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
        pos = k % self.size
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
        """The refreshed rows' forecast for the H … H+R−1 ticks ahead (see the module docstring).

        With R = 1: the H-th step (its last if shorter) for slot ``k + min(H, horizon)``, as before R was known.
        """
        fb = tick.batch
        self.seen += np.isfinite(tick.values)
        lag = min(self.h, fb.horizon)
        ahead = lag + np.arange(self.r)
        targets = k + ahead
        steps = np.minimum(ahead, fb.horizon) - 1
        positions = targets % self.size
        stale = self.ring_slot[positions] != targets
        self.ring[positions[stale]] = np.nan
        self.ring_slot[positions] = targets
        rows = np.arange(self.layout.n) if fb.rows is None else fb.rows
        q = np.moveaxis(fb.quantiles[:, :, steps], 2, 0)  # targets × refreshed rows × levels (a copy)
        q[:, self.seen[rows] < self.min_context] = np.nan  # a forecast from too short a context is not a drift
        self.ring[positions[:, None], rows[None, :]] = q

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
        meta = {"tags": list(self.layout.tags), "horizon_steps": self.h, "ring_steps": self.size}
        return pack(self.name, _VERSION, arrays, meta)

    def restore(self, blob: bytes) -> None:
        """Take over :meth:`state`; a version-1 blob (a ring of H targets) or one of another R is re-slotted.

        A blob of another H holds forecasts of another lag: its ring is dropped (logged), the rest restored.  A blob
        of a larger R holds more targets than the ring: where two share a position the later one is kept, so a few
        ticks after the restore may go uncompared.
        """
        try:
            arrays, meta = unpack(blob, self.name, _VERSION)
        except ConfigError as e:
            try:
                arrays, meta = unpack(blob, self.name, 1)
            except ConfigError:
                raise e from None
            meta["horizon_steps"] = len(arrays["ring_slot"])  # version 1: the ring held H targets
        check_tags(meta, self.layout, self.name)
        ring, ring_slot = arrays.pop("ring"), arrays.pop("ring_slot")
        for key, value in arrays.items():
            owner, _, attr = key.rpartition(".")
            setattr(self.scale if owner else self, attr, value)
        self.ring[:] = np.nan
        self.ring_slot[:] = -1
        if meta.get("horizon_steps") != self.h:
            log.warning(
                "%s: saved forecasts were made %s ticks ahead, not detect.horizon_steps %d: dropped, the "
                "comparisons start again %d ticks on",
                self.name,
                meta.get("horizon_steps"),
                self.h,
                self.h,
            )
            return
        for p in np.argsort(ring_slot, kind="stable"):  # newest target last: it wins a shared position
            target = int(ring_slot[p])
            if target >= 0:
                self.ring[target % self.size] = ring[p]
                self.ring_slot[target % self.size] = target


def build(ctx: BuildContext) -> list[HorizonDetector]:
    return [HorizonDetector(ctx)] if ctx.settings.horizon_enabled else []
