"""The escalating rest of the per-tag score (detect/rest.py ``escalate``, ``detect.score_rest_escalate``)."""

from __future__ import annotations

import numpy as np

from sentinelle.detect.rest import Rest, rest_each
from sentinelle.records import AlertEvent
from sentinelle.settings import DetectSettings, TagSettings

from .detect_helpers import batch, stage

TAGS = [TagSettings(name="a.t", asset="a", node_id="ns=2;s=t", period_s=1.0)]
MISS = 590
"""The tick whose value is 1.0 above its forecast (a residual onset), ten ticks before the tag's new pattern."""


def test_a_higher_score_during_the_rest_is_published_and_restarts_it() -> None:
    seq = [0.45, 0.3, 1.0, 0.9, 1.0, 0.2, 0.1, 0.6]
    plain, esc = Rest(1, steps=3, level=0.4), Rest(1, steps=3, level=0.4, escalate="any")
    out_plain = [float(plain.apply(np.array([s]))[0]) for s in seq]
    out_esc = [float(esc.apply(np.array([s]))[0]) for s in seq]
    assert out_plain == [0.45, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]  # the 1.0 two ticks on is rested away
    # The 1.0 beats the 0.45 that started the rest: published, and the rest restarts from it; the later 0.9
    # and 1.0 are not above it (one event, one score); the 0.1 and 0.6 come after the restarted rest ended.
    assert out_esc == [0.45, 0.0, 1.0, 0.0, 0.0, 0.0, 0.1, 0.6]


def test_nan_stays_nan_and_the_best_is_forgotten_when_the_rest_ends() -> None:
    r = Rest(2, steps=2, level=0.5, escalate="any")
    out = [r.apply(np.array(v)) for v in ([0.9, np.nan], [np.nan, 0.1], [0.3, 0.2])]
    assert np.isnan(out[1][0]) and np.isnan(out[0][1])
    assert out[2][0] == 0.0 and r.best[0] == 0.0  # the rest (2 ticks) ended at tick 2: nothing kept
    assert r.apply(np.array([0.6, 0.2]))[0] == 0.6  # awake again: a lower score than the first one fires anew
    assert r.best[0] == 0.6
    off = Rest(1, steps=0, level=0.5, escalate="any")  # no rest at all: the scores as they come
    assert [float(off.apply(np.array([s]))[0]) for s in (0.9, 0.8)] == [0.9, 0.8]


def test_the_tick_after_a_spike_is_the_same_excursion_and_a_later_one_a_new_one() -> None:
    # A residual onset (0.46), then the novelty of the next tick (1.0: its context is the spike itself).
    spike = [0.46, 1.0, 0.0, 0.0]
    # A residual onset, quiet ticks, then a novelty of its own (a new excursion) inside the rest.
    later = [0.46, 0.1, 0.0, 1.0]
    out = {}
    for mode in ("off", "any", "excursion"):
        rs, rl = Rest(1, 5, 0.4, escalate=mode), Rest(1, 5, 0.4, escalate=mode)
        out[mode] = [
            [float(rs.apply(np.array([s]))[0]) for s in spike],
            [float(rl.apply(np.array([s]))[0]) for s in later],
        ]
    assert out["off"] == [[0.46, 0.0, 0.0, 0.0], [0.46, 0.0, 0.0, 0.0]]
    assert out["any"] == [[0.46, 1.0, 0.0, 0.0], [0.46, 0.0, 0.0, 1.0]]  # the spike reported twice
    assert out["excursion"] == [[0.46, 0.0, 0.0, 0.0], [0.46, 0.0, 0.0, 1.0]]  # once; the later event ranks
    nan_gap = Rest(1, 5, 0.4, escalate="excursion")  # a missing score before counts as below the level
    assert [float(nan_gap.apply(np.array([s]))[0]) for s in (0.5, np.nan, 0.9)][2] == 0.9
    try:
        Rest(1, 5, 0.4, escalate="always")
    except ValueError:
        pass
    else:
        raise AssertionError("an unknown escalation was accepted")


def test_margin_publishes_only_decisive_evidence_of_a_new_excursion() -> None:
    # The two patterns of NAB's tuning split (issue 13): a weak residual onset, a novelty of 1.0 eighty ticks
    # later (Twitter_volume_PFE w1), and a strong onset, a novelty of 1.0 later (Twitter_volume_AAPL row 4454).
    weak = [0.46] + [0.0] * 79 + [1.0, 0.0]
    strong = [0.998] + [0.0] * 86 + [1.0, 0.0]
    spike = [0.46, 1.0, 0.0]  # the tick after a spike: the same excursion, never escalated
    out = {}
    for mode in ("excursion", "margin"):
        rows = []
        for seq in (weak, strong, spike):
            r = Rest(1, 100, 0.4, escalate=mode)
            rows.append([float(r.apply(np.array([s]))[0]) for s in seq])
        out[mode] = rows
    assert out["excursion"][0][80] == 1.0 and out["margin"][0][80] == 1.0  # 1.0 beats 0.46 by 0.54 ≥ 0.4
    assert out["excursion"][1][87] == 1.0  # excursion publishes a first score merely rounded up
    assert out["margin"][1][87] == 0.0  # margin does not: 1.0 − 0.998 < 0.4
    assert out["margin"][2] == [0.46, 0.0, 0.0]
    # After an escalation the rest restarts from the new best: a later 1.0 is no longer decisive.
    r = Rest(1, 5, 0.4, escalate="margin")
    assert [float(r.apply(np.array([s]))[0]) for s in (0.45, 0.0, 0.9, 0.0, 1.0, 0.0)] == [0.45, 0, 0.9, 0, 0, 0]
    # Exactly the level beyond the best escalates (the part beyond what was published would fire on its own).
    r = Rest(1, 5, 0.5, escalate="margin")
    assert [float(r.apply(np.array([s]))[0]) for s in (0.5, 0.0, 1.0)] == [0.5, 0.0, 1.0]


def test_each_term_escalates_on_its_own_with_the_term_scope() -> None:
    r = Rest(2, steps=3, level=0.4, escalate="excursion")  # one tag, two terms (term-major)
    seq = [([0.5], [0.0]), ([0.7], [0.0]), ([0.1], [0.0]), ([0.9], [0.0])]
    # The residual term's 0.7 continues its 0.5's excursion; its 0.9 is a new one.
    assert [float(rest_each(r, [np.array(a), np.array(b)])[0]) for a, b in seq] == [0.5, 0.0, 0.0, 0.9]


def _value(k: int) -> float:
    return float(k % 4) if k < 600 else float(3 * (k % 2))  # a sawtooth, then 0, 3, 0, 3 …: never seen


def _forecast(k: int) -> float:
    """The forecast made at tick ``k`` (for the ticks after it): right, but 1.0 low for tick ``MISS``."""
    return _value(k + 1) - (1.0 if k + 1 == MISS else 0.0)


def _run(escalate: str) -> tuple[list[float], list[float], list[tuple[str, str, str]]]:
    novelty: dict[str, object] = {"novelty_enabled": True, "novelty_orders": 2, "novelty_range": "frozen"}
    st, _ = stage(TAGS, score_rest_steps=50, score_rest_level=0.4, score_rest_escalate=escalate, **novelty)
    published: list[float] = []
    novel: list[float] = []
    events: list[AlertEvent] = []
    for k in range(700):
        events += st.process(batch(TAGS, float(k), [_value(k)], [_forecast(k)]))
        t = st.last_tick
        assert t is not None
        published.append(float(t.score[0]))
        novel.append(float(dict(t.parts).get("contextual_novelty", np.full(1, np.nan))[0]))
    return published, novel, [(e.event, e.kind, e.subject) for e in events]


def test_a_novelty_after_a_weaker_residual_onset_is_published_only_when_escalating() -> None:
    assert DetectSettings().score_rest_escalate == "off"
    plain, novel, plain_events = _run("off")
    first_novel = int(np.argmax(np.array(novel[MISS:]) >= 1.0)) + MISS
    assert first_novel < MISS + 50  # the new pattern's first novelty row comes within that rest
    assert max(plain[MISS + 1 : MISS + 50]) == 0.0  # rested away without the escalation
    for mode in ("any", "excursion"):
        esc, _, esc_events = _run(mode)
        assert 0.4 <= plain[MISS] == esc[MISS] < 1.0  # the residual onset starts the rest, in both
        assert esc[first_novel] == 1.0  # published with it: the event ranks by its strongest evidence
        assert max(esc[first_novel + 1 : first_novel + 40]) == 0.0  # and the rest restarts from it
        assert plain_events == esc_events  # flags and alerts never read the published score
    # Here the onset (≈ 0.70) is not weak: the novelty's 1.0 beats it by less than the rest level, so "margin"
    # keeps it rested (one event, one score); alerts are the same whatever is published.
    margin, _, margin_events = _run("margin")
    assert 0.6 < plain[MISS] == margin[MISS] < 1.0
    assert np.array_equal(margin, plain, equal_nan=True) and margin_events == plain_events


def test_the_best_published_score_survives_a_restart() -> None:
    st, _ = stage(TAGS, score_rest_steps=50, score_rest_escalate="excursion")
    for k in range(60):
        st.process(batch(TAGS, float(k), [_value(k)], [_value(k + 1) - (1.0 if k == 39 else 0.0)]))
    g = next(iter(st._groups.values()))
    assert g.rest.left.max() > 0 and g.rest.best.max() >= 0.4  # resting after the onset at tick 40
    arrays, meta = st.state()
    other, _ = stage(TAGS, score_rest_steps=50, score_rest_escalate="excursion")
    other.restore(arrays, meta)
    other.process(batch(TAGS, 60.0, [_value(60)], [_value(61)]))
    h = next(iter(other._groups.values()))
    assert h.rest.best.max() == g.rest.best.max()
