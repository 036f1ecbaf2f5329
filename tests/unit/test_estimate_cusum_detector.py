"""detect/detectors/estimate_cusum.py: a slow ramp against the estimate is found within N ticks; noise is not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sentinelle.detect.detectors.estimate_cusum import EstimateCusumDetector, cusum_step
from sentinelle.records import AlertEvent
from sentinelle.settings import TagSettings

from .detect_helpers import SIGMA, batch, stage

TAGS = tuple(TagSettings(name=f"c.t{i}", asset="c", node_id=f"n{i}", unit="u") for i in range(3))
_Z = np.array([-1.2816, 0.0, 1.2816])
NOMINAL = np.array([10.0, 20.0, 30.0])


def run(ramp_per_tick: float, steps: int, onset: int = 300, seed: int = 0, **settings: object) -> list[AlertEvent]:
    """Tag 1 ramps by ``ramp_per_tick`` from ``onset`` on, against an estimate that stays at nominal with a band
    of spread SIGMA; the values' noise is that spread (the band is honest). The own forecast follows the value,
    so only the estimate's detectors can see the ramp."""
    st, _ = stage(TAGS, **({"asset_estimate_cusum_enabled": True} | settings))
    rng = np.random.default_rng(seed)
    events: list[AlertEvent] = []
    for k in range(steps):
        values = NOMINAL + rng.normal(0.0, SIGMA, 3)
        values[1] += ramp_per_tick * max(0, k - onset)
        fb = batch(TAGS, float(k), values.tolist(), values.tolist())
        fb = dataclasses.replace(fb, estimate=NOMINAL[:, None] + _Z[None, :] * SIGMA)
        events += st.process(fb)
    return events


def opened(events: list[AlertEvent], suffix: str = "#cusum") -> list[AlertEvent]:
    return [e for e in events if e.kind == "relation" and e.event == "opened" and e.subject.endswith(suffix)]


def test_a_slow_ramp_is_found_by_the_sum_long_before_any_tick_is_surprising() -> None:
    # 0.002 per tick is a fiftieth of the band's spread: 3.6 spreads (the per-tick threshold) after 180 ticks.
    events = run(0.002, 700, asset_estimate_cusum_k_sigmas=0.5, asset_estimate_cusum_h_sigmas=20.0)
    cusum = opened(events)
    assert {e.tag for e in cusum} == {"c.t1"}
    first = min(e.event_ts for e in cusum)
    # the mean residual exceeds k after 25 ticks; the sum of (r - k) reaches 20 about 70 ticks in
    assert 300 < first < 300 + 150
    per_tick = opened(events, "#estimate")
    assert not per_tick or min(e.event_ts for e in per_tick) > first


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stationary_noise_gives_no_alarm(seed: int) -> None:
    events = run(0.0, 3000, seed=seed, asset_estimate_cusum_k_sigmas=0.5, asset_estimate_cusum_h_sigmas=20.0)
    assert opened(events) == []


def test_a_small_h_without_reference_alarms_on_noise() -> None:
    """The check above can fail: with k = 0 the two-sided sum is a random walk: it crosses h = 20 in about 400 ticks."""
    assert opened(run(0.0, 3000, asset_estimate_cusum_k_sigmas=0.0, asset_estimate_cusum_h_sigmas=20.0))


def run_runs(batch_steps: int, steps: int = 3000) -> list[AlertEvent]:
    """Healthy residuals that come in runs (AR(1), φ = 0.98: runs of one sign of about 50 ticks), each tick
    within the estimate's band as often as independent noise would be (stationary spread SIGMA)."""
    st, _ = stage(
        TAGS,
        asset_estimate_cusum_enabled=True,
        asset_estimate_cusum_k_sigmas=0.25,
        asset_estimate_cusum_h_sigmas=20.0,
        asset_estimate_cusum_batch_steps=batch_steps,
    )
    rng = np.random.default_rng(3)
    phi = 0.98
    e = np.zeros(3)
    events: list[AlertEvent] = []
    for k in range(steps):
        e = phi * e + rng.normal(0.0, SIGMA * np.sqrt(1 - phi**2), 3)
        values = NOMINAL + e
        fb = batch(TAGS, float(k), values.tolist(), values.tolist())
        events += st.process(dataclasses.replace(fb, estimate=NOMINAL[:, None] + _Z[None, :] * SIGMA))
    return events


def test_runs_of_healthy_residuals_are_not_a_shift_with_the_long_run_scale() -> None:
    assert opened(run_runs(batch_steps=1)), "without the long-run scale the sum should take the runs for shifts"
    assert opened(run_runs(batch_steps=64)) == []


def test_off_by_default_and_without_an_estimate_silent() -> None:
    assert opened(run(0.002, 700, asset_estimate_cusum_enabled=False)) == []
    st, _ = stage(TAGS, asset_estimate_cusum_enabled=True, asset_estimate_cusum_h_sigmas=5.0)
    events: list[AlertEvent] = []
    for k in range(600):
        values = NOMINAL + np.array([0.0, 0.01 * k, 0.0])
        events += st.process(batch(TAGS, float(k), values.tolist(), values.tolist()))
    assert opened(events) == []


def test_the_sum_is_capped_and_comes_back() -> None:
    up, down = np.zeros(1), np.zeros(1)
    for _ in range(100):
        up, down = cusum_step(up, down, np.array([3.0]), k=0.5, cap=20.0)
    assert up.tolist() == [20.0] and down.tolist() == [0.0]
    for _ in range(40):
        up, down = cusum_step(up, down, np.array([0.0]), k=0.5, cap=20.0)
    assert up.tolist() == [0.0]
    up2, _ = cusum_step(up + 1.0, down, np.array([np.nan]), k=0.5, cap=20.0)
    assert up2.tolist() == [1.0]  # no residual: the sum holds


def cusum_detector() -> EstimateCusumDetector:
    """The detector of a stage that has seen one tick (a stage builds its detectors on a group's first batch)."""
    st, _ = stage(TAGS, asset_estimate_cusum_enabled=True)
    st.process(batch(TAGS, 0.0, NOMINAL.tolist(), NOMINAL.tolist()))
    return next(d for g in st._groups.values() for d in g.detectors if isinstance(d, EstimateCusumDetector))


def test_state_round_trips() -> None:
    det = cusum_detector()
    det.up[:] = [1.0, 2.0, 3.0]
    det.scale.location[:] = [0.5, 0.0, -0.5]
    det2 = cusum_detector()
    det2.restore(det.state())
    assert det2.up.tolist() == [1.0, 2.0, 3.0]
    assert det2.scale.location.tolist() == [0.5, 0.0, -0.5]
