"""The statistical experts beside the model (forecast/stat_experts.py), on hand-made series, and their mixing."""

from __future__ import annotations

import numpy as np
import pytest

from sentinelle.errors import ModelError
from sentinelle.evaluation.replay import cache_stem
from sentinelle.forecast import SHIPPED_CHECKPOINT, make_forecaster
from sentinelle.forecast.engine import SHIPPED_STAT_EXPERT, ModelForecaster
from sentinelle.forecast.long_season import LongSeason
from sentinelle.forecast.stat_experts import StatExpert, deseasonalise, fill_gaps, season_of, stat_expert
from sentinelle.settings import ForecastSettings

LEVELS = (0.1, 0.5, 0.9)
ON = 1.0


def test_every_kind_keeps_a_flat_series_flat() -> None:
    x = np.full((2, 200), 7.5)
    for kind in ("ses", "damped", "theta", "ar"):
        np.testing.assert_allclose(stat_expert(x, 8, StatExpert(kind=kind, weight=ON)), 7.5, atol=1e-6)


def test_a_line_is_continued_by_the_damped_family_and_half_of_it_by_theta() -> None:
    t = np.arange(300.0)
    x = (2.0 + 0.5 * t)[None, :]
    future = 2.0 + 0.5 * (300 + np.arange(10))
    damped = stat_expert(x, 10, StatExpert(kind="damped", weight=ON))[0]
    rise = damped - x[0, -1]
    assert (np.diff(rise) > 0).all() and 0.5 * 5.0 < rise[-1] < 5.0  # a damped trend: most of the line's rise
    assert np.abs(damped - future).mean() < 0.5 * np.abs(x[0, -1] - future).mean()  # far better than flat
    theta = stat_expert(x, 10, StatExpert(kind="theta", weight=ON))[0]
    # SES (α = 1: the last value) plus half the slope per step: the Theta method's known halving of a trend.
    np.testing.assert_allclose(theta, x[0, -1] + 0.25 * np.arange(1, 11), atol=1e-6)
    ses = stat_expert(x, 10, StatExpert(kind="ses", weight=ON))[0]
    np.testing.assert_allclose(ses, x[0, -1], atol=1e-6)  # flat


def test_a_weekly_cycle_is_taken_out_before_smoothing_and_put_back() -> None:
    pattern = np.array([5.0, 6.0, 6.5, 6.0, 5.5, 2.0, 1.5])
    x = np.tile(pattern, 60)[None, :]  # 420 steps, ends on the pattern's last day
    assert season_of(x, 64)[0] % 7 == 0  # the highest autocorrelation peak: 7 or a multiple (all equal here)
    plain, _ = deseasonalise(x, 14, 64)
    assert np.ptp(plain[0, 20:]) < 1e-9  # nothing left but the level
    for kind in ("ses", "damped", "theta"):
        f = stat_expert(x, 14, StatExpert(kind=kind, weight=ON))[0]
        np.testing.assert_allclose(f, np.tile(pattern, 2), atol=1e-6)


def test_noise_has_no_season() -> None:
    x = np.random.default_rng(0).normal(0, 1, (3, 512))
    assert season_of(x, 64).tolist() == [1, 1, 1]


def test_the_ar_expert_follows_a_damped_oscillation_that_smoothing_flattens() -> None:
    rng = np.random.default_rng(1)
    b, n = 20, 600
    y = np.zeros((b, n))
    for i in range(2, n):  # an AR(2) with complex roots: a control loop ringing around its set point
        y[:, i] = 1.6 * y[:, i - 1] - 0.8 * y[:, i - 2] + rng.normal(0, 0.1, b)
    x, future = y[:, :512], y[:, 512:528]
    ar = stat_expert(x, 16, StatExpert(kind="ar", weight=ON))
    ses = stat_expert(x, 16, StatExpert(kind="ses", weight=ON))
    truth = np.zeros((b, 18))
    truth[:, :2] = y[:, 510:512]
    for i in range(2, 18):  # the noise-free continuation
        truth[:, i] = 1.6 * truth[:, i - 1] - 0.8 * truth[:, i - 2]
    assert np.abs(ar - truth[:, 2:]).mean() < 0.5 * np.abs(ses - truth[:, 2:]).mean()
    assert np.abs(ar - future).mean() < np.abs(ses - future).mean()


def test_gaps_are_bridged_and_rows_without_data_get_no_answer() -> None:
    np.testing.assert_allclose(fill_gaps(np.array([[1.0, np.nan, np.nan, 4.0, np.nan]]))[0], [1, 2, 3, 4, 4])
    t = np.arange(512.0)
    x = np.tile(10.0 + np.sin(2 * np.pi * t / 24), (3, 1))
    x[0, 100:200:7] = np.nan  # SKAB-like missing steps
    x[1, :300] = np.nan  # a short context
    x[2] = np.nan  # nothing at all
    for kind in ("ses", "damped", "theta", "ar"):
        f = stat_expert(x, 16, StatExpert(kind=kind, weight=ON))
        assert np.isfinite(f[:2]).all() and np.isnan(f[2]).all(), kind
        assert np.abs(f[0] - (10.0 + np.sin(2 * np.pi * (512 + np.arange(16)) / 24))).max() < 0.2, kind


def test_weight_zero_is_off() -> None:
    assert SHIPPED_STAT_EXPERT.weight == 0.0
    assert np.isnan(stat_expert(np.ones((1, 100)), 4, StatExpert(kind="ses", weight=0.0))).all()


def test_the_forecaster_moves_every_quantile_by_the_experts_share_of_its_distance() -> None:
    t = np.arange(512.0)
    x = np.stack([20.0 + 0.02 * t + np.sin(2 * np.pi * t / 12), np.full(512, 3.0)])
    no_ls = LongSeason(weight=0.0)
    off = ModelForecaster(SHIPPED_CHECKPOINT, LEVELS, 16, device="cpu", long_season=no_ls).forecast(x)
    expert = StatExpert(kind="damped", weight=0.3)
    on = ModelForecaster(SHIPPED_CHECKPOINT, LEVELS, 16, device="cpu", long_season=no_ls, stat_expert=expert).forecast(
        x
    )
    e = stat_expert(x, 64, StatExpert(kind="damped", weight=ON))[:, :16]
    np.testing.assert_allclose(on[:, 1], off[:, 1] + 0.3 * (e - off[:, 1]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(on[:, 2] - on[:, 0], off[:, 2] - off[:, 0], rtol=1e-6, atol=1e-6)  # spread kept
    with pytest.raises(ModelError, match="stat_expert"):
        ModelForecaster(SHIPPED_CHECKPOINT, LEVELS, 16, device="cpu", stat_expert=StatExpert(weight=1.5))


def test_the_settings_reach_the_forecaster_and_name_the_replay_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    s = ForecastSettings()
    assert s.model_stat_expert_weight == 0.0 and s.model_long_season_level_steps == 14
    f = make_forecaster(
        ForecastSettings(model_stat_expert="ar", model_stat_expert_weight=0.2, model_long_season_level_steps=56)
    )
    assert isinstance(f, ModelForecaster)
    assert f.stat_expert == StatExpert(kind="ar", weight=0.2) and f.long_season.level_steps == 56
    with pytest.raises(ValueError):
        ForecastSettings(model_stat_expert_weight=1.2)
    assert cache_stem("model") == "model-ls0.75-share0.75x4"
    changed = ForecastSettings(model_stat_expert_weight=0.2, model_long_season_level_steps=56)
    monkeypatch.setattr("sentinelle.evaluation.replay.ForecastSettings", lambda: changed)
    assert cache_stem("model") == "model-ls0.75-level56-share0.75x4-theta0.2"
