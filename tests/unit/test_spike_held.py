"""The spike check reads a replayed held slot as a gap (``detect.history_held_spike_skip``, issue 17).

A held slot repeats the last exported value: a spike check that takes it for a measurement learns steps of 0
(too narrow a spread) and keeps a held value as the last one, so the first live value "jumps" from it and
comes back: a confirmed spike that is only the hold ending (seed 1625).  With the skip, held slots teach no
step and no step is learned or judged across a held run; the stuck timer and the read steps are kept.
"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from sentinelle.detect.quality import DataQuality
from sentinelle.detect.stage import DetectStage
from sentinelle.metrics import Metrics
from sentinelle.settings import DetectSettings

from .test_screen_reset import DEADBAND, REPLAY, TAG, _batch, _series, _verdicts


def _replayed(skip: bool) -> DataQuality:
    hx, held, _ = _series()
    dq = DataQuality([TAG], DetectSettings())
    for k in range(REPLAY):
        dq.step(60.0 * k, np.array([hx[k]]), held=np.array([held[k]]) if skip else None)
    return dq


def test_without_the_skip_the_hold_ending_is_confirmed_a_spike() -> None:
    _, _, live = _series()
    assert any(c for _, _, c, _ in _verdicts(_replayed(skip=False), live))


def test_with_the_skip_no_spike_is_confirmed_on_the_live_ticks() -> None:
    _, _, live = _series()
    assert not any(c for _, _, c, _ in _verdicts(_replayed(skip=True), live))


def test_the_ring_holds_only_steps_between_consecutive_read_values() -> None:
    hx, held, _ = _series()
    dq = _replayed(skip=True)
    steps = dq._steps[0][np.isfinite(dq._steps[0])]
    read = ~held
    pairs = read[1:] & read[:-1]
    expected = np.diff(hx)[pairs]
    assert len(steps) > 0 and not np.any(steps == 0.0)
    # every learned step is the step between two consecutive read values (no held step, none across a run)
    assert np.isin(steps, expected).all()
    assert np.isnan(dq._prev[0]) == bool(held[-1])


def test_a_hand_made_held_run_teaches_no_step_and_the_next_value_is_not_judged() -> None:
    dq = DataQuality([TAG], DetectSettings(spike_window_steps=8))
    values = [10.0, 10.5, 10.2, 10.6, 10.3, 10.7, 10.4, 10.8, 10.5, 10.9, 10.9, 10.9, 10.9, 30.0]
    held = [False] * 10 + [True] * 3 + [False]
    ticks = [
        dq.step(60.0 * k, np.array([v]), held=np.array([h])) for k, (v, h) in enumerate(zip(values, held, strict=True))
    ]
    assert not ticks[-1].spike[0]  # 30.0 after a held run: its step is unknown, not a jump
    ring = dq._steps[0][np.isfinite(dq._steps[0])]
    # the ring (8 ticks: 6..13) keeps the read steps of ticks 6..9 and nothing from the held run or across it
    np.testing.assert_allclose(sorted(ring), sorted([-0.3, 0.4, -0.3, 0.4]))
    assert dq._prev[0] == 30.0
    cold = DataQuality([TAG], DetectSettings(spike_window_steps=8))
    ticks = [cold.step(60.0 * k, np.array([v])) for k, v in enumerate(values)]
    assert ticks[-1].spike[0]  # without the held mask the held steps (0) enter the ring and 30.0 is a jump


def _spike_alerts(skip: bool) -> int:
    hx, held, live = _series()
    st = DetectStage((TAG,), DetectSettings(history_held_spike_skip=skip), Metrics(CollectorRegistry()))
    with st.replaying_history({TAG.name: DEADBAND}):
        for k in range(REPLAY):
            st.process(_batch(k, float(hx[k]), bool(held[k])))
    events = [e for k, v in enumerate(live.tolist()) for e in st.process(_batch(REPLAY + k, v, None))]
    return sum(e.event == "opened" and e.kind == "data_quality" for e in events)


def test_the_setting_makes_the_stage_skip_held_slots_in_the_spike_check() -> None:
    assert _spike_alerts(skip=False) >= 1
    assert _spike_alerts(skip=True) == 0
