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

:class:`ResidualBandCalibration` does the same for the per-tag residual scorer (``detect.score_band_calibration``):
widen-only, optionally per octave of the band's width against the tag's typical width.

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

from statistics import NormalDist

import numpy as np

from ..records import BoolArray, FloatArray, IntArray
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


WIDTH_CLASSES = (-3, 2)
"""Octave classes of a band's width against the tag's typical width (``floor(log2 ρ)`` clipped to these): below
¼, ¼-½, ½-1, 1-2, 2-4 and from 4 times the typical width up — fixed octaves, nothing fitted to a data set."""


class ResidualBandCalibration:
    """Per tag (and per width class): a factor ``c ≥ 1`` on the forecast's spread, learned from its coverage.

    Why (issue 13, NAB): a forecaster's band can be *over-sure at the moments that matter*.  On NAB's tuning files
    the model's 10-90 % band, when it was under ¼ of its usual width for that tag (1.6 % of ticks), left 36 % of
    values outside (nominal 20 %) with a 99th percentile of ``|z|`` of 338; Holt's left 11 % outside.  The scorer's
    :class:`~.surprise.RobustScale` corrects a tag's *average* ``z``, so a band that is right on most ticks and far
    too sure on a few passes every few-sigma miss there on as a once-in-10⁴⁰⁰ event.

    The factor is adaptive conformal inference (Gibbs and Candès, 2021) on the band's realised coverage, as
    :class:`BandCalibration`, but on ``z`` (the value's distance from the median in the band's own spread on the
    side it fell, so ``|z| > k`` is "outside the band", ``k`` the outer level's normal quantile) and *widen-only*:
    ``log c`` is learned both ways but applied only above 0, as the scorer's floor ``residual_min_sigma`` never
    trusts a tag to be more predictable than its forecast says; a band that covers what it says, or more, is left
    as it is.  Only the part of ``log c`` beyond its own sampling noise is applied (one standard error of the
    quantile step's running mean, ``GAIN · √(share (1 − share) / (prior + n))``, ``n`` the values the class
    learned): a width class seen a few times does not widen a band on the strength of one or two misses.
    (Learning it clipped at 0 and applying all of it — round 1 of ``docs/results/nab/band-cal/RULE.md`` — biases it
    upward: the random walk of a calibrated band's estimate about 0 is reflected there, and on NAB's tuning files
    Holt's right bands were widened on 10 % of ticks.)  With ``classes``
    (``detect.score_band_calibration = "width"``) each tag keeps one factor per octave of the band's width against
    its typical width (Mondrian conformal): a forecaster whose narrow bands are over-sure is widened there only,
    one whose narrow bands are right (Holt's, on NAB) is not touched.  No labels, no training, no data set's
    numbers: the nominal share comes from the forecast's own levels.

    >>> cal = ResidualBandCalibration(n_rows=2, outer_level=0.9, memory_steps=5000, classes=False)
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(4000):  # row 0: its residuals are 3 band spreads (over-sure); row 1: 0.3 (too wide)
    ...     z = np.array([rng.normal(0.0, 3.0), rng.normal(0.0, 0.3)])
    ...     c = cal.factor(np.ones(2))
    ...     cal.learn(z / c, c, np.ones(2), np.ones(2, bool))
    >>> cal.factor(np.ones(2)).round(1).tolist()  # widened to cover what it says; the wide one left alone
    [3.0, 1.0]
    """

    def __init__(self, n_rows: int, outer_level: float, memory_steps: int, classes: bool) -> None:
        lo, hi = WIDTH_CLASSES
        self.n_classes = hi - lo + 1 if classes else 1
        self.share = 2.0 * (1.0 - outer_level)
        """The nominal share of values outside the outer levels' band (0.2 for 10-90 %)."""
        self.k = NormalDist().inv_cdf(outer_level)
        self.alpha_min = 1.0 / memory_steps
        self.log_scale: FloatArray = np.zeros((n_rows, self.n_classes))
        self.learned = np.zeros((n_rows, self.n_classes), dtype=np.int64)

    def width_class(self, relative_width: FloatArray) -> IntArray:
        """Each row's class: the octave of its band's width against its typical width (0 with one class).

        >>> ResidualBandCalibration(3, 0.9, 100, classes=True).width_class(np.array([0.1, 1.0, 0.0])).tolist()
        [0, 3, 3]
        """
        if self.n_classes == 1:
            return np.zeros(len(relative_width), dtype=np.intp)
        lo, hi = WIDTH_CLASSES
        ok = np.isfinite(relative_width) & (relative_width > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            octave = np.floor(np.log2(np.where(ok, relative_width, 1.0)))
        return np.asarray(np.clip(octave, lo, hi) - lo, dtype=np.intp)

    def factor(self, relative_width: FloatArray) -> FloatArray:
        """Each row's factor on its spread (≥ 1) for a band of this relative width (NaN, 0: the typical class)."""
        rows = np.arange(self.log_scale.shape[0])
        cls = self.width_class(relative_width)
        noise = GAIN * np.sqrt(self.share * (1.0 - self.share) / (PRIOR_STEPS + self.learned[rows, cls]))
        return np.asarray(np.exp(np.maximum(self.log_scale[rows, cls] - noise, 0.0)), dtype=np.float64)

    def learn(self, z_scored: FloatArray, applied: FloatArray, relative_width: FloatArray, mask: BoolArray) -> None:
        """One quantile step on the rows of ``mask`` with a finite ``z``.

        ``z_scored`` was divided by ``applied`` (:meth:`factor`); the step judges coverage with the learned factor
        itself, so the estimate is not pulled by what was applied (the applied factor is its lower bound).
        """
        cls_all = self.width_class(relative_width)
        learned = np.exp(self.log_scale[np.arange(self.log_scale.shape[0]), cls_all])
        with np.errstate(invalid="ignore"):
            ok = mask & np.isfinite(z_scored)
            outside = np.abs(z_scored * applied) > self.k * learned
        rows = np.flatnonzero(ok)
        if rows.size == 0:
            return
        cls = cls_all[rows]
        rate = np.maximum(1.0 / (PRIOR_STEPS + self.learned[rows, cls] + 1), self.alpha_min)
        step = rate * GAIN * (outside[rows].astype(np.float64) - self.share)
        self.log_scale[rows, cls] = np.clip(self.log_scale[rows, cls] + step, -LOG_SCALE_LIMIT, LOG_SCALE_LIMIT)
        self.learned[rows, cls] += 1
