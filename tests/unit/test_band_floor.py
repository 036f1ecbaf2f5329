"""The model's band floor from damped Holt's band on the same context (``forecast.model_band_floor_holt``)."""

from __future__ import annotations

import numpy as np
import pytest

from sentinelle.errors import ModelError
from sentinelle.evaluation.replay import cache_stem
from sentinelle.forecast import SHIPPED_CHECKPOINT, make_forecaster
from sentinelle.forecast.band_floor import floor_band, holt_band
from sentinelle.forecast.base import normal_quantiles
from sentinelle.forecast.baselines import HoltForecaster
from sentinelle.forecast.engine import ModelForecaster
from sentinelle.settings import ForecastSettings

LEVELS = (0.1, 0.2, 0.5, 0.8, 0.9)
Z90 = 1.2815515655446004


def daily_spikes(n: int = 512, period: int = 288, seed: int = 0) -> np.ndarray:
    """A quiet tag (noise 0.01 around 1) with a 1.4 spike every ``period`` steps, the next one due now: the
    last one is ``period`` steps back, older than the newest 256 (the model's smoothing window)."""
    rng = np.random.default_rng(seed)
    x = 1.0 + 0.01 * rng.standard_normal(n)
    x[n - period :: -period] += 1.4
    return x


def narrow_band(x: np.ndarray, recent: int = 256) -> np.ndarray:
    """A stand-in for the model's collapsed band: the last value ± the newest ``recent`` steps' change spread."""
    sigma = np.std(np.diff(x[:, -recent:], axis=1), axis=1)
    return normal_quantiles(x[:, -1:], sigma[:, None], LEVELS)


def test_each_level_is_pushed_out_to_the_factor_of_holts_distance_and_the_median_kept() -> None:
    q = np.array([[[9.0], [9.5], [10.0], [10.5], [11.0]]])
    h = np.array([[[0.0], [2.0], [5.0], [8.0], [10.0]]])
    out = floor_band(q, h, LEVELS, 1.0)[0, :, 0]
    assert out.tolist() == [5.0, 7.0, 10.0, 13.0, 15.0]  # Holt's distances, around the model's median
    half = floor_band(q, h, LEVELS, 0.2)[0, :, 0]
    assert half.tolist() == [9.0, 9.4, 10.0, 10.6, 11.0]  # only the levels narrower than 0.2 x Holt's move
    assert floor_band(q, h, LEVELS, 0.0) is q
    assert (np.diff(floor_band(q, h[:, ::-1] * 0 + h, LEVELS, 3.0), axis=1) >= 0).all()  # order kept


def test_no_holt_band_leaves_the_models_band_alone() -> None:
    q = np.array([[[9.0], [9.5], [10.0], [10.5], [11.0]]])
    nan = np.full_like(q, np.nan)
    np.testing.assert_array_equal(floor_band(q, nan, LEVELS, 1.0), q)
    flat = np.full((1, 512), 3.0)  # a flat context: Holt's band is 0, nothing to floor with
    np.testing.assert_array_equal(floor_band(q, holt_band(flat, LEVELS, 1, HoltForecaster(LEVELS, 1)), LEVELS, 1.0), q)


def test_a_daily_spike_older_than_the_newest_256_steps_widens_the_band_and_shrinks_the_next_spikes_z() -> None:
    x = daily_spikes()[None, :]
    q = narrow_band(x)
    holt = holt_band(x, LEVELS, 1, HoltForecaster(LEVELS, 1))
    floored = floor_band(q, holt, LEVELS, 1.0)
    spike = x[0, -1] + 1.4
    z_before = (spike - q[0, 2, 0]) / ((q[0, 4, 0] - q[0, 0, 0]) / (2 * Z90))
    z_after = (spike - floored[0, 2, 0]) / ((floored[0, 4, 0] - floored[0, 0, 0]) / (2 * Z90))
    assert z_before > 60  # the collapsed band: the calm stretch's own spread
    assert z_after < z_before / 4  # the context's record of spikes is back in the band
    # A quiet tag without spikes in its context: Holt's band is as narrow, the floor at 1 barely moves it.
    quiet = daily_spikes()[None, :]
    quiet[0, :] = 1.0 + 0.01 * np.random.default_rng(1).standard_normal(512)
    qq = narrow_band(quiet)
    ratio = (floor_band(qq, holt_band(quiet, LEVELS, 1, HoltForecaster(LEVELS, 1)), LEVELS, 1.0)[0, 4, 0] - 1) / (
        qq[0, 4, 0] - 1
    )
    assert ratio < 1.2


def test_the_model_forecaster_applies_it_as_its_public_floor_band_does_and_the_cache_is_named() -> None:
    x = np.stack([daily_spikes(seed=s) for s in range(3)])
    off = ModelForecaster(SHIPPED_CHECKPOINT, LEVELS, 4, device="cpu")
    on = make_forecaster(ForecastSettings(quantile_levels=LEVELS, horizon_steps=4, model_band_floor_holt=0.75))
    assert isinstance(on, ModelForecaster) and on.band_floor_holt == 0.75
    raw, floored = off.forecast(x), on.forecast(x)
    np.testing.assert_allclose(floored, on.floor_band(raw, x), rtol=1e-9)  # the cache path floors the same way
    np.testing.assert_allclose(floored[:, 2], raw[:, 2])  # median kept
    assert ((floored[:, 4] - floored[:, 0]) > 1.5 * (raw[:, 4] - raw[:, 0]))[:, 0].all()  # the spikes widen it
    np.testing.assert_array_equal(off.floor_band(raw, x), raw)  # off: untouched
    with pytest.raises(ModelError, match="band_floor_holt"):
        ModelForecaster(SHIPPED_CHECKPOINT, LEVELS, 4, device="cpu", band_floor_holt=-1.0)
    assert cache_stem("model") == "model-ls0.75-share0.75x4"


def test_the_cache_stem_names_the_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "sentinelle.evaluation.replay.ForecastSettings", lambda: ForecastSettings(model_band_floor_holt=0.5)
    )
    assert cache_stem("model") == "model-ls0.75-share0.75x4-holtfloor0.5"
    assert ForecastSettings().model_band_floor_holt == 0.0  # ships off
