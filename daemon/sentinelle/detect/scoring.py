"""Residual scoring: how surprising is each tag's new value, given the forecast made before it?

Per tag and tick (all rows of a tag group at once, numpy; ``surprise.py`` holds the parts):

* ``z``: the value's distance from the forecast median in forecast spreads, on
  the side it fell (spread floored at ``TagSettings.min_spread``);
  with ``detect.score_spread_floor`` ``F`` > 0 (off by default) also floored at ``F`` times the tag's
  typical forecast spread (:meth:`ResidualScorer.typical_spread`): a band far surer than the forecaster
  usually is for this tag cannot turn an ordinary move into tens of sigmas (NAB, issue 13:
  ``docs/results/nab/diag_model_vs_holt.md``);
  with ``detect.score_step_floor`` ``G`` > 0 also floored at ``G`` times the tag's typical non-zero
  step between successive values (:meth:`ResidualScorer.typical_step`, its resolution or noise, learned
  online from the values seen before the tick): a forecast made from a flat stretch is certain to the
  last bit, and without this floor the tag's first ordinary move is scored against a spread of ~1e-9
  (``z`` ≈ 10⁹; NAB ``rogue_agent_key_updown``, issue 13), whose refractory peak then silences the tag's
  later real events for tens of thousands of ticks.  ``G = 1/√12`` (≈ 0.29) is the standard deviation
  of a value known only to within one such step;
  with ``detect.score_band_calibration`` (off by default) the band is first widened by a factor ≥ 1 learned
  from its own realised coverage, per tag or per tag and octave of its width against the tag's typical width
  (:class:`~sentinelle.detect.conformal.ResidualBandCalibration`);
* ``r``: ``z`` against the tag's own usual ``z`` — a forgetting, winsorised
  location and scale (:class:`~sentinelle.detect.surprise.RobustScale`), so a
  forecaster whose intervals are too wide or too narrow for this tag is
  corrected, one spike cannot inflate the scale, and a new normal is absorbed;
* the score: ``r``'s two-sided normal tail probability on Numenta's log scale,
  ``min(1, −log10 p / 10)`` (0.5: one chance in 10⁵) — the same meaning on every
  tag; or, with ``detect.score_method = "likelihood"``, the anomaly likelihood of
  that score (:class:`~sentinelle.detect.likelihood.LikelihoodLayer`); ``"both"``:
  the larger of the two.

A tick is *flagged* when its score reaches ``detect.score_threshold`` and
*severe* (``ResidualScorer.severe``: one such tick may open an alert at once)
when ``|r|`` reaches ``detect.score_severe_sigmas``.  With
``detect.score_refractory_steps`` the *reported* score is the onset's: only
surprise beyond the tag's recent, decaying peak scores, so one event scores once
(NAB charges every detection outside a window; Numenta's and CAD OSE's detectors
suppress repeats too), while the flag stays the surprise's own, so a lasting
anomaly keeps flagging for the k-of-n life cycle.  With ``detect.score_refractory_max_decades`` ``C`` > 0
the peak remembers at most ``C`` decades (a surprise beyond it still scores in full): a normal tail
probability of 10⁻¹⁰⁰⁰ is an extrapolation, not information, and without the cap one spike of z ≈ 464
(≈ 47,000 decades; NAB ``rogue_agent_key_updown``, issue 13) kept every later surprise of that tag below
its decaying peak for thousands of ticks.  With ``detect.score_seasonal_repeat_periods`` ``K`` > 0 (off by
default) the reported score is also only the surprise beyond twice what the tag made at this phase of the period
(``score_seasonal_repeat_period_s``, a day) in each of the last ``K`` periods (:class:`~.seasonal.SeasonalRepeat`):
a spike the tag makes every day is expected, a new one is not (NAB ``ec2_cpu_utilization_*``, issue 13,
``docs/results/nab/seasonal-repeat/``); the flag is unaffected.  With ``detect.score_published_tail`` (off by
default) the published surprise, and the peak it leaves, is also at most what the tag's own excursion rate says
(``tail.py``), never below ``score_published_tail_floor_sigmas``' normal surprise; the flag is unaffected.

History of a compressed export (``detect.history_held``, issue 17): during the
start-up backfill a batch may mark *held* rows (``WindowBatch.held``: no value
was read in that slot, only a forward-filled one, known to within the export's
deadband ``d``).  **skip** does not learn the scale from held rows; **widen**
(the default) floors the forecast spread at ``d/√3`` — the standard deviation of
a value known only to ±d, uniformly — on every row with a deadband while history
is replayed, and adds ``(d²/3) / spread²`` (that variance in forecast spreads) to
what a held row teaches the scale; a held row with no deadband known (a tag held
through the whole export, none configured) is skipped.  Either way a flat stretch of an export does
not teach the tag that it is quieter than it is; the live ticks that follow (not
compressed) replace what history taught: at the first tick after the replay (``Tick.replay_ended``,
:meth:`ResidualScorer.history_replayed`),
the scale a row learned from held slots counts as ``detect.history_held_weight_steps`` live ticks (divided
by the row's held share), not as ``score_memory_steps``; and after ``detect.history_held_drop_after_steps`` live
ticks (also divided by the held share) scored by forecasts from fully live contexts, it no longer counts at
all: the row's scale is then the one those ticks teach a cold :class:`RobustScale` (learning meanwhile; with
``detect.history_held_drop_keeps_location`` only its spread, about the row's own location), so
neither the replay's residuals nor those of the first live forecasts, still made from the export's held
values, can tip a live tick over the threshold days later.

No start-up poisoning: a tag is scored only once ``detect.score_min_context_steps``
values were behind the forecast, and flags only after ``grace_period_steps``
learned ticks.  Every scored tick that the caller lets learn is learned —
flagged or not, winsorised — so a permanent flag cannot freeze the scale.

>>> import numpy as np
>>> from sentinelle.records import ForecastBatch, WindowBatch
>>> from sentinelle.settings import DetectSettings
>>> s = DetectSettings(grace_period_steps=5, score_min_context_steps=2)
>>> scorer = ResidualScorer.from_settings(1, (0.1, 0.5, 0.9), np.zeros(1), s)
>>> def tick(t, value):  # forecast for the next ticks: 10 ± 1 (80 % band)
...     w = WindowBatch(ts=float(t), period_s=1.0, tags=("t",), assets=("a",),
...                     values=np.array([value]), contexts=np.array([[value]]))
...     q = np.array([[[8.7184] * 4, [10.0] * 4, [11.2816] * 4]])
...     return ForecastBatch(window=w, levels=(0.1, 0.5, 0.9), quantiles=q, forecaster="x")
>>> rng = np.random.default_rng(0)
>>> for t in range(200):
...     _ = scorer.score(tick(t, 10.0 + rng.normal()), np.ones(1, bool))
>>> exp, z, score, flagged = scorer.score(tick(200, 16.0), np.ones(1, bool))
>>> round(float(z[0]), 1), round(float(scorer.surprise[0]), 2), bool(flagged[0]), bool(scorer.severe[0])
(6.0, 0.46, True, False)
>>> round(float(score[0]), 2)  # the onset score: beyond the largest recent surprise of the noise
0.41
>>> _, _, score, flagged = scorer.score(tick(201, 16.0), np.ones(1, bool))
>>> round(float(scorer.surprise[0]), 2), round(float(score[0]), 2), bool(flagged[0])  # the same again
(0.46, 0.0, True)
"""

from __future__ import annotations

import math

import numpy as np

from ..records import BoolArray, FloatArray, ForecastBatch
from ..settings import DetectSettings
from .conformal import ResidualBandCalibration
from .likelihood import LikelihoodLayer
from .seasonal import SeasonalRepeat
from .surprise import RobustScale, forecast_spread, log_score, surprisal, threshold_probability
from .tail import ExcursionTail

LIKELIHOOD_MIN_SIGMA = 0.1
"""Floor of the long-term spread of the short-mean surprisal (decades): a quiet history is not infinitely sure."""
LIKELIHOOD_CLIP = 10.0


class ResidualScorer:
    """Scaled residuals and calibrated scores for one tag group (fixed row order)."""

    def __init__(
        self,
        n_rows: int,
        levels: tuple[float, ...],
        min_spread: FloatArray,
        grace_period_steps: int,
        score_threshold: float,
        min_sigma: float = 0.5,
        *,
        min_context_steps: int = 8,
        memory_steps: int = 1000,
        clip_sigmas: float = 3.0,
        severe_sigmas: float = 8.0,
        method: str = "surprise",
        likelihood_short_steps: int = 10,
        likelihood_memory_steps: int = 1000,
        refractory_steps: int = 0,
        history_held: str = "widen",
        history_held_weight_steps: float = math.inf,
        history_held_drop_after_steps: float = math.inf,
        history_held_drop_keeps_location: bool = False,
        tail: bool = False,
        published_tail: bool = False,
        published_tail_floor_sigmas: float = 0.0,
        spread_floor: float = 0.0,
        step_floor: float = 0.0,
        refractory_max_decades: float = 0.0,
        band_calibration: str = "off",
        seasonal_repeat: SeasonalRepeat | None = None,
    ) -> None:
        self.levels = levels
        self.history_held = history_held
        self.history_held_weight_steps = history_held_weight_steps
        self.history_held_drop_after_steps = history_held_drop_after_steps
        self.history_held_drop_keeps_location = history_held_drop_keeps_location
        self.mid = levels.index(0.5)
        self.min_spread = min_spread
        self.grace = grace_period_steps
        self.threshold = score_threshold
        self.min_context = min_context_steps
        self.severe_sigmas = severe_sigmas
        self.method = method
        self.refractory_steps = refractory_steps
        self._decay = float(np.exp(-1.0 / refractory_steps)) if refractory_steps > 0 else 0.0
        self._peak = np.zeros(n_rows)
        self._peak_cap = refractory_max_decades if refractory_max_decades > 0 else math.inf
        self.scale = RobustScale(n_rows, memory_steps, clip_sigmas, min_sigma)
        self.tail = ExcursionTail(n_rows, memory_steps) if tail or published_tail else None
        self._tail_flags = tail
        self._published_tail = published_tail
        self._published_floor = (
            float(surprisal(np.array([published_tail_floor_sigmas]))[0]) if published_tail_floor_sigmas > 0 else 0.0
        )
        self.spread_floor = spread_floor
        self.band = (
            ResidualBandCalibration(n_rows, levels[-1], memory_steps, classes=band_calibration == "width")
            if band_calibration != "off"
            else None
        )
        self.repeat = seasonal_repeat
        self.repeat_level: FloatArray = np.zeros(n_rows)
        """Each row's last seasonal repeat bound (decades; ``detect.score_seasonal_repeat_periods``, 0: none)."""
        self._learns_spread = spread_floor > 0 or band_calibration == "width"
        self._memory = memory_steps
        self.log_spread: FloatArray = np.zeros(n_rows)
        """Each row's typical forecast spread, as a forgetting mean of its log (``spread_floor``; 0 learned: none)."""
        self.spread_learned = np.zeros(n_rows, dtype=np.int64)
        self.step_floor = step_floor
        self.log_step: FloatArray = np.zeros(n_rows)
        """Each row's typical non-zero step between successive values, as a forgetting mean of its log."""
        self.steps_learned = np.zeros(n_rows, dtype=np.int64)
        """Non-zero steps each row has learned (``step_floor``; none: no floor yet)."""
        self._last_value: FloatArray = np.full(n_rows, np.nan)
        self._severe_decades = float(surprisal(np.array([severe_sigmas]))[0])
        self.likelihood = (
            LikelihoodLayer(n_rows, likelihood_short_steps, likelihood_memory_steps, min_sigma=LIKELIHOOD_MIN_SIGMA)
            if method in ("likelihood", "both")
            else None
        )
        self.severe: BoolArray = np.zeros(n_rows, dtype=bool)
        """Rows whose last scored value was beyond ``severe_sigmas`` calibrated σ (after the grace period)."""
        self.r: FloatArray = np.full(n_rows, np.nan)
        """Each row's last calibrated surprise ``(z − location) / scale`` (NaN: not scored)."""
        self.spread: FloatArray = np.full(n_rows, np.nan)
        """Each row's last forecast spread (tag units, floored) that ``z`` was divided by (NaN: not scored)."""
        self.surprise: FloatArray = np.full(n_rows, np.nan)
        """Each row's last score before the refractory period (what the flag compares): the same as the
        returned score when ``refractory_steps`` is 0."""
        # Each row's latest forecast (levels × horizon) and the slot it was made at: rows
        # are refreshed on their own cadence (forecast.refresh_every_steps), so a tick
        # compares a row's value with the step of its last forecast that lands on it.
        self._n = n_rows
        self._prev: FloatArray | None = None  # (n, levels, H)
        self._prev_ts: FloatArray = np.full(n_rows, np.nan)
        self._seen = np.zeros(n_rows, dtype=np.int64)  # values each row has had
        self._prev_seen = np.zeros(n_rows, dtype=np.int64)  # ... when its latest forecast was made
        # Replayed history (detect.history_held): ticks each row learned in the replay, and how many were held.
        self._replay_learned = np.zeros(n_rows, dtype=np.int64)
        self._replay_held = np.zeros(n_rows, dtype=np.int64)
        # After a replay with held slots: live ticks each row still weighs the replay's scale for (0: none
        # left), and the cold scale learning the live ticks alone meanwhile (it replaces the row's then).
        self._handover_steps = np.zeros(n_rows)
        self._live_from = np.zeros(n_rows, dtype=np.int64)  # values each row had had when the replay ended
        self.live = RobustScale(n_rows, memory_steps, clip_sigmas, min_sigma)

    @classmethod
    def from_settings(
        cls, n_rows: int, levels: tuple[float, ...], min_spread: FloatArray, s: DetectSettings
    ) -> ResidualScorer:
        """The scorer ``detect.*`` describes."""
        return cls(
            n_rows,
            levels,
            min_spread,
            s.grace_period_steps,
            s.score_threshold,
            s.residual_min_sigma,
            min_context_steps=s.score_min_context_steps,
            memory_steps=s.score_memory_steps,
            clip_sigmas=s.score_clip_sigmas,
            severe_sigmas=s.score_severe_sigmas,
            method=s.score_method,
            likelihood_short_steps=s.score_likelihood_short_steps,
            likelihood_memory_steps=s.score_likelihood_memory_steps,
            refractory_steps=s.score_refractory_steps,
            history_held=s.history_held,
            history_held_weight_steps=s.history_held_weight_steps,
            history_held_drop_after_steps=s.history_held_drop_after_steps,
            history_held_drop_keeps_location=s.history_held_drop_keeps_location,
            tail=s.score_tail_calibration,
            published_tail=s.score_published_tail,
            published_tail_floor_sigmas=s.score_published_tail_floor_sigmas,
            spread_floor=s.score_spread_floor,
            step_floor=s.score_step_floor,
            refractory_max_decades=s.score_refractory_max_decades,
            band_calibration=s.score_band_calibration,
            seasonal_repeat=(
                SeasonalRepeat(
                    n_rows,
                    s.score_seasonal_repeat_period_s,
                    s.score_seasonal_repeat_tolerance_s,
                    s.score_seasonal_repeat_periods,
                    float(-np.log10(threshold_probability(s.score_threshold))),
                )
                if s.score_seasonal_repeat_periods > 0
                else None
            ),
        )

    @property
    def learned(self) -> FloatArray:
        """Ticks each row has learned from."""
        return np.asarray(self.scale.learned, dtype=np.float64)

    def expected(self, ts: float, period_s: float) -> FloatArray | None:
        """Forecast quantiles (n, levels) made earlier for the slot ending at ``ts`` (NaN rows: none)."""
        if self._prev is None:
            return None
        horizon = self._prev.shape[2]
        with np.errstate(invalid="ignore"):
            steps = np.rint((ts - self._prev_ts) / period_s)
        valid = np.isfinite(steps) & (steps >= 1) & (steps <= horizon)
        if not valid.any():
            return None
        idx = np.where(valid, steps - 1, 0).astype(np.intp)
        exp = self._prev[np.arange(self._n), :, idx]
        exp[~valid] = np.nan
        return np.asarray(exp, dtype=np.float64)

    def typical_spread(self) -> FloatArray:
        """Each row's typical forecast spread (tag units; 0 where none learned yet): ``detect.score_spread_floor``
        and the width classes of ``detect.score_band_calibration``.

        A forgetting geometric mean of the spreads its scored ticks were read against (before this floor),
        learned at rate ``1/(n + 1)`` until that reaches ``1/memory_steps``, as the scale.  Geometric, so the
        few very wide bands of a forecaster's start-up or of a burst do not lift the floor for long.
        """
        return np.asarray(np.where(self.spread_learned > 0, np.exp(self.log_spread), 0.0), dtype=np.float64)

    def _learn_spread(self, spread: FloatArray, mask: BoolArray) -> None:
        rows = np.flatnonzero(mask & np.isfinite(spread) & (spread > 0))
        if rows.size == 0:
            return
        alpha = np.maximum(1.0 / (self.spread_learned[rows] + 1), 1.0 / self._memory)
        self.log_spread[rows] += alpha * (np.log(spread[rows]) - self.log_spread[rows])
        self.spread_learned[rows] += 1

    def typical_step(self) -> FloatArray:
        """Each row's typical non-zero step between successive values (tag units; 0 before the first one).

        A forgetting geometric mean of ``|x_t − x_prev|`` over the steps that moved (``x_prev``: the row's
        last finite value), learned at rate ``1/(n + 1)`` until that reaches ``1/memory_steps``: on a
        quantised tag it is the quantum (a count moves by 1), on a noisy one about ¾ of the noise's σ;
        zero steps (a flat stretch, a held value) do not count, so a tag that is mostly flat still knows
        how far it moves when it moves, and geometric, so a few large jumps do not lift it for long.

        >>> sc = ResidualScorer(2, (0.1, 0.5, 0.9), np.zeros(2), 5, 0.259, step_floor=0.29)
        >>> for v in ([0.0, 5.0], [0.0, 6.0], [1.0, 8.0], [1.0, 7.0], [0.0, 9.0]):
        ...     sc._learn_steps(np.array(v))
        >>> sc.typical_step().round(3).tolist(), sc.steps_learned.tolist()
        ([1.0, 1.414], [2, 4])
        """
        return np.asarray(np.where(self.steps_learned > 0, np.exp(self.log_step), 0.0), dtype=np.float64)

    def _learn_steps(self, values: FloatArray) -> None:
        with np.errstate(invalid="ignore"):
            step = np.abs(values - self._last_value)
        rows = np.flatnonzero(np.isfinite(step) & (step > 0))
        if rows.size:
            alpha = np.maximum(1.0 / (self.steps_learned[rows] + 1), 1.0 / self._memory)
            self.log_step[rows] += alpha * (np.log(step[rows]) - self.log_step[rows])
            self.steps_learned[rows] += 1
        seen = np.isfinite(values)
        self._last_value[seen] = values[seen]

    def remember(self, fb: ForecastBatch) -> None:
        """Keep the batch's new forecasts (all rows, or the rows it refreshed)."""
        q = fb.quantiles
        if self._prev is None:
            self._prev = np.full((self._n, q.shape[1], q.shape[2]), np.nan)
        if fb.rows is None:
            self._prev[:] = q
            self._prev_ts[:] = fb.window.ts
            self._prev_seen[:] = self._seen
        else:
            self._prev[fb.rows] = q
            self._prev_ts[fb.rows] = fb.window.ts
            self._prev_seen[fb.rows] = self._seen[fb.rows]

    def history_replayed(self) -> None:
        """The replay of a compressed export ended: what held history taught the scale gives way to live data.

        A row that learned held slots in the replay keeps its scale, but as a prior worth
        ``history_held_weight_steps / held share`` live ticks (:meth:`RobustScale.discount`): the
        replay's residuals were measured against forecasts of held values, in spreads floored at the
        deadband (widen) or from the moves past it only (skip), so their scale says little about the live
        forecasts' spreads and should not linger for ``score_memory_steps`` (a fault on the first live day
        was found one period later).  Rows without held slots (an uncompressed export, ``off``) keep all
        their weight.

        With a finite ``history_held_drop_after_steps`` the replay's scale is dropped altogether once that
        many live ticks (/ held share) were scored by forecasts made from fully live contexts: the row's scale
        is then theirs alone (:meth:`_hand_over`).
        """
        share = np.divide(self._replay_held, np.maximum(self._replay_learned, 1), dtype=np.float64)
        with np.errstate(divide="ignore"):
            weight = np.where(share > 0, self.history_held_weight_steps / share, np.inf)
            drop = np.where(share > 0, self.history_held_drop_after_steps / share, np.inf)
        self.scale.discount(weight)
        rows = np.isfinite(drop)
        self._handover_steps = np.where(rows, np.maximum(np.ceil(drop), 1.0), 0.0)
        fresh = RobustScale(self._n, 2, self.scale.clip, self.scale.min_sigma)
        for name in ("location", "square", "learned", "discounted"):
            getattr(self.live, name)[rows] = getattr(fresh, name)[rows]
        self._live_from = self._seen.copy()
        self._replay_learned[:] = 0
        self._replay_held[:] = 0

    def _hand_over(self, z: FloatArray, learn: BoolArray, context_steps: int) -> None:
        """Rows still weighing a replay's scale: the cold scale learns the live tick; at the end it takes over.

        It learns only residuals of forecasts made from a context of live values alone: for the first
        ``context_steps`` live ticks a forecast still reads the export's held values (a flat context makes a
        narrow forecast), which is the replay's bias, not the live spread.  The taken-over row continues with
        the cold scale's location, mean square and learning rate, whatever the replay taught it; with
        ``history_held_drop_keeps_location`` only the spread is replaced: the row keeps its location and
        learning rate (the replay's prior and every live tick since, averaged over more than the few live hours
        the cold scale saw) and takes the cold scale's mean square about that location
        (``live.square + (live.location − location)²``).
        """
        pending = self._handover_steps > 0
        live_context = (self._prev_seen - self._live_from) >= context_steps
        self.live.learn(z, learn & pending & live_context)
        done = np.flatnonzero(pending & (self.live.learned >= self._handover_steps))
        if done.size == 0:
            return
        sc, live = self.scale, self.live
        if self.history_held_drop_keeps_location:
            shift = live.location[done] - sc.location[done]
            sc.square[done] = live.square[done] + shift * shift
        else:
            sc.location[done] = live.location[done]
            sc.square[done] = live.square[done]
            sc.discounted[done] = sc.learned[done] - live.learned[done]
        self._handover_steps[done] = 0.0

    def score(
        self, fb: ForecastBatch, learn_mask: BoolArray, deadband: FloatArray | None = None
    ) -> tuple[FloatArray | None, FloatArray, FloatArray, BoolArray]:
        """Score the batch's actual values; remember its forecasts for the next tick.

        Returns (expected quantiles or None, residual z, score, anomalous), all per row
        (the score is the onset's with a refractory period; the flag is :attr:`surprise`'s);
        z and score are NaN where there was no forecast, no value, or too short a context
        behind the forecast.  ``learn_mask[i]`` says whether row ``i`` may learn from this
        tick (flagged or not: learning is winsorised).  :attr:`severe` and :attr:`r` are
        set for the same tick.  ``deadband`` (per row, tag units; history replay only) with the
        window's ``held`` mask applies ``history_held`` (module docstring).
        """
        w = fb.window
        n = len(w)
        exp = self.expected(w.ts, w.period_s)
        z = np.full(n, np.nan)
        score = np.full(n, np.nan)
        flagged = np.zeros(n, dtype=bool)
        self.severe = np.zeros(n, dtype=bool)
        self.r = np.full(n, np.nan)
        self.surprise = np.full(n, np.nan)
        if exp is not None:
            held = w.held if self.history_held != "off" else None
            min_spread, extra = self.min_spread, None
            if held is not None and self.history_held == "widen" and deadband is not None:
                floor = np.nan_to_num(deadband) / np.sqrt(3.0)
                min_spread = np.fmax(min_spread, floor)
            median, spread = forecast_spread(w.values, exp, self.levels, min_spread)
            raw_spread = spread
            if self.band is not None:
                with np.errstate(divide="ignore", invalid="ignore"):
                    relative_width = raw_spread / self.typical_spread()
                band_factor = self.band.factor(relative_width)
                spread = spread * band_factor
            if self.spread_floor > 0:
                spread = np.fmax(spread, self.spread_floor * self.typical_spread())
            if self.step_floor > 0:
                # The steps seen before this tick: a first move is measured against what came before it.
                spread = np.fmax(spread, self.step_floor * self.typical_step())
            self.spread = spread
            with np.errstate(invalid="ignore"):
                z = np.asarray((w.values - median) / spread, dtype=np.float64)
            if held is not None and self.history_held == "widen" and deadband is not None:
                extra = np.where(held, (floor / spread) ** 2, 0.0)
            z[self._prev_seen < self.min_context] = np.nan
            ok = np.isfinite(z)
            r = np.where(ok, self.scale.standardise(z), np.nan)
            self.r = r
            decades = surprisal(r)
            bound = self.tail.decades(r) if self.tail is not None else None
            if bound is not None and self._tail_flags:
                # Never more surprising than this tag's own excursions of that size say (tail.py).
                decades = np.minimum(decades, bound)
            calibrated = decades
            learn = ok & learn_mask
            if held is not None:
                self._replay_learned += learn
                self._replay_held += learn & held
            if held is not None and self.history_held == "skip":
                learn &= ~held
            elif held is not None and self.history_held == "widen":
                # No deadband known (a tag held through the whole export has no steps to estimate
                # it from, and none was configured): nothing to widen by, so its held slots are skipped.
                unknown = np.ones(len(held), dtype=bool) if deadband is None else ~(np.nan_to_num(deadband) > 0)
                learn &= ~(held & unknown)
            if self.likelihood is not None:
                lik = self.likelihood.step(decades, learn)
                decades = np.fmax(decades, lik) if self.method == "both" else lik
            ready = ok & (self.scale.learned >= self.grace)
            surprise = log_score(decades)
            surprise[ok & ~ready] = 0.0
            self.surprise = surprise
            flagged = ready & (surprise >= self.threshold)
            expected = np.zeros(n)
            published = decades
            if bound is not None and self._published_tail:
                # The published score only (flags above are the surprise's): at most what the tag's own record
                # says, never below the floor's normal surprise (detect.score_published_tail*).
                published = np.minimum(decades, np.maximum(bound, self._published_floor))
            if self.repeat is not None:
                # What this phase surprised by in each of the last periods (seasonal.py): expected, not news.
                expected = self.repeat_level = self.repeat.bound(w.ts)
                self.repeat.learn(w.ts, decades, learn)
            if self.refractory_steps > 0:
                # The score of an onset: only surprise beyond the row's recent (decaying) peak counts, so
                # one event scores once.  The flag stays the surprise's: a lasting anomaly keeps flagging
                # for the k-of-n life cycle.
                peak = self._peak
                remembered = np.minimum(published, self._peak_cap)
                self._peak = np.where(ok, np.maximum(peak * self._decay, remembered), peak)
                expected = np.maximum(expected, peak)
            if self.refractory_steps > 0 or self.repeat is not None:
                published = np.where(ok, np.maximum(published - expected, 0.0), np.nan)
            score = log_score(published)
            score[ok & ~ready] = 0.0
            self.severe = ready & (np.nan_to_num(calibrated) >= self._severe_decades)
            if self.tail is not None:
                self.tail.learn(r, learn)
            self.scale.learn(z, learn, extra)
            if self.band is not None:
                self.band.learn(z, band_factor, relative_width, learn)
            if self._learns_spread:
                self._learn_spread(raw_spread, learn)
            if held is None and self._handover_steps.any():
                self._hand_over(z, learn, w.contexts.shape[1])
        if self.step_floor > 0:
            self._learn_steps(w.values)
        self._seen += np.isfinite(w.values)
        self.remember(fb)
        return exp, z, score, flagged
