"""A MEWMA of an asset's steady tags (Lowry, Woodall, Champ & Rigdon 1992), beside T², Q and the per-tag charts.

Why another statistic.  T² judges each tick alone, so a shift of one or two σ that lasts stays inside its limit;
a per-tag EWMA chart finds it only when *one* tag carries it past that tag's own limit.  A fault that moves
several tags a little — a valve partly closed: the flow 1.3–1.8 σ low, an accelerometer 0.5–0.8 σ up — leaves
every chart inside its limit while the evidence summed over the tags, under their normal correlation, is larger
than any one tag's (the Mahalanobis length of the shift).  The MEWMA smooths the standardised vector,
``z ← (1 − α) z + α u``, and scores ``M = zᵀ Σ_z⁻¹ z`` with ``Σ_z = α/(2 − α) · R`` (the asymptotic covariance of
an EWMA of white noise with correlation ``R``): one statistic for all tags, so the false alarms of many charts do
not add up, and a light weight averages the noise away.

Its limit is learned from the warm-up as the other statistics' are: the ``quantile`` of ``M`` over the warm-up's
ticks (smoothed the same way) times ``factor``, floored at the χ² quantile of white noise (Wilson–Hilferty), since
a light weight has few independent values in a warm-up of a few hundred ticks.  Only *steady* tags that vary in
the warm-up take part: a wandering tag is scored against a moving baseline that follows it, and a tag constant
through the warm-up (a set point) would make a one-resolution step an alarm for good.  The input is clipped at
``±clip`` warm-up σ: the MEWMA is for small shifts (T² and the fast charts see large ones), and a light weight's
inertia after a large fault (Woodall & Mahmoud 2005) is then bounded by ``ln(clip/limit)/α`` ticks whatever the
fault's size.  The caller (:class:`~.asset.AssetT2Q`) gates it as it gates the slow chart (opens but does not hold,
``detect.asset_slow_chart_hold_steps``; never prolongs an open alert, ``asset_slow_chart_open_only``).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from ..records import BoolArray, FloatArray


def chi2_quantile(dof: int, q: float) -> float:
    """The ``q`` quantile of χ² with ``dof`` degrees of freedom, by Wilson–Hilferty (within ~1 % from 3 dof).

    >>> round(chi2_quantile(2, 0.99), 1), round(chi2_quantile(8, 0.99), 1)  # exact: 9.21, 20.09
    (9.2, 20.1)
    """
    k = 2.0 / (9.0 * dof)
    return dof * (1.0 - k + NormalDist().inv_cdf(q) * math.sqrt(k)) ** 3


def inverse(corr: FloatArray, mask: BoolArray, alpha: float) -> FloatArray:
    """``Σ_z⁻¹`` over the tags in ``mask`` (zero rows and columns elsewhere), ``Σ_z = α/(2 − α) · corr``."""
    n = len(mask)
    out = np.zeros((n, n))
    idx = np.flatnonzero(mask)
    out[np.ix_(idx, idx)] = np.linalg.inv(corr[np.ix_(idx, idx)]) * (2.0 - alpha) / alpha
    return out


def smooth(u: FloatArray, alpha: float, clip: float, mask: BoolArray) -> FloatArray:
    """The MEWMA of standardised rows ``u`` (one per tick), input clipped at ``±clip``, started at zero; zero off
    ``mask``."""
    x = np.where(mask, np.clip(u, -clip, clip), 0.0)
    z = np.zeros_like(x)
    s = np.zeros(x.shape[1])
    for i, row in enumerate(x):
        s = s + alpha * (row - s)
        z[i] = s
    return z


def statistic(z: FloatArray, inv: FloatArray) -> FloatArray:
    """``M = zᵀ Σ_z⁻¹ z`` of one vector or of each row."""
    out: FloatArray = np.einsum("...i,ij,...j->...", z, inv, z)
    return out


def fit(
    u: FloatArray,
    corr: FloatArray,
    mask: BoolArray,
    alpha: float,
    clip: float,
    quantile: float,
    factor: float,
    settle: int,
) -> tuple[FloatArray, FloatArray, float, FloatArray]:
    """The MEWMA run over the warm-up's standardised rows ``u``: its last value, ``Σ_z⁻¹``, its limit, and the
    ratios ``M / limit`` after ``settle``."""
    inv = inverse(corr, mask, alpha)
    z = smooth(u, alpha, clip, mask)
    m = statistic(z, inv)[settle:]
    floor = chi2_quantile(int(mask.sum()), quantile)
    limit = factor * max(float(np.quantile(m, quantile)) if len(m) else 0.0, floor)
    return z[-1].copy(), inv, limit, m / limit
