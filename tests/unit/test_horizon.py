"""The drift detector (detect/detectors/horizon.py): the value against the forecast made H ticks ago."""

from __future__ import annotations

import logging
from statistics import NormalDist

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from sentinelle.detect.detectors import BuildContext
from sentinelle.detect.detectors.base import pack, unpack
from sentinelle.detect.detectors.horizon import HorizonDetector
from sentinelle.detect.stage import DetectStage
from sentinelle.forecast.batcher import due_rows
from sentinelle.metrics import Metrics
from sentinelle.records import AlertKind, ForecastBatch, WindowBatch
from sentinelle.settings import DetectSettings, TagSettings

from .detect_helpers import LEVELS, short_cycles, stage

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


def _partial(fb: ForecastBatch, rows: np.ndarray | None) -> ForecastBatch:
    """``fb`` for ``rows`` only (None: all): a partial refresh as the batcher sends it."""
    if rows is None:
        return fb
    return ForecastBatch(fb.window, fb.levels, fb.quantiles[rows], fb.forecaster, rows=rows)


def _stage(refresh: int, **kw: object) -> DetectStage:
    """:func:`stage`'s stage told that each tag's forecast is refreshed once in ``refresh`` ticks."""
    return DetectStage(TAGS, short_cycles(**kw), Metrics(CollectorRegistry()), refresh_every_steps=refresh)


def _drift(st: DetectStage) -> HorizonDetector:
    g = next(iter(st._groups.values()))
    return next(x for x in g.detectors if isinstance(x, HorizonDetector))


def _run(values: np.ndarray, refresh: int = 1, **kw: object) -> tuple[np.ndarray, np.ndarray, list[AlertKind]]:
    """Per tick and tag: the drift detector's and the residual detector's surprise; the kinds opened.

    ``refresh``: the forecaster refreshes each tag once in this many ticks, rotating as the daemon's batcher does.
    """
    st = _stage(refresh, horizon_enabled=True, horizon_steps=H, grace_period_steps=20, **kw)
    drift, residual, opened = [], [], []
    for k, v in enumerate(values):
        fb = _naive(float(k), v)
        events = st.process(_partial(fb, due_rows(fb.window, refresh)))
        g = next(iter(st._groups.values()))
        drift.append(_drift(st).surprise)
        residual.append(g.scorer.surprise)
        opened += [e.kind for e in events if e.event == "opened"]
    return np.array(drift), np.array(residual), opened


def _creep(seed: int) -> np.ndarray:
    """Two tags of noise (σ 0.1) around 10; tag 0 creeps 1.5 noise sigmas per tick from tick 1000 on."""
    rng = np.random.default_rng(seed)
    n = 1500
    x = 10.0 + 0.1 * rng.normal(size=(n, 2))
    x[1000:, 0] += 0.15 * np.arange(n - 1000)  # each step looks ordinary
    return x


def test_a_slow_drift_is_caught_by_the_old_forecast_and_not_by_the_one_step_residual() -> None:
    drift, residual, opened = _run(_creep(0))
    threshold = DetectSettings().score_threshold
    assert (drift[1000:1100, 0] >= threshold).mean() > 0.5
    assert (residual[1000:1100, 0] >= threshold).mean() < 0.1
    assert np.nanmax(drift[200:1000]) < threshold  # noise alone: nothing, on either tag
    assert np.nanmax(drift[1000:, 1]) < threshold
    assert "forecast_drift" in opened


@pytest.mark.parametrize("refresh", [4, 16])
def test_with_a_partial_refresh_a_slow_drift_opens_an_alert_and_every_tick_is_compared(refresh: int) -> None:
    """R = 4 and R = H: each tag refreshed once in R ticks still has a forecast made ≥ H ticks before, every tick."""
    drift, _, opened = _run(_creep(0), refresh)
    threshold = DetectSettings().score_threshold
    assert np.isfinite(drift[100:]).all()  # every tick, both tags: compared (R ticks in, once a forecast was due)
    assert (drift[1000:1100, 0] >= threshold).mean() > 0.5
    assert np.nanmax(drift[200:1000]) < threshold
    assert np.nanmax(drift[1000:, 1]) < threshold
    assert "forecast_drift" in opened


_Q90 = NormalDist().inv_cdf(0.9)


def _made(k: int, horizon: int, values: np.ndarray) -> ForecastBatch:
    """Tick ``k``'s forecast with a median that says when it was made and for which step: ``v + 0.01·k + 0.05·s``,
    and a spread of ``0.1·√s`` (quantiles at ±inv_cdf(0.9) of it), so a comparison shows which forecast it read."""
    w = WindowBatch(
        ts=float(k),
        period_s=1.0,
        tags=tuple(t.name for t in TAGS),
        assets=("a", "a"),
        values=values,
        contexts=values[:, None],
    )
    s = np.arange(1, horizon + 1)
    med = values[:, None] + 0.01 * k + 0.05 * s[None, :]
    q = med[:, None, :] + np.array([-_Q90, 0.0, _Q90])[None, :, None] * (0.1 * np.sqrt(s))[None, None, :]
    return ForecastBatch(window=w, levels=LEVELS, quantiles=q, forecaster="made")


@pytest.mark.parametrize("horizon", [6, 3])
def test_with_r_1_each_tick_is_compared_with_the_forecast_made_h_ticks_before(horizon: int) -> None:
    """R = 1: the behaviour before R was known, from first principles.  At tick t, row i is compared with the
    forecast made at m = t − min(H, horizon) (a shorter forecast: its last step) where row i was refreshed at m
    from at least ``score_min_context_steps`` values; z = (v − median) / spread of that step.  Row 0 is refreshed
    every tick, row 1 not on ticks ≡ 1 mod 3 (a partial batch)."""
    h, n = 4, 60
    rng = np.random.default_rng(3)
    x = 10.0 + 0.1 * rng.normal(size=(n, 2))
    st, _ = stage(TAGS, horizon_enabled=True, horizon_steps=h)
    got = []
    for k in range(n):
        st.process(_partial(_made(k, horizon, x[k]), np.array([0]) if k % 3 == 1 else None))
        got.append(_drift(st).z.copy())
    lag = min(h, horizon)
    want = np.full((n, 2), np.nan)
    for t in range(lag, n):
        m = t - lag
        for i in range(2):
            if m + 1 >= DetectSettings().score_min_context_steps and (i == 0 or m % 3 != 1):
                want[t, i] = (x[t, i] - (x[m, i] + 0.01 * m + 0.05 * lag)) / (0.1 * np.sqrt(lag))
    np.testing.assert_array_equal(np.isnan(np.array(got)), np.isnan(want))
    np.testing.assert_allclose(np.array(got), want, rtol=1e-9)


def test_a_row_refreshed_at_other_ticks_is_compared_with_its_own_last_forecast() -> None:
    """R = 4, H = 4: row 0 refreshed on ticks ≡ 0 mod 4, row 1 on ticks ≡ 1 mod 4.  At tick t each row reads the
    newest forecast of its own made at m ≤ t − H, at step t − m (H … H+R−1): z is that forecast's, exactly."""
    h, r, horizon, n = 4, 4, 8, 60
    rng = np.random.default_rng(4)
    x = 10.0 + 0.1 * rng.normal(size=(n, 2))
    st = _stage(r, horizon_enabled=True, horizon_steps=h)
    got = []
    for k in range(n):
        rows = [i for i in range(2) if k % r == i]
        st.process(_partial(_made(k, horizon, x[k]), np.array(rows, dtype=np.intp)))
        got.append(_drift(st).z.copy())
    want = np.full((n, 2), np.nan)
    for t in range(n):
        for i in range(2):
            made = [m for m in range(t - h + 1) if m % r == i and m + 1 >= DetectSettings().score_min_context_steps]
            if made and t - made[-1] < h + r:
                m, step = made[-1], t - made[-1]
                want[t, i] = (x[t, i] - (x[m, i] + 0.01 * m + 0.05 * step)) / (0.1 * np.sqrt(step))
    np.testing.assert_array_equal(np.isnan(np.array(got)), np.isnan(want))
    np.testing.assert_allclose(np.array(got), want, rtol=1e-9)
    assert np.isfinite(want[20:]).all()  # every tick, both rows


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


def _warm(refresh: int, h: int = H) -> tuple[DetectStage, HorizonDetector]:
    """A stage fed 100 ticks of noise (each tag refreshed once in ``refresh`` ticks) and its drift detector."""
    st = _stage(refresh, horizon_enabled=True, horizon_steps=h)
    rng = np.random.default_rng(1)
    for k in range(100):
        fb = _naive(float(k), 10.0 + 0.1 * rng.normal(size=2))
        st.process(_partial(fb, due_rows(fb.window, refresh)))
    return st, _drift(st)


def _clone(st: DetectStage, refresh: int, **kw: object) -> HorizonDetector:
    g = next(iter(st._groups.values()))
    s = st.settings.model_copy(update=kw)
    return HorizonDetector(BuildContext(g.layout, s, LEVELS, Metrics(CollectorRegistry()), refresh))


def test_state_round_trips_with_a_partial_refresh() -> None:
    st, d = _warm(4)
    clone = _clone(st, 4)
    clone.restore(d.state())
    g = next(iter(st._groups.values()))
    for k in range(100, 140):
        fb = _naive(float(k), 10.0 + 0.02 * k + np.array([0.0, 0.1]))
        tick, _ = st._gate(g, _partial(fb, due_rows(fb.window, 4)))
        a, b = d.observe(tick), clone.observe(tick)
        assert a.tag_score is not None and b.tag_score is not None
        np.testing.assert_array_equal(a.tag_score, b.tag_score)
        assert np.isfinite(d.z).all()
    assert d.state() == clone.state()


def test_a_version_1_state_restores_into_a_ring_of_h_plus_r() -> None:
    """A blob saved before R was known (version 1: a ring of H targets) is re-slotted, not refused: a detector
    with R = 4 continues with the same comparisons as the R = 1 one it was saved from."""
    st, d = _warm(1)
    arrays, meta = unpack(d.state(), d.name, 2)
    assert arrays["ring"].shape[0] == H + 1
    ring, slots = np.full((H, *arrays["ring"].shape[1:]), np.nan), np.full(H, -1, dtype=np.int64)
    for p in np.argsort(arrays["ring_slot"]):  # the version-1 layout: slot k at k mod H
        if (k := int(arrays["ring_slot"][p])) >= 0:
            ring[k % H], slots[k % H] = arrays["ring"][p], k
    v1 = {**arrays, "ring": ring, "ring_slot": slots}
    clone = _clone(st, 4)
    clone.restore(pack(d.name, 1, v1, {"tags": meta["tags"]}))
    g = next(iter(st._groups.values()))
    for k in range(100, 100 + 2 * H):
        tick, _ = st._gate(g, _naive(float(k), 10.0 + 0.02 * k + np.array([0.0, 0.1])))
        a, b = d.observe(tick), clone.observe(tick)
        assert a.tag_score is not None and b.tag_score is not None
        np.testing.assert_array_equal(a.tag_score, b.tag_score)
        assert np.isfinite(clone.z).all()


def test_a_state_of_another_horizon_drops_its_forecasts_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    st, d = _warm(1)
    clone = _clone(st, 1, horizon_steps=8)
    with caplog.at_level(logging.WARNING):
        clone.restore(d.state())
    assert "not detect.horizon_steps 8" in caplog.text
    assert (clone.ring_slot == -1).all()
    np.testing.assert_array_equal(clone.seen, d.seen)  # the rest is taken over
    g = next(iter(st._groups.values()))
    measured = []
    for k in range(100, 120):
        tick, _ = st._gate(g, _naive(float(k), np.array([10.0, 10.1])))
        clone.observe(tick)
        measured.append(np.isfinite(clone.z).all())
    assert measured == [False] * 8 + [True] * 12
