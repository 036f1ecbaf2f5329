"""detect/detectors/asset_estimate.py: a slow drift the own forecast follows is caught against the estimate."""

from __future__ import annotations

import dataclasses

import numpy as np

from sentinelle.records import AlertEvent
from sentinelle.settings import TagSettings

from .detect_helpers import SIGMA, batch, stage

TAGS = tuple(TagSettings(name=f"c.t{i}", asset="c", node_id=f"n{i}", unit="u") for i in range(3))
_Z = np.array([-1.2816, 0.0, 1.2816])


def run(with_estimate: bool, drift_per_s: float = 0.01, steps: int = 400) -> list[AlertEvent]:
    """Tag 1 drifts from t = 200; its own forecast follows the value (a univariate forecaster at a slow
    fault), the asset model's estimate stays where the other tags say the value should be (nominal)."""
    st, _ = stage(TAGS)
    rng = np.random.default_rng(0)
    nominal = np.array([10.0, 20.0, 30.0])
    events: list[AlertEvent] = []
    for k in range(steps):
        values = nominal + rng.normal(0.0, 0.02, 3)
        values[1] += drift_per_s * max(0, k - 200)
        fb = batch(TAGS, float(k), values.tolist(), values.tolist())  # the forecast follows
        if with_estimate:
            estimate = nominal[:, None] + _Z[None, :] * SIGMA
            fb = dataclasses.replace(fb, estimate=estimate)
        events += st.process(fb)
    return events


def estimate_alerts(events: list[AlertEvent]) -> list[AlertEvent]:
    return [e for e in events if e.kind == "relation"]  # no configured relation here: only this detector's


def test_a_drift_is_caught_against_the_estimate_and_only_on_its_tag() -> None:
    opened = [e for e in estimate_alerts(run(True)) if e.event == "opened"]
    assert opened, "the drifting tag should open an estimate alert"
    assert {e.tag for e in opened} == {"c.t1"}
    first = min(e.event_ts for e in opened)
    assert 200 < first < 300  # within 100 s of onset: drift 1 σ of the estimate after 10 s


def test_without_an_estimate_the_detector_is_silent() -> None:
    assert estimate_alerts(run(False)) == []


def test_no_drift_no_estimate_alert() -> None:
    assert estimate_alerts(run(True, drift_per_s=0.0)) == []
