"""Our /metrics text passes Prometheus's own linter, ``promtool check metrics``.

The registry is filled the way a running daemon fills it: a detect stage fed ticks
until an alert opens (per-tag gauges, alert counters and gauges), and a forecaster
call through the batcher's helper (latency and size histograms) and a tag group with the asset
model's estimates (``sentinelle_tag_estimate``).  promtool is a
program, not a server (``deploy/install-system-deps.sh`` installs it with
Prometheus), so this stays a unit test; without it the test fails and says so.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from prometheus_client import generate_latest

from sentinelle.forecast.baselines import NaiveForecaster
from sentinelle.forecast.batcher import forecast_in_chunks
from sentinelle.metrics import Metrics, TagSnapshot
from sentinelle.settings import TagSettings

from .detect_helpers import feed, noisy, stage

TAGS = (
    TagSettings(name="p.a", asset="p", node_id="ns=2;s=a"),
    TagSettings(name="p.b", asset="p", node_id="ns=2;s=b"),
)


def _filled() -> Metrics:
    st, m = stage(TAGS)
    events = feed(st, TAGS, [*noisy([1.0, 2.0], 40), *[[5.0, 2.0]] * 10], [1.0, 2.0])
    assert any(e.event == "opened" for e in events)  # the alert gauges carry labels
    forecast_in_chunks(NaiveForecaster((0.1, 0.5, 0.9), 4), np.ones((3, 8)), None, 2, m)
    m.forecaster_info.labels("naive").set(1)
    # A second tag group with the asset model's estimates (one tag without: no series for it).
    m.tag_state.publish(
        60.0,
        TagSnapshot(
            tags=("q.a", "q.b"),
            assets=("q", "q"),
            actual=np.array([1.0, 2.0]),
            forecast=np.array([[0.9, 1.0, 1.1], [1.9, 2.0, 2.1]]),
            levels=(0.1, 0.5, 0.9),
            score=np.array([0.1, 0.2]),
            estimate=np.array([[0.8, 1.0, 1.2], [np.nan] * 3]),
        ),
    )
    return m


def _promtool_check(text: bytes) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run deploy/install-system-deps.sh (it comes with Prometheus)")
    return subprocess.run(
        [promtool, "check", "metrics"], input=text.decode(), capture_output=True, text=True, timeout=30
    )


def test_metrics_pass_promtool_check_metrics() -> None:
    text = generate_latest(_filled().registry)
    assert b'sentinelle_tag_forecast{asset="p",level="0.5",tag="p.a"}' in text
    assert b'sentinelle_tag_estimate{asset="q",level="0.5",tag="q.a"} 1.0' in text
    assert b'sentinelle_tag_estimate{asset="q",level="0.5",tag="q.b"}' not in text
    r = _promtool_check(text)
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_check_metrics_can_fail() -> None:
    """The check above means something: the old ``quantile`` label on a gauge is refused."""
    bad = b'# HELP x_forecast A gauge.\n# TYPE x_forecast gauge\nx_forecast{quantile="0.5"} 1.0\n'
    r = _promtool_check(bad)
    assert r.returncode != 0
    assert "quantile" in r.stdout + r.stderr
