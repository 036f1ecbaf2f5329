"""A residual's mean over its last ticks, against the residual's scale from well before (issue 14: a drifting meter).

Why: a slow sensor drift that the asset model's blind estimate does not follow leaves a residual ``z`` of one sign
that grows for minutes, but each tick also carries the tag's own measurement noise.  On the chiller's development
runs (the flow meter reading 4 % high, ramped in over 900 s: seeds 3215, 3515) the per-tick ``z`` reached 4 to 5
estimate spreads while its scale had a spread of 1.3 to 1.6 (mostly the meter's noise), so the tick's standardised
residual stood near the threshold and crossed it on about half of the ticks — never 20 of 24 — and the scale,
learning 300 ticks late, then learned the drift itself.  The mean of the last ``window`` residuals keeps the bias
and drops most of that noise; it is standardised by a second scale of the *per-tick* residual (so by the tick's
spread, which the mean's own spread is below: a noise-free sustained bias of 3.55 tick spreads is what flags,
nothing smaller), learned ``delay`` ticks late so that for that long after a drift starts the reference is the one
from before it.  A scale of the mean itself was measured too (offline, on K1's traces of the development pool):
it is narrow, the estimate's healthy slow wander passed it on about half of the fault-free hours.

Still the model's residual scored by the calibrated per-tag scorer (:class:`~.surprise.RobustScale`, the same
threshold and opening): no limit, rule, relation or physics.

>>> import numpy as np
>>> avg = AveragedResidual(n_rows=1, window=4, delay=2, memory_steps=5000, clip_sigmas=3.0, min_sigma=1.0)
>>> ok = np.ones(1, bool)
>>> for z in (1.0, -1.0, 1.0, -1.0):
...     _ = avg.push(np.array([z]))
...     avg.learn(np.array([z]), ok, ok)
>>> avg.push(np.array([5.0])).round(2).tolist()  # the mean of the last 4: (-1 + 1 - 1 + 5) / 4
[1.0]
>>> int(avg.scale.learned[0])  # four learned, two of them still in the delay line
2
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..records import BoolArray, FloatArray
from .delay_line import DelayLine
from .surprise import RobustScale


class AveragedResidual:
    """Per row: the mean of the last ``window`` residuals, and a scale of the per-tick residual learned ``delay``
    ticks late."""

    def __init__(
        self, n_rows: int, window: int, delay: int, memory_steps: int, clip_sigmas: float, min_sigma: float
    ) -> None:
        if window < 1 or delay < 0:
            raise ValueError(f"window must be ≥ 1 and delay ≥ 0, got {window}, {delay}")
        self.window = window
        self.delay = delay
        self.recent: FloatArray = np.full((window, n_rows), np.nan)
        """The last ``window`` residuals per row (a ring; NaN: none that tick); ``pos`` the slot of the next."""
        self.pos: FloatArray = np.zeros(1)
        self.late = DelayLine(n_rows, delay)
        """Each row's residual of the last ``delay`` ticks and whether it could be learned then."""
        self.scale = RobustScale(n_rows, memory_steps, clip_sigmas, min_sigma)

    def push(self, z: FloatArray) -> FloatArray:
        """Store this tick's residuals; per row the mean of the last ``window`` (NaN where this tick's is NaN or
        fewer than half of the window's are finite)."""
        p = int(self.pos[0])
        self.recent[p] = z
        self.pos[0] = (p + 1) % self.window
        ok = np.isfinite(self.recent)
        count = ok.sum(axis=0)
        total = np.where(ok, self.recent, 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
        return np.asarray(np.where(np.isfinite(z) & (2 * count >= self.window), mean, np.nan), dtype=np.float64)

    def standardise(self, mean: FloatArray) -> FloatArray:
        """The mean in the late scale's units (location removed)."""
        return self.scale.standardise(mean)

    def learn(self, z: FloatArray, ok: BoolArray, closed: BoolArray) -> None:
        """Put this tick's residuals (``ok``: learnable now) in the delay line; learn those of ``delay`` ticks ago
        that were learnable then, on rows with no alert open now (``closed``)."""
        if not self.delay:
            self.scale.learn(z, ok & closed)
            return
        old_z, old_ok = self.late.swap(z, ok)
        self.scale.learn(old_z, old_ok & closed & np.isfinite(old_z))

    def arrays(self) -> dict[str, FloatArray]:
        """The state, for the detector's blob."""
        out = {"recent": self.recent, "pos": self.pos} | self.late.arrays("late_z")
        out |= {f"scale_{k}": v for k, v in vars(self.scale).items() if isinstance(v, np.ndarray)}
        return out

    def restore(self, arrays: dict[str, Any]) -> None:
        """From :meth:`arrays`; parts saved with another window, delay or row count start afresh."""
        for key, value in arrays.items():
            if key.startswith("scale_"):
                attr = key.removeprefix("scale_")
                if getattr(self.scale, attr).shape == value.shape:
                    setattr(self.scale, attr, value.copy())
            elif key in ("recent", "pos") and getattr(self, key).shape == value.shape:
                setattr(self, key, value.copy())
        self.late.restore(arrays, "late_z")
        self.pos %= self.window
