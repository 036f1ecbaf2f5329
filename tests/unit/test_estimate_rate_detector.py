"""detect/detectors/estimate_rate.py: a fault that makes the estimate residual surprising more often for hours
is found; bursts, the history's own rate and unwatched units are not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sentinelle.detect.detectors.estimate_rate import EstimateRateDetector, SlidingShare, share_step
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


def run(live_noise: np.ndarray, live_steps: int, *, seed: int = 0, **settings: object) -> list[AlertEvent]:
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


# The exact window (window_kind "sliding") and the judgement delay (docs/results/lbnl/estimate_rate_day/).
SLIDING: dict[str, object] = {"asset_estimate_rate_window_kind": "sliding"}


def test_the_sliding_share_is_the_exact_share_of_the_last_window() -> None:
    rng = np.random.default_rng(3)
    e = (rng.random((500, 2)) < 0.3).astype(float)
    e[rng.random((500, 2)) < 0.2] = np.nan
    w = SlidingShare(rows=2, steps=37)
    for k in range(len(e)):
        got = w.push(e[k])
        last = e[max(0, k - 36) : k + 1]
        seen = np.isfinite(last).sum(axis=0)
        want = np.where(seen > 0, np.nansum(last, axis=0) / np.maximum(seen, 1), np.nan)
        assert np.allclose(got, want, equal_nan=True)


def test_the_sliding_share_of_a_window_without_indicators_is_missing() -> None:
    w = SlidingShare(rows=1, steps=2)
    w.push(np.array([1.0]))
    w.push(np.array([np.nan]))
    assert np.isnan(w.push(np.array([np.nan]))).all()


def test_a_tag_surprising_more_often_is_found_by_the_sliding_share() -> None:
    noise = np.tile(np.array([SIGMA, 3 * SIGMA, SIGMA]), (1500, 1))
    events = opened(run(noise, 1500, asset_estimate_rate_window_kind="sliding"))
    assert {e.tag for e in events} == {"a.rat"}


@pytest.mark.parametrize("seed", [0, 1])
def test_the_history_s_own_behaviour_gives_no_alarm_with_the_sliding_share(seed: int) -> None:
    """Judged after 60 live ticks: a window of a few ticks is not read (one surprising tick in 5 is 0.2)."""
    noise = np.full((3000, 3), SIGMA)
    assert (
        opened(
            run(
                noise,
                3000,
                seed=seed,
                asset_estimate_rate_judge_after_steps=60,
                asset_estimate_rate_window_kind="sliding",
            )
        )
        == []
    )


def test_a_window_of_a_few_live_ticks_is_noise_unless_judgement_waits() -> None:
    """The check above can fail: judged from the first live tick, a window holding one surprising tick
    (the history's own 0.3 % rate, here forced on the first live ticks) reads as a share of 1."""
    noise = np.full((300, 3), SIGMA)
    noise[:3, 0] = 10 * SIGMA
    assert {e.tag for e in opened(run(noise, 300, asset_estimate_rate_window_kind="sliding"))} == {"a.sat"}
    assert (
        opened(run(noise, 300, asset_estimate_rate_judge_after_steps=60, asset_estimate_rate_window_kind="sliding"))
        == []
    )


def test_judgement_waits_for_the_live_ticks_asked_for() -> None:
    noise = np.tile(np.array([SIGMA, 3 * SIGMA, SIGMA]), (1500, 1))
    early = min(e.event_ts for e in opened(run(noise, 1500))) - HISTORY
    late = min(e.event_ts for e in opened(run(noise, 1500, asset_estimate_rate_judge_after_steps=1000))) - HISTORY
    assert early < 600 and 999 <= late < 1010


def test_the_sliding_window_forgets_a_stretch_after_a_window() -> None:
    """300 ticks of a wide residual, then the history's: the exact share is back to the healthy rate one window
    (240 ticks) after the stretch ends, so the alert clears; it opened during the stretch."""
    noise = np.full((1200, 3), SIGMA)
    noise[100:400, 1] = 4 * SIGMA
    rat = [
        (e.event_ts - HISTORY, e.event)
        for e in run(noise, 1200, asset_estimate_rate_window_kind="sliding")
        if e.subject == "a.rat#rate"
    ]
    assert any(100 < t < 400 and ev == "opened" for t, ev in rat)
    last, event = rat[-1]
    assert event == "cleared" and 400 < last < 400 + 240 + 20


def rate_detector(**settings: object) -> EstimateRateDetector:
    """The detector of a stage that has seen one tick (a stage builds its detectors on a group's first batch)."""
    st, _ = stage(TAGS, **(RATE | settings))
    st.process(batch(TAGS, 0.0, NOMINAL.tolist(), NOMINAL.tolist()))
    return next(d for g in st._groups.values() for d in g.detectors if isinstance(d, EstimateRateDetector))


def test_state_round_trips_with_the_window() -> None:
    det = rate_detector(**SLIDING)
    for k in range(300):
        det.window.push(np.array([float(k % 3 == 0), 1.0, np.nan]))
    det.live[:] = 300
    det2 = rate_detector(**SLIDING)
    det2.restore(det.state())
    assert int(det2.live[0]) == 300
    assert det2.window.push(np.zeros(3)).tolist() == det.window.push(np.zeros(3)).tolist()
    other = rate_detector(asset_estimate_rate_window_steps=100, **SLIDING)
    other.restore(det.state())  # another window length: the window refills, the rest is restored
    assert int(other.live[0]) == 300 and int(other.window.seen.sum()) == 0
