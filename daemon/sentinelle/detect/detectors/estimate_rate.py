"""A slow exceedance-rate accumulator per tag on the residual against the asset model's estimate (issue 14, LBNL).

Why (docs/results/lbnl/estimate_rate/, tuning days only): on LBNL's air handlers a fault present all day
(a stuck or leaking valve, a stuck damper) does not move the residual of a tag against its estimate from
the other tags by a steady amount — the estimate reads the tags' recent past and follows — but it makes the
residual *surprising more often*, for hours: the day's share of ticks beyond 3 scales ranked faulted above
fault-free days with AUC 0.93 on the air temperatures, where the per-tick alerts (about 35 a day on every
day) and a one-sided bias did not.  Two things the per-tick scorer does differently decide that:

- the scale is the **known-good history's, frozen**: it learns only on history-replay ticks (the start-up
  backfill, ``Tick.replay``; an evaluation's warm-up day) and never after, so an all-day fault is not
  learned as normal (a scale that keeps learning absorbs it within its memory);
- the evidence is a **rate over hours**: ``e = 1{|r| > asset_estimate_rate_sigmas}`` and the share ``p`` an
  EWMA of ``e`` with weight ``1 / asset_estimate_rate_window_steps``, run from the first estimate on (at the
  end of the history it holds about the history's own rate); a live tick is anomalous while
  ``p ≥ asset_estimate_rate_max_share``.  A burst of minutes (a start-up, a set-point change) moves ``p`` by
  its length over the window; a fault present all day moves it to its own rate.  Indicators, not magnitudes:
  one wild tick adds at most one tick's weight.

The exact form (``asset_estimate_rate_window_kind = "sliding"``, docs/results/lbnl/estimate_rate_day/): the
share of surprising ticks among the last ``window_steps`` *live* ticks, history ticks kept out (the history's
rate is the reference's own; an EWMA that starts at it carries a day-to-day noise of the history into the
first hours of its judgement).  ``asset_estimate_rate_judge_after_steps`` holds the judgement until that many
live ticks have been seen, so a window of a few ticks (or one still dominated by the history) is not read.
On LBNL an exact 12 h window, chosen on the tuning days (AUC 0.857), gave AUC 0.75 on the held-out days: below
issue 14's 0.85, so neither form is on by default.

Only tags whose unit is in ``detect.asset_estimate_rate_units`` are accumulated (empty: all): a controller's
output (a damper or valve command, a fan speed) is its controller's integral state, not a function of the
other tags now; on LBNL its residual's rate was as high on fault-free days as on faulted ones.

Why not the per-tick scorer's own scale or a CUSUM (:mod:`.estimate_cusum`): both keep learning while no
alert is open; a CUSUM also sums the residual's sign, and on LBNL the one-sided bias separated nothing.  This
is Reynolds & Stoumbos's Bernoulli chart in its EWMA form (a rate of nonconforming items), on the
indicator that a tick is beyond the reference's limits.

Alerts: kind ``relation`` (the value departs from what the rest of the asset says, as :mod:`.asset_estimate`),
one subject per tag, ``<tag>#rate``.  State: the scale and the shares.  Off by default
(``detect.asset_estimate_rate_enabled``); without an estimate in the batch it finds nothing.

>>> import numpy as np
>>> share_step(np.array([0.1, 0.1]), np.array([1.0, np.nan]), alpha=0.5).tolist()
[0.55, 0.1]
>>> w = SlidingShare(rows=2, steps=2)
>>> for e in ([1.0, np.nan], [0.0, 1.0], [0.0, 0.0]):
...     share = w.push(np.array(e))
>>> share.tolist()
[0.0, 0.5]
"""

from __future__ import annotations

import numpy as np

from ...records import BoolArray, FloatArray
from ..surprise import RobustScale
from .asset_estimate import estimate_z, explain_estimate, relation_spec
from .base import BuildContext, Explanation, Findings, Tick, check_tags, findings, pack, unpack_versions

RANK = 15
_VERSION = 2
_READS = (1, 2)
"""v1 (before the sliding window): the EWMA's state only, still read."""
_SUFFIX = "#rate"


def share_step(share: FloatArray, exceeded: FloatArray, alpha: float) -> FloatArray:
    """One EWMA step of each row's share of surprising ticks (rows with a NaN indicator keep their share)."""
    ok = np.isfinite(exceeded)
    return np.where(ok, share + alpha * (np.where(ok, exceeded, 0.0) - share), share)


class SlidingShare:
    """Per row, the exact share of ones among the finite indicators of the last ``steps`` pushes (a ring of
    int8: 1, 0, or −1 for a missing indicator, with running sums, so a push costs O(rows) however long)."""

    def __init__(self, rows: int, steps: int) -> None:
        self.ring = np.full((steps, rows), -1, dtype=np.int8)
        self.pos = np.zeros(1, dtype=np.int64)
        self.ones = np.zeros(rows, dtype=np.int64)
        self.seen = np.zeros(rows, dtype=np.int64)

    def push(self, exceeded: FloatArray) -> FloatArray:
        """Add one tick's indicators (NaN: none) and return each row's share (NaN where the window holds none)."""
        if not len(self.ring):
            return np.full(self.ones.shape, np.nan)
        i = int(self.pos[0]) % len(self.ring)
        old = self.ring[i]
        self.ones -= old == 1
        self.seen -= old >= 0
        new = np.where(np.isfinite(exceeded), np.nan_to_num(exceeded) > 0.5, -1).astype(np.int8)
        self.ring[i] = new
        self.ones += new == 1
        self.seen += new >= 0
        self.pos[0] = i + 1
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.seen > 0, self.ones / np.maximum(self.seen, 1), np.nan)


class EstimateRateDetector:
    """Per tag: the hours-long share of ticks whose estimate residual is beyond the history's limits."""

    name = "estimate_rate"

    def __init__(self, ctx: BuildContext) -> None:
        lay = ctx.layout
        s = ctx.settings
        self.layout = lay
        self.levels = ctx.levels
        self.mid = ctx.levels.index(0.5)
        self.threshold = s.score_threshold
        self.grace = s.grace_period_steps
        self.sigmas = s.asset_estimate_rate_sigmas
        self.alpha = 1.0 / s.asset_estimate_rate_window_steps
        self.max_share = s.asset_estimate_rate_max_share
        self.sliding = s.asset_estimate_rate_window_kind == "sliding"
        self.judge_after = s.asset_estimate_rate_judge_after_steps
        self.window = SlidingShare(lay.n, s.asset_estimate_rate_window_steps if self.sliding else 0)
        self.live: np.ndarray = np.zeros(1, dtype=np.int64)
        """Live ticks seen (for ``judge_after``)."""
        units = set(s.asset_estimate_rate_units)
        self.watched: BoolArray = np.array([not units or t.unit in units for t in lay.tag_settings], dtype=bool)
        self.min_spread = np.array([t.min_spread for t in lay.tag_settings], dtype=np.float64)
        self.scale = RobustScale(lay.n, s.score_memory_steps, s.score_clip_sigmas, s.residual_min_sigma)
        self.share: FloatArray = np.zeros(lay.n)
        self.spec = relation_spec(ctx, _SUFFIX)
        self._expected: FloatArray = np.full((lay.n, len(ctx.levels)), np.nan)
        self._z: FloatArray = np.full(lay.n, np.nan)
        self._score: FloatArray = np.full(lay.n, np.nan)

    def observe(self, tick: Tick) -> Findings:
        expected, z = estimate_z(tick, self.levels, self.min_spread, self.layout.n)
        z[tick.gate | ~self.watched] = np.nan
        ready = self.scale.learned >= self.grace
        with np.errstate(invalid="ignore"):
            r = self.scale.standardise(z)
            exceeded = np.where(np.isfinite(r) & ready, (np.abs(r) > self.sigmas).astype(np.float64), np.nan)
        if not tick.replay:
            self.live[0] += 1
        if not self.sliding:
            self.share = share_step(self.share, exceeded, self.alpha)
        elif not tick.replay:
            fresh = self.window.push(exceeded)
            self.share = np.where(np.isfinite(fresh), fresh, self.share)
        # Judged only live: during the history the share is still the history's own.
        judged = not tick.replay and int(self.live[0]) >= self.judge_after
        scored = np.isfinite(exceeded) & judged
        score = np.where(scored, np.minimum(self.threshold * self.share / self.max_share, 1.0), np.nan)
        flagged: BoolArray = scored & (self.share >= self.max_share)
        self._expected, self._z, self._score = expected, z, score
        return findings(flagged, scored & ~flagged, score)

    def learn(self, tick: Tick, findings: Findings) -> None:
        """The reference scale learns on history-replay ticks only, then stays frozen."""
        if tick.replay:
            self.scale.learn(self._z, np.isfinite(self._z))

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        row = subject
        magnitude = float(self.share[row] / self.max_share)
        estimate = (self._expected[row], self.mid)
        return explain_estimate(self.layout, tick, row, estimate, self._z, self._score, magnitude)

    def state(self) -> bytes:
        arrays = {k: v for k, v in vars(self.scale).items() if isinstance(v, np.ndarray)}
        arrays |= {"rate.share": self.share, "rate.live": self.live}
        arrays |= {f"window.{k}": v for k, v in vars(self.window).items()}
        return pack(self.name, _VERSION, arrays, {"tags": list(self.layout.tags)})

    def restore(self, blob: bytes) -> None:
        _, arrays, meta = unpack_versions(blob, self.name, _READS)
        check_tags(meta, self.layout, self.name)
        if "window.ring" in arrays and arrays["window.ring"].shape != self.window.ring.shape:
            arrays = {k: v for k, v in arrays.items() if not k.startswith("window.")}  # another window: refilled
        for key, value in arrays.items():
            owner, _, attr = key.rpartition(".")
            setattr({"": self.scale, "rate": self, "window": self.window}[owner], attr, value)


def build(ctx: BuildContext) -> list[EstimateRateDetector]:
    return [EstimateRateDetector(ctx)] if ctx.settings.asset_estimate_rate_enabled else []
