"""Asset-level scoring: all tags of an asset seen together, T² and Q (SPE) on their state.

A fault often moves several tags a little — less than any one tag's own
threshold — and for as long as it lasts, while a forecast residual only spikes at
the transition (the forecaster follows the new level within a few steps).  So
this detector scores where the asset *is*, not how surprising the last step was.

The model is classic PCA process monitoring, fitted on a warm-up as SKAB's
T²+Q is fitted on its 400 training rows:

* The first ``warmup_steps`` ticks the asset delivers are its normal state.  Each
  tag's mean and spread are learned from them (the spread floored at the sensor
  resolution ``min_spread``, so a channel that happened to be constant does not
  make its first quantisation step an infinite surprise), and the standardised
  vector ``u`` gets a correlation matrix ``R = P Λ Pᵀ``.
* Tags that *wander* during the warm-up — most of their variance is slow, more
  than ``drift_share`` of it survives an EWMA of weight ``drift_alpha`` (a
  temperature following the ambient or the water it heats) — are scored on their
  deviation from a moving baseline (that EWMA, which keeps following them), the
  others on their deviation from the warm-up mean.  A frozen level model of a
  wandering tag alarms on the wandering itself; a moving baseline of a steady
  tag absorbs a sustained fault.  The choice is made once, from the warm-up
  alone (no labels).
* The ``k`` leading principal components carry ``explained_variance`` of the
  variance; ``T² = Σᵢ<ₖ (pᵢᵀu)²/λᵢ`` measures how far the state moved *inside*
  the normal correlation structure, ``Q = ‖u − PₖPₖᵀu‖²`` (the squared
  prediction error) how far it left it — two tags that always move together
  breaking their relation.
* Optional smoothing, weight ``ewma_alpha`` (1: none): of ``u`` before the
  statistics (MEWMA, ``smooth_vector``) or of the two statistics.
* An EWMA control chart per steady tag (weight ``chart_alpha``; 0: none), the
  classic univariate chart for small sustained shifts (Roberts 1959): T² judges
  each tick alone, so a flow that drops by two of its warm-up σ and stays there
  — a valve partly closed — sits inside T²'s limit for good, while its EWMA
  settles two σ off centre, far outside the EWMA's own warm-up spread.  Each
  chart's limit is the ``quantile`` of its |EWMA| over the warm-up times
  ``chart_factor``; a tag constant through the warm-up (a set point, a closed
  valve) gets the limit of white noise at its resolution instead of zero.
  Wandering tags have no chart: their baseline follows them.  In T² the same
  floor joins the covariance's diagonal before the correlation is taken, so such
  a tag's own component has the variance of its resolution, not zero.
* Optionally a second, *slow* EWMA chart per steady tag (weight ``slow_alpha``;
  0: none), its limit made the same way (``slow_factor``).  One chart weight is
  one trade: a heavy weight follows a step at once but needs a large shift to
  leave its limit; a light one averages the noise away, so its limit sits close
  to the centre and a shift of one or two σ that lasts is found, but it is slow to
  move.  Two charts of different memory side by side (Lucas & Saccucci's combined
  schemes) keep both: a valve that closes slowly (a 1.5 σ drop of the flow for
  minutes) is seen by the slow chart, a step by the fast one.  A light chart's
  inertia is its flaw (Woodall & Mahmoud 2005): after a large shift it takes
  ``ln(shift/limit)/slow_alpha`` ticks to come back, so its input is clipped at
  ``±slow_clip`` warm-up σ — the chart is for small shifts, the fast one and T²
  see the large — which bounds that time whatever the fault's size.  And a
  process that comes back from a fault a little off its old level (a pump whose
  flow settles 1 σ low) holds a light chart over its limit for good.  So, with
  ``slow_hold`` set, the slow chart *opens but does not hold*: an excursion of it
  counts while it is its own; once T², Q or a fast chart have flagged
  ``slow_hold`` ticks in a row (the fault is theirs: a chance touch of their
  limits on a small shift is not), it counts only until they have been normal
  ``slow_hold`` ticks in a row; then it is spent, and counts again only after it
  has come back inside its limit (an alarm raised on entering its state, not on
  being in it).  None: every tick over its limit counts.  With ``slow_open_only``
  an excursion that *begins* while the asset's alert is open (the caller's
  ``alert_open``: as sent, its re-arm time included) is spent from its start: the
  slow chart may raise the asset's alert, never prolong one (a flow that dips back
  inside the limit at a fault's end and settles a little off its old level within
  the re-arm time would otherwise begin an excursion of its own and, the alert
  never sent cleared, hold it for good).
* Optionally a MEWMA of the steady tags (weight ``mewma_alpha``; 0: none; :mod:`.mewma`): the evidence of a
  small lasting shift summed over the tags under their normal correlation, for a fault that moves several tags a
  little and none past its own chart's limit; gated as the slow chart is (``slow_hold``, ``slow_open_only``).
* Each statistic gets its own control limit: its ``quantile`` over the warm-up
  ticks (re-scored with the final model, smoothed the same way) times
  ``ucl_factor``.  Empirical limits rather than χ² / Jackson–Mudholkar: sensor
  data is neither Gaussian nor independent in time, and smoothing changes the
  distribution anyway.  The score is ``max(T²/UCL_T², Q/UCL_Q, |EWMAⱼ|/UCLⱼ)``:
  flagged above 1.

After the warm-up the model is frozen, as SKAB's training split assumes: a
detector that keeps learning absorbs a slow fault (a leak, a fouling drift) as
the new normal.  ``learn_rate`` > 0 lets it follow slow harmless change instead:
mean and covariance then move by exponential forgetting, but only on ticks it is
confident are normal (score below ``learn_below``, no open alert — the caller's
``learn``), the eigen-decomposition refreshed every ``refresh_steps`` of them;
components and limits stay as the warm-up set them.

Memory per asset is bounded (the warm-up buffer, ``warmup_steps × d``, is
dropped at the freeze) and a tick costs O(d²).

>>> import numpy as np
>>> det = AssetT2Q(n_tags=2, min_spread=np.zeros(2), warmup_steps=200, explained_variance=0.9,
...                quantile=0.99, ucl_factor=1.0, ewma_alpha=1.0)
>>> rng = np.random.default_rng(0)
>>> for _ in range(200):
...     x = rng.normal(size=2)
...     _ = det.step(np.array([x[0], x[0] + 0.1 * x[1]]), learn=True)
>>> det.frozen, det.components
(True, 1)
>>> score, flagged = det.step(np.array([1.0, -1.0]), learn=False)  # each tag 1σ, but against their correlation
>>> bool(flagged), det.last_q > det.ucl_q
(True, True)
>>> score, flagged = det.step(np.array([1.0, 1.05]), learn=False)  # 1σ along the correlation: normal
>>> bool(flagged)
False
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from ..records import BoolArray, FloatArray
from ..settings import DetectSettings
from . import mewma

_NORMAL = NormalDist()


SLOW_IDLE, SLOW_OWN, SLOW_SHARED, SLOW_SPENT = 0, 1, 2, 3
"""The slow chart's excursion: inside its limit; over it and its own; shared (T², Q or a fast chart flagged
``slow_hold`` ticks in a row); spent (they were then normal ``slow_hold`` ticks in a row: it counts no more)."""

MIN_WARMUP = 20
"""Fewest learned ticks a model freezes on when its warm-up is cut short (``end_warmup``): the settings' floor."""


class AssetT2Q:
    """T² and Q of one asset's tag vector against its normal state, learned in the warm-up."""

    def __init__(
        self,
        n_tags: int,
        min_spread: FloatArray,
        warmup_steps: int,
        explained_variance: float,
        quantile: float,
        ucl_factor: float,
        ewma_alpha: float = 1.0,
        smooth_vector: bool = True,
        drift_share: float = 1.0,
        drift_alpha: float = 1.0 / 30.0,
        learn_rate: float = 0.0,
        learn_below: float = 0.5,
        refresh_steps: int = 60,
        ridge: float = 1e-3,
        chart_alpha: float = 0.0,
        chart_factor: float = 3.0,
        slow_alpha: float = 0.0,
        slow_factor: float = 3.0,
        slow_clip: float = math.inf,
        slow_hold: int | None = None,
        slow_open_only: bool = False,
        mewma_alpha: float = 0.0,
        mewma_factor: float = 3.0,
        mewma_clip: float = math.inf,
    ) -> None:
        self.n_tags = n_tags
        self.floor = np.asarray(min_spread, dtype=np.float64) ** 2
        """Per tag, the variance the diagonal gets beyond the warm-up's: the resolution's (``min_spread²``), plus
        ``deadband²/3`` when the warm-up was a compressed export's held values (``detect.history_held``)."""
        self.warmup_steps = warmup_steps
        self.explained_variance = explained_variance
        self.quantile = quantile
        self.ucl_factor = ucl_factor
        self.alpha = ewma_alpha
        self.smooth_vector = smooth_vector
        self.drift_share = drift_share
        self.drift_alpha = drift_alpha
        self.learn_rate = learn_rate
        self.learn_below = learn_below
        self.refresh_steps = refresh_steps
        self.ridge = ridge
        self.chart_alpha = chart_alpha
        self.chart_factor = chart_factor
        self.slow_alpha = slow_alpha
        self.slow_factor = slow_factor
        self.slow_clip = slow_clip
        self.slow_hold = slow_hold
        self.slow_open_only = slow_open_only
        self.mewma_alpha, self.mewma_factor, self.mewma_clip = mewma_alpha, mewma_factor, mewma_clip
        self._mewma: FloatArray = np.zeros(n_tags)
        self._mewma_inv: FloatArray = np.zeros((n_tags, n_tags))
        """``Σ_z⁻¹`` over the MEWMA's tags (zero elsewhere; all zero: no MEWMA)."""
        self.mewma_limit = math.inf
        self.last_mewma = math.nan
        """The MEWMA's statistic over its limit at the last step."""
        self._warmup: FloatArray | None = np.empty((warmup_steps, n_tags))
        self.count = 0
        """Ticks learned in the warm-up so far."""
        self.mean: FloatArray = np.zeros(n_tags)
        self.cov: FloatArray = np.eye(n_tags)
        """Second moments of the deviations (from the mean; from the baseline for drifting tags, about zero:
        the baseline's lag behind a steady drift counts as spread, as it does when scoring)."""
        self.drifting: BoolArray = np.zeros(n_tags, dtype=bool)
        """Tags scored against a moving baseline (see the module docstring)."""
        self._baseline: FloatArray = np.zeros(n_tags)
        self._scale: FloatArray = np.ones(n_tags)
        self._basis: FloatArray = np.eye(n_tags)
        """Eigenvectors of the correlation matrix (columns), largest eigenvalue first."""
        self._inv_eigen: FloatArray = np.ones(n_tags)
        self.components = n_tags
        """Principal components in the T² part; the rest make Q."""
        self.ucl_t2 = math.inf
        self.ucl_q = math.inf
        self.last_t2 = math.nan
        """T² of the last scored tick (smoothed as configured)."""
        self.last_q = math.nan
        """Q of the last scored tick (smoothed as configured)."""
        self._smoothed_u: FloatArray = np.zeros(n_tags)
        self._since_refresh = 0
        self.last_u: FloatArray = np.full(n_tags, np.nan)
        """Each tag's standardised deviation at the last step: how much it contributed."""
        self._chart: FloatArray = np.zeros(n_tags)
        self._chart_limit: FloatArray = np.full(n_tags, math.inf)
        """Per tag: the EWMA chart's limit (inf: no chart — a wandering tag, or charts off)."""
        self.last_chart: FloatArray = np.full(n_tags, np.nan)
        """Per tag: |EWMA| over its limit at the last step (0 for tags without a chart)."""
        self._slow: FloatArray = np.zeros(n_tags)
        self._slow_limit: FloatArray = np.full(n_tags, math.inf)
        """Per tag: the slow chart's limit (inf: no slow chart)."""
        self.last_slow: FloatArray = np.full(n_tags, np.nan)
        """Per tag: the slow chart's |EWMA| over its limit at the last step (0 for tags without one)."""
        self.slow_phase = SLOW_IDLE
        """Where the slow chart's excursion is (``SLOW_*``): inside its limit, its own, shared, spent."""
        self.slow_run = 0
        """Ticks in a row that T², Q and the fast charts flagged (own excursion) or were normal (shared)."""
        self.slow_counts = False
        """Whether the slow chart's ratio counted in the last score."""
        self.warmup_scores: FloatArray = np.empty(0)
        self._pending: tuple[FloatArray, float] | None = None
        """The last assessed tick: (the vector in the warm-up, or its deviation; its score)."""
        """The warm-up ticks re-scored by the frozen model (after the settling ticks): its normal scores."""

    @classmethod
    def from_settings(cls, min_spread: FloatArray, settings: DetectSettings) -> AssetT2Q:
        """The detector ``settings.asset_*`` describe, for tags of these resolutions."""
        s = settings
        return cls(
            len(min_spread),
            min_spread,
            warmup_steps=s.asset_warmup_steps,
            explained_variance=s.asset_explained_variance,
            quantile=s.asset_quantile,
            ucl_factor=s.asset_ucl_factor,
            ewma_alpha=s.asset_ewma_alpha,
            smooth_vector=s.asset_smooth_vector,
            drift_share=s.asset_drift_share,
            drift_alpha=s.asset_drift_alpha,
            learn_rate=s.asset_learn_rate,
            chart_alpha=s.asset_chart_alpha,
            chart_factor=s.asset_chart_factor,
            slow_alpha=s.asset_slow_chart_alpha,
            slow_factor=s.asset_chart_factor if s.asset_slow_chart_factor is None else s.asset_slow_chart_factor,
            slow_clip=math.inf if s.asset_slow_chart_clip is None else s.asset_slow_chart_clip,
            slow_hold=s.asset_slow_chart_hold_steps,
            slow_open_only=s.asset_slow_chart_open_only,
            mewma_alpha=s.asset_mewma_alpha,
            mewma_factor=s.asset_mewma_factor,
            mewma_clip=math.inf if s.asset_mewma_clip_sigma is None else s.asset_mewma_clip_sigma,
        )

    @property
    def frozen(self) -> bool:
        """Whether the warm-up is over: the model scores, and learns only by ``learn_rate``."""
        return self._warmup is None

    def step(self, x: FloatArray, learn: bool) -> tuple[float, bool]:
        """Score ``x`` (one value per tag; NaN: missing), then learn from it if allowed.

        Returns (score, flagged): the score is the larger statistic over its control limit
        (flagged above 1); NaN during the warm-up or when a value is missing.  During the
        warm-up ``learn`` says whether the tick belongs to the normal state.
        """
        score, flagged = self.assess(x)
        self.learn(learn)
        return score, flagged

    def assess(self, x: FloatArray, alert_open: bool = False) -> tuple[float, bool]:
        """:meth:`step` without learning; :meth:`learn` then decides on this tick.  ``alert_open``: the asset's
        alert is open (as sent) before this tick (read by the slow chart with ``slow_open_only``)."""
        self._pending = None
        if not np.isfinite(x).all():
            self.last_u = np.full(self.n_tags, np.nan)
            return math.nan, False
        if self._warmup is not None:
            self._pending = (x, math.nan)
            return math.nan, False
        deviation = x - np.where(self.drifting, self._baseline, self.mean)
        u = deviation / self._scale
        a = self.alpha
        if self.smooth_vector:
            self._smoothed_u = (1.0 - a) * self._smoothed_u + a * u
            self.last_t2, self.last_q = self._split(self._smoothed_u)
        else:
            t2, q = self._split(u)
            self.last_t2 = (1.0 - a) * self.last_t2 + a * t2
            self.last_q = (1.0 - a) * self.last_q + a * q
        # The baseline of a drifting tag follows it through faults too: their information
        # is in the tag's fast moves, which the baseline lags behind.
        d = self.drifting
        self._baseline[d] += self.drift_alpha * (x[d] - self._baseline[d])
        self.last_u = u
        score = max(self.last_t2 / self.ucl_t2, self.last_q / self.ucl_q)
        if self.chart_alpha > 0.0:
            self._chart += self.chart_alpha * (u - self._chart)
            self.last_chart = np.abs(self._chart) / self._chart_limit
            score = max(score, float(self.last_chart.max()))
        if self.slow_alpha > 0.0 or self.mewma_alpha > 0.0:
            slow = 0.0
            if self.slow_alpha > 0.0:
                self._slow += self.slow_alpha * (np.clip(u, -self.slow_clip, self.slow_clip) - self._slow)
                self.last_slow = np.abs(self._slow) / self._slow_limit
                slow = float(self.last_slow.max())
            if self.mewma_alpha > 0.0:
                mask = self._mewma_inv.any(axis=0)
                x = np.where(mask, np.clip(u, -self.mewma_clip, self.mewma_clip), 0.0)
                self._mewma += self.mewma_alpha * (x - self._mewma)
                self.last_mewma = float(mewma.statistic(self._mewma, self._mewma_inv)) / self.mewma_limit
                slow = max(slow, self.last_mewma)
            self.slow_counts = self._slow_step(fast=score, slow=slow, alert_open=alert_open)
            if self.slow_counts:
                score = max(score, slow)
        self._pending = (deviation, score)
        return score, score > 1.0

    def learn(self, allowed: bool) -> None:
        """Learn the tick :meth:`assess` judged, if ``allowed``: in the warm-up, as normal state; after it, by
        ``learn_rate`` when its score was below ``learn_below``."""
        pending, self._pending = self._pending, None
        if not allowed or pending is None:
            return
        vector, score = pending
        if self._warmup is not None:
            self._warmup[self.count] = vector
            self.count += 1
            if self.count == self.warmup_steps:
                self._freeze()
        elif self.learn_rate > 0.0 and score < self.learn_below:
            self._learn(vector)

    @property
    def contributions(self) -> FloatArray:
        """Per tag, how much it made the last score: ranked by the statistic that decided it.

        When a tag's EWMA chart is the largest ratio to its limit, the tags' chart ratios
        (a drifted flow, not the noisier tag that happens to be furthest off this tick);
        otherwise each tag's |standardised deviation| (what T² and Q are made of).
        """
        joint = max(self.last_t2 / self.ucl_t2, self.last_q / self.ucl_q)
        charts = self._chart_ratios()
        if self.slow_counts and self.last_mewma > max(joint, 0.0 if charts is None else float(charts.max())):
            return np.abs(self._mewma)  # the MEWMA decided: each tag's smoothed shift
        if charts is not None and charts.max() > joint:
            return charts
        out: FloatArray = np.abs(self.last_u)
        return out

    def _slow_step(self, fast: float, slow: float, alert_open: bool = False) -> bool:
        """Advance the slow chart's excursion by one tick (``fast``: the score without it; ``slow``: its largest
        ratio); returns whether it counts (see the module docstring).

        ``slow_run`` counts, while the excursion is its own, the other statistics' flagged ticks in a row (at
        ``slow_hold`` they take it over), then, shared, their normal ticks in a row (at ``slow_hold`` it is spent).
        """
        if self.slow_hold is None:
            return True
        if not slow > 1.0:
            self.slow_phase, self.slow_run = SLOW_IDLE, 0
            return False
        flagged = fast > 1.0
        if self.slow_phase == SLOW_IDLE:
            self.slow_phase, self.slow_run = SLOW_SPENT if self.slow_open_only and alert_open else SLOW_OWN, 0
        if self.slow_phase == SLOW_OWN:
            self.slow_run = self.slow_run + 1 if flagged else 0
            if self.slow_run >= self.slow_hold:
                self.slow_phase, self.slow_run = SLOW_SHARED, 0
        elif self.slow_phase == SLOW_SHARED:
            self.slow_run = 0 if flagged else self.slow_run + 1
            if self.slow_run >= self.slow_hold:
                self.slow_phase = SLOW_SPENT
        return self.slow_phase != SLOW_SPENT

    def _chart_ratios(self) -> FloatArray | None:
        """Per tag, its charts' larger |EWMA| over its limit at the last step (None: no charts, or none yet); the
        slow chart's only when it counted."""
        slow = self.slow_alpha if self.slow_counts else 0.0
        ratios = [r for a, r in ((self.chart_alpha, self.last_chart), (slow, self.last_slow)) if a > 0.0]
        if not ratios or not all(np.isfinite(r).all() for r in ratios):
            return None
        out: FloatArray = np.maximum.reduce(ratios)
        return out

    def _split(self, u: FloatArray) -> tuple[float, float]:
        """(T², Q) of a standardised vector."""
        y = self._basis.T @ u
        k = self.components
        return float(y[:k] ** 2 @ self._inv_eigen[:k]), float(y[k:] @ y[k:])

    def end_warmup(self) -> bool:
        """Freeze now on the ticks learned so far (the history that was the warm-up ended), if there are at
        least :data:`MIN_WARMUP` of them and the model still learns; returns whether it is frozen."""
        if self._warmup is not None and self.count >= MIN_WARMUP:
            self._warmup = self._warmup[: self.count]
            self._freeze()
        return self.frozen

    def _freeze(self) -> None:
        assert self._warmup is not None
        data = self._warmup
        self.mean = data.mean(axis=0)
        smooth = np.stack([_ewma(c, self.drift_alpha) for c in data.T], axis=1)
        settle = min(int(3.0 / self.drift_alpha), len(data) // 2)
        slow = smooth[settle:].var(axis=0) / (data[settle:].var(axis=0) + self.floor + 1e-18)
        self.drifting = slow > self.drift_share
        # A drifting tag's deviation at a tick is from the baseline before that tick, as when scoring.
        before = np.vstack([data[:1], smooth[:-1]])
        deviations = np.where(self.drifting, data - before, data - self.mean)
        self._baseline = smooth[-1].copy()
        self.cov = deviations[settle:].T @ deviations[settle:] / max(len(data) - settle - 1, 1)
        self._refresh(choose_components=True)
        u = deviations / self._scale
        if self.smooth_vector:
            z = np.stack([_ewma(c, self.alpha, 0.0) for c in u.T], axis=1)
            t2s, qs = np.array([self._split(v) for v in z]).T
            self._smoothed_u = z[-1].copy()
        else:
            t2, q = np.array([self._split(v) for v in u]).T
            t2s, qs = _ewma(t2, self.alpha), _ewma(q, self.alpha)
        self.ucl_t2 = _limit(t2s[settle:], self.quantile, self.ucl_factor)
        has_q = self.components < self.n_tags
        self.ucl_q = _limit(qs[settle:], self.quantile, self.ucl_factor) if has_q else math.inf
        self.warmup_scores = np.maximum(t2s[settle:] / self.ucl_t2, qs[settle:] / self.ucl_q)
        steady = ~self.drifting
        constant = np.ptp(data[settle:], axis=0) == 0
        if self.chart_alpha > 0.0 and steady.any():
            self._chart, self._chart_limit, ratios = self._warmup_chart(
                u, self.chart_alpha, self.chart_factor, math.inf, steady, constant, settle
            )
            self.warmup_scores = np.maximum(self.warmup_scores, ratios.max(axis=1))
        if self.slow_alpha > 0.0 and steady.any():
            self._slow, self._slow_limit, ratios = self._warmup_chart(
                u, self.slow_alpha, self.slow_factor, self.slow_clip, steady, constant, settle
            )
            self.warmup_scores = np.maximum(self.warmup_scores, ratios.max(axis=1))
        if self.mewma_alpha > 0.0 and (steady & ~constant).any():
            corr = self._basis @ np.diag(1.0 / self._inv_eigen) @ self._basis.T
            self._mewma, self._mewma_inv, self.mewma_limit, m = mewma.fit(
                u, corr, steady & ~constant, self.mewma_alpha, self.mewma_clip, self.quantile, self.mewma_factor, settle
            )
            self.warmup_scores = np.maximum(self.warmup_scores, m)
        # Smoothed statistics carry on from the warm-up's last values, as if it had been scored.
        self.last_t2, self.last_q = float(t2s[-1]), float(qs[-1])
        self._warmup = None

    def _warmup_chart(
        self,
        u: FloatArray,
        alpha: float,
        factor: float,
        clip: float,
        steady: BoolArray,
        constant: BoolArray,
        settle: int,
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """One chart of weight ``alpha`` run over the warm-up's standardised ticks (input clipped at ``±clip``): its
        last value per tag, its limits (inf for wandering tags) and its ratios to them after ``settle``."""
        charts = np.stack([_ewma(c, alpha, 0.0) for c in np.clip(u, -clip, clip).T], axis=1)
        limits = [_limit(np.abs(charts[settle:, j]), self.quantile, factor) for j in range(self.n_tags)]
        # A tag constant through the warm-up (a set point, a closed valve) has a chart of zeros
        # there, so any later step, one resolution (u = 1) included, would alarm for good: its
        # limit is the chart of white noise at its scale (the resolution) instead.
        noise = factor * _NORMAL.inv_cdf((1.0 + self.quantile) / 2.0) * math.sqrt(alpha / (2.0 - alpha))
        limit = np.where(steady, np.where(constant, noise, limits), math.inf)
        return charts[-1].copy(), limit, np.abs(charts[settle:]) / limit

    def _refresh(self, choose_components: bool = False) -> None:
        var = np.diag(self.cov) + self.floor + 1e-12
        self._scale = np.sqrt(var)
        # The floor joins the diagonal before the correlation, so a tag constant through the
        # warm-up correlates with itself (1, as every tag does) and its own component gets
        # the resolution's variance: a one-resolution move is u = 1, not a ridge-sized surprise.
        corr = (self.cov + np.diag(self.floor + 1e-12)) / np.outer(self._scale, self._scale)
        corr = (1.0 - self.ridge) * corr + self.ridge * np.eye(self.n_tags)
        eigen, basis = np.linalg.eigh(corr)
        order = np.argsort(eigen)[::-1]
        eigen = np.maximum(eigen[order], self.ridge)
        self._basis = basis[:, order]
        self._inv_eigen = 1.0 / eigen
        if choose_components:
            share = np.cumsum(eigen) / eigen.sum()
            self.components = min(int(np.searchsorted(share, self.explained_variance - 1e-9)) + 1, self.n_tags)
        self._since_refresh = 0

    def _learn(self, deviation: FloatArray) -> None:
        eta = self.learn_rate
        self.mean = self.mean + eta * np.where(self.drifting, 0.0, deviation)
        self.cov = (1.0 - eta) * self.cov + eta * np.outer(deviation, deviation)
        self._since_refresh += 1
        if self._since_refresh >= self.refresh_steps:
            self._refresh()


def _ewma(x: FloatArray, alpha: float, start: float | None = None) -> FloatArray:
    out = np.empty_like(x)
    s = float(x[0]) if start is None else start
    for i, v in enumerate(x.tolist()):
        s = (1.0 - alpha) * s + alpha * v
        out[i] = s
    return out


def _limit(smoothed: FloatArray, quantile: float, factor: float) -> float:
    return max(float(np.quantile(smoothed, quantile)) * factor, 1e-9)
