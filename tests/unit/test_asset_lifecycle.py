"""The asset alert's own life cycle: ``asset_open_k``/``asset_open_n``, ``asset_clear_normal_steps``,
``asset_severe_factor`` — SKAB's evaluation settings, leaving every other alert kind on the shared ones."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sentinelle.records import AlertEvent
from sentinelle.settings import DetectSettings, TagSettings

from .detect_helpers import feed, noisy, stage

TAGS = (
    TagSettings(name="a.x", asset="a", node_id="n1", min_spread=0.01),
    TagSettings(name="a.y", asset="a", node_id="n2", min_spread=0.01),
)
NOMINAL = [1.0, 2.0]
LIVE_START = 200.0


def _asset_events(segments: list[tuple[int, float]], **kw: object) -> list[AlertEvent]:
    """Warm the asset model on 200 normal ticks, then feed ``(ticks, shift of x)`` segments live."""
    st, _ = stage(
        TAGS,
        asset_enabled=True,
        asset_warmup_steps=150,
        score_threshold=0.99,  # residuals out of the way: this is about the asset alert
        **kw,
    )
    with st.replaying_history():
        feed(st, TAGS, noisy(NOMINAL, 200, noise=0.05, seed=1), NOMINAL)
    rows: list[list[float]] = []
    for seed, (ticks, shift) in enumerate(segments, start=2):
        rows += [[x + shift, y] for x, y in noisy(NOMINAL, ticks, noise=0.05, seed=seed)]
    events = feed(st, TAGS, rows, NOMINAL, start=LIVE_START)
    return [e for e in events if e.kind == "asset_state"]


def _opened_at(events: list[AlertEvent]) -> list[float]:
    return [e.event_ts for e in events if e.event == "opened"]


# A fault (x 12 σ high) that leaves its limits for 25 ticks, then comes back.
DIPPING_FAULT = [(20, 0.0), (40, 0.6), (25, 0.0), (40, 0.6), (60, 0.0)]


def test_the_shared_clearing_run_splits_a_dipping_fault_into_two_alerts() -> None:
    assert len(_opened_at(_asset_events(DIPPING_FAULT))) == 2  # clear_normal_steps 4 (the helper's)


def test_a_longer_asset_hold_keeps_one_alert_through_the_dip_and_still_clears() -> None:
    events = _asset_events(DIPPING_FAULT, asset_clear_normal_steps=40)
    assert len(_opened_at(events)) == 1
    assert sum(e.event == "cleared" for e in events) == 1  # after the fault, 40 normal ticks later


def test_asset_k_of_n_opens_on_the_first_flagged_tick_with_1_of_1() -> None:
    segments = [(20, 0.0), (30, 3.0)]  # far out: every tick of the fault is flagged
    shared = _opened_at(_asset_events(segments))
    own = _opened_at(_asset_events(segments, asset_open_k=1, asset_open_n=1))
    assert own == [LIVE_START + 20]
    assert shared == [LIVE_START + 22]  # the shared 3 of 5 waits for the third


@pytest.mark.parametrize(("factor", "delay"), [(0.0, 2), (2.0, 0), (1e9, 2)])
def test_a_severe_asset_tick_opens_at_once_only_beyond_the_factor(factor: float, delay: int) -> None:
    events = _asset_events([(20, 0.0), (30, 3.0)], asset_severe_factor=factor)
    assert _opened_at(events) == [LIVE_START + 20 + delay]


def test_asset_k_and_n_come_together_and_k_not_over_n() -> None:
    with pytest.raises(ValidationError, match="together"):
        DetectSettings(asset_open_k=2)
    with pytest.raises(ValidationError, match="must not exceed"):
        DetectSettings(asset_open_k=3, asset_open_n=2)
    assert DetectSettings(asset_open_k=2, asset_open_n=3).open_k == 3  # the shared setting is untouched


def _cleared_at(events: list[AlertEvent]) -> list[float]:
    return [e.event_ts for e in events if e.event == "cleared"]


def test_a_deadband_keeps_one_alert_through_the_dip_and_clears_later() -> None:
    plain = _asset_events(DIPPING_FAULT)
    band = _asset_events(DIPPING_FAULT, asset_clear_score=0.2)
    assert len(_opened_at(plain)) == 2
    # The dip's ticks are back inside the limit but their score (the charts decaying) stays over 0.2.
    assert _opened_at(band) == _opened_at(plain)[:1]
    assert len(_cleared_at(band)) == 1
    assert _cleared_at(band)[0] > _cleared_at(plain)[-1]  # after the fault, once the score is down to 0.2


def test_a_deadband_never_opens_an_alert_by_itself() -> None:
    segments = [(20, 0.0), (60, 0.05), (40, 0.0)]  # 1 σ: inside the limit, not inside a deadband of 0.05
    assert _opened_at(_asset_events(segments)) == []
    assert _opened_at(_asset_events(segments, asset_clear_score=0.05)) == []


def test_the_deadband_is_under_the_limit_and_not_with_the_likelihood_layer() -> None:
    with pytest.raises(ValidationError):
        DetectSettings(asset_clear_score=1.5)
    with pytest.raises(ValidationError, match="deadband"):
        DetectSettings(asset_clear_score=0.5, asset_likelihood_enabled=True)
