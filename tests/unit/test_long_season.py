"""The model's inference-time mixing: the long-season expert (forecast/long_season.py) and the smoothing share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sentinelle.errors import ModelError
from sentinelle.evaluation.replay import SharedForecasters
from sentinelle.forecast import SHIPPED_CHECKPOINT, make_forecaster
from sentinelle.forecast.engine import SHIPPED_LONG_SEASON, SHIPPED_SMOOTHING_SHARE, ModelForecaster
from sentinelle.forecast.long_season import LongSeason, blend, long_season_expert
from sentinelle.records import FloatArray
from sentinelle.settings import ForecastSettings

from .model_helpers import forecast_with, small_model

LEVELS = (0.1, 0.5, 0.9)


def _cycles(n: int = 4, length: int = 512, seed: int = 0) -> tuple[FloatArray, FloatArray]:
    """Windows of a noisy cycle of 120..200 steps on a level, and their next 64 steps."""
    rng = np.random.default_rng(seed)
    t = np.arange(length + 64)[None, :]
    period = rng.integers(120, 200, (n, 1))
    x = 10.0 + 3.0 * np.sin(2 * np.pi * t / period) + rng.normal(0, 0.05, (n, length + 64))
    return x[:, :length], x[:, length:]


def test_a_long_cycle_is_copied_forward_with_weight_growing_to_the_ramp() -> None:
    x, future = _cycles()
    forecast, weight = long_season_expert(x, 64)
    assert np.abs(forecast - future).mean() < 0.2  # the cycle, not the flat level (error ~2)
    assert np.abs(x[:, -14:].mean(1, keepdims=True) - future).mean() > 1.0
    s = LongSeason()
    assert (weight <= s.weight + 1e-12).all() and (weight[:, s.ramp_steps - 1 :] > 0.3).all()
    assert (weight[:, 0] < weight[:, s.ramp_steps - 1] / 5).all()  # the model keeps the first steps


def test_white_noise_and_short_or_empty_windows_get_no_weight() -> None:
    noise = np.random.default_rng(1).normal(0, 1, (20, 512))
    # A lagged copy of noise is worse than its level: no weight, but for the backtest's chance wins.
    assert long_season_expert(noise, 64)[1].mean() < 0.03
    short, _ = _cycles(length=200)  # no lag ≥ 65 leaves a horizon and 16 backtests in 200 steps
    forecast, weight = long_season_expert(short, 64)
    assert np.isnan(forecast).all() and (weight == 0).all()
    x, _ = _cycles()
    x[0] = np.nan
    x[1, 300:340] = np.nan  # a gap where the level a cycle ago lies: no expert for that row (the model alone)
    x[2, 100:110] = np.nan  # a gap in the backtest only: skipped, not a crash or a warning (filterwarnings = error)
    forecast, weight = long_season_expert(x, 64)
    assert (weight[:2] == 0).all() and np.isnan(forecast[:2]).all()
    assert np.isfinite(forecast[2:]).all() and (weight[2:, 16:] > 0.3).all()
    assert (long_season_expert(x, 64, LongSeason(weight=0.0))[1] == 0).all()


def test_blend_moves_every_quantile_by_the_same_step() -> None:
    rng = np.random.default_rng(2)
    q = np.sort(rng.normal(size=(3, 3, 8)), axis=1)
    f = rng.normal(size=(3, 8))
    w = rng.uniform(0, 1, (3, 8))
    out = blend(q, f, w, 1)
    np.testing.assert_allclose(out[:, 1], (1 - w) * q[:, 1] + w * f)
    np.testing.assert_allclose(np.diff(out, axis=1), np.diff(q, axis=1))
    np.testing.assert_array_equal(blend(q, f, np.zeros_like(w), 1), q)


def test_the_smoothing_share_mixes_the_smoothing_answer_into_the_median() -> None:
    model = small_model(smoothing_max_period=8, smoothing_window=32, analog_window=8)
    x, _ = _cycles(3, 128)
    before = forecast_with(model, x)
    model.smoothing_share = torch.tensor([1.0, 0.5])
    shared = forecast_with(model, x)
    model.smoothing_share = torch.ones(16)
    smooth = forecast_with(model, x)
    model.smoothing_share = None
    np.testing.assert_array_equal(forecast_with(model, x), before)
    assert not np.allclose(smooth[:, 1], before[:, 1])
    np.testing.assert_allclose(shared[:, 1, 0], smooth[:, 1, 0], rtol=1e-5)  # step 1: the smoothing answer
    np.testing.assert_allclose(shared[:, 1, 1], (before[:, 1, 1] + smooth[:, 1, 1]) / 2, rtol=1e-4)
    np.testing.assert_allclose(shared[:, :, 2:], before[:, :, 2:], rtol=1e-6)  # beyond the list: the gates
    # The spread rides with the median.
    np.testing.assert_allclose(np.diff(shared, axis=1), np.diff(before, axis=1), rtol=1e-4, atol=1e-5)


def test_the_shipped_forecaster_uses_the_mixing_and_its_steps_do_not_depend_on_the_horizon() -> None:
    x, future = _cycles(3)
    full = ModelForecaster(SHIPPED_CHECKPOINT, LEVELS, 64, device="cpu")
    short = ModelForecaster(SHIPPED_CHECKPOINT, LEVELS, 16, device="cpu")
    off = ModelForecaster(
        SHIPPED_CHECKPOINT, LEVELS, 64, device="cpu", long_season=LongSeason(weight=0.0), smoothing_share=()
    )
    q, q_off = full.forecast(x), off.forecast(x)
    np.testing.assert_allclose(short.forecast(x), q[:, :, :16], rtol=1e-6)
    assert np.abs(q[:, 1] - future).mean() < np.abs(q_off[:, 1] - future).mean()
    with pytest.raises(ModelError, match="smoothing_share"):
        ModelForecaster(SHIPPED_CHECKPOINT, LEVELS, 16, device="cpu", smoothing_share=(1.5,))


def test_the_settings_default_to_the_shipped_mixing_and_reach_the_forecaster() -> None:
    settings = ForecastSettings()
    assert settings.model_long_season_weight == SHIPPED_LONG_SEASON.weight
    assert settings.model_smoothing_share == SHIPPED_SMOOTHING_SHARE
    f = make_forecaster(ForecastSettings(model_long_season_weight=0.0, model_smoothing_share=(0.5,)))
    assert isinstance(f, ModelForecaster) and f.long_season.weight == 0.0
    assert f.model.smoothing_share is not None and f.model.smoothing_share.tolist() == [0.5]
    with pytest.raises(ValueError, match="model_smoothing_share"):
        ForecastSettings(model_smoothing_share=(-0.1,))


def test_replay_caches_of_the_model_name_its_mixing(tmp_path: Path) -> None:
    """A model cache written before the mixing (``<run>-model.pkl``) is not read back as today's answers."""
    shared = SharedForecasters(tmp_path)
    shared.begin("run-a")
    assert shared._path("model") == tmp_path / "run-a-model-ls0.75-share0.75x4.pkl"
    assert shared._path("holt") == tmp_path / "run-a-holt.pkl"
