"""The RLS virtual sensor (forecast/virtual_sensor.py): learns a coupling online, survives gaps, follows a change."""

from __future__ import annotations

import numpy as np
import pytest

from sentinelle.forecast.virtual_sensor import VirtualSensor, gaussian_quantiles


def coupled(n: int, gain: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = np.zeros(n)  # a slowly wandering driver (AR(1), φ 0.99)
    for t in range(1, n):
        a[t] = 0.99 * a[t - 1] + rng.normal(0, 1)
    b = rng.normal(0, 1, n)
    y = gain * a - b + 10 + rng.normal(0, 0.1, n)
    return np.stack([a, b, y], axis=1)


def test_it_learns_the_coupling_and_estimates_before_seeing_the_value() -> None:
    x = coupled(3000)
    est, sigma = VirtualSensor(3, warmup=100).run(x)
    assert np.isnan(est[:99]).all()
    err = np.abs(est[1000:, 2] - x[1000:, 2])
    assert err.mean() < 0.2  # noise σ 0.1: the regression, not a copy of the value
    assert 0.05 < np.nanmedian(sigma[1000:, 2]) < 0.3
    # Prequential: changing row t's own value does not change row t's estimate.
    y = x.copy()
    y[2000, 2] += 100.0
    est2, _ = VirtualSensor(3, warmup=100).run(y)
    assert est2[2000, 2] == est[2000, 2]


def test_gaps_are_held_and_skipped() -> None:
    x = coupled(3000)
    x[1500:1510, 0] = np.nan
    x[1600:1700, 2] = np.nan
    est, _ = VirtualSensor(3, warmup=100).run(x)
    assert np.isfinite(est[1000:]).all()
    assert np.abs(est[2500:, 2] - x[2500:, 2]).mean() < 0.2


def test_forgetting_follows_a_changed_gain() -> None:
    x = np.concatenate([coupled(3000, 2.0), coupled(5000, -1.0, seed=1)])
    est, _ = VirtualSensor(3, warmup=100).run(x)
    assert np.abs(est[7000:, 2] - x[7000:, 2]).mean() < 0.5  # 4 memories after the change
    frozen, _ = VirtualSensor(3, forgetting=1.0, warmup=100).run(x)
    assert np.abs(frozen[7000:, 2] - x[7000:, 2]).mean() > 2.0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="2 tags"):
        VirtualSensor(1)
    with pytest.raises(ValueError, match="rows of 3"):
        VirtualSensor(3).run(np.zeros((10, 2)))


def test_gaussian_quantiles_are_symmetric() -> None:
    q = gaussian_quantiles(np.array([0.0, 5.0]), np.array([1.0, 2.0]), (0.1, 0.5, 0.9))
    assert q.shape == (2, 3)
    np.testing.assert_allclose(q[:, 0] + q[:, 2], 2 * q[:, 1])
    np.testing.assert_allclose(q[1, 2] - q[1, 1], 2.0 * 1.2815515655446004)
