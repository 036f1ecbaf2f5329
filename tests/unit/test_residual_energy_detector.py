"""detect/detectors/residual_energy.py: a frozen tag's residual energy collapses and is found; noise is not."""

from __future__ import annotations

import numpy as np
import pytest

from sentinelle.detect.detectors.residual_energy import ResidualEnergyDetector, root_energy
from sentinelle.detect.stage import DetectStage
from sentinelle.records import AlertEvent
from sentinelle.settings import TagSettings

from .detect_helpers import batch, stage

TAGS = tuple(TagSettings(name=f"c.t{i}", asset="c", node_id=f"n{i}", unit="u", min_spread=0.01) for i in range(3))
NOMINAL = np.array([10.0, 20.0, 30.0])
NOISE = 0.1
"""The values' noise (the forecast band's spread is SIGMA = 0.1 too: an honest band)."""


def run(
    steps: int,
    freeze_at: int | None = None,
    seed: int = 0,
    loud_at: int | None = None,
    calm_at: int | None = None,
    **settings: object,
) -> tuple[list[AlertEvent], DetectStage]:
    """Noisy tags, forecast naively (each tick's forecast median is the value just seen); tag 1 freezes at
    ``freeze_at`` (repeats its last value), or its noise triples from ``loud_at`` or falls to a fifth from
    ``calm_at``.  Returns (events, stage)."""
    st, _ = stage(TAGS, **settings)
    rng = np.random.default_rng(seed)
    events: list[AlertEvent] = []
    last = NOMINAL.copy()
    for k in range(steps):
        values = NOMINAL + rng.normal(0.0, NOISE, 3)
        if loud_at is not None and k >= loud_at:
            values[1] = NOMINAL[1] + rng.normal(0.0, 3 * NOISE)
        if calm_at is not None and k >= calm_at:
            values[1] = NOMINAL[1] + rng.normal(0.0, NOISE / 5)
        if freeze_at is not None and k >= freeze_at:
            values[1] = last[1]
        events += st.process(batch(TAGS, float(k), values.tolist(), values.tolist()))
        last = values
    return events, st


def _detector(st: DetectStage) -> ResidualEnergyDetector:
    (det,) = [d for d in next(iter(st._groups.values())).detectors if isinstance(d, ResidualEnergyDetector)]
    return det


def opened(events: list[AlertEvent], suffix: str = "#energy") -> list[AlertEvent]:
    return [e for e in events if e.event == "opened" and e.subject.endswith(suffix)]


def test_a_frozen_tag_is_found_within_a_window() -> None:
    events, _ = run(1200, freeze_at=800, residual_energy_window_steps=30)
    found = opened(events)
    assert {e.tag for e in found} == {"c.t1"}
    first = min(e.event_ts for e in found)
    assert 800 < first <= 800 + 30  # the window's mean square falls by decades well before it is all frozen


def test_without_it_nothing_sees_the_frozen_tag() -> None:
    """The check above can fail: with the setting off, the per-tick residual (a zero residual) finds nothing."""
    events, _ = run(1200, freeze_at=800)
    assert opened(events) == []
    assert not [e for e in events if e.event == "opened" and e.tag == "c.t1" and e.event_ts >= 800]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stationary_noise_gives_no_alarm(seed: int) -> None:
    events, _ = run(3000, seed=seed, residual_energy_window_steps=30)
    assert opened(events) == []


def test_a_loud_window_scores_only_with_both_sides() -> None:
    both, _ = run(1200, loud_at=800, residual_energy_window_steps=30, residual_energy_sides="both")
    low, _ = run(1200, loud_at=800, residual_energy_window_steps=30)
    assert {e.tag for e in opened(both)} == {"c.t1"}
    assert opened(low) == []


def test_no_flag_before_the_scale_has_learned_four_windows() -> None:
    # grace 20 + 4 x 30 = 140 learned ticks; the first full window is tick 30 (29 residuals: the first has no forecast)
    events, _ = run(400, freeze_at=60, residual_energy_window_steps=30)
    assert all(e.event_ts >= 30 + 140 for e in opened(events))


def test_state_round_trip_continues_the_same() -> None:
    _, st = run(500, residual_energy_window_steps=30)
    det = _detector(st)
    blob = det.state()
    _, fresh_stage = run(1, residual_energy_window_steps=30)
    fresh = _detector(fresh_stage)
    fresh.restore(blob)
    for attr in ("ring", "pos", "medians", "made_ts"):
        np.testing.assert_array_equal(getattr(fresh, attr), getattr(det, attr))
    np.testing.assert_array_equal(fresh.scale.location, det.scale.location)
    assert (fresh.scale.learned == det.scale.learned).all()


def test_root_energy_needs_enough_values_and_floors_at_the_resolution() -> None:
    ring = np.array([[0.0, 1.0], [0.0, np.nan], [0.0, np.nan]])
    out = root_energy(ring, np.array([0.01**2 / 12, 0.0]), min_finite=2)
    assert out[0] == pytest.approx(np.cbrt(0.01**2 / 12))
    assert np.isnan(out[1])


def test_a_partial_refresh_is_compared_with_its_own_multi_step_forecast() -> None:
    """A row's forecast made two ticks before is read at its second step (as the residual scorer reads it)."""
    st, _ = stage(TAGS, residual_energy_window_steps=30)
    st.process(batch(TAGS, 0.0, NOMINAL.tolist(), NOMINAL.tolist()))
    det = _detector(st)
    assert det._median_now(2.0, 1.0).tolist() == NOMINAL.tolist()
    assert np.isnan(det._median_now(5.0, 1.0)).all()  # beyond the 4-step horizon: none


def test_near_the_resolution_keeps_the_frozen_tag_and_drops_a_calm_spell() -> None:
    """A calm spell (tag 1's noise falls to a fifth, 2 resolution steps: its naive residual's mean square is still
    about 100 q²/12) scores on the calibrated energy alone; with the resolution condition (16 q²/12) only the
    frozen tag flags."""
    calm, _ = run(1200, loud_at=None, freeze_at=None, residual_energy_window_steps=30, calm_at=800)
    assert {e.tag for e in opened(calm)} == {"c.t1"}, "the check below can fail: the calm spell alone scores"
    calm_c, _ = run(1200, residual_energy_window_steps=30, residual_energy_max_resolution_variances=16.0, calm_at=800)
    assert opened(calm_c) == []
    frozen, _ = run(1200, freeze_at=800, residual_energy_window_steps=30, residual_energy_max_resolution_variances=16.0)
    assert {e.tag for e in opened(frozen)} == {"c.t1"}
