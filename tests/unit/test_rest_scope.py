"""The rest period per term of the per-tag score (detect/rest.py ``rest_each``, ``detect.score_rest_scope``)."""

from __future__ import annotations

import numpy as np

from sentinelle.detect.rest import Rest, rest_each
from sentinelle.records import AlertEvent
from sentinelle.settings import DetectSettings, TagSettings

from .detect_helpers import batch, stage

TAGS = [TagSettings(name="a.t", asset="a", node_id="ns=2;s=t", period_s=1.0)]
SPIKE = 606
"""The tick whose value is 1.0 above its forecast (z = 10): a residual onset 6 ticks after the novelty fired."""


def test_each_term_rests_on_its_own_and_the_largest_is_published() -> None:
    r = Rest(2 * 2, steps=3, level=0.5)  # two tags, two terms (term-major)
    seq = [([0.1, 0.9], [1.0, np.nan]), ([0.8, 0.9], [0.0, np.nan]), ([0.9, 0.2], [1.0, np.nan])]
    out = np.array([rest_each(r, [np.array(a), np.array(b)]) for a, b in seq])
    # Tag 0: the novelty fires, then the residual fires while the novelty rests: both published.
    np.testing.assert_array_equal(out[:, 0], [1.0, 0.8, 0.0])
    # Tag 1: its second term is NaN throughout (no such detector score): the first term's own rest.
    np.testing.assert_array_equal(out[:, 1], [0.9, 0.0, 0.0])
    assert np.isnan(rest_each(Rest(2, 3, 0.5), [np.array([np.nan]), np.array([np.nan])])[0])


def _value(k: int) -> float:
    return float(k % 4) if k < 600 else float(3 * (k % 2))  # a sawtooth, then 0, 3, 0, 3 …: never seen


def _forecast(k: int) -> float:
    """The forecast made at tick ``k`` (for the ticks after it): right, but 1.0 low for the spike's tick."""
    return _value(k + 1) - (1.0 if k + 1 == SPIKE else 0.0)


def _run(scope: str) -> tuple[list[float], list[tuple[str, str, str]]]:
    novelty: dict[str, object] = {"novelty_enabled": True, "novelty_orders": 2, "novelty_range": "frozen"}
    st, _ = stage(TAGS, score_rest_steps=50, score_rest_level=0.4, score_rest_scope=scope, **novelty)
    published: list[float] = []
    events: list[AlertEvent] = []
    for k in range(700):
        events += st.process(batch(TAGS, float(k), [_value(k)], [_forecast(k)]))
        assert st.last_tick is not None
        published.append(float(st.last_tick.score[0]))
    return published, [(e.event, e.kind, e.subject) for e in events]


def test_a_residual_onset_during_the_novelty_rest_is_published_with_the_term_scope_only() -> None:
    assert DetectSettings().score_rest_scope == "tag"
    tag, tag_events = _run("tag")
    term, term_events = _run("term")
    onset = int(np.argmax(np.array(tag[600:]) >= 0.4)) + 600
    assert onset < SPIKE and tag[onset] == term[onset] == 1.0  # the novelty fired first, in both
    assert tag[SPIKE] == 0.0  # one rest for the tag: the residual onset is rested away
    assert term[SPIKE] > 0.5  # its own term was awake
    assert max(term[SPIKE + 1 : SPIKE + 40]) == 0.0  # and rests after it, as the novelty still does
    assert tag_events == term_events  # flags and alerts never read the published score


def test_the_rest_state_survives_a_restart_and_another_scope_starts_awake() -> None:
    st, _ = stage(TAGS, novelty_enabled=True, score_rest_steps=50, score_rest_scope="term")
    for k in range(60):
        st.process(batch(TAGS, float(k), [_value(k)], [_value(k + 1) - (1.0 if k == 39 else 0.0)]))
    g = next(iter(st._groups.values()))
    assert g.rest.left.max() > 0  # the residual term rests after its onset at tick 40
    arrays, meta = st.state()
    for scope, awake in (("term", False), ("tag", True)):
        other, _ = stage(TAGS, novelty_enabled=True, score_rest_steps=50, score_rest_scope=scope)
        other.restore(arrays, meta)
        other.process(batch(TAGS, 60.0, [_value(60)], [_value(61)]))
        h = next(iter(other._groups.values()))
        assert (h.rest.left.max() == 0) == awake
