"""The asset-level T²+Q detector alone: statistics on hand-computable data, warm-up, freezing, drift."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sentinelle.detect.asset import AssetT2Q
from sentinelle.settings import DetectSettings

# Warm-up of two tags x = (s + d, s − d), s = ±2, d = ±1, all four combinations in turn:
# mean 0, variances 5 and covariance 3 (population), so the correlation is 0.6 with
# eigenvalues 1.6 along (1, 1)/√2 and 0.4 along (1, −1)/√2.
PATTERN = np.array([[3.0, 1.0], [1.0, 3.0], [-1.0, -3.0], [-3.0, -1.0]])
WARMUP = 200
DRIFT_ALPHA = 0.05
SETTLE = 60  # 3 / DRIFT_ALPHA: the first warm-up ticks the covariance and limits skip
SCALE2 = 5.0 * (WARMUP - SETTLE) / (WARMUP - SETTLE - 1)  # sample variance of each tag over the settled ticks


def _warmed(explained_variance: float = 0.7, ucl_factor: float = 1.0, **kwargs: float) -> AssetT2Q:
    det = AssetT2Q(
        2,
        np.zeros(2),
        warmup_steps=WARMUP,
        explained_variance=explained_variance,
        quantile=0.99,
        ucl_factor=ucl_factor,
        drift_alpha=DRIFT_ALPHA,
        ridge=0.0,
        **kwargs,  # type: ignore[arg-type]
    )
    for i in range(WARMUP):
        assert math.isnan(det.step(PATTERN[i % 4], learn=True)[0])
    return det


def test_t2_and_q_match_the_hand_computed_values() -> None:
    det = _warmed(ucl_factor=2.0)
    assert det.frozen and det.components == 1  # 1.6 / 2 = 80 % ≥ 70 %
    assert not det.drifting.any()
    # Every warm-up tick has T² = 2·(2·2)²/… : projection √2·s/σ on the first axis, so
    # T² = 2·4/(σ²·1.6) = 5/σ² and Q = 2·1/σ² = 2/σ²; the limits are those × the factor.
    assert det.ucl_t2 == pytest.approx(2.0 * 5.0 / SCALE2)
    assert det.ucl_q == pytest.approx(2.0 * 2.0 / SCALE2)
    c = 1.5
    det.step(np.array([c, c]), learn=False)  # along the correlation: all T², no Q
    assert det.last_t2 == pytest.approx(2 * c * c / (1.6 * SCALE2))
    assert det.last_q == pytest.approx(0.0, abs=1e-12)
    score, flagged = det.step(np.array([c, -c]), learn=False)  # against it: all Q
    assert det.last_t2 == pytest.approx(0.0, abs=1e-12)
    assert det.last_q == pytest.approx(2 * c * c / SCALE2)
    assert score == pytest.approx(det.last_q / det.ucl_q) and flagged == (score > 1.0)


def test_all_components_in_t2_is_hotellings_t2_without_q() -> None:
    det = _warmed(explained_variance=1.0)
    assert det.components == 2 and det.ucl_q == math.inf
    x = np.array([2.0, -0.5])
    det.step(x, learn=False)
    cov = np.array([[5.0, 3.0], [3.0, 5.0]]) * (WARMUP - SETTLE) / (WARMUP - SETTLE - 1)
    assert det.last_t2 == pytest.approx(float(x @ np.linalg.inv(cov) @ x))


def test_warm_up_counts_only_ticks_it_may_learn_from_and_scores_nothing() -> None:
    det = AssetT2Q(2, np.zeros(2), warmup_steps=20, explained_variance=0.9, quantile=0.99, ucl_factor=1.0)
    for i in range(30):
        score, flagged = det.step(PATTERN[i % 4], learn=i % 3 != 0)  # a third of them inside an alert
        assert math.isnan(score) and not flagged
        score, flagged = det.step(np.array([math.nan, 1.0]), learn=True)
        assert math.isnan(score) and not flagged
    assert det.count == 20 and det.frozen


def test_frozen_after_warm_up_a_sustained_shift_stays_flagged() -> None:
    det = _warmed()
    shifted = np.array([6.0, -6.0])
    flags = [det.step(shifted, learn=True)[1] for _ in range(2000)]
    assert all(flags)  # never absorbed: the model learned only during the warm-up
    assert det.mean == pytest.approx(np.zeros(2))


def test_slow_learning_follows_only_confidently_normal_ticks() -> None:
    det = _warmed(learn_rate=0.01)
    cov_before = det.cov.copy()
    for _ in range(500):
        det.step(np.array([0.3, 0.3]), learn=True)  # well inside the limits: learned
    assert det.mean == pytest.approx([0.3, 0.3], abs=0.01)
    assert not np.allclose(det.cov, cov_before)
    mean = det.mean.copy()
    for _ in range(500):
        det.step(np.array([6.0, -6.0]), learn=True)  # a fault: not learned
    assert det.mean == pytest.approx(mean)


def test_a_wandering_tag_is_scored_against_a_moving_baseline() -> None:
    rng = np.random.default_rng(3)
    n = 1000
    ramp = 0.02 * np.arange(n)  # tag 0 wanders (a temperature), tag 1 is noise around a level
    x = np.stack([ramp + rng.normal(0, 0.05, n), rng.normal(0, 1.0, n)], axis=1)
    x[700:, 1] += 5.0  # a sustained fault on the steady tag
    det = AssetT2Q(
        2, np.zeros(2), warmup_steps=400, explained_variance=1.0, quantile=0.99, ucl_factor=1.5, drift_share=0.3
    )
    flags = np.array([det.step(row, learn=True)[1] for row in x])
    assert det.drifting.tolist() == [True, False]
    assert flags[400:700].mean() < 0.05  # the ramp carries on far outside its warm-up range: not an alarm
    assert flags[705:].mean() > 0.95  # the fault stays flagged
    frozen = AssetT2Q(
        2, np.zeros(2), warmup_steps=400, explained_variance=1.0, quantile=0.99, ucl_factor=1.5, drift_share=1.0
    )
    flags = np.array([frozen.step(row, learn=True)[1] for row in x])
    assert not frozen.drifting.any() and flags[550:700].all()  # a level model alarms on the ramp itself


def test_memory_is_bounded_after_the_warm_up() -> None:
    det = _warmed()
    assert det._warmup is None  # the buffer is dropped at the freeze
    for i in range(1000):
        det.step(PATTERN[i % 4], learn=True)
    assert det._warmup is None and det.cov.shape == (2, 2)


def test_from_settings_uses_the_asset_fields() -> None:
    s = DetectSettings(
        asset_enabled=True,
        asset_warmup_steps=50,
        asset_explained_variance=0.8,
        asset_quantile=0.95,
        asset_ucl_factor=3.0,
        asset_ewma_alpha=0.2,
        asset_smooth_vector=False,
        asset_drift_share=0.4,
        asset_drift_alpha=0.1,
        asset_learn_rate=0.001,
        asset_chart_alpha=0.2,
        asset_chart_factor=4.0,
    )
    det = AssetT2Q.from_settings(np.array([0.1, 0.2, 0.3]), s)
    assert (det.chart_alpha, det.chart_factor) == (0.2, 4.0)
    assert (det.n_tags, det.warmup_steps, det.explained_variance, det.quantile, det.ucl_factor) == (
        3,
        50,
        0.8,
        0.95,
        3.0,
    )
    assert (det.alpha, det.smooth_vector, det.drift_share, det.drift_alpha, det.learn_rate) == (
        0.2,
        False,
        0.4,
        0.1,
        0.001,
    )
    assert det.floor == pytest.approx([0.01, 0.04, 0.09])


def _noise_detector(chart_alpha: float, seed: int = 1) -> tuple[AssetT2Q, np.random.Generator]:
    rng = np.random.default_rng(seed)
    det = AssetT2Q(
        2,
        np.zeros(2),
        400,
        explained_variance=1.0,
        quantile=0.99,
        ucl_factor=1.0,
        chart_alpha=chart_alpha,
        chart_factor=1.5,
    )
    for _ in range(400):
        det.step(rng.normal(size=2), learn=True)
    return det, rng


def test_an_ewma_chart_holds_a_small_sustained_shift_that_t2_lets_pass() -> None:
    """A tag 2 σ off centre for good (a valve partly closed): each tick's T² crosses its 99 %
    limit now and then; the tag's EWMA settles 2 σ off, far outside its own warm-up spread."""
    shifted = np.array([2.0, 0.0])
    rates = {}
    for alpha in (0.0, 0.1):
        det, rng = _noise_detector(alpha)
        flags = [det.step(shifted + rng.normal(size=2), learn=False)[1] for _ in range(300)]
        rates[alpha] = float(np.mean(flags[50:]))
    assert rates[0.0] < 0.6 and rates[0.1] > 0.97, rates
    assert det.last_chart[0] > 1.0 > det.last_chart[1], "the chart names the tag that moved"


def test_the_charts_are_quiet_on_normal_data_and_wandering_tags_have_none() -> None:
    det, rng = _noise_detector(0.1, seed=2)
    assert np.isfinite(det._chart_limit).all()
    flags = [det.step(rng.normal(size=2), learn=False)[1] for _ in range(2000)]
    assert np.mean(flags) < 0.02
    drift = AssetT2Q(2, np.zeros(2), 200, 1.0, 0.99, 1.0, drift_share=0.3, drift_alpha=0.05, chart_alpha=0.1)
    walk = np.cumsum(np.random.default_rng(3).normal(size=200))
    for i in range(200):
        drift.step(np.array([walk[i], rng.normal()]), learn=True)
    assert drift.drifting.tolist() == [True, False]
    assert drift._chart_limit[0] == math.inf and math.isfinite(drift._chart_limit[1])


def test_contributions_rank_by_the_statistic_that_decided_the_score() -> None:
    det, rng = _noise_detector(0.1, seed=4)
    for _ in range(100):
        det.step(np.array([2.0, 0.0]) + 0.1 * rng.normal(size=2), learn=False)
    det.step(np.array([2.0, 2.5]), learn=False)  # tag 1 further off this tick; tag 0's chart decides
    assert abs(det.last_u[1]) > abs(det.last_u[0])
    assert det.last_chart[0] > max(det.last_t2 / det.ucl_t2, 1.0)
    assert np.argmax(det.contributions) == 0
    plain, rng = _noise_detector(0.0, seed=4)
    plain.step(np.array([2.0, 2.5]), learn=False)
    assert np.argmax(plain.contributions) == 1  # without charts: the largest deviation


def test_a_constant_warm_up_tag_gets_a_chart_limit_at_its_resolution_not_zero() -> None:
    """A set point or a closed valve, constant through the warm-up, has a chart of zeros there;
    its limit is the chart of white noise at its resolution, not zero: a lasting one-step change
    (u = 1) stays inside it, a change of several steps does not."""
    rng = np.random.default_rng(5)
    det = AssetT2Q(2, np.array([0.1, 0.1]), 400, 1.0, 0.99, 3.0, chart_alpha=0.1, chart_factor=3.0)
    for _ in range(400):
        det.step(np.array([rng.normal(), 2.0]), learn=True)
    assert 1.0 < det._chart_limit[1] < 3.0  # 3 × 2.576 × √(0.1/1.9) ≈ 1.77
    for _ in range(200):
        det.step(np.array([rng.normal(), 2.1]), learn=False)
    assert 0.5 < det.last_chart[1] < 1.0
    for _ in range(200):
        det.step(np.array([rng.normal(), 2.3]), learn=False)
    assert det.last_chart[1] > 1.5


def test_t2_of_a_constant_warm_up_tag_sees_a_one_resolution_move_as_one_sigma() -> None:
    """The resolution floor joins the covariance's diagonal before the correlation: the constant
    tag correlates with itself like any tag, so its component's variance is its resolution's
    (a move of one step is u = 1, inside T²'s limit) instead of the ridge (u = 1 was a ~1000×
    surprise and flagged for good).  A move of many steps is still flagged."""
    rng = np.random.default_rng(6)
    det = AssetT2Q(2, np.array([0.1, 0.1]), 400, 1.0, 0.99, 3.0)
    for _ in range(400):
        det.step(np.array([rng.normal(), 2.0]), learn=True)
    assert det._inv_eigen.max() < 2.0  # every component has about unit variance, no ridge-sized one
    one_step = [det.step(np.array([rng.normal(), 2.1]), learn=False)[1] for _ in range(200)]
    assert sum(one_step) <= 2  # ~the noise tag's own rate (the limit is 3× its 99 % quantile)
    assert det.step(np.array([0.0, 3.0]), learn=False)[1]  # ten steps: flagged
