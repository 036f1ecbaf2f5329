"""The detector contract: every detector's state round-trips, and a restored detector judges the next tick alike."""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from sentinelle.detect.detectors import BuildContext, Detector, Findings, build_all
from sentinelle.detect.detectors.base import pack, unpack
from sentinelle.detect.detectors.data_quality import screen
from sentinelle.errors import ConfigError
from sentinelle.metrics import Metrics
from sentinelle.settings import TagSettings

from .detect_helpers import LEVELS, batch, stage

TAGS = (
    TagSettings(name="c.flow", asset="c", node_id="n1", unit="m3/h", rate_limit_per_s=5.0, spike_factor=8.0),
    TagSettings(name="c.hot", asset="c", node_id="n2", unit="degC", high_limit=14.0, stuck_after_s=20.0),
    TagSettings(name="c.cold", asset="c", node_id="n3", unit="degC", low_limit=4.0),
    TagSettings(name="c.power", asset="c", node_id="n4", unit="kW"),
    TagSettings(name="c.pump1", asset="c", node_id="n5", unit="%"),
    TagSettings(name="c.pump2", asset="c", node_id="n6", unit="%"),
    TagSettings(name="c.aux", asset="c", node_id="n7", unit="kW", min_spread=0.001),
    TagSettings(name="d.level", asset="d", node_id="n8", unit="m", high_limit=3.0),
)
ASSET = {
    "name": "c",
    "energy_balance": {
        "flow_tag": "c.flow",
        "hot_temp_tag": "c.hot",
        "cold_temp_tag": "c.cold",
        "power_tag": "c.power",
        "relative_tolerance": 0.1,
    },
    "relations": [{"target": "c.aux", "inputs": ["c.pump1", "c.pump2"], "warmup_steps": 40}],
}
SETTINGS: dict[str, Any] = dict(
    distribution_enabled=True,
    novelty_enabled=True,
    novelty_orders=3,
    assets=[ASSET],
    asset_enabled=True,
    asset_likelihood_enabled=True,
    asset_warmup_steps=60,
    merge_by_asset=False,
)


def _row(k: int, rng: np.random.Generator) -> list[float]:
    flow = 60.0 + 3.0 * math.sin(k / 15.0) + rng.normal(0.0, 0.2)
    hot, cold = 12.0 + rng.normal(0.0, 0.05), 5.0 + rng.normal(0.0, 0.05)
    p1 = 60.0 + 5.0 * math.sin(k / 20.0)
    power = 1.163 * flow * (hot - cold) * (0.8 if 120 <= k < 126 else 1.0)
    aux = 2.0 * p1 + (p1 - 10.0) + rng.normal(0.0, 0.05) + (3.0 if 130 <= k < 134 else 0.0)
    level = 2.0 + rng.normal(0.0, 0.01) + (2.0 if 100 <= k < 108 else 0.0)
    return [flow, hot, cold, power, p1, p1 - 10.0, aux, level]


def _arrays(d: Detector) -> dict[str, np.ndarray]:
    return unpack(d.state(), d.name, _version(d))[0]


def _version(d: Detector) -> int:
    return int(importlib.import_module(type(d).__module__)._VERSION)


def _same(a: Findings, b: Findings) -> None:
    np.testing.assert_array_equal(a.flagged, b.flagged)
    np.testing.assert_array_equal(a.normal, b.normal)
    np.testing.assert_array_equal(a.score, b.score)
    assert a.count == b.count
    if a.rows is not None:
        assert b.rows is not None
        np.testing.assert_array_equal(a.rows.z, b.rows.z)
        np.testing.assert_array_equal(a.rows.score, b.rows.score)
        np.testing.assert_array_equal(a.rows.expected, b.rows.expected)


def test_every_detector_state_round_trips_and_the_restored_one_judges_the_next_tick_identically() -> None:
    st, _ = stage(TAGS, **SETTINGS)
    rng = np.random.default_rng(0)
    nominal = [60.0, 12.0, 5.0, 488.0, 60.0, 50.0, 170.0, 2.0]
    events = []
    for k in range(150):
        events += st.process(batch(TAGS, float(k), _row(k, rng), nominal))
    assert {e.kind for e in events} >= {"energy_balance", "relation", "limit_high"}  # state with history in it
    g = next(iter(st._groups.values()))
    names = [d.name for d in g.detectors]
    assert names == [
        "forecast_residual",
        "asset_estimate",
        "distribution_change",
        "contextual_novelty",
        "asset_state",
        "limit_high",
        "limit_low",
        "rate_of_change",
        "energy_balance",
        "relation",
        "data_quality_stuck",
        "data_quality_spike",
        "data_quality_missing",
    ]
    ctx = BuildContext(g.layout, st.settings, LEVELS, Metrics(CollectorRegistry()))
    clones = build_all(ctx)
    for original, clone in zip(g.detectors, clones, strict=True):
        clone.restore(original.state())
    screen_clone = screen(g.layout, ctx)
    screen_clone.restore(g.screen.state())

    fb = batch(TAGS, 150.0, _row(150, rng), nominal)
    tick, _ = st._gate(g, fb)
    verdict = screen_clone.screen(fb.window.ts, fb.window.values)
    np.testing.assert_array_equal(verdict.gate, tick.quality.gate)
    np.testing.assert_array_equal(verdict.stuck_s, tick.quality.stuck_s)
    found = [(d.observe(tick), c.observe(tick)) for d, c in zip(g.detectors, clones, strict=True)]
    for a, b in found:
        _same(a, b)
    rows = found[0][0].rows
    assert rows is not None
    tick = dataclasses.replace(tick, rows=rows)
    for (d, c), (a, b) in zip(zip(g.detectors, clones, strict=True), found, strict=True):
        d.learn(tick, a)
        c.learn(tick, b)
        after, restored = _arrays(d), _arrays(c)
        assert after.keys() == restored.keys(), d.name
        for key in after:
            np.testing.assert_array_equal(after[key], restored[key], err_msg=f"{d.name}: {key}")


def test_a_blob_of_another_detector_or_tag_group_is_refused() -> None:
    st, _ = stage(TAGS, **SETTINGS)
    st.process(batch(TAGS, 0.0, _row(0, np.random.default_rng(0)), [0.0] * len(TAGS)))
    g = next(iter(st._groups.values()))
    residual, asset = g.detectors[0], g.detectors[1]
    with pytest.raises(ConfigError, match="cannot restore 'forecast_residual'"):
        residual.restore(asset.state())
    with pytest.raises(ConfigError, match="another tag group"):
        residual.restore(pack("forecast_residual", 1, {}, {"tags": ["x"]}))
