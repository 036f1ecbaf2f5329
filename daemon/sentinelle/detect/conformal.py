"""Online conformal calibration of a forecast band's width, per row (issue 14: the blind estimate's band).

Why: the calibrated scorer (:mod:`.surprise`) standardises each tag's ``z`` by its usual ``z`` but
floors that scale at ``residual_min_sigma`` band spreads ("a tag has not shown that it is more
predictable than its forecast says"), so it trusts a band that is too *wide*: every residual looks
small and a fault hides in it.  A band that is too *narrow* it widens on average, but its tail
judgement then rests on the band's shape, not its coverage.  The asset model's blind estimate
(``forecast.asset_mask_recent_steps``) is a use the shipped checkpoint was never trained for: on
development chiller seeds 2140..2149, 39 to 81 % of normal values fell outside its 10-90 % band on
power and supply temperature (20 % when calibrated); a masked fine-tune made it 1 to 10 % (too wide).

:class:`BandCalibration` keeps, per row, a factor ``c`` on the band's half-widths about the median,
learned online from the detector's own residuals so that the share of learned values outside the
scaled band is the band's nominal share (``levels[0] + 1 − levels[-1]``, 0.2 for 10-90 %): adaptive
conformal inference (Gibbs and Candès, 2021) on ``log c``, a Robbins-Monro quantile step,
``log c += rate · GAIN · (outside − share)``.  The rate is :class:`~.surprise.RobustScale`'s
(``1/(prior + n)`` until it reaches ``1/memory_steps``), so the first values set ``c`` quickly and a
settled ``c`` moves slowly: a fault that puts every tick outside for 900 ticks moves a settled ``c``
(memory 5,000) by about ×1.3, and the detector does not learn while its alert is open.  Online
calibration on the stream the detector scores, no training and no labels.

>>> import numpy as np
>>> cal = BandCalibration(n_rows=2, levels=(0.1, 0.5, 0.9), memory_steps=5000)
>>> rng = np.random.default_rng(0)
>>> band = np.array([[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])  # the 10-90 % band says sigma = 0.78
>>> for _ in range(4000):  # row 0: sigma 2.34 (band 3x too narrow); row 1: sigma 0.26 (3x too wide)
...     x = np.array([rng.normal(0.0, 2.34), rng.normal(0.0, 0.26)])
...     q = cal.apply(band)
...     cal.learn(x, q, np.ones(2, bool))
>>> np.exp(cal.log_scale).round(1).tolist()
[3.0, 0.3]
>>> cal.apply(band)[0].round(1).tolist()
[-3.0, 0.0, 3.0]
"""

from __future__ import annotations

import numpy as np

from ..records import BoolArray, FloatArray
from .surprise import PRIOR_STEPS

GAIN = 2.0
"""Step gain of the quantile update in ``log c`` (Robbins-Monro converges at a ``1/n`` rate when the gain
times the density of ``log|z|`` at the target quantile exceeds 1/2; for a normal ``z`` at 80 % that
density is 0.45)."""
LOG_SCALE_LIMIT = float(np.log(100.0))
"""``c`` stays within 1/100 … 100: a degenerate band (zero width) cannot drive it without bound."""


class BandCalibration:
    """Per row: a factor on a quantile band's half-widths, learned online so the band covers what it says."""

    def __init__(self, n_rows: int, levels: tuple[float, ...], memory_steps: int) -> None:
        self.levels = levels
        self.mid = levels.index(0.5)
        self.share = float(levels[0] + 1.0 - levels[-1])
        """The nominal share of values outside the outer levels' band (0.2 for 10-90 %)."""
        self.alpha_min = 1.0 / memory_steps
        self.log_scale: FloatArray = np.zeros(n_rows)
        self.learned = np.zeros(n_rows, dtype=np.int64)

    def apply(self, expected: FloatArray) -> FloatArray:
        """``expected`` (rows × levels) with each row's levels moved from the median by its factor."""
        median = expected[:, self.mid : self.mid + 1]
        scaled = median + np.exp(self.log_scale)[:, None] * (expected - median)
        return np.asarray(scaled, dtype=np.float64)

    def learn(self, actual: FloatArray, scaled: FloatArray, mask: BoolArray) -> None:
        """One quantile step on the rows of ``mask`` whose value and scaled band are finite."""
        lo, hi = scaled[:, 0], scaled[:, -1]
        with np.errstate(invalid="ignore"):
            ok = mask & np.isfinite(actual) & np.isfinite(lo) & np.isfinite(hi)
            outside = (actual < lo) | (actual > hi)
        rows = np.flatnonzero(ok)
        if rows.size == 0:
            return
        rate = np.maximum(1.0 / (PRIOR_STEPS + self.learned[rows] + 1), self.alpha_min)
        step = rate * GAIN * (outside[rows].astype(np.float64) - self.share)
        self.log_scale[rows] = np.clip(self.log_scale[rows] + step, -LOG_SCALE_LIMIT, LOG_SCALE_LIMIT)
        self.learned[rows] += 1
