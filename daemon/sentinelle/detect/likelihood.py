"""Anomaly likelihood: how unusual a detector's recent scores are against its own normal scores.

Numenta's HTM detectors (``nupic/algorithms/anomaly_likelihood.py``; Ahmad et al.,
*Unsupervised real-time anomaly detection for streaming data*, 2017) do not
threshold the raw anomaly score: they compare its short-term mean (the last
``short_steps`` scores) with the distribution of the score over a long history,
modelled as a normal distribution, and alarm on the tail — the likelihood
``Φ(z)``, ``z = (short mean − μ) / σ``.  A detector whose scores are noisy in
normal operation then needs a larger excursion than one whose scores are quiet.

Here the raw score is the asset detector's (``asset.py``, T² and Q over their
control limits), and two choices differ from HTM's, both for a plant:

* the long-term distribution starts from the warm-up's own scores (the model
  re-scores its warm-up at the freeze), so the layer judges from the first
  scored tick instead of waiting out a probation period;
* it learns only from ticks the caller calls normal (``learn``: no open alert,
  no gated tag) that it does not flag itself: the distribution of *normal*
  scores, not of all scores — learning from an open fault would make the fault
  look usual within a history's length.

Memory is bounded: the last ``history_steps`` learned scores in a ring.  A
missing score (NaN) is skipped: it neither counts in the short mean nor is learned.

>>> import numpy as np
>>> lik = AnomalyLikelihood(short_steps=5, history_steps=1000, z_threshold=3.0)
>>> lik.seed(np.random.default_rng(0).normal(0.3, 0.1, size=400))
>>> any(lik.step(s, learn=True)[1] for s in (0.3, 0.3, 0.3, 0.3, 0.9, 0.3, 0.3, 0.3, 0.3))  # one high score
False
>>> [lik.step(0.9, learn=True)[1] for _ in range(4)]  # a lasting one moves the short mean past 3σ
[False, False, True, True]
>>> lik.likelihood > 0.9999
True
"""

from __future__ import annotations

import math
from collections import deque
from statistics import NormalDist

import numpy as np

from ..records import FloatArray
from ..settings import DetectSettings

_NORMAL = NormalDist()


class AnomalyLikelihood:
    """Short-term mean of a raw score against its long-term distribution learned online from normal ticks."""

    def __init__(self, short_steps: int, history_steps: int, z_threshold: float, min_spread: float = 1e-3) -> None:
        self.short_steps = short_steps
        self.history_steps = history_steps
        self.z_threshold = z_threshold
        self.min_spread = min_spread
        """Floor of the long-term σ (score units): a constant history does not make every change infinite."""
        self._short: deque[float] = deque(maxlen=short_steps)
        self._history: FloatArray = np.empty(history_steps)
        self._filled = 0
        self._pos = 0
        self.seeded = False
        """Whether the long-term distribution has been given its first scores (``seed``)."""
        self._pending = math.nan
        """The last assessed score, if it may be learned (NaN: none)."""
        self.last_z = math.nan
        """z of the last scored tick: the short-term mean in long-term σ above the long-term mean."""

    @classmethod
    def from_settings(cls, settings: DetectSettings) -> AnomalyLikelihood:
        """The layer ``settings.asset_likelihood_*`` describe."""
        s = settings
        return cls(s.asset_likelihood_short_steps, s.asset_likelihood_history_steps, s.asset_likelihood_z)

    @property
    def likelihood(self) -> float:
        """``Φ(z)`` of the last scored tick (NaN before any)."""
        return _NORMAL.cdf(self.last_z) if math.isfinite(self.last_z) else math.nan

    def seed(self, scores: FloatArray) -> None:
        """Start the long-term distribution from these normal scores (non-finite ones are skipped)."""
        for s in np.asarray(scores, dtype=np.float64).tolist():
            if math.isfinite(s):
                self._learn(s)
        self.seeded = True

    def step(self, score: float, learn: bool) -> tuple[float, bool]:
        """Judge ``score`` (NaN: none this tick), then learn it if ``learn`` and not flagged.

        Returns (z, flagged); z is NaN while there is no score or no history.
        """
        z, flagged = self.assess(score)
        self.learn(learn)
        return z, flagged

    def assess(self, score: float) -> tuple[float, bool]:
        """:meth:`step` without learning; :meth:`learn` then decides on this score."""
        self._pending = math.nan
        if not math.isfinite(score):
            return math.nan, False
        self._short.append(score)
        if self._filled < 2:
            self.last_z = math.nan
            flagged = False
        else:
            history = self._history[: self._filled]
            spread = max(float(history.std()), self.min_spread)
            self.last_z = (sum(self._short) / len(self._short) - float(history.mean())) / spread
            flagged = self.last_z > self.z_threshold
        if not flagged:
            self._pending = score
        return self.last_z, flagged

    def learn(self, allowed: bool) -> None:
        """Learn the score :meth:`assess` judged, if ``allowed`` and it was not flagged."""
        if allowed and math.isfinite(self._pending):
            self._learn(self._pending)
        self._pending = math.nan

    def _learn(self, score: float) -> None:
        self._history[self._pos] = score
        self._pos = (self._pos + 1) % self.history_steps
        self._filled = min(self._filled + 1, self.history_steps)
