"""The MEWMA beside T², Q and the charts (``detect.asset_mewma_*``, ``detect/mewma.py``): a lasting shift spread
over several tags, each under its own chart's limit, is found; normal data stays quiet; clipping bounds how long
it stays up after a large fault; it is gated as the slow chart is (open-only); constant tags take no part; off by
default; its state travels with the detector's snapshot."""

from __future__ import annotations

import math

import numpy as np
from prometheus_client import CollectorRegistry

from sentinelle.detect import mewma
from sentinelle.detect.asset import AssetT2Q
from sentinelle.detect.detectors import BuildContext
from sentinelle.detect.detectors.asset_t2q import AssetDetector
from sentinelle.metrics import Metrics
from sentinelle.settings import DetectSettings, TagSettings

from .detect_helpers import LEVELS, feed, noisy, stage

WARMUP = 400
N = 4


def _warmed(
    alpha: float = 0.05, clip: float = math.inf, seed: int = 0, hold: int | None = None, open_only: bool = False
) -> AssetT2Q:
    """Four independent white-noise tags (σ 1), all components in T², a fast chart (0.3 × 2.5) as SKAB's."""
    det = AssetT2Q(
        N,
        np.zeros(N),
        WARMUP,
        1.0,
        0.99,
        3.0,
        chart_alpha=0.3,
        chart_factor=2.5,
        mewma_alpha=alpha,
        mewma_factor=2.0,
        mewma_clip=clip,
        slow_hold=hold,
        slow_open_only=open_only,
    )
    rng = np.random.default_rng(seed)
    for _ in range(WARMUP):
        det.step(rng.normal(size=N), learn=True)
    return det


def _run(det: AssetT2Q, shift: np.ndarray, ticks: int, seed: int, alert_open: bool = False) -> list[bool]:
    rng = np.random.default_rng(seed)
    return [bool(det.assess(shift + rng.normal(size=N), alert_open=alert_open)[1]) for _ in range(ticks)]


SPREAD = np.array([1.0, 1.0, 1.0, 0.0])
"""A fault that moves three tags by 1 σ each: no chart's business, 1.7 σ of Mahalanobis length."""


def test_a_shift_spread_over_tags_passes_every_chart_and_is_found_by_the_mewma() -> None:
    without = _warmed(alpha=0.0)
    found_without = _run(without, SPREAD, 300, seed=5)
    det = _warmed()
    found = _run(det, SPREAD, 300, seed=5)
    assert sum(found_without[60:]) < 0.2 * 240  # T² and the fast charts: mostly inside their limits
    assert sum(found[60:]) > 0.9 * 240  # the MEWMA, once it has built up
    assert det.contributions[:3].min() > det.contributions[3]  # the three moved tags are named


def test_the_mewma_is_quiet_on_normal_data() -> None:
    det = _warmed(seed=1)
    flags = _run(det, np.zeros(N), 2000, seed=2)
    mewma_alone = [f and det.last_mewma > 1.0 for f in flags]
    assert sum(flags) < 0.03 * 2000 and sum(mewma_alone) <= sum(flags)
    assert det.mewma_limit >= 2.0 * mewma.chi2_quantile(N, 0.99)  # floored at white noise's χ² quantile × factor


def test_clipping_bounds_how_long_the_mewma_stays_up_after_a_large_fault() -> None:
    big = np.array([40.0, 40.0, 0.0, 0.0])
    clipped, free = _warmed(clip=3.0), _warmed()
    for det in (clipped, free):
        _run(det, big, 120, seed=3)
        _run(det, np.zeros(N), 60, seed=4)
    assert clipped.last_mewma < 1.0 < free.last_mewma


def test_open_only_an_excursion_begun_while_the_alert_is_open_does_not_count() -> None:
    det = _warmed(hold=5, open_only=True)
    found = _run(det, SPREAD, 300, seed=5, alert_open=True)
    assert det.last_mewma > 1.0 and sum(found[60:]) < 0.2 * 240


def test_constant_tags_take_no_part_and_the_inverse_is_zero_off_the_mask() -> None:
    det = AssetT2Q(3, np.full(3, 0.1), WARMUP, 1.0, 0.99, 3.0, mewma_alpha=0.1, mewma_factor=2.0)
    rng = np.random.default_rng(0)
    for _ in range(WARMUP):
        det.step(np.array([*rng.normal(size=2), 5.0]), learn=True)  # the third tag: a set point
    assert not det._mewma_inv[2].any() and not det._mewma_inv[:, 2].any() and det._mewma_inv[:2, :2].any()
    inv = mewma.inverse(np.eye(3), np.array([True, False, True]), 0.5)
    assert np.allclose(inv, np.diag([3.0, 0.0, 3.0]))  # (2 − α)/α on the kept tags


def test_off_by_default_and_from_settings() -> None:
    s = DetectSettings()
    assert s.asset_mewma_alpha == 0.0 and s.asset_mewma_clip_sigma is None
    det = AssetT2Q.from_settings(np.zeros(2), s)
    assert det.mewma_alpha == 0.0 and det.mewma_clip == math.inf
    on = AssetT2Q.from_settings(
        np.zeros(2), DetectSettings(asset_mewma_alpha=0.1, asset_mewma_factor=2.5, asset_mewma_clip_sigma=3.0)
    )
    assert (on.mewma_alpha, on.mewma_factor, on.mewma_clip) == (0.1, 2.5, 3.0)
    rng = np.random.default_rng(0)
    for _ in range(WARMUP):
        det.step(rng.normal(size=2), learn=True)
    det.step(rng.normal(size=2), learn=False)
    assert math.isnan(det.last_mewma) and det.mewma_limit == math.inf


TAGS = (
    TagSettings(name="p.a", asset="p", node_id="n1", min_spread=0.01),
    TagSettings(name="p.b", asset="p", node_id="n2", min_spread=0.01),
)
NOMINAL = [1.0, 2.0]


def test_a_snapshot_carries_the_mewma() -> None:
    st, _ = stage(TAGS, asset_enabled=True, asset_warmup_steps=150, score_threshold=0.99, asset_mewma_alpha=0.1)
    with st.replaying_history():
        feed(st, TAGS, noisy(NOMINAL, 200, noise=0.05, seed=1), NOMINAL)
    g = next(iter(st._groups.values()))
    det = next(d for d in g.detectors if d.name == "asset_state")
    assert isinstance(det, AssetDetector) and math.isfinite(det.models[0].mewma_limit)
    clone = AssetDetector(BuildContext(g.layout, st.settings, LEVELS, Metrics(CollectorRegistry())))
    clone.restore(det.state())
    for name in ("_mewma", "_mewma_inv", "mewma_limit", "last_mewma"):
        assert np.array_equal(getattr(clone.models[0], name), getattr(det.models[0], name), equal_nan=True), name
