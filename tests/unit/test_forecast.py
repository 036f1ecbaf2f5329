"""Baseline forecasters and the batcher: shapes, quantile order, batch independence, fallback."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from sentinelle.errors import ModelError
from sentinelle.forecast import HoltForecaster, NaiveForecaster, make_forecaster
from sentinelle.forecast.batcher import MIN_PROBE_ROWS, ForecastBatcher
from sentinelle.metrics import Metrics
from sentinelle.records import FloatArray, ForecastBatch, WindowBatch
from sentinelle.settings import ForecastSettings

LEVELS: tuple[float, ...] = (0.1, 0.5, 0.9)


def _contexts(n: int = 6, length: int = 64, seed: int = 0) -> FloatArray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    base = rng.normal(0, 5, size=(n, 1)) + np.sin(t / 5.0)[None, :] + rng.normal(0, 0.1, size=(n, length))
    if n >= 4:
        base[1, 10:20] = np.nan
        base[2, :] = 3.0  # flat
        base[3, :] = np.nan  # no history
    return base


@pytest.mark.parametrize("f", [NaiveForecaster(LEVELS, 8), NaiveForecaster(LEVELS, 8, 10), HoltForecaster(LEVELS, 8)])
def test_shapes_order_and_independence(f: NaiveForecaster | HoltForecaster) -> None:
    ctx = _contexts()
    q = f.forecast(ctx)
    assert q.shape == (6, 3, 8)
    ok = np.isfinite(q).all(axis=(1, 2))
    assert ok.tolist() == [True, True, True, False, True, True]
    assert (np.diff(q[ok], axis=1) >= 0).all(), "quantiles must not cross"
    # Each row alone gives the same forecast as in the batch.
    for i in (0, 1, 4):
        np.testing.assert_allclose(f.forecast(ctx[i : i + 1])[0], q[i])
    # A flat window gives its value with zero spread.
    np.testing.assert_allclose(q[2, 1], 3.0)


def test_holt_follows_a_trend() -> None:
    ctx = np.arange(100, dtype=float)[None, :] * 0.5
    q = HoltForecaster(LEVELS, 4, alpha=0.5, beta=0.3, damping=1.0).forecast(ctx)
    np.testing.assert_allclose(q[0, 1], [50.0, 50.5, 51.0, 51.5], atol=0.05)


def test_seasonal_naive_repeats_the_season() -> None:
    ctx = np.tile(np.array([1.0, 2.0, 3.0, 4.0]), 8)[None, :]
    q = NaiveForecaster(LEVELS, 6, season_steps=4).forecast(ctx)
    assert q[0, 1].tolist() == [1.0, 2.0, 3.0, 4.0, 1.0, 2.0]


def _window(n: int, ts: float = 0.0) -> WindowBatch:
    ctx = _contexts(n, 32, seed=int(ts))
    return WindowBatch(
        ts=ts,
        period_s=1.0,
        tags=tuple(f"t{i}" for i in range(n)),
        assets=("a",) * n,
        values=ctx[:, -1],
        contexts=ctx,
    )


async def _run_batcher(b: ForecastBatcher, windows: list[WindowBatch]) -> list[ForecastBatch]:
    inbox: asyncio.Queue[WindowBatch | None] = asyncio.Queue()
    outbox: asyncio.Queue[ForecastBatch | None] = asyncio.Queue()
    for w in windows:
        inbox.put_nowait(w)
    inbox.put_nowait(None)
    async with asyncio.timeout(10):
        await b.run(inbox, outbox)
    out = []
    while (item := outbox.get_nowait()) is not None:
        out.append(item)
    return out


@pytest.mark.asyncio
async def test_batcher_groups_and_splits_back() -> None:
    m = Metrics(CollectorRegistry())
    settings = ForecastSettings(forecaster="holt", horizon_steps=4, max_batch=5, max_wait_ms=50)
    f = make_forecaster(settings)
    windows = [_window(3, 1.0), _window(4, 2.0), _window(2, 3.0)]
    out = await _run_batcher(ForecastBatcher(f, settings, m), windows)
    assert [o.window for o in out] == windows
    for o in out:
        np.testing.assert_allclose(o.quantiles, f.forecast(o.window.contexts), equal_nan=True)
    # 9 rows with max_batch 5: never a call above 5 rows.
    assert (m.registry.get_sample_value("sentinelle_forecast_batch_size_count") or 0) >= 2
    assert m.registry.get_sample_value("sentinelle_forecast_batch_size_bucket", {"le": "4.0"}) is not None


class _Broken:
    name = "broken"
    levels = LEVELS
    horizon = 4

    def forecast(self, contexts: FloatArray, assets: object = None) -> FloatArray:
        raise RuntimeError("weights corrupt")


@pytest.mark.asyncio
async def test_batcher_falls_back_to_a_baseline() -> None:
    m = Metrics(CollectorRegistry())
    settings = ForecastSettings(horizon_steps=4)
    fallback = NaiveForecaster(LEVELS, 4)
    out = await _run_batcher(ForecastBatcher(_Broken(), settings, m, fallback), [_window(3, 1.0)])
    assert out[0].forecaster == "naive"
    assert m.registry.get_sample_value("sentinelle_forecast_errors_total", {"forecaster": "broken"}) == 1
    assert m.registry.get_sample_value("sentinelle_forecaster_active", {"forecaster": "naive"}) == 1


class _Slow:
    """The naive forecaster, 50 ms a call: far slower than a 10 ms tick."""

    name = "slow"
    levels = LEVELS
    horizon = 4

    def forecast(self, contexts: FloatArray, assets: object = None) -> FloatArray:
        time.sleep(0.05)
        return NaiveForecaster(LEVELS, 4).forecast(contexts)


@pytest.mark.asyncio
@pytest.mark.parametrize("period_s", [0.01, 1.0])
async def test_a_batcher_falling_behind_counts_and_says_so(period_s: float, caplog: pytest.LogCaptureFixture) -> None:
    m = Metrics(CollectorRegistry())
    settings = ForecastSettings(horizon_steps=4, max_batch=3, max_wait_ms=0)
    windows = [dataclasses.replace(_window(3, float(t)), period_s=period_s) for t in range(1, 5)]
    with caplog.at_level(logging.WARNING, logger="sentinelle.forecast.batcher"):
        out = await _run_batcher(ForecastBatcher(_Slow(), settings, m), windows)
    assert [o.window for o in out] == windows  # late, but nothing lost
    overruns = m.registry.get_sample_value("sentinelle_forecast_overruns_total", {"forecaster": "slow"}) or 0
    warnings = [r.getMessage() for r in caplog.records if "falling behind" in r.getMessage()]
    if period_s == 1.0:  # 50 ms for a 1 s tick: keeping up
        assert overruns == 0 and not warnings
    else:  # each 3-row pass (max_batch 3) takes 50 ms for 10 ms of ticks while more windows wait
        assert overruns >= 3
        assert len(warnings) == 1, "logged once per interval, not once per pass"
        assert "refresh_every_steps (now 1; about 4 would fit)" in warnings[0]


@pytest.mark.asyncio
async def test_the_start_up_probe_names_an_undersized_configuration(caplog: pytest.LogCaptureFixture) -> None:
    m = Metrics(CollectorRegistry())
    settings = ForecastSettings(horizon_steps=16, refresh_every_steps=2)
    with caplog.at_level(logging.INFO, logger="sentinelle.forecast.batcher"):
        # _Slow: 50 ms a call, so 8 probe rows give about 160 windows/s.
        rate_ok = await ForecastBatcher(_Slow(), settings, m).probe_capacity(8.0, 32, probe_rows=8)
        rate_short = await ForecastBatcher(_Slow(), settings, m).probe_capacity(400.0, 32, probe_rows=8)
    assert 50 < rate_ok < 170 and 50 < rate_short < 170
    ok, short = (r.getMessage() for r in caplog.records)
    assert "does about" in ok and "need 8" in ok and "fall behind" not in ok
    assert "need 400" in short and "will fall behind" in short and "would fit" in short


@pytest.mark.asyncio
async def test_the_start_up_probe_times_a_full_pass(caplog: pytest.LogCaptureFixture) -> None:
    """A GPU's pass costs about the same for 100 or 1,000 windows (_Slow: 50 ms whatever the rows):
    the probe times a pass of the size ticks will send (max_batch), not a small sample of it."""
    m = Metrics(CollectorRegistry())
    settings = ForecastSettings(horizon_steps=16, max_batch=1024)
    with caplog.at_level(logging.INFO, logger="sentinelle.forecast.batcher"):
        rate = await ForecastBatcher(_Slow(), settings, m).probe_capacity(4500.0, 32)
    assert 12_000 < rate < 21_000  # 1,024 rows per 50 ms call (a 256-row probe said 5,120: "will fall behind")
    assert "need 4500" in caplog.records[-1].getMessage() and "fall behind" not in caplog.records[-1].getMessage()


@pytest.mark.asyncio
async def test_the_start_up_probe_times_a_realistic_pass_for_a_few_slow_tags(caplog: pytest.LogCaptureFixture) -> None:
    """7 one-minute tags ask for 0.12 windows/s; a one-window probe timed only a call's fixed cost
    (_Slow: 50 ms a call, so 20 windows/s) — the probe times a pass of at least MIN_PROBE_ROWS."""
    m = Metrics(CollectorRegistry())
    settings = ForecastSettings(horizon_steps=16, max_batch=1024)
    with caplog.at_level(logging.INFO, logger="sentinelle.forecast.batcher"):
        rate = await ForecastBatcher(_Slow(), settings, m).probe_capacity(7 / 60, 32, tick_rows=7)
    assert MIN_PROBE_ROWS == 256 and 3_000 < rate < 5_300  # 256 rows per 50 ms call
    message = caplog.records[-1].getMessage()
    assert "a pass of 256 windows" in message and "need 0.117" in message


@pytest.mark.asyncio
async def test_the_start_up_probe_counts_the_asset_models_estimates(caplog: pytest.LogCaptureFixture) -> None:
    """Forecasts and estimates share the worker thread: the probe times both and judges their sum.

    _Slow: 50 ms a forecast call (8 probe rows: about 160 windows/s); the estimator 50 ms a call over
    4 assets of 7 tags (about 560 estimates/s).  8 windows/s and 28 estimates/s fit; 8 and 500 do not,
    though the forecasts alone would.
    """
    calls: list[WindowBatch] = []

    def estimator(w: WindowBatch) -> FloatArray:
        calls.append(w)
        time.sleep(0.05)
        return np.zeros((len(w), len(LEVELS)))

    m = Metrics(CollectorRegistry())
    settings = ForecastSettings(horizon_steps=16)
    with caplog.at_level(logging.INFO, logger="sentinelle.forecast.batcher"):
        for need in (28.0, 500.0):
            b = ForecastBatcher(_Slow(), settings, m, estimator=estimator)
            await b.probe_capacity(8.0, 32, probe_rows=8, asset_sizes=[7] * 4, estimates_per_s=need)
    ok, short = (r.getMessage() for r in caplog.records)
    assert "asset model about" in ok and "need 8 forecasts and 28 estimates" in ok and "fall behind" not in ok
    assert "need 8 forecasts and 500 estimates" in short and "will fall behind" in short
    assert "asset_estimate_every_steps" in short
    # One tick's call over whole assets (28 rows), the timed one far from the warm-up's slot.
    assert [len(w) for w in calls] == [28] * 4 and calls[1].ts - calls[0].ts > 1e6
    assert len(set(calls[0].assets)) == 4


@pytest.mark.asyncio
async def test_batcher_without_fallback_raises_model_error() -> None:
    m = Metrics(CollectorRegistry())
    with pytest.raises(ModelError, match="broken"):
        await _run_batcher(ForecastBatcher(_Broken(), ForecastSettings(horizon_steps=4), m), [_window(2, 1.0)])


@pytest.mark.asyncio
async def test_batcher_refreshes_a_rotating_share_of_rows() -> None:
    m = Metrics(CollectorRegistry())
    settings = ForecastSettings(forecaster="naive", horizon_steps=4, refresh_every_steps=3, max_wait_ms=0)
    windows = [_window(7, float(t)) for t in range(10, 16)]
    out = await _run_batcher(ForecastBatcher(make_forecaster(settings), settings, m), windows)
    seen: dict[int, list[float]] = {}
    for o in out:
        assert o.rows is not None and o.quantiles.shape[0] == len(o.rows)
        for r in o.rows.tolist():
            seen.setdefault(r, []).append(o.window.ts)
    # Every row refreshed exactly every 3 ticks; about a third of the rows per tick.
    assert sorted(seen) == list(range(7))
    for stamps in seen.values():
        assert np.diff(stamps).tolist() == [3.0] * (len(stamps) - 1)
    assert all(2 <= len(o.rows) <= 3 for o in out if o.rows is not None)


def test_refresh_must_fit_in_the_horizon() -> None:
    with pytest.raises(ValueError, match="refresh_every_steps"):
        ForecastSettings(horizon_steps=4, refresh_every_steps=5)


@pytest.mark.asyncio
async def test_the_probe_gives_a_coarse_estimator_coarse_contexts_of_its_stride() -> None:
    """With forecast.asset_context_stride_steps 4 the probe's windows carry coarse contexts of stride 4 (an
    estimator reading means of 4 slots refuses windows without them: the probe would time nothing)."""
    seen: list[tuple[int, bool]] = []

    def estimator(w: WindowBatch) -> FloatArray:
        seen.append((w.coarse_stride_steps, w.coarse_contexts is not None))
        return np.zeros((len(w), len(LEVELS)))

    for stride, mask in ((1, 0), (4, 128)):
        settings = ForecastSettings(horizon_steps=16, asset_context_stride_steps=stride, asset_mask_recent_steps=mask)
        b = ForecastBatcher(_Slow(), settings, Metrics(CollectorRegistry()), estimator=estimator)
        await b.probe_capacity(8.0, 32, probe_rows=8, asset_sizes=[7], estimates_per_s=1.0)
    assert seen == [(1, False), (1, False), (4, True), (4, True)]
