"""Settling after an asset episode (``detect.asset_settle_steps``): a process drifting back from an upset does not
re-open the asset-state alert within the settling time; a short false opening earns none; residuals still alert."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from sentinelle.detect.detectors import BuildContext
from sentinelle.detect.detectors.asset_t2q import AssetDetector
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent
from sentinelle.settings import DetectSettings, TagSettings

from .detect_helpers import LEVELS, feed, noisy, stage

TAGS = (
    TagSettings(name="a.x", asset="a", node_id="n1", min_spread=0.01),
    TagSettings(name="a.y", asset="a", node_id="n2", min_spread=0.01),
)
NOMINAL = [1.0, 2.0]
LIVE_START = 200.0


Segments = list[tuple[int, float]] | list[tuple[int, float, float]]


def _events(segments: Segments, residuals: bool = False, **kw: object) -> list[AlertEvent]:
    """Warm the asset model on 200 normal ticks, then feed ``(ticks, shift of x[, shift of y])`` segments live."""
    st, _ = stage(
        TAGS,
        asset_enabled=True,
        asset_warmup_steps=150,
        **({} if residuals else {"score_threshold": 0.99}),  # residuals out of the way unless asked for
        **kw,
    )
    with st.replaying_history():
        feed(st, TAGS, noisy(NOMINAL, 200, noise=0.05, seed=1), NOMINAL)
    rows: list[list[float]] = []
    for seed, (ticks, dx, *dy) in enumerate(segments, start=2):
        rows += [[x + dx, y + sum(dy)] for x, y in noisy(NOMINAL, int(ticks), noise=0.05, seed=seed)]
    return feed(st, TAGS, rows, NOMINAL, start=LIVE_START)


def _opened(events: list[AlertEvent], kind: str = "asset_state") -> list[float]:
    return [e.event_ts for e in events if e.event == "opened" and e.kind == kind]


# A long fault (x 12 σ high for 80 ticks), back to normal for 20 ticks, then the process wanders 4 σ off for 30
# ticks on its way back (over the chart's limit), then normal.
SETTLING = [(20, 0.0), (80, 0.6), (20, 0.0), (30, 0.2), (60, 0.0)]


def test_without_settling_the_wander_after_a_fault_opens_a_second_alert() -> None:
    assert len(_opened(_events(SETTLING))) == 2


def test_settling_holds_the_asset_state_through_the_wander_after_a_long_episode() -> None:
    opened = _opened(_events(SETTLING, asset_settle_steps=60, asset_settle_after_steps=60))
    assert opened == [LIVE_START + 22]  # the fault's alert (the helper's 3 of 5), and no other


def test_settling_ends_after_its_time() -> None:
    # The same wander, but after the settling time (20 normal ticks + 4 to clear < 30): it opens again.
    assert len(_opened(_events(SETTLING, asset_settle_steps=10, asset_settle_after_steps=60))) == 2


def test_a_short_episode_earns_no_settling_so_the_fault_after_it_is_not_delayed() -> None:
    segments = [(20, 0.0), (15, 0.6), (20, 0.0), (60, 0.6), (40, 0.0)]  # a 15-tick false opening, then the fault
    plain = _opened(_events(segments))
    settled = _opened(_events(segments, asset_settle_steps=100, asset_settle_after_steps=60))
    assert len(plain) == 2 and settled == plain
    # The same first opening counted as an episode: the fault is held for the settling time.
    assert len(_opened(_events(segments, asset_settle_steps=100, asset_settle_after_steps=5))) == 1


def test_residual_alerts_still_open_during_settling() -> None:
    # A step of y during the settling time: the asset state is held, the per-tag residual is not.
    segments = [(20, 0.0, 0.0), (80, 0.6, 0.0), (20, 0.0, 0.0), (30, 0.0, 1.0), (40, 0.0, 0.0)]
    events = _events(segments, residuals=True, asset_settle_steps=200, asset_settle_after_steps=60)
    assert len(_opened(events)) == 1  # the fault's; the step of y is in the settling time
    step = LIVE_START + 120
    assert any(step <= t < step + 30 for t in _opened(events, "forecast_residual"))
    unsettled = _events(segments, residuals=True)
    assert len(_opened(unsettled)) == 2  # without settling the asset state reports the step as well


@pytest.mark.parametrize("bad", [{"asset_settle_steps": -1}, {"asset_settle_after_steps": 0}])
def test_settling_settings_are_checked(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        DetectSettings(**bad)  # type: ignore[arg-type]


# A fault with a 25-tick dip, then normal for 80 ticks and the wander: with a re-arm time of 40 s the dip is
# inside one alert, and the alert is sent cleared about 40 ticks after the fault.
DIP_THEN_WANDER = [(20, 0.0), (60, 0.6), (25, 0.0), (40, 0.6), (80, 0.0), (30, 0.2), (60, 0.0)]
REARM_S = 40.0


def _cleared(events: list[AlertEvent]) -> list[float]:
    return [e.event_ts for e in events if e.event == "cleared" and e.kind == "asset_state"]


def test_settling_from_the_condition_holds_a_fault_that_dips() -> None:
    plain = _events(DIP_THEN_WANDER, rearm_min_s=REARM_S)
    held = _events(DIP_THEN_WANDER, asset_settle_steps=200, asset_settle_after_steps=30, rearm_min_s=REARM_S)
    assert len(_opened(plain)) == 2  # the fault (its dip continued by re-arm) and the wander
    assert len(_opened(held)) == 1
    # The fault's return after the dip was held: its alert is sent cleared before the fault's end (tick 145).
    assert _cleared(held)[0] < LIVE_START + 145 < _cleared(plain)[0]


def test_settling_after_the_rearm_time_keeps_the_dipping_fault_and_holds_the_wander() -> None:
    plain = _events(DIP_THEN_WANDER, rearm_min_s=REARM_S)
    settled = _events(
        DIP_THEN_WANDER,
        asset_settle_steps=200,
        asset_settle_after_steps=30,
        asset_settle_after_rearm=True,
        rearm_min_s=REARM_S,
    )
    assert len(_opened(settled)) == 1  # the wander is in the settling time
    assert _cleared(settled)[0] == _cleared(plain)[0]  # the fault's alert as without settling, dip and all
    assert [e.event for e in settled if e.kind == "asset_state"].count("updated") >= 1  # the return after the dip


def test_a_snapshot_taken_in_the_settling_time_restores_it() -> None:
    st, _ = stage(TAGS, asset_enabled=True, asset_warmup_steps=150, score_threshold=0.99, asset_settle_steps=100)
    with st.replaying_history():
        feed(st, TAGS, noisy(NOMINAL, 200, noise=0.05, seed=1), NOMINAL)
    rows = [[x + dx, y] for dx, n in ((0.6, 80), (0.0, 30)) for x, y in noisy(NOMINAL, n, noise=0.05, seed=n)]
    feed(st, TAGS, rows, NOMINAL, start=LIVE_START)
    g = next(iter(st._groups.values()))
    det = next(d for d in g.detectors if d.name == "asset_state")
    assert isinstance(det, AssetDetector) and 0 < int(det._settle_left[0]) < 100  # in its settling time now
    clone = AssetDetector(BuildContext(g.layout, st.settings, LEVELS, Metrics(CollectorRegistry())))
    clone.restore(det.state())
    for name in ("_closed_run", "_episode", "_settle_left"):
        assert getattr(clone, name).tolist() == getattr(det, name).tolist(), name
