"""The data-quality screen after a compressed replay (``detect.history_held_screen_reset``, issue 17).

A held slot repeats the last exported value: the replay teaches the spike check steps of 0 and leaves a
held value as the last one, so the first live value can "jump" from it and come back: a confirmed spike
that is only the hold ending (seed 1625).  With the reset, rows with held slots start the live days as a
screen that never saw the replay does.
"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from sentinelle.detect.detectors.base import pack, unpack
from sentinelle.detect.quality import DataQuality
from sentinelle.detect.stage import DetectStage
from sentinelle.metrics import Metrics
from sentinelle.records import FloatArray, ForecastBatch, WindowBatch
from sentinelle.settings import DetectSettings, TagSettings

from .deadband_helpers import compress

TAG = TagSettings(name="a.p", asset="a", node_id="n", period_s=60.0, spike_factor=12.0, min_spread=0.01)
DEADBAND = 9.5
REPLAY = 3000
LIVE = 60
SEED = 3
"""A seed whose replay ends on a held value that the first live values jump from and come back to."""


def _series(seed: int = SEED) -> tuple[FloatArray, np.ndarray, FloatArray]:
    """A slow load with noise (kW), its compressed export and held mask, then live values from where it ends."""
    rng = np.random.default_rng(seed)
    x = 400 + np.cumsum(rng.normal(0, 1.0, REPLAY)) * 0.3 + rng.normal(0, 4.0, REPLAY)
    hx, held = compress(x, DEADBAND)
    live = x[-1] + np.cumsum(rng.normal(0, 1.0, LIVE)) * 0.3 + rng.normal(0, 4.0, LIVE)
    return hx, held, live


def _replayed(reset: bool, held_known: bool = True) -> DataQuality:
    hx, held, _ = _series()
    dq = DataQuality([TAG], DetectSettings())
    for k in range(REPLAY):
        if held_known:
            dq.saw_held(np.array([held[k]]))
        dq.step(60.0 * k, np.array([hx[k]]))
    if reset:
        dq.forget_replay()
    return dq


def _verdicts(dq: DataQuality, live: FloatArray) -> list[tuple[bool, bool, bool, bool]]:
    out = []
    for k, v in enumerate(live.tolist()):
        q = dq.step(60.0 * (REPLAY + k), np.array([v]))
        out.append((bool(q.gate[0]), bool(q.spike[0]), bool(q.spike_confirmed[0]), bool(q.stuck[0])))
    return out


def test_without_the_reset_the_hold_ending_is_confirmed_a_spike() -> None:
    _, _, live = _series()
    assert any(c for _, _, c, _ in _verdicts(_replayed(reset=False), live))


def test_after_the_reset_the_live_ticks_are_judged_as_by_a_screen_that_never_saw_the_replay() -> None:
    _, _, live = _series()
    cold = DataQuality([TAG], DetectSettings())
    assert _verdicts(_replayed(reset=True), live) == _verdicts(cold, live)
    assert not any(c for _, _, c, _ in _verdicts(_replayed(reset=True), live))


def test_rows_without_held_slots_keep_what_the_replay_taught() -> None:
    dq = _replayed(reset=False, held_known=False)
    ring = dq._steps.copy()
    dq.forget_replay()
    np.testing.assert_array_equal(dq._steps, ring)


def _batch(t: int, value: float, held: bool | None) -> ForecastBatch:
    w = WindowBatch(ts=1_767_225_600.0 + 60.0 * t, period_s=60.0, tags=(TAG.name,), assets=("a",),
                    values=np.array([value]), contexts=np.full((1, 16), value),
                    held=None if held is None else np.array([held]))  # fmt: skip
    q = np.repeat(np.array([[value - 5.0, value, value + 5.0]])[:, :, None], 2, axis=2)
    return ForecastBatch(window=w, levels=(0.1, 0.5, 0.9), quantiles=q, forecaster="f")


def _spike_alerts(reset: bool) -> int:
    hx, held, live = _series()
    st = DetectStage(
        (TAG,),
        DetectSettings(history_held_screen_reset=reset, history_held_spike_skip=False),
        Metrics(CollectorRegistry()),
    )
    with st.replaying_history({TAG.name: DEADBAND}):
        for k in range(REPLAY):
            st.process(_batch(k, float(hx[k]), bool(held[k])))
    events = [e for k, v in enumerate(live.tolist()) for e in st.process(_batch(REPLAY + k, v, None))]
    return sum(e.event == "opened" and e.kind == "data_quality" for e in events)


def test_the_setting_resets_the_screen_at_the_replays_end_in_the_stage() -> None:
    assert _spike_alerts(reset=False) >= 1
    assert _spike_alerts(reset=True) == 0


def test_the_held_rows_survive_a_restart_and_an_older_state_has_none() -> None:
    from sentinelle.detect.detectors.data_quality import QualityScreen

    st = DetectStage((TAG,), DetectSettings(history_held_screen_reset=True), Metrics(CollectorRegistry()))
    with st.replaying_history({TAG.name: DEADBAND}):
        st.process(_batch(0, 400.0, True))
    screen = next(iter(st._groups.values())).screen
    assert isinstance(screen, QualityScreen) and screen.quality._replay_held.all()
    blob = screen.state()
    fresh = QualityScreen(screen.layout, DataQuality([TAG], DetectSettings()))
    fresh.restore(blob)
    assert fresh.quality._replay_held.all()
    arrays, meta = unpack(blob, screen.name, 1)
    del arrays["_replay_held"]
    older = QualityScreen(screen.layout, DataQuality([TAG], DetectSettings()))
    older.quality._replay_held[:] = True
    older.restore(pack(screen.name, 1, arrays, meta))
    assert not older.quality._replay_held.any()
