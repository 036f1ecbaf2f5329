"""Hand-made ticks for the detect-stage tests: values, a forecast around a nominal level, the stage."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from prometheus_client import CollectorRegistry

from sentinelle.detect.stage import DetectStage
from sentinelle.evaluation.replay import Recording
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent, ForecastBatch, WindowBatch
from sentinelle.settings import DetectSettings, TagSettings

LEVELS = (0.1, 0.5, 0.9)
_Z = np.array([-1.2816, 0.0, 1.2816])
SIGMA = 0.1
"""Forecast spread of every tag: a value 1.0 off its forecast has z = 10."""


def batch(tags: Sequence[TagSettings], ts: float, values: Sequence[float], median: Sequence[float]) -> ForecastBatch:
    v = np.array(values, dtype=np.float64)
    w = WindowBatch(
        ts=ts,
        period_s=tags[0].period_s,
        tags=tuple(t.name for t in tags),
        assets=tuple(t.asset for t in tags),
        values=v,
        contexts=v[:, None],
    )
    q = np.array(median)[:, None, None] + _Z[None, :, None] * SIGMA + np.zeros((1, 1, 4))
    return ForecastBatch(window=w, levels=LEVELS, quantiles=q, forecaster="test")


OPERATOR_LOAD_OFF: dict[str, object] = dict(
    severe_opens_at_once=False, rearm_steps=0, rearm_min_s=0.0, chatter_openings=0, flood_openings=0
)
"""DetectSettings that turn off a severe tick opening at once, re-arm, the chattering latch and floods."""


def stage(tags: Sequence[TagSettings], **kw: object) -> tuple[DetectStage, Metrics]:
    """A stage with short life cycles: open 3 of 5, clear after 4 normal ticks, no update throttle.

    The operator-load mechanisms (a severe tick opens at once, re-arm, chattering latch, flood) are off
    unless a test turns them on: the tests that use this helper are about k of n and clearing runs;
    ``tests/unit/test_alarm_load.py`` tests those mechanisms.  So is the distribution-change detector
    (its own alerts on hand-made sequences would blur what a test counts): ``tests/unit/test_distribution.py``.
    """
    m = Metrics(CollectorRegistry())
    return DetectStage(tags, short_cycles(**kw), m), m


def short_cycles(**kw: object) -> DetectSettings:
    """The settings of :func:`stage`'s stage (``kw`` over them), for a stage built otherwise."""
    base: dict[str, object] = dict(
        grace_period_steps=20,
        open_k=3,
        open_n=5,
        clear_normal_steps=4,
        update_min_interval_s=0.0,
        distribution_enabled=False,
        **OPERATOR_LOAD_OFF,
    )
    base.update(kw)
    return DetectSettings.model_validate(base)


def feed(
    st: DetectStage,
    tags: Sequence[TagSettings],
    rows: Sequence[Sequence[float]],
    nominal: Sequence[float],
    start: float = 0.0,
) -> list[AlertEvent]:
    """Feed one row of values per second from ``start``; the forecast median is always ``nominal``."""
    events: list[AlertEvent] = []
    for k, values in enumerate(rows):
        events += st.process(batch(tags, start + k, values, nominal))
    return events


def noisy(nominal: Sequence[float], n: int, noise: float = 0.02, seed: int = 0) -> list[list[float]]:
    """``n`` rows around ``nominal`` with Gaussian noise (z about 0.2 against the forecast spread)."""
    rng = np.random.default_rng(seed)
    return [[x + rng.normal(0.0, noise) for x in nominal] for _ in range(n)]


def summary(events: Sequence[AlertEvent]) -> list[tuple[str, str, str, float]]:
    """(event, kind, tag, event_ts) of each event: what the tests compare with hand-computed lists."""
    return [(e.event, e.kind, e.tag, e.event_ts) for e in events]


def shifted_pair(gaps: Sequence[tuple[int, int]] = (), t0: float = 1_700_000_000.0) -> Recording:
    """Two correlated tags (common noise σ 0.1, own noise σ 0.02) over 400 rows at 1 s, both moved
    by ±0.5 from row 300 — a few σ each, against their correlation; 150 warm-up rows.  ``gaps``:
    (row, column) cells left missing."""
    rng = np.random.default_rng(7)
    n = 400
    common = rng.normal(0, 0.1, n)
    x = np.stack([common + rng.normal(0, 0.02, n), common + rng.normal(0, 0.02, n)], axis=1)
    x[300:] += np.array([0.5, -0.5])
    for row, col in gaps:
        x[row, col] = np.nan
    times = t0 + np.arange(n, dtype=np.float64)
    return Recording("toy2", "pump", ("pump.a", "pump.b"), ("", ""), times, x, np.ones(n, dtype=bool), train_rows=150)
