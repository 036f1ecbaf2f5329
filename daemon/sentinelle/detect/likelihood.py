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

from ..records import BoolArray, FloatArray
from ..settings import DetectSettings
from .surprise import RobustScale, upper_surprisal

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


class LikelihoodLayer:
    """Numenta's likelihood for every row of a tag group at once: short mean of a score against its long history.

    The raw score is each tag's calibrated surprise in decades (``surprise.surprisal``).
    Its mean over the last ``short_steps`` ticks is judged against the distribution
    of that mean over about the last ``memory_steps`` ticks (a forgetting,
    winsorised normal: :class:`~sentinelle.detect.surprise.RobustScale`, floored at
    ``min_sigma``); :meth:`step` returns the decades of the short mean's upper tail
    probability, which ``surprise.log_score`` makes a score (Numenta's
    ``computeLogLikelihood``).  A tag whose scores are usually busy then needs a
    larger excursion; a lasting excursion is absorbed in about ``memory_steps``.

    >>> import numpy as np
    >>> from sentinelle.detect.surprise import log_score
    >>> layer = LikelihoodLayer(n_rows=1, short_steps=5, memory_steps=300, min_sigma=0.01)
    >>> rng = np.random.default_rng(1)
    >>> quiet = [log_score(layer.step(np.array([s]), np.ones(1, bool)))[0] for s in rng.uniform(0.0, 0.1, 300)]
    >>> float(np.max(quiet[100:])) < 0.5
    True
    >>> [round(float(log_score(layer.step(np.array([s]), np.ones(1, bool)))[0]), 2) for s in (1.0, 0.05, 0.05)]
    [0.77, 0.72, 0.65]
    """

    def __init__(
        self, n_rows: int, short_steps: int, memory_steps: int, min_sigma: float, clip_sigmas: float = 10.0
    ) -> None:
        self._ring = np.full((n_rows, short_steps), np.nan)
        self._pos = np.zeros(n_rows, dtype=np.intp)
        self.long = RobustScale(n_rows, memory_steps, clip_sigmas=clip_sigmas, min_sigma=min_sigma)
        self.long.square[:] = min_sigma**2  # no prior of one unit: scores live in 0 … 1
        self.short_mean = np.full(n_rows, np.nan)

    def step(self, raw: FloatArray, learn: BoolArray) -> FloatArray:
        """Decades of the short mean's upper tail probability (NaN where ``raw`` is NaN; ``log_score`` makes it a
        score); the short means of ``learn`` rows join the history."""
        rows = np.flatnonzero(np.isfinite(raw))
        out = np.full(raw.shape, np.nan)
        if rows.size == 0:
            return out
        self._ring[rows, self._pos[rows]] = raw[rows]
        self._pos[rows] = (self._pos[rows] + 1) % self._ring.shape[1]
        short = np.nanmean(self._ring[rows], axis=1)
        self.short_mean[rows] = short
        z = (short - self.long.location[rows]) / self.long.sigma()[rows]
        out[rows] = upper_surprisal(z)
        mask = np.zeros(raw.shape, dtype=bool)
        mask[rows] = learn[rows]
        self.long.learn(self.short_mean, mask)
        return out
