"""detect/detectors/estimate_rate.py: a fault that makes the estimate residual surprising more often for hours
is found; bursts, the history's own rate and unwatched units are not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sentinelle.detect.detectors.estimate_rate import share_step
from sentinelle.records import AlertEvent
from sentinelle.settings import TagSettings

from .detect_helpers import SIGMA, batch, stage

TAGS = (
    TagSettings(name="a.sat", asset="a", node_id="n0", unit="degF"),
    TagSettings(name="a.rat", asset="a", node_id="n1", unit="degF"),
    TagSettings(name="a.damper", asset="a", node_id="n2", unit=""),
)
_Z = np.array([-1.2816, 0.0, 1.2816])
NOMINAL = np.array([55.0, 72.0, 0.3])
HISTORY = 1440
RATE = {
    "asset_estimate_rate_enabled": True,
    "asset_estimate_rate_units": ("degF",),
    "asset_estimate_rate_window_steps": 240,
    "asset_estimate_rate_max_share": 0.2,
}


def run(live_noise: np.ndarray, live_steps: int, seed: int = 0, **settings: object) -> list[AlertEvent]:
    """A known-good history of HISTORY ticks (residual noise SIGMA on every tag, the estimate's band honest),
    replayed as the start-up backfill, then ``live_steps`` live ticks whose residual noise per tag is
    ``live_noise`` (a function of the tick: (steps, tags))."""
    st, _ = stage(TAGS, **(RATE | settings))
    rng = np.random.default_rng(seed)
    events: list[AlertEvent] = []
    estimate = NOMINAL[:, None] + _Z[None, :] * SIGMA

    def tick(k: int, noise: np.ndarray) -> list[AlertEvent]:
        values = NOMINAL + noise * rng.standard_normal(3)
        fb = dataclasses.replace(batch(TAGS, float(k), values.tolist(), values.tolist()), estimate=estimate)
        return st.process(fb)

    with st.replaying_history():
        for k in range(HISTORY):
            tick(k, np.full(3, SIGMA))
    for k in range(live_steps):
        events += tick(HISTORY + k, live_noise[k])
    return events


def opened(events: list[AlertEvent]) -> list[AlertEvent]:
    return [e for e in events if e.kind == "relation" and e.event == "opened" and e.subject.endswith("#rate")]


def test_share_step_is_an_ewma_that_skips_missing_rows() -> None:
    assert share_step(np.array([0.0, 0.5]), np.array([1.0, np.nan]), alpha=0.25).tolist() == [0.25, 0.5]


def test_a_tag_surprising_more_often_for_hours_is_found_after_about_a_window() -> None:
    # From the start of live data the return air's residual is twice the history's spread: |r| > 3 on about
    # 13 % of ticks instead of 0.3 %... then 3 spreads: about 32 %.  The share reaches 0.2 after ~ window ticks.
    noise = np.tile(np.array([SIGMA, 3 * SIGMA, SIGMA]), (1500, 1))
    events = opened(run(noise, 1500))
    assert {e.tag for e in events} == {"a.rat"}
    first = min(e.event_ts for e in events) - HISTORY
    assert 60 < first < 600


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_history_s_own_behaviour_gives_no_alarm(seed: int) -> None:
    noise = np.full((3000, 3), SIGMA)
    assert opened(run(noise, 3000, seed=seed)) == []


def test_a_burst_of_minutes_does_not_move_the_hours_long_share() -> None:
    # 20 ticks of residuals ten spreads wide on the supply air: 20/240 ≈ 0.08 of the share at most.
    noise = np.full((1000, 3), SIGMA)
    noise[300:320, 0] = 10 * SIGMA
    assert opened(run(noise, 1000)) == []


def test_the_same_burst_with_a_short_window_is_found() -> None:
    """The check above can fail: with a 20-tick window the same burst takes the share past 0.2."""
    noise = np.full((1000, 3), SIGMA)
    noise[300:320, 0] = 10 * SIGMA
    assert {e.tag for e in opened(run(noise, 1000, asset_estimate_rate_window_steps=20))} == {"a.sat"}


def test_a_tag_of_another_unit_is_not_accumulated() -> None:
    noise = np.tile(np.array([SIGMA, SIGMA, 5 * SIGMA]), (1500, 1))
    assert opened(run(noise, 1500)) == []
    assert {e.tag for e in opened(run(noise, 1500, asset_estimate_rate_units=()))} == {"a.damper"}


def test_the_reference_is_frozen_after_the_history() -> None:
    """A per-tick scale that kept learning would absorb an all-day change; this one still flags it after
    five windows."""
    noise = np.tile(np.array([SIGMA, 3 * SIGMA, SIGMA]), (1500, 1))
    events = run(noise, 1500)
    rat = [e for e in events if e.subject == "a.rat#rate"]
    assert [e.event for e in rat][:1] == ["opened"]
    assert "cleared" not in [e.event for e in rat]


def test_off_by_default() -> None:
    noise = np.tile(np.array([SIGMA, 3 * SIGMA, SIGMA]), (1500, 1))
    assert opened(run(noise, 1500, asset_estimate_rate_enabled=False)) == []
