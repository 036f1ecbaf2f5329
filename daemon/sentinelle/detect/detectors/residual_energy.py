"""The forecast residual's energy over a window, improbably small (or large) for the tag: a frozen sensor (issue 14).

A transmitter that freezes repeats its last value.  Every forecaster that reads the tag's own past soon
forecasts that value, so the one-step residual *collapses towards zero*: no tick is surprising, and the
per-tick scorer (:mod:`.residual`), which asks whether a residual is improbably *large*, sees nothing —
on the simulated chiller's development runs the stuck sensor was the one fault kind that no residual
found (docs/results/chiller-detection/residual-energy/).  What is improbable is the residual being that
small for that long: a healthy measurement carries noise, so its residual's mean square over a window
stays near the tag's usual one.  This detector scores that mean square against its own usual value — a
score of the model's residuals, learned per tag, not a rule (no "flat for N seconds" threshold per tag).

Per tag and tick (``W`` = ``detect.residual_energy_window_steps``):

- ``e``: the squared one-step residual in tag units, the value against the median of the latest forecast
  made before this slot (the step of it that lands here, as :mod:`..scoring` reads it: a forecaster
  refreshing once in R slots is compared with its own multi-step forecast); NaN without one, or where the
  row is gated, or held in a replayed compressed export (a held value is not a measurement);
- ``ℓ = (mean of the last W e + q²/12)^⅓``, ``q`` the tag's resolution (``TagSettings.min_spread``):
  ``q²/12`` is the variance of a value known only to within one step, so a frozen tag's ``ℓ`` stops there
  instead of at 0, and a tag quantised coarser than its noise cannot look frozen by rounding.  The cube
  root is Wilson and Hilferty's: a mean of squared normals (a scaled χ²) is skewed, its cube root nearly
  normal, so a normal tail means what it says on both sides (the log, tried first, has a long low tail:
  on hand-made white noise it flagged a quiet window about once in 10,000 ticks);
- ``r``: ``ℓ`` standardised by its usual location and scale (:class:`~..surprise.RobustScale`,
  winsorised and forgetting over ``detect.score_memory_steps``; the first full window sets the location
  and a scale of ``ℓ·sqrt(2/(9W))``, the spread of that cube root for ``W`` independent squared normals,
  which is also the scale's floor, relative to the location: no real residual undercuts it);
- score: the two-sided normal tail of ``r`` as decades, ``S/(S+10)`` (:func:`~..surprise.log_score`), the
  residual's own scale of a score, so ``detect.score_threshold`` means the same; with
  ``detect.residual_energy_sides`` ``"low"`` only windows *quieter* than usual score (the loud side is the
  per-tick scorer's, and a window of large residuals is also large ticks), ``"both"`` scores either.

**Near the resolution** (``detect.residual_energy_max_resolution_variances`` c > 0): a row flags only
while the window's mean square is also below ``c · q²/12`` — the residual no larger than what rounding to
the tag's resolution alone would leave, i.e. indistinguishable from no new measurement.  Why: the
calibrated score alone also flagged healthy stretches quieter than the tag had shown in its first hours
(power and flow at low noise, the pumps' commands in a calm spell; 4 to 6 false alarms in 22 h of the
development runs), whose mean square is still many resolution variances; a frozen value's falls to about
zero.  Both are needed: on a tag held by a deadband, windows near the resolution are usual, and the
calibrated score says so.  A tag with no resolution configured (``min_spread`` 0) never flags with it.

A row flags once its scale has learned ``grace_period_steps + 4 W`` ticks: windows overlap, so W ticks
hold about one independent window, and a scale learned on one or two windows is not yet a scale.
Learning (River's split): rows with a full window and no open alert of this detector (a frozen stretch
is not learned as the new normal while its alert is open).  Memory per tag: the ring of ``W`` squares
and the latest forecast's medians.  Off by default (``W`` = 0).

Alerts: kind ``forecast_residual`` (a property of the tag's forecast residual), one subject per tag,
``<tag>#energy``; findings' ``score``: the calibrated score.  State: the ring, the forecast memory, the scale.

>>> import numpy as np
>>> root_energy(np.array([[1.0, 8.0], [1.0, np.nan], [1.0, 8.0]]), np.array([0.0, 0.0]), min_finite=2).round(3).tolist()
[1.0, 2.0]
"""

from __future__ import annotations

import math

import numpy as np

from ...records import BoolArray, FloatArray, ForecastBatch
from ..surprise import RobustScale, log_score, surprisal
from .base import (
    BuildContext,
    Explanation,
    Findings,
    Spec,
    Suffixed,
    Tick,
    check_tags,
    findings,
    pack,
    unpack,
)

RANK = 12
_VERSION = 1
_SUFFIX = "#energy"
_GRACE_WINDOWS = 4
"""Windows' worth of ticks (beyond ``grace_period_steps``) a row's scale learns before it may flag."""


def root_energy(ring: FloatArray, floor: FloatArray, min_finite: int) -> FloatArray:
    """Per row (columns of ``ring``, windows × rows): cube root of the mean of its finite squares plus ``floor``; NaN
    where fewer than ``min_finite`` are finite."""
    finite = np.isfinite(ring)
    count = finite.sum(axis=0)
    total = np.where(finite, ring, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.cbrt(total / count + floor)
    return np.asarray(np.where(count >= min_finite, out, np.nan), dtype=np.float64)


class ResidualEnergyDetector:
    """Per tag: the window's mean squared one-step residual against its usual value, calibrated per tag."""

    name = "residual_energy"

    def __init__(self, ctx: BuildContext) -> None:
        lay = ctx.layout
        s = ctx.settings
        self.layout = lay
        self.mid = ctx.levels.index(0.5)
        self.window = s.residual_energy_window_steps
        self.low_only = s.residual_energy_sides == "low"
        self.threshold = s.score_threshold
        self.max_variances = s.residual_energy_max_resolution_variances
        self.grace = s.grace_period_steps + _GRACE_WINDOWS * self.window
        min_spread = np.array([t.min_spread for t in lay.tag_settings], dtype=np.float64)
        self.quantum_variance = np.nan_to_num(min_spread) ** 2 / 12.0
        self.floor = np.fmax(np.nan_to_num(min_spread) ** 2 / 12.0, np.finfo(np.float64).tiny)
        """Per row: the variance of a value known to within its resolution (tag units squared; a tag with no
        resolution configured gets the smallest positive float, so a frozen value's log stays finite)."""
        self.scale = RobustScale(lay.n, s.score_memory_steps, s.score_clip_sigmas, 0.0)
        self.relative_floor = math.sqrt(2.0 / (9.0 * self.window))
        """The cube root's relative spread for W independent squared normals: the scale's first value and floor."""
        self.ring: FloatArray = np.full((self.window, lay.n), np.nan)
        """Each row's squared residuals of the last ``window`` ticks (a ring; ``pos`` its oldest slot)."""
        self.pos: FloatArray = np.zeros(1)
        self.medians: FloatArray = np.full((lay.n, 0), np.nan)
        """Each row's latest forecast medians (rows × horizon) and the slot it was made at (``made_ts``)."""
        self.made_ts: FloatArray = np.full(lay.n, np.nan)
        self.spec = Spec(
            kind="forecast_residual",
            subjects=Suffixed(lay.tags, _SUFFIX),
            subject_assets=lay.asset_index,
            open_k=s.open_k,
            open_n=s.open_n,
            clear_steps=s.clear_normal_steps,
        )
        self._level: FloatArray = np.full(lay.n, np.nan)
        self._r: FloatArray = np.full(lay.n, np.nan)

    def _median_now(self, ts: float, period_s: float) -> FloatArray:
        """Each row's forecast median for the slot ending at ``ts`` (NaN: none made before it reaches it)."""
        horizon = self.medians.shape[1]
        out = np.full(self.layout.n, np.nan)
        if horizon == 0:
            return out
        with np.errstate(invalid="ignore"):
            steps = np.rint((ts - self.made_ts) / period_s)
        valid = np.isfinite(steps) & (steps >= 1) & (steps <= horizon)
        idx = np.where(valid, steps - 1, 0).astype(np.intp)
        out[valid] = self.medians[np.arange(self.layout.n), idx][valid]
        return out

    def _remember(self, fb: ForecastBatch) -> None:
        med = fb.quantiles[:, self.mid, :]
        if self.medians.shape[1] != med.shape[1]:
            self.medians = np.full((self.layout.n, med.shape[1]), np.nan)
        rows = slice(None) if fb.rows is None else fb.rows
        self.medians[rows] = med
        self.made_ts[rows] = fb.window.ts

    def observe(self, tick: Tick) -> Findings:
        w = tick.batch.window
        with np.errstate(invalid="ignore"):
            square = (tick.clean - self._median_now(w.ts, w.period_s)) ** 2
        if tick.held is not None:
            square[tick.held] = np.nan
        self._remember(tick.batch)
        pos = int(self.pos[0])
        self.ring[pos] = square
        self.pos[0] = (pos + 1) % self.window
        level = root_energy(self.ring, self.floor, self.window)
        sigma = np.fmax(self.scale.sigma(), self.relative_floor * np.abs(self.scale.location))
        r = (level - self.scale.location) / sigma
        decades = surprisal(r)
        if self.low_only:
            decades = np.where(r < 0, decades, 0.0)
        score = log_score(decades)
        scored = np.isfinite(score) & ~tick.gate
        ready = self.scale.learned >= self.grace
        flagged: BoolArray = scored & ready & (score >= self.threshold)
        if self.max_variances > 0:
            with np.errstate(invalid="ignore"):
                flagged &= level**3 - self.floor < self.max_variances * self.quantum_variance
        self._level, self._r = level, r
        return findings(flagged, scored & ready & ~flagged, np.where(scored, score, np.nan))

    def learn(self, tick: Tick, findings: Findings) -> None:
        """Learn each row with a full window and no open alert of this detector (winsorised)."""
        mask = np.isfinite(self._level) & ~tick.alerts.open(self) & ~tick.gate
        first = mask & (self.scale.learned == 0)
        # the first full window sets the location and, from it, the scale (the prior's 1 would be in tag units)
        self.scale.location[first] = self._level[first]
        self.scale.square[first] = (self.relative_floor * self._level[first] * self.scale.consistency) ** 2
        self.scale.learn(self._level, mask)

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        return tick.explain_tag(subject, abs(float(self._r[subject])))

    def state(self) -> bytes:
        arrays = {f"scale.{k}": v for k, v in vars(self.scale).items() if isinstance(v, np.ndarray)}
        arrays |= {"ring": self.ring, "pos": self.pos, "medians": self.medians, "made_ts": self.made_ts}
        return pack(self.name, _VERSION, arrays, {"tags": list(self.layout.tags), "window": self.window})

    def restore(self, blob: bytes) -> None:
        """The scale always; the ring only if saved with the same window (another window refills it)."""
        arrays, meta = unpack(blob, self.name, _VERSION)
        check_tags(meta, self.layout, self.name)
        for key, value in arrays.items():
            owner, _, attr = key.partition(".")
            if owner == "scale":
                setattr(self.scale, attr, value)
        self.medians, self.made_ts = arrays["medians"].copy(), arrays["made_ts"].copy()
        if meta.get("window") == self.window:
            self.ring, self.pos = arrays["ring"].copy(), arrays["pos"].copy()


def build(ctx: BuildContext) -> list[ResidualEnergyDetector]:
    return [ResidualEnergyDetector(ctx)] if ctx.settings.residual_energy_window_steps > 0 else []
