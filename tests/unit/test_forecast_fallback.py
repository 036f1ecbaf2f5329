"""The batcher's fallback: per row for non-finite answers, per call with a retry after a back-off."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from sentinelle.forecast import NaiveForecaster
from sentinelle.forecast.batcher import ForecastBatcher
from sentinelle.metrics import Metrics
from sentinelle.records import FloatArray
from sentinelle.settings import ForecastSettings

LEVELS: tuple[float, ...] = (0.1, 0.5, 0.9)
HORIZON = 4


class _Flaky:
    """A constant forecast of 100.0; NaN for the rows listed in ``nan_rows``; raises while ``failing``."""

    name = "flaky"
    levels = LEVELS
    horizon = HORIZON

    def __init__(self) -> None:
        self.failing = False
        self.nan_rows: list[int] = []
        self.calls = 0

    def forecast(self, contexts: FloatArray, assets: object = None) -> FloatArray:
        self.calls += 1
        if self.failing:
            raise RuntimeError("CUDA error: device-side assert")
        out = np.full((contexts.shape[0], len(LEVELS), HORIZON), 100.0)
        out[self.nan_rows, 1, 2] = np.inf
        out[~np.isfinite(contexts).any(axis=1)] = np.nan  # no data, no forecast (as every forecaster does)
        return out


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _contexts(n: int) -> FloatArray:
    ctx = np.tile(np.arange(16, dtype=np.float64), (n, 1)) + np.arange(n)[:, None]
    return ctx


def _batcher(**settings: float) -> tuple[ForecastBatcher, _Flaky, _Clock, Metrics]:
    m = Metrics(CollectorRegistry())
    flaky, clock = _Flaky(), _Clock()
    s = ForecastSettings(horizon_steps=HORIZON, **settings)  # type: ignore[arg-type]
    return ForecastBatcher(flaky, s, m, NaiveForecaster(LEVELS, HORIZON), clock=clock), flaky, clock, m


def _value(m: Metrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return m.registry.get_sample_value(name, labels or {})


def test_non_finite_rows_get_the_baselines_forecast_and_the_others_keep_the_model(
    caplog: pytest.LogCaptureFixture,
) -> None:
    b, flaky, _, m = _batcher()
    flaky.nan_rows = [1, 3]
    ctx = _contexts(5)
    with caplog.at_level(logging.WARNING, logger="sentinelle.forecast.batcher"):
        q, name = b.predict(ctx, ["a", "b", "c", "d", "e"])
    assert name == "flaky"  # the call was the model's
    naive = NaiveForecaster(LEVELS, HORIZON).forecast(ctx)
    np.testing.assert_array_equal(q[[1, 3]], naive[[1, 3]])
    assert (q[[0, 2, 4]] == 100.0).all()
    assert _value(m, "sentinelle_forecast_fallback_rows_total", {"forecaster": "flaky"}) == 2
    assert _value(m, "sentinelle_forecast_fallback_active") == 0
    assert _value(m, "sentinelle_forecaster_active", {"forecaster": "flaky"}) == 1
    assert "2 of 5 windows" in caplog.text and "'b'" in caplog.text


def test_a_window_without_data_keeps_its_nan_row_uncounted() -> None:
    b, _, _, m = _batcher()
    ctx = _contexts(2)
    ctx[0] = np.nan
    q, _ = b.predict(ctx)
    assert (q[1] == 100.0).all() and np.isnan(q[0]).all()
    assert _value(m, "sentinelle_forecast_fallback_rows_total", {"forecaster": "flaky"}) == 0


def test_a_failing_forecaster_is_replaced_then_retried_after_the_back_off(caplog: pytest.LogCaptureFixture) -> None:
    b, flaky, clock, m = _batcher(fallback_retry_s=60.0, fallback_retry_max_s=200.0)
    ctx = _contexts(3)
    flaky.failing = True
    with caplog.at_level(logging.ERROR, logger="sentinelle.forecast.batcher"):
        q, name = b.predict(ctx)
    assert name == "naive" and b.active == "naive"
    np.testing.assert_array_equal(q, NaiveForecaster(LEVELS, HORIZON).forecast(ctx))
    assert "tried again in 60 s" in caplog.text
    assert _value(m, "sentinelle_forecast_errors_total", {"forecaster": "flaky"}) == 1
    assert _value(m, "sentinelle_forecast_fallback_active") == 1
    assert _value(m, "sentinelle_forecaster_active", {"forecaster": "naive"}) == 1
    assert _value(m, "sentinelle_forecaster_active", {"forecaster": "flaky"}) == 0

    # Within the back-off the forecaster is not called at all.
    calls = flaky.calls
    clock.now += 59.0
    assert b.predict(ctx)[1] == "naive" and flaky.calls == calls

    # After it, one retry; still failing: the wait doubles (60 → 120 s), then is capped (200 s).
    clock.now += 1.0
    assert b.predict(ctx)[1] == "naive" and flaky.calls == calls + 1
    clock.now += 119.0
    assert b.predict(ctx)[1] == "naive" and flaky.calls == calls + 1
    clock.now += 1.0
    assert b.predict(ctx)[1] == "naive" and flaky.calls == calls + 2
    assert "tried again in 200 s" in caplog.text
    assert _value(m, "sentinelle_forecast_errors_total", {"forecaster": "flaky"}) == 3

    # Mended: the next retry brings it back, gauges say so, and the back-off starts afresh.
    flaky.failing = False
    clock.now += 200.0
    q, name = b.predict(ctx)
    assert name == "flaky" and b.active == "flaky" and (q == 100.0).all()
    assert _value(m, "sentinelle_forecast_fallback_active") == 0
    assert _value(m, "sentinelle_forecaster_active", {"forecaster": "flaky"}) == 1
    assert _value(m, "sentinelle_forecaster_active", {"forecaster": "naive"}) == 0
    flaky.failing = True
    b.predict(ctx)
    assert caplog.records[-1].getMessage().endswith("tried again in 60 s")
