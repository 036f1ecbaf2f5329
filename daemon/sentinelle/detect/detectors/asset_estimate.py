"""Each tag against the asset model's estimate of it from the other tags *now* (issue 14, evidence a).

A forecaster that reads one tag's own past follows a slow fault (a drifting
sensor, fouling) and leaves little residual; the asset model's estimate of the
tag from the rest of the asset at the same instant does not follow it — the
other tags still say what the value should be.  The batch carries that estimate
(:attr:`~sentinelle.records.ForecastBatch.estimate`, rows × levels) when the
forecaster gives one; without it this detector finds nothing and costs nothing.

Scoring is the calibrated per-tag scorer's (:mod:`..surprise`): the value's
split-normal ``z`` in the estimate's own spread (floored at the tag's
resolution), standardised by the tag's usual ``z`` (:class:`~..surprise.RobustScale`,
winsorised and forgetting), as decades of tail probability squashed to 0 … 1;
a tick is anomalous when that reaches ``detect.score_threshold`` after
``detect.grace_period_steps`` learned ticks — the same settings and the same
meaning of a score as the forecast residuals.  River's split: :meth:`observe`
judges, :meth:`learn` learns rows not gated and without an open alert (a fault
is not learned as normal).

Measured limit (first checkpoint, ``forecast/checkpoints/asset``): its estimate also reads
the tag's own past (that is what makes its estimate-of-now MASE the best), and on the
simulator (seed 1003, 512-step context) it followed a slow chilled-water sensor drift —
mean |residual| 0.84 → 0.92 step-MAEs before → during, where the long-memory linear
virtual sensor (:mod:`sentinelle.forecast.virtual_sensor`) went 0.86 → 2.77 — and an
in-context fit on the others alone absorbed the drift as well (0.99 → 1.04).  Slow
faults need a reference learned on healthy history (per-asset adaptation, issue 14
step 3); fast ones (a stuck or spiking sensor, a step) are what this catches today.
``forecast.asset_mask_recent_steps`` makes the estimate blind to the tags' newest slots
(:mod:`sentinelle.forecast.asset_engine`), so a drift accumulates over that many slots; results in
docs/results/chiller-detection/asset-model-slow-faults.md.

**Sustained bias** (``detect.asset_estimate_ewma_alpha`` > 0): a slow fault that the estimate
half follows still leaves a residual of one sign for minutes — too small for any one tick to
be surprising, but not what healthy ticks do.  An EWMA of the standardised residual
(each tick clipped to ``score_clip_sigmas``, so a spike adds a bounded step) is scored
against its own usual scale, learned on the same ticks as the residual's (a second
:class:`~..surprise.RobustScale`: the residuals are autocorrelated, so the textbook
``sqrt(α/(2−α))`` would understate it; times ``residual_min_sigma`` it is the floor); a
row's score is the larger of the tick's and the chart's.  The chart scores once its scale
has learned ``grace_period_steps + 1/α`` ticks.

**Band calibration** (``detect.asset_estimate_calibrate_band``): each row's band is scaled about its
median by a factor learned online from this detector's own residuals (:mod:`..conformal`), so that
the nominal share of learned values falls outside it, before ``z`` is read from it; the scorer's
floor (``residual_min_sigma`` band spreads) then stands where the band is honest.  The findings'
band (``lower``/``upper``) is the calibrated one.

**Learning late** (``detect.asset_estimate_learn_delay_steps`` D > 0): the scale learns each row's
residual D ticks late, from a delay line, and only if no alert of this detector was open then and none
is open now.  Why: with a reference older than a slow fault (``forecast.asset_context_stride_steps``) a
drift's residual grows to several band spreads, but over minutes, and a scale that learns every tick at
once (at 1/n while young) moves its location and spread with it, so no tick is surprising; late, the
scale is the one from before the fault for D ticks.  The chart and the band calibration learn at once.
``detect.asset_estimate_min_learned_steps`` L: a row flags only once its scale has learned L ticks (or
the shared grace, if longer) — a scale D ticks late has learned only what came D ticks after the first
estimate, and a young scale is narrow (a false alarm measured on a fault-free development hour).
``detect.asset_estimate_group_learn_delay_steps`` / ``_group_min_learned_steps``: the same two for the rows of
``forecast.asset_mask_groups`` only (None: the global ones).  Why apart: a group's rows are estimated without the
group's values now (pump speeds from the plant's state alone), which wanders more in healthy operation and
needed the later learning (600) against false alarms, while the other rows' slow faults (fouling) were found
minutes sooner at 300 (docs/results/chiller-detection/pump-group/report.md).  One delay line as deep as the
longest delay; each row reads it at its own depth.

``detect.asset_estimate_group_flag_side`` (±1): the group's rows flag only when their standardised residual is on
that side (0: either).  Why: the pump speeds estimated from the plant's state alone leave their estimate upwards
when a pump weakens (the controller raises every speed to hold the flow); on the development runs their healthy
wander under K1's late learning met the opening only below the estimate (above too when they learn 300 late:
docs/results/chiller-detection/flag-side/, so the side is no substitute for the later learning).  A tick on the
other side counts as normal (it may close the alert); every tick is learned as before.

**Averaged residual** (``detect.asset_estimate_mean_steps`` W > 0, :mod:`..averaged_residual`): each row's residual is
also scored as the mean of its last W ``z``, standardised by a second scale of the per-tick ``z`` learned
``asset_estimate_mean_learn_delay_steps`` ticks late and flagging after ``asset_estimate_mean_min_learned_steps``
learned; a tick is anomalous when the tick's score or the mean's reaches the threshold (the group's rows on their
side; ``asset_estimate_mean_groups`` False: the group's rows not by the mean).  Why: a drifting flow meter's
per-tick residual stood at the threshold under the meter's own noise and never opened 20 of 24 before the main
scale learned the drift (docs/results/chiller-detection/averaged-residual/).  The mean reads the ``z`` left after
the gate and the hold-off; its scale learns what the main scale may learn.

**Held band width** (``detect.asset_estimate_held_spread``): each row's band is rescaled about its median to
the width it usually has (:mod:`..held_spread`: a forgetting geometric mean learned ``asset_estimate_learn_delay_steps``
ticks late, on the ticks the scale learns) before ``z`` is read from it.  Why: the blind estimate widens its band
when the tags stop agreeing, so a slow fault's residual, read in the band of the same tick, stays the size of
healthy ones (a development run's supply-temperature drift: residual 0.1 → 0.6 °C, band 0.27 → 0.65 °C).  After
the band calibration, when both are on.  ``detect.asset_estimate_held_spread_sign_steps`` > 0: held only on the
rows whose residual has kept its sign (:class:`~..held_spread.PersistentSign`, about the scale's location), the
tick's own band elsewhere: healthy residuals in a legitimately wide band wander, a drift's stays one-sided.

**Hold-off after an alert** (``detect.asset_estimate_holdoff_steps`` H > 0): for H ticks after the last tick
an alert of any kind was open on the asset, the estimate residual neither flags nor learns.  Why: the
estimate reads the tags' recent contexts (with a coarse reference, ``forecast.asset_context_stride_steps``,
the last 512 × S slots), so for that long after a fault the reference holds the fault's values — a frozen,
spiking or drifting stretch — and the estimate of a healthy tag is wrong by what those values say, a
recovery transient longer than the fault itself (a development run's stuck supply temperature: an
estimate alert 700 s after the fault's end, docs/results/chiller-detection/residual-energy/).  While
an alert is open the estimate flags as before (it ranks and confirms the incident); a new fault within
H ticks of the last alert is left to the other detectors.

Opening: ``detect.asset_estimate_open_k`` of ``asset_estimate_open_n`` anomalous ticks when set
(else the shared ``open_k`` of ``open_n``).  Why its own: an estimate made on one slot in
``forecast.asset_estimate_every_steps`` stands for the slots between, so one poor estimate is that
many anomalous ticks in a row, which the shared 3 of 5 takes for a persistent deviation.

Alerts: kind ``relation`` (a learned virtual sensor's, the same meaning as
:mod:`.relations`), one subject per tag, ``<tag>#estimate``.  Findings' ``score``:
the calibrated score.  State: the scales' arrays and the chart.
"""

from __future__ import annotations

import math

import numpy as np

from ...records import BoolArray, FloatArray
from ..alerts import Observation
from ..averaged_residual import AveragedResidual
from ..conformal import BandCalibration
from ..held_spread import HeldSpread, PersistentSign
from ..surprise import RobustScale, forecast_z, log_score, surprisal
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

RANK = 15
_VERSION = 1
_SUFFIX = "#estimate"


class AssetEstimateDetector:
    """Per tag: actual vs the asset model's estimate from the other tags now, calibrated per tag."""

    name = "asset_estimate"

    def __init__(self, ctx: BuildContext) -> None:
        lay = ctx.layout
        s = ctx.settings
        self.layout = lay
        self.levels = ctx.levels
        self.mid = ctx.levels.index(0.5)
        self.threshold = s.score_threshold
        grouped = in_groups(lay.tags, ctx.estimate_groups)
        group_min = s.asset_estimate_group_min_learned_steps
        min_learned = np.where(
            grouped,
            s.asset_estimate_min_learned_steps if group_min is None else group_min,
            s.asset_estimate_min_learned_steps,
        )
        self.grace: FloatArray = np.maximum(float(s.grace_period_steps), min_learned.astype(np.float64))
        """Per row, learned ticks before it may flag: the shared grace, or the detector's own minimum if longer."""
        self.min_spread = np.array([t.min_spread for t in lay.tag_settings], dtype=np.float64)
        self.scale = RobustScale(lay.n, s.score_memory_steps, s.score_clip_sigmas, s.residual_min_sigma)
        self.alpha = s.asset_estimate_ewma_alpha
        self.clip = s.score_clip_sigmas
        self.ewma: FloatArray = np.zeros(lay.n)
        """Each row's EWMA of its standardised residual (the sustained-bias chart; 0 when off)."""
        # Floor: the chart of residuals at their own floor (residual_min_sigma), were they independent.
        floor = s.residual_min_sigma * math.sqrt(self.alpha / (2.0 - self.alpha))
        self.ewma_scale = RobustScale(lay.n, s.score_memory_steps, s.score_clip_sigmas, floor)
        self.ewma_grace = s.grace_period_steps + (round(1.0 / self.alpha) if self.alpha > 0 else 0)
        self.side: FloatArray = np.where(grouped, float(s.asset_estimate_group_flag_side), 0.0)
        """Per row, the side it may flag on (+1 above, −1 below the scale's location; 0 either)."""
        self.delay = s.asset_estimate_learn_delay_steps
        group_delay = s.asset_estimate_group_learn_delay_steps
        self.delays = np.where(grouped, self.delay if group_delay is None else group_delay, self.delay).astype(np.intp)
        """Per row, how many ticks late its scale learns (the group's rows their own, when set)."""
        self.depth = int(self.delays.max(initial=0))
        self.late_z: FloatArray = np.full((self.depth, lay.n), np.nan)
        """The delay line: each row's residual ``z`` of the last ``depth`` ticks (a ring), and whether it could
        be learned then (``late_ok``); ``late_pos`` its oldest slot, where this tick's goes."""
        self.late_ok: FloatArray = np.zeros((self.depth, lay.n))
        self.late_pos: FloatArray = np.zeros(1)
        self.holdoff = s.asset_estimate_holdoff_steps
        self.since_busy: FloatArray = np.full(len(lay.asset_names), np.inf)
        """Per asset: ticks since an alert of any kind was last open on it (0: one is open now; inf: never)."""
        self.band = (
            BandCalibration(lay.n, ctx.levels, s.score_memory_steps) if s.asset_estimate_calibrate_band else None
        )
        """The online band calibration (None: the estimate's band as the model gives it)."""
        self.usual = (
            HeldSpread(lay.n, ctx.levels, s.score_memory_steps, self.delay) if s.asset_estimate_held_spread else None
        )
        """Each row's usual band width, learned late (None: the band's width of each tick)."""
        sign_steps = s.asset_estimate_held_spread_sign_steps
        self.sign = (
            PersistentSign(lay.n, sign_steps, s.asset_estimate_held_spread_sign_share)
            if self.usual is not None and sign_steps > 0
            else None
        )
        """Each row's persistent residual sign: the usual width held only there (None: on every row)."""
        self._unheld: FloatArray = np.full((lay.n, len(ctx.levels)), np.nan)
        window = s.asset_estimate_mean_steps
        self.mean = (
            AveragedResidual(
                lay.n,
                window,
                s.asset_estimate_mean_learn_delay_steps,
                s.score_memory_steps,
                s.score_clip_sigmas,
                s.residual_min_sigma,
            )
            if window > 0
            else None
        )
        """The averaged residual and its late scale (None: off)."""
        self.mean_grace = max(float(s.grace_period_steps), float(s.asset_estimate_mean_min_learned_steps))
        self.mean_rows: BoolArray = np.ones(lay.n, dtype=bool) if s.asset_estimate_mean_groups else ~grouped
        """The rows the mean scores (``asset_estimate_mean_groups`` False: those outside the groups)."""
        self.spec = relation_spec(ctx, _SUFFIX, s.asset_estimate_open_k, s.asset_estimate_open_n)
        self._expected: FloatArray = np.full((lay.n, len(ctx.levels)), np.nan)
        self._z: FloatArray = np.full(lay.n, np.nan)
        self._score: FloatArray = np.full(lay.n, np.nan)

    def observe(self, tick: Tick) -> Findings:
        expected = estimates(tick, self.layout.n, len(self.levels))
        if self.band is not None:
            expected = self.band.apply(expected)
        if self.usual is not None:
            self._unheld = expected
            expected = self.usual.apply(expected, self._one_sided(tick, expected))
        with np.errstate(invalid="ignore"):
            z = forecast_z(tick.clean, expected, self.levels, self.min_spread)
        z[tick.gate] = np.nan
        r = self.scale.standardise(z)
        score = log_score(surprisal(r))
        if self.alpha > 0:
            score = np.fmax(score, self._chart(r))
        scored = np.isfinite(score)
        ready = self.scale.learned >= self.grace
        flagged: BoolArray = scored & ready & (score >= self.threshold)
        with np.errstate(invalid="ignore"):
            flagged &= (self.side == 0) | (self.side * r > 0)
        if self.holdoff:
            held = self._held_off(tick)
            flagged &= ~held
            scored &= ~held
            z[held] = np.nan  # not learned either: the residual measures the reference's fault, not the tag
        judged = scored & ready
        if self.mean is not None:
            r_mean = self.mean.standardise(self.mean.push(z))
            score_mean = log_score(surprisal(r_mean))
            on = np.isfinite(score_mean) & (self.mean.scale.learned >= self.mean_grace) & self.mean_rows
            with np.errstate(invalid="ignore"):
                flagged |= on & (score_mean >= self.threshold) & ((self.side == 0) | (self.side * r_mean > 0))
            score = np.where(on, np.fmax(score, score_mean), score)
            judged |= on
        self._expected, self._z, self._score = expected, z, score
        return findings(flagged, judged & ~flagged, score)

    def _one_sided(self, tick: Tick, expected: FloatArray) -> BoolArray | None:
        """The rows whose residual (in the tick's own band, about the scale's location) has kept its sign (None:
        every row, when the sign gate is off)."""
        if self.sign is None:
            return None
        with np.errstate(invalid="ignore"):
            z = forecast_z(tick.clean, expected, self.levels, self.min_spread)
        z[tick.gate] = np.nan
        return self.sign.step(z - self.scale.location)

    def _held_off(self, tick: Tick) -> BoolArray:
        """Per row: its asset had an alert open within the last ``holdoff`` ticks, none now (steps the count)."""
        busy = tick.alerts.busy_assets()
        now = np.array([a in busy for a in self.layout.asset_names], dtype=bool)
        self.since_busy = np.where(now, 0.0, self.since_busy + 1.0)
        since = self.since_busy[self.layout.asset_index]
        held: BoolArray = (since > 0) & (since <= self.holdoff)
        return held

    def _chart(self, r: FloatArray) -> FloatArray:
        """Step the sustained-bias chart with this tick's standardised residuals; its score per row (NaN: none)."""
        ok = np.isfinite(r)
        step = np.clip(np.where(ok, r, 0.0), -self.clip, self.clip)
        self.ewma = np.where(ok, self.ewma + self.alpha * (step - self.ewma), self.ewma)
        with np.errstate(invalid="ignore"):
            chart = log_score(surprisal(self.ewma_scale.standardise(self.ewma)))
        return np.where(ok & (self.ewma_scale.learned >= self.ewma_grace), chart, np.nan)

    def learn(self, tick: Tick, findings: Findings) -> None:
        """Learn each scored row without an open alert of this detector (winsorised: bounded by one tick)."""
        closed = ~tick.alerts.open(self)
        mask = np.isfinite(self._z) & closed
        if self.depth:
            pos = int(self.late_pos[0])
            at = (pos - self.delays) % self.depth  # the slot written delays[row] ticks ago (pos: depth ago)
            rows = np.arange(self.layout.n)
            now = self.delays == 0
            old_z = np.where(now, self._z, self.late_z[at, rows])
            old_ok = np.where(now, mask, self.late_ok[at, rows] > 0)
            self.late_z[pos], self.late_ok[pos] = self._z, mask
            self.late_pos[0] = (pos + 1) % self.depth
            self.scale.learn(old_z, old_ok & closed & np.isfinite(old_z))
        else:
            self.scale.learn(self._z, mask)
        if self.band is not None:
            self.band.learn(tick.clean, self._unheld if self.usual is not None else self._expected, mask)
        if self.usual is not None:
            self.usual.learn(self._unheld, mask, closed)
        if self.alpha > 0:
            self.ewma_scale.learn(self.ewma, mask)
        if self.mean is not None:
            self.mean.learn(self._z, mask, closed)

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        row = subject
        expected = (self._expected[row], self.mid)
        return explain_estimate(self.layout, tick, row, expected, self._z, self._score, abs(self._z[row]))

    def state(self) -> bytes:
        arrays = {k: v for k, v in vars(self.scale).items() if isinstance(v, np.ndarray)}
        arrays["chart.ewma"] = self.ewma
        if self.holdoff:
            arrays["holdoff.since_busy"] = self.since_busy
        if self.depth:
            arrays |= {"late.late_z": self.late_z, "late.late_ok": self.late_ok, "late.late_pos": self.late_pos}
        arrays |= {f"chart.{k}": v for k, v in vars(self.ewma_scale).items() if isinstance(v, np.ndarray)}
        if self.band is not None:
            arrays |= {"band.log_scale": self.band.log_scale, "band.learned": self.band.learned}
        if self.usual is not None:
            arrays |= {f"usual.{k}": v for k, v in self.usual.arrays().items()}
        if self.sign is not None:
            arrays["sign.mean"] = self.sign.mean
        if self.mean is not None:
            arrays |= {f"mean.{k}": v for k, v in self.mean.arrays().items()}
        return pack(self.name, _VERSION, arrays, {"tags": list(self.layout.tags)})

    def restore(self, blob: bytes) -> None:
        """The scales (and the chart and the band's factors, in states that have them: older ones start afresh)."""
        arrays, meta = unpack(blob, self.name, _VERSION)
        check_tags(meta, self.layout, self.name)
        for key, value in arrays.items():
            owner, _, attr = key.rpartition(".")
            if not owner:
                setattr(self.scale, attr, value)
            elif owner == "band":
                if self.band is not None:
                    setattr(self.band, attr, value)
            elif owner in ("late", "usual", "mean"):
                continue  # below, as a whole
            elif owner == "sign":
                if self.sign is not None and value.shape == self.sign.mean.shape:
                    self.sign.mean = value.copy()
            elif owner == "holdoff":
                if value.shape == self.since_busy.shape:
                    self.since_busy = value.copy()
            elif attr == "ewma":
                self.ewma = value
            else:
                setattr(self.ewma_scale, attr, value)
        if self.usual is not None:
            self.usual.restore({k.removeprefix("usual."): v for k, v in arrays.items() if k.startswith("usual.")})
        if self.mean is not None:
            self.mean.restore({k.removeprefix("mean."): v for k, v in arrays.items() if k.startswith("mean.")})
        late = arrays.get("late.late_z")
        if late is not None and late.shape == self.late_z.shape:  # another delay or none saved: refills
            self.late_z, self.late_ok = late.copy(), arrays["late.late_ok"].copy()
            self.late_pos = arrays["late.late_pos"].copy()


def in_groups(tags: tuple[str, ...], groups: tuple[tuple[str, ...], ...]) -> BoolArray:
    """Per row of ``tags``: whether it is a tag of one of ``groups`` (``forecast.asset_mask_groups``)."""
    members = {t for g in groups for t in g}
    return np.array([t in members for t in tags], dtype=bool)


def relation_spec(ctx: BuildContext, suffix: str, open_k: int | None = None, open_n: int | None = None) -> Spec:
    """The alert life cycle of a per-tag detector on the estimate: ``relation`` alerts on ``<tag><suffix>``,
    opening on k of n (the shared ones unless given), clearing after the shared normal run."""
    s = ctx.settings
    return Spec(
        kind="relation",
        subjects=Suffixed(ctx.layout.tags, suffix),
        subject_assets=ctx.layout.asset_index,
        open_k=s.open_k if open_k is None else open_k,
        open_n=s.open_n if open_n is None else open_n,
        clear_steps=s.clear_normal_steps,
    )


def estimates(tick: Tick, rows: int, levels: int) -> FloatArray:
    """The batch's estimates as (rows of the layout × levels), NaN where none was made this tick: every row of
    the window, whichever forecasts this tick refreshed (the estimate's detectors all read it so)."""
    out = np.full((rows, levels), np.nan)
    if tick.batch.estimate is not None:
        out[:] = tick.batch.estimate
    return out


def estimate_z(
    tick: Tick, levels: tuple[float, ...], min_spread: FloatArray, rows: int
) -> tuple[FloatArray, FloatArray]:
    """The estimates (as :func:`estimates`) and each row's ``z`` in its estimate's band (NaN without one)."""
    expected = estimates(tick, rows, len(levels))
    with np.errstate(invalid="ignore"):
        z = forecast_z(tick.clean, expected, levels, min_spread)
    return expected, z


def explain_estimate(
    layout: Layout,
    tick: Tick,
    row: int,
    estimate: tuple[FloatArray, int],
    z: FloatArray,
    score: FloatArray,
    magnitude: float,
) -> Explanation:
    """One tag's value against its estimate (``estimate``: its levels and the median's index), as the estimate's
    detectors explain it."""
    expected, mid = estimate
    return Explanation(
        tag=layout.tags[row],
        obs=Observation(
            ts=tick.ts,
            actual=float(tick.values[row]),
            forecast=float(expected[mid]),
            lower=float(expected[0]),
            upper=float(expected[-1]),
            z=float(z[row]),
            score=float(score[row]),
            unit=layout.units[row],
        ),
        contributors=tick.contributors(row),
        magnitude=float(magnitude),
    )


def build(ctx: BuildContext) -> list[AssetEstimateDetector]:
    return [AssetEstimateDetector(ctx)]
