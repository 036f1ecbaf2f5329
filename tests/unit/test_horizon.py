"""The drift detector (detect/detectors/horizon.py): the value against the forecast made H ticks ago."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from sentinelle.detect.detectors import BuildContext
from sentinelle.detect.detectors.horizon import HorizonDetector
from sentinelle.metrics import Metrics
from sentinelle.records import AlertKind, ForecastBatch, WindowBatch
from sentinelle.settings import DetectSettings, TagSettings

from .detect_helpers import LEVELS, stage

TAGS = [TagSettings(name=f"a.t{i}", asset="a", node_id=f"ns=2;s=t{i}", period_s=1.0) for i in range(2)]
Z = np.array([-1.2816, 0.0, 1.2816])
H = 16


def _naive(ts: float, values: np.ndarray, sigma: float = 0.1) -> ForecastBatch:
    """A forecast that follows the last value (each step: that value ± sigma·√h)."""
    w = WindowBatch(
        ts=ts,
        period_s=1.0,
        tags=tuple(t.name for t in TAGS),
        assets=("a", "a"),
        values=values,
        contexts=values[:, None],
    )
    spread = sigma * np.sqrt(np.arange(1, H + 1))
    q = values[:, None, None] + Z[None, :, None] * spread[None, None, :]
    return ForecastBatch(window=w, levels=LEVELS, quantiles=q, forecaster="naive")


def _run(values: np.ndarray, **kw: object) -> tuple[np.ndarray, np.ndarray, list[AlertKind]]:
    """Per tick and tag: the drift detector's and the residual detector's surprise; the kinds opened."""
    st, _ = stage(TAGS, horizon_enabled=True, horizon_steps=H, grace_period_steps=20, **kw)
    drift, residual, opened = [], [], []
    for k, v in enumerate(values):
        events = st.process(_naive(float(k), v))
        g = next(iter(st._groups.values()))
        d = next(x for x in g.detectors if isinstance(x, HorizonDetector))
        drift.append(d.surprise)
        residual.append(g.scorer.surprise)
        opened += [e.kind for e in events if e.event == "opened"]
    return np.array(drift), np.array(residual), opened


def test_a_slow_drift_is_caught_by_the_old_forecast_and_not_by_the_one_step_residual() -> None:
    rng = np.random.default_rng(0)
    n = 1500
    x = 10.0 + 0.1 * rng.normal(size=(n, 2))
    x[1000:, 0] += 0.15 * np.arange(n - 1000)  # creeps 1.5 noise sigmas per tick: each step looks ordinary
    drift, residual, opened = _run(x)
    threshold = DetectSettings().score_threshold
    assert (drift[1000:1100, 0] >= threshold).mean() > 0.5
    assert (residual[1000:1100, 0] >= threshold).mean() < 0.1
    assert np.nanmax(drift[200:1000]) < threshold  # noise alone: nothing, on either tag
    assert np.nanmax(drift[1000:, 1]) < threshold
    assert "forecast_drift" in opened


def test_a_forecaster_refreshing_every_r_ticks_leaves_the_old_forecast_only_h_after_a_refresh() -> None:
    st, _ = stage(TAGS, horizon_enabled=True, horizon_steps=4, grace_period_steps=2)
    measured = []
    for k in range(40):
        fb = _naive(float(k), np.array([1.0, 2.0]))
        if k % 4:  # every 4th tick both rows, else one row in turn (the daemon's refresh mode)
            fb = ForecastBatch(fb.window, fb.levels, fb.quantiles[[k % 2]], fb.forecaster, rows=np.array([k % 2]))
        st.process(fb)
        g = next(iter(st._groups.values()))
        d = next(x for x in g.detectors if isinstance(x, HorizonDetector))
        measured.append(np.isfinite(d.z))
    m = np.array(measured)
    assert m[10:].any()
    assert not m[:4].any()  # nothing was forecast 4 ticks before the first ticks


def test_state_round_trips() -> None:
    st, _ = stage(TAGS, horizon_enabled=True, horizon_steps=H)
    rng = np.random.default_rng(1)
    for k in range(100):
        st.process(_naive(float(k), 10.0 + 0.1 * rng.normal(size=2)))
    g = next(iter(st._groups.values()))
    d = next(x for x in g.detectors if isinstance(x, HorizonDetector))
    clone = HorizonDetector(BuildContext(g.layout, st.settings, LEVELS, Metrics(CollectorRegistry())))
    clone.restore(d.state())
    for k in range(100, 140):
        tick, _ = st._gate(g, _naive(float(k), 10.0 + 0.05 * k + 0.1 * rng.normal(size=2)))
        a, b = d.observe(tick), clone.observe(tick)
        assert a.tag_score is not None and b.tag_score is not None
        np.testing.assert_array_equal(a.tag_score, b.tag_score)
        np.testing.assert_array_equal(a.flagged, b.flagged)
    assert d.state() == clone.state()
    assert DetectSettings().horizon_steps >= 2
