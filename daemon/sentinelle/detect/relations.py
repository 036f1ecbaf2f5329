"""Learned relations (virtual sensors): one tag of an asset predicted from others, its residual scored.

A fault the control loop compensates leaves every tag in its usual range and
moving slowly — the forecasters follow it, the limits never trip — yet it breaks
a relation between tags.  A pump that lost efficiency is driven faster for the
same duty: the chiller's cooling power no longer matches what its pumps' speeds
imply.  Plant engineers check exactly that, and an alert worded that way
("power_kw lower than the pump speeds imply") explains itself.

The prediction is an online least-squares fit, ``target ≈ Σ wᵢ · inputᵢ`` (plus a
constant with ``fit_intercept``), over exponentially forgotten ticks (time
constant ``memory_s``, at least ``memory_min_periods`` ticks), with a small ridge on the inputs scaled to their own
size, so that collinear inputs (parallel pumps driven by one controller) give the
smallest-norm weights instead of a numerical accident.  It learns only from ticks
the caller vouches for (no tag gated, no alert open on the asset) whose own
residual is below ``learn_below_z`` spreads, so a fault that ramps in is not
absorbed as the new normal.

Why no intercept by default: physics often says the target is *proportional* to
the inputs — the pump affinity law makes a pump's flow proportional to its speed,
and a chiller's cooling capacity is proportional to its pumps' speeds.  Such a
relation learned at one operating point holds across the load cycle, while a fit
with an intercept has a slope only as good as the load range the learning saw
(a one-hour warm-up sees little of a daily cycle) and extrapolates poorly.

The residual spread is the forgotten root mean square of the residuals of the
learned ticks from the second half of the warm-up on (the fit has settled by
then), floored at the target's resolution; a tick is anomalous when |z| exceeds
``z_threshold``.  Each tick costs one d × d solve (d: inputs, plus one for the
intercept) when it is learned from.

>>> rel = RelationCheck(1, fit_intercept=False, z_threshold=6.0, learn_below_z=4.0, warmup_steps=50,
...                     forget=1.0, min_spread=0.01)
>>> rng = np.random.default_rng(0)
>>> for _ in range(200):
...     x = rng.uniform(1.0, 2.0)
...     _ = rel.step(2.0 * x + rng.normal(0.0, 0.01), np.array([x]), learn=True)
>>> round(float(rel.weights[0]), 2)
2.0
>>> z, flagged = rel.step(2.0 * 3.0, np.array([3.0]), learn=True)   # outside the learned range, same law
>>> bool(flagged)
False
>>> z, flagged = rel.step(5.0, np.array([3.0]), learn=True)          # the law broken
>>> bool(flagged), z < -6.0
(True, True)
"""

from __future__ import annotations

import math

import numpy as np

from ..records import FloatArray
from ..settings import RelationSettings
from ..timing import relation_memory_s


class RelationCheck:
    """One virtual sensor: ``target`` predicted from ``n_inputs`` tags, learned online on normal ticks."""

    def __init__(
        self,
        n_inputs: int,
        *,
        fit_intercept: bool,
        z_threshold: float,
        learn_below_z: float,
        warmup_steps: int,
        forget: float,
        min_spread: float,
        ridge: float = 1e-4,
    ) -> None:
        self.n_inputs = n_inputs
        self.fit_intercept = fit_intercept
        self.z_threshold = z_threshold
        self.learn_below_z = learn_below_z
        self.warmup_steps = warmup_steps
        self.forget = forget
        """Weight kept by the learned ticks at each new learned tick: exp(−period / memory)."""
        self.min_spread = min_spread
        self.ridge = ridge
        d = n_inputs + int(fit_intercept)
        self._gram: FloatArray = np.zeros((d, d))
        self._moment: FloatArray = np.zeros(d)
        self.weights: FloatArray = np.zeros(d)
        """Input weights (then the intercept, with ``fit_intercept``)."""
        self._input_sum: FloatArray = np.zeros(n_inputs)
        self._weight_sum = 0.0
        self._square_sum = 0.0
        self._square_weight = 0.0
        self.count = 0
        """Ticks learned from."""
        self.skipped = 0
        """Ticks not checked: the target or an input had no usable value (NaN)."""
        self.expected = math.nan
        """The target the inputs implied at the last checked tick."""
        self.z = math.nan
        """The last tick's residual over the spread (NaN in the warm-up or when skipped)."""
        self._pending: tuple[FloatArray, FloatArray, float, float] | None = None
        """The last assessed tick, if small enough to learn from: (features, inputs, target, residual)."""
        self.handover_steps = 0.0
        """Learned ticks after which the spread learned meanwhile alone replaces the current one (0: none pending;
        :meth:`hand_over_spread`)."""
        self._live_square_sum = 0.0
        self._live_square_weight = 0.0
        self.live_learned = 0
        """Ticks learned since :meth:`hand_over_spread` (those the replacing spread is made of)."""

    @classmethod
    def from_settings(cls, settings: RelationSettings, period_s: float, min_spread: float) -> RelationCheck:
        """The check ``settings`` describe, for tags sampled every ``period_s``."""
        return cls(
            len(settings.inputs),
            fit_intercept=settings.fit_intercept,
            z_threshold=settings.z_threshold,
            learn_below_z=settings.learn_below_z,
            warmup_steps=settings.warmup_steps,
            forget=math.exp(-period_s / relation_memory_s(settings, period_s)),
            min_spread=min_spread,
        )

    @property
    def warm(self) -> bool:
        """Whether the warm-up is over: the relation scores."""
        return self.count >= self.warmup_steps

    @property
    def spread(self) -> float:
        """Typical |residual| of normal ticks (target units), at least ``min_spread``."""
        if self._square_weight <= 0.0:
            return math.inf
        return max(math.sqrt(self._square_sum / self._square_weight), self.min_spread, 1e-12)

    def step(self, target: float, inputs: FloatArray, learn: bool) -> tuple[float, bool]:
        """Score one tick, then learn from it if ``learn`` and its residual is small.

        Returns (z, flagged); z is NaN (and nothing is learned) during the warm-up's
        scoring pause or when a value is missing.
        """
        z, flagged = self.assess(target, inputs)
        self.learn(learn)
        return z, flagged

    def assess(self, target: float, inputs: FloatArray) -> tuple[float, bool]:
        """:meth:`step` without learning; :meth:`learn` then decides on this tick."""
        self._pending = None
        if not (math.isfinite(target) and np.isfinite(inputs).all()):
            self.skipped += 1
            self.expected = self.z = math.nan
            return math.nan, False
        x = self._features(inputs)
        self.expected = float(self.weights @ x)
        residual = target - self.expected
        z = residual / self.spread if self.warm else math.nan
        self.z = z
        flagged = self.warm and abs(z) > self.z_threshold
        if not self.warm or abs(z) < self.learn_below_z:
            self._pending = (x, np.asarray(inputs, dtype=np.float64), target, residual)
        return z, flagged

    def learn(self, allowed: bool) -> None:
        """Learn the tick :meth:`assess` judged, if ``allowed`` and its residual was small enough."""
        if allowed and self._pending is not None:
            self._learn(*self._pending)
        self._pending = None

    def discount(self, weight_ticks: float) -> None:
        """Let what was learned so far count as ``weight_ticks`` ticks at most (the fit and spread unchanged).

        Every forgotten sum is scaled by the same factor, so the weights and the spread stay what they are
        but the next learned ticks replace them within about ``weight_ticks`` ticks instead of ``memory_s``
        (``detect.history_held_weight_steps``: a fit and spread learned from a compressed export's held
        values give way to the live ones).

        >>> rel = RelationCheck(1, fit_intercept=False, z_threshold=6.0, learn_below_z=4.0, warmup_steps=10,
        ...                     forget=1.0, min_spread=0.001)
        >>> for k in range(1000):  # a history with residuals of ±0.1
        ...     _ = rel.step(2.0 + 0.1 * (-1) ** k, np.array([1.0]), learn=True)
        >>> rel.discount(50.0)
        >>> round(rel.spread, 3), round(float(rel.weights[0]), 2)
        (0.1, 2.0)
        >>> for k in range(450):  # then residuals of ±0.01
        ...     _ = rel.step(2.0 + 0.01 * (-1) ** k, np.array([1.0]), learn=True)
        >>> round(rel.spread, 3)  # within ~10 % of the live weight: sqrt(0.1 * 0.1**2 + 0.9 * 0.01**2)
        0.033
        """
        if self._weight_sum > weight_ticks:
            f = weight_ticks / self._weight_sum
            self._gram = self._gram * f
            self._moment = self._moment * f
            self._input_sum = self._input_sum * f
            self._weight_sum *= f
        if self._square_weight > weight_ticks:
            f = weight_ticks / self._square_weight
            self._square_sum *= f
            self._square_weight *= f

    def hand_over_spread(self, after_ticks: float) -> None:
        """After ``after_ticks`` more learned ticks, replace the spread by the one those ticks alone teach.

        ``detect.history_held_relation_drop_after_steps``: the spread a relation learned on a compressed
        export's held values (a held target against held inputs carries both deadbands' error) is wider than
        the live one, and a prior that only fades (:meth:`discount`) still shows a day later (1.4 % wider on
        seed 1586, enough to find a pump degradation one period later).  Unlike a forecast residual, a
        relation's residual needs no context, so every live tick from the first counts.  The fit is kept:
        it was the same to 0.02 kW, and a proportional fit from a few live hours of one load pattern
        extrapolates worse than one from the whole export.  Until the hand-over the current spread scores.

        >>> rel = RelationCheck(1, fit_intercept=False, z_threshold=6.0, learn_below_z=4.0, warmup_steps=10,
        ...                     forget=1.0, min_spread=0.001)
        >>> for k in range(1000):  # a history with residuals of ±0.1
        ...     _ = rel.step(2.0 + 0.1 * (-1) ** k, np.array([1.0]), learn=True)
        >>> rel.discount(50.0)
        >>> rel.hand_over_spread(60.0)
        >>> for k in range(60):  # then residuals of ±0.01
        ...     _ = rel.step(2.0 + 0.01 * (-1) ** k, np.array([1.0]), learn=True)
        >>> round(rel.spread, 3), rel.handover_steps  # the live ticks' own (the discounted fit barely moved)
        (0.01, 0.0)
        """
        self.handover_steps = float(max(math.ceil(after_ticks), 1))
        self._live_square_sum = self._live_square_weight = 0.0
        self.live_learned = 0

    def pushes(self, inputs: FloatArray) -> FloatArray:
        """How far each input moved the expected target from its value at the inputs' learned means, in spreads.

        The explanation of an alert: the inputs that imply the most change rank first.
        """
        if self._weight_sum <= 0.0 or not math.isfinite(self.spread):
            return np.full(self.n_inputs, np.nan)
        mean = self._input_sum / self._weight_sum
        pushed: FloatArray = self.weights[: self.n_inputs] * (inputs - mean) / self.spread
        return pushed

    def _features(self, inputs: FloatArray) -> FloatArray:
        return np.append(inputs, 1.0) if self.fit_intercept else np.asarray(inputs, dtype=np.float64)

    def _learn(self, x: FloatArray, inputs: FloatArray, target: float, residual: float) -> None:
        f = self.forget
        self._gram = f * self._gram + np.outer(x, x)
        self._moment = f * self._moment + target * x
        self._input_sum = f * self._input_sum + inputs
        self._weight_sum = f * self._weight_sum + 1.0
        if self.count >= self.warmup_steps // 2:
            # Residuals of a fit that has seen a handful of ticks say nothing about the process.
            self._square_sum = f * self._square_sum + residual * residual
            self._square_weight = f * self._square_weight + 1.0
            if self.handover_steps > 0:
                self._live_square_sum = f * self._live_square_sum + residual * residual
                self._live_square_weight = f * self._live_square_weight + 1.0
                self.live_learned += 1
                if self.live_learned >= self.handover_steps:
                    self._square_sum, self._square_weight = self._live_square_sum, self._live_square_weight
                    self.handover_steps = 0.0
        self.count += 1
        diagonal = np.diag(self._gram)
        regularised = self._gram + np.diag(self.ridge * diagonal + 1e-12)
        self.weights = np.asarray(np.linalg.solve(regularised, self._moment), dtype=np.float64)
