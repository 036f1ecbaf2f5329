"""A two-sided CUSUM per tag on the residual against the asset model's estimate (issue 14, slow faults).

A slow fault (a drifting sensor, a degrading pump) moves a tag away from what the other tags say it
should be by a little more each minute.  The per-tick scorer (:mod:`.asset_estimate`) needs one
tick far out in the estimate's band before it flags, so it sees the fault only once the departure is
large; the textbook answer for a small persistent shift is Page's cumulative sum (CUSUM), which adds
up the standardised residual beyond a reference ``k`` and decides when the sum reaches ``h``
(Montgomery, *Introduction to Statistical Quality Control*, ch. 9; Page 1954).

Per tag and tick:

- ``z``: the value's split-normal position in the estimate's band (:func:`~..surprise.forecast_z`,
  floored at the tag's resolution), as the per-tick scorer reads it;
- ``r``: ``z`` standardised by its own robust, forgetting location and scale
  (:class:`~..surprise.RobustScale`, ``detect.score_memory_steps``, winsorised), clipped to
  ``detect.score_clip_sigmas`` so one wild tick adds a bounded step; the location removes the
  estimate's usual bias on that tag, the scale its usual spread (the band may be too wide or narrow);
- ``u = r / L``: ``L`` is ``r``'s long-run scale (Runger & Willemain's batch-means idea for autocorrelated
  data): the learned spread of an EWMA of ``r`` over about ``M`` = ``detect.asset_estimate_cusum_batch_steps``
  ticks, over what independent unit residuals would give (``sqrt(α/(2−α))``, α = 1/M), at least 1.  The blind
  estimate's residual in normal operation comes in runs of one sign lasting minutes (a load change the masked
  context has not seen yet); with ``L`` = 1 the sum takes each run for a shift;
- ``S⁺ ← max(0, S⁺ + u − k)``, ``S⁻ ← max(0, S⁻ − u − k)`` with ``k`` =
  ``detect.asset_estimate_cusum_k_sigmas`` and ``h`` = ``detect.asset_estimate_cusum_h_sigmas``, both in
  the residual's standard units (and ticks: one period of the tag per step, so the same numbers on 1 s
  and on hourly data); each side is capped at ``2h`` so the sum comes back below ``h`` within ``h / k``
  ticks of the fault's end;
- a tick is anomalous while ``max(S⁺, S⁻) ≥ h``; its score is ``detect.score_threshold × S / h`` (capped
  at 1), so the shared threshold means "the sum reached h".

Learning (River's split): the scales learn each scored row with no open alert of this detector and a
sum below ``h`` (a fault the sum has found is not learned as normal).  Why not ``river.drift.PageHinkley``:
it tests one stream per object against the mean of that stream itself (a fault before the alarm is part
of its reference) and restarts after an alarm; here the reference is the estimate, the standardisation is
corrected for the residual's autocorrelation, every tag is one row of arrays, and the state is those arrays.

An estimate made on one slot in ``forecast.asset_estimate_every_steps`` stands for the slots between, so
the sum sees each estimate's error that many times: ``h`` is chosen with that refresh (the chiller's
development runs, docs/results/chiller-detection/asset-cusum.md).  Off by default
(``detect.asset_estimate_cusum_enabled``); without an estimate in the batch it finds nothing.

Measured limit (chiller, estimate blind to 128 slots): a slow fault's residual against that estimate is
not a growing ramp but a plateau of about slope × 128 s (the estimate follows the drift past its blind
window), about one band spread, no larger than healthy runs on flow, supply temperature and power; on
the development seeds no (k, h) both stayed clean and found the slow faults (asset-cusum.md).

Alerts: kind ``relation`` (the value departs from what the rest of the asset says, as
:mod:`.asset_estimate`), one subject per tag, ``<tag>#cusum``.  State: the scales, the EWMA and the two sums.

>>> import numpy as np
>>> up, down = cusum_step(np.zeros(1), np.zeros(1), np.array([1.5]), k=0.5, cap=10.0)
>>> up.tolist(), down.tolist()
([1.0], [0.0])
"""

from __future__ import annotations

import math

import numpy as np

from ...records import BoolArray, FloatArray
from ..surprise import RobustScale
from .asset_estimate import estimate_z, explain_estimate, relation_spec
from .base import BuildContext, Explanation, Findings, Tick, check_tags, findings, pack, unpack

RANK = 15
_VERSION = 1
_SUFFIX = "#cusum"
_CAP = 2.0
"""Each side of the sum is capped at this many ``h`` (it comes back below ``h`` within ``h / k`` ticks)."""


def cusum_step(up: FloatArray, down: FloatArray, r: FloatArray, k: float, cap: float) -> tuple[FloatArray, FloatArray]:
    """One step of the two-sided CUSUM for each row with a finite ``r`` (others keep their sums)."""
    ok = np.isfinite(r)
    x = np.where(ok, r, 0.0)
    new_up = np.minimum(np.maximum(0.0, up + x - k), cap)
    new_down = np.minimum(np.maximum(0.0, down - x - k), cap)
    return np.where(ok, new_up, up), np.where(ok, new_down, down)


class EstimateCusumDetector:
    """Per tag: a two-sided CUSUM of the standardised residual against the asset model's estimate."""

    name = "estimate_cusum"

    def __init__(self, ctx: BuildContext) -> None:
        lay = ctx.layout
        s = ctx.settings
        self.layout = lay
        self.levels = ctx.levels
        self.mid = ctx.levels.index(0.5)
        self.threshold = s.score_threshold
        self.grace = s.grace_period_steps
        self.k = s.asset_estimate_cusum_k_sigmas
        self.h = s.asset_estimate_cusum_h_sigmas
        self.clip = s.score_clip_sigmas
        self.min_spread = np.array([t.min_spread for t in lay.tag_settings], dtype=np.float64)
        self.scale = RobustScale(lay.n, s.score_memory_steps, s.score_clip_sigmas, s.residual_min_sigma)
        self.alpha = 1.0 / s.asset_estimate_cusum_batch_steps
        self.independent = math.sqrt(self.alpha / (2.0 - self.alpha))
        """The spread of an EWMA of independent unit residuals: the long-run scale's unit and floor."""
        self.ewma: FloatArray = np.zeros(lay.n)
        self.long_run = RobustScale(lay.n, s.score_memory_steps, s.score_clip_sigmas, self.independent)
        self.up: FloatArray = np.zeros(lay.n)
        self.down: FloatArray = np.zeros(lay.n)
        self.spec = relation_spec(ctx, _SUFFIX)
        self._expected: FloatArray = np.full((lay.n, len(ctx.levels)), np.nan)
        self._z: FloatArray = np.full(lay.n, np.nan)
        self._score: FloatArray = np.full(lay.n, np.nan)

    def observe(self, tick: Tick) -> Findings:
        expected, z = estimate_z(tick, self.levels, self.min_spread, self.layout.n)
        z[tick.gate] = np.nan
        r = np.clip(self.scale.standardise(z), -self.clip, self.clip)
        ok = np.isfinite(r)
        self.ewma = np.where(ok, self.ewma + self.alpha * (np.where(ok, r, 0.0) - self.ewma), self.ewma)
        if self.alpha < 1.0:
            r = r * self.independent / self.long_run.sigma()
        ready = self.scale.learned >= self.grace
        # The sums start once the scale has learned: before, r is in no one's units.
        self.up, self.down = cusum_step(self.up, self.down, np.where(ready, r, np.nan), self.k, _CAP * self.h)
        stat = np.maximum(self.up, self.down)
        scored = np.isfinite(r) & ready
        score = np.where(scored, np.minimum(self.threshold * stat / self.h, 1.0), np.nan)
        flagged: BoolArray = scored & (stat >= self.h)
        self._expected, self._z, self._score = expected, z, score
        return findings(flagged, scored & ~flagged, score)

    def learn(self, tick: Tick, findings: Findings) -> None:
        """Learn each scored row with no open alert of this detector and its sum below ``h``."""
        below = np.maximum(self.up, self.down) < self.h
        mask = np.isfinite(self._z) & below & ~tick.alerts.open(self)
        self.scale.learn(self._z, mask)
        self.long_run.learn(self.ewma, mask)

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        row = subject
        magnitude = max(self.up[row], self.down[row]) / self.h
        estimate = (self._expected[row], self.mid)
        return explain_estimate(self.layout, tick, row, estimate, self._z, self._score, magnitude)

    def state(self) -> bytes:
        arrays = {k: v for k, v in vars(self.scale).items() if isinstance(v, np.ndarray)}
        arrays |= {f"long_run.{k}": v for k, v in vars(self.long_run).items() if isinstance(v, np.ndarray)}
        arrays |= {"cusum.up": self.up, "cusum.down": self.down, "cusum.ewma": self.ewma}
        return pack(self.name, _VERSION, arrays, {"tags": list(self.layout.tags)})

    def restore(self, blob: bytes) -> None:
        arrays, meta = unpack(blob, self.name, _VERSION)
        check_tags(meta, self.layout, self.name)
        for key, value in arrays.items():
            owner, _, attr = key.rpartition(".")
            setattr({"": self.scale, "long_run": self.long_run, "cusum": self}[owner], attr, value)


def build(ctx: BuildContext) -> list[EstimateCusumDetector]:
    return [EstimateCusumDetector(ctx)] if ctx.settings.asset_estimate_cusum_enabled else []
