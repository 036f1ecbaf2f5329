"""The batcher attaches the asset model's estimates to each forecast batch (forecast.asset_model_path)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from sentinelle.forecast import NaiveForecaster
from sentinelle.forecast.batcher import ForecastBatcher
from sentinelle.metrics import Metrics
from sentinelle.records import FloatArray, ForecastBatch, WindowBatch
from sentinelle.settings import ForecastSettings

LEVELS = (0.1, 0.5, 0.9)


def window(ts: float, n: int = 3) -> WindowBatch:
    ctx = np.tile(np.arange(16.0), (n, 1)) + np.arange(float(n))[:, None]
    return WindowBatch(
        ts=ts, period_s=1.0, tags=tuple(f"a.t{i}" for i in range(n)), assets=("a",) * n,
        values=ctx[:, -1].copy(), contexts=ctx,
    )  # fmt: skip


def run(estimator: object, windows: list[WindowBatch], **settings: int) -> tuple[list[ForecastBatch], Metrics]:
    m = Metrics(CollectorRegistry())
    s = ForecastSettings(horizon_steps=4, **settings)  # type: ignore[arg-type]
    batcher = ForecastBatcher(NaiveForecaster(LEVELS, 4), s, m, estimator=estimator)  # type: ignore[arg-type]

    async def go() -> list[ForecastBatch]:
        inbox: asyncio.Queue[WindowBatch | None] = asyncio.Queue()
        outbox: asyncio.Queue[ForecastBatch | None] = asyncio.Queue()
        for w in windows:
            inbox.put_nowait(w)
        inbox.put_nowait(None)
        await batcher.run(inbox, outbox)
        out = []
        while (fb := outbox.get_nowait()) is not None:
            out.append(fb)
        return out

    return asyncio.run(go()), m


def by_value(w: WindowBatch) -> FloatArray:
    """An estimate that names its row: value + 0.5 at every level."""
    return np.repeat((w.values + 0.5)[:, None], len(LEVELS), axis=1)


def test_every_batch_carries_its_rows_estimates() -> None:
    out, _ = run(by_value, [window(0.0), window(1.0)])
    assert len(out) == 2
    for fb in out:
        assert fb.estimate is not None and fb.estimate.shape == (3, 3)
        np.testing.assert_array_equal(fb.estimate[:, 1], fb.window.values + 0.5)


def test_a_partial_refresh_still_carries_every_tags_estimate() -> None:
    """The estimate of now is made for the whole window whichever rows' forecasts are refreshed: kept to the
    refreshed rows, each tag would reach the estimate detector once in ``refresh_every_steps`` ticks and
    its k of n could never open (LBNL's held-out days, refresh 16: 0 alerts for that reason alone)."""
    out, _ = run(by_value, [window(float(k), 4) for k in range(2)], refresh_every_steps=2)
    for fb in out:
        assert fb.rows is not None and len(fb.rows) < len(fb.window.values) and fb.estimate is not None
        np.testing.assert_array_equal(fb.estimate[:, 1], fb.window.values + 0.5)


def test_a_failing_estimator_costs_only_the_estimates() -> None:
    def broken(w: WindowBatch) -> FloatArray:
        raise RuntimeError("CUDA error")

    out, m = run(broken, [window(0.0)])
    assert len(out) == 1 and out[0].estimate is None and np.isfinite(out[0].quantiles).all()
    assert m.registry.get_sample_value("sentinelle_forecast_errors_total", {"forecaster": "asset_model"}) == 1


def test_without_an_estimator_nothing_changes() -> None:
    out, _ = run(None, [window(0.0)])
    assert out[0].estimate is None


def test_the_daemon_loads_the_shipped_asset_model_and_survives_a_bad_one(tmp_path: Path) -> None:
    from sentinelle.app import Daemon
    from sentinelle.forecast import SHIPPED_CHECKPOINT
    from sentinelle.settings import Settings

    good = Settings(forecast=ForecastSettings(forecaster="holt", asset_model_path=SHIPPED_CHECKPOINT.parent / "asset"))
    daemon = Daemon(good, Metrics(CollectorRegistry()), sinks=[], sources=[])
    assert daemon.batcher.estimator is not None
    est = daemon.batcher.estimator(window(0.0))
    assert est.shape == (3, len(good.forecast.quantile_levels)) and np.isfinite(est).all()

    (tmp_path / "config.json").write_text("{}")
    metrics = Metrics(CollectorRegistry())
    bad = Settings(forecast=ForecastSettings(forecaster="holt", asset_model_path=tmp_path))
    daemon = Daemon(bad, metrics, sinks=[], sources=[])
    assert daemon.batcher.estimator is None and daemon.batcher.forecaster.name == "holt"
    assert metrics.registry.get_sample_value("sentinelle_forecast_errors_total", {"forecaster": "asset_model"}) == 1


def test_the_daemon_passes_the_mask_and_refresh_and_refuses_a_mask_beyond_the_context() -> None:
    from sentinelle.app import Daemon
    from sentinelle.forecast import SHIPPED_CHECKPOINT
    from sentinelle.forecast.asset_engine import AssetForecaster
    from sentinelle.forecast.asset_estimators import AssetEstimators
    from sentinelle.settings import Settings

    path = SHIPPED_CHECKPOINT.parent / "asset"
    fc = ForecastSettings(forecaster="holt", asset_model_path=path, asset_mask_recent_steps=128)
    daemon = Daemon(
        Settings(forecast=fc.model_copy(update={"asset_estimate_every_steps": 8})),
        Metrics(CollectorRegistry()),
        sinks=[],
        sources=[],
    )
    est = daemon.batcher.estimator
    assert est is not None
    models = getattr(est, "__self__", None)
    assert isinstance(models, AssetEstimators) and models.adapted == {}
    model = models.base
    assert isinstance(model, AssetForecaster) and model.mask_recent_steps == 128 and model.every_steps == 8

    metrics = Metrics(CollectorRegistry())
    too_far = Settings(forecast=fc.model_copy(update={"asset_mask_recent_steps": 500}))  # the context is 512
    daemon = Daemon(too_far, metrics, sinks=[], sources=[])
    assert daemon.batcher.estimator is None
    assert metrics.registry.get_sample_value("sentinelle_forecast_errors_total", {"forecaster": "asset_model"}) == 1


def test_the_daemon_estimates_an_adapted_asset_with_its_adapter_and_refuses_a_foreign_one(tmp_path: Path) -> None:
    """``forecast.asset_model_adapters_dir``: asset a's adapter is used for a's rows; one trained on other
    tags, in asset b's folder, is refused and counted, and b stays on the base."""
    from sentinelle.app import Daemon
    from sentinelle.forecast import SHIPPED_CHECKPOINT
    from sentinelle.forecast.asset_estimators import AssetEstimators
    from sentinelle.settings import Settings, TagSettings

    from .model_helpers import random_adapter

    base = SHIPPED_CHECKPOINT.parent / "asset"
    for asset in ("a", "b"):  # both record tags p.a, p.b, p.c
        random_adapter(base, tmp_path / asset)
    tags = tuple(TagSettings(name=t, asset=t[0], node_id=t) for t in ("p.a", "p.b", "p.c", "b.x", "b.y"))
    tags = tuple(t.model_copy(update={"asset": "a"}) if t.name.startswith("p.") else t for t in tags)
    fc = ForecastSettings(forecaster="holt", asset_model_path=base, asset_model_adapters_dir=tmp_path)
    metrics = Metrics(CollectorRegistry())
    daemon = Daemon(Settings(tags=tags, forecast=fc), metrics, sinks=[], sources=[])
    models = getattr(daemon.batcher.estimator, "__self__", None)
    assert isinstance(models, AssetEstimators)
    assert set(models.adapted) == {"a"} and set(models.refused) == {"b"}
    assert metrics.registry.get_sample_value("sentinelle_forecast_errors_total", {"forecaster": "asset_model"}) == 1
