"""The published score's tail bound (``detect.score_published_tail``, ``score_published_tail_floor_sigmas``), on
hand-made sequences: an excursion the tag makes often publishes what its rate says (never below the floor's normal
surprise), a larger one than any recent and a moderate one below the floor are scored as before, the flags and
alerts never read it, and the state round-trips (also into a detector with it off)."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from sentinelle.detect.detectors import BuildContext
from sentinelle.detect.detectors.residual import ResidualDetector
from sentinelle.detect.stage import DetectStage
from sentinelle.detect.surprise import log_score, surprisal
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent
from sentinelle.settings import DetectSettings, TagSettings

from .detect_helpers import LEVELS, SIGMA, batch, stage

TAGS = [TagSettings(name="a.t", asset="a", node_id="ns=2;s=t", period_s=60.0)]
EVERY = 150
"""Ticks between the recurring excursions (a few a day on minute data)."""
BIG_Z = 40.0
"""The recurring excursion, in forecast spreads: what an over-sure band makes of an ordinary move (NAB, issue 13)."""
ON = {"score_published_tail": True}
PLAIN = {"novelty_enabled": False, "score_rest_steps": 0}
"""The residual's published score alone, no rest: the novelty would score a spike's unseen context on its own."""


def _values(n: int, seed: int = 5, extra: dict[int, float] | None = None) -> np.ndarray:
    """Noise of one forecast spread and a one-tick excursion of ``BIG_Z`` every ``EVERY`` ticks from tick 100."""
    x = np.random.default_rng(seed).normal(0.0, SIGMA, n)
    x[100::EVERY] = BIG_Z * SIGMA
    for k, v in (extra or {}).items():
        x[k] = v
    return x


def _run(x: np.ndarray, **kw: object) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str, str]], DetectStage]:
    """Published score and flag surprise per tick, alert events, the stage."""
    st, _ = stage(TAGS, **(PLAIN | kw))
    published, surprise, events = [], [], list[AlertEvent]()
    for k, v in enumerate(x):
        events += st.process(batch(TAGS, k * 60.0, [float(v)], [0.0]))
        t = st.last_tick
        assert t is not None
        published.append(float(t.score[0]))
        surprise.append(float(t.surprise[0]))
    return np.array(published), np.array(surprise), [(e.event, e.kind, e.subject) for e in events], st


def test_a_recurring_excursion_publishes_its_rate_and_flags_are_unchanged() -> None:
    x = _values(3000)
    rows = np.arange(100, x.size, EVERY)
    plain, plain_surprise, plain_events, _ = _run(x)
    bound, bound_surprise, bound_events, _ = _run(x, **ON)
    # Without the bound every excursion publishes ~0.8 (z 40: ~350 decades, less what is left of the last one's peak).
    assert (plain[rows] > 0.75).all()
    # With it the first scores as before (no record yet), the later ones what a one-in-~150-tick excursion is worth.
    assert bound[rows[0]] == pytest.approx(plain[rows[0]])
    assert (bound[rows[8:]] < log_score(np.array([3.0]))[0]).all()
    # The flags, and so the alerts, never read it.
    np.testing.assert_array_equal(bound_surprise, plain_surprise)
    assert bound_events == plain_events
    assert DetectSettings().score_published_tail is False  # shipped off
    assert DetectSettings().score_published_tail_floor_sigmas == 0.0


def test_the_floor_keeps_moderate_surprises_and_a_floor_for_the_bounded_ones() -> None:
    x = _values(3000)
    rows = np.arange(100, x.size, EVERY)
    floored, _, _, _ = _run(x, score_published_tail_floor_sigmas=5.0, **ON)
    at_floor = float(surprisal(np.array([5.0]))[0])
    # A recurring excursion is bounded to the floor's surprise, less what is left of the refractory peak (here the
    # early, unbounded excursions' peak still covers it: 0).
    late = floored[rows[8:]]
    assert (late <= log_score(np.array([at_floor]))[0] + 1e-9).all()
    # A moderate excursion (4.5 spreads, below the floor) between them publishes as without the bound; without a
    # floor the tag's record bounds it too (its big excursions cross 4 spreads every time). No refractory peak here,
    # which would hide it either way.
    k = int(rows[10] + EVERY // 2)
    y = _values(3000, extra={k: 4.5 * SIGMA})
    plain, _, _, _ = _run(y, score_refractory_steps=0)
    floored, _, _, _ = _run(y, score_refractory_steps=0, score_published_tail_floor_sigmas=5.0, **ON)
    bare, _, _, _ = _run(y, score_refractory_steps=0, **ON)
    assert floored[k] == pytest.approx(plain[k]) and plain[k] > 0.2
    assert bare[k] < plain[k] - 0.05


def test_an_excursion_larger_than_any_recent_one_keeps_its_score() -> None:
    k = int(100 + 12 * EVERY + EVERY // 2)
    x = _values(3000, extra={k: 3.0 * BIG_Z * SIGMA})  # 120 spreads: beyond every level the tag reached
    plain, _, _, _ = _run(x)
    bound, _, _, _ = _run(x, **ON)
    # Judged against a peak that remembers the bounded excursions, it even scores a little higher than without.
    assert bound[k] >= plain[k] > 0.9


def test_settings_are_validated() -> None:
    with pytest.raises(ValidationError):
        DetectSettings(score_published_tail_floor_sigmas=-1.0)
    with pytest.raises(ValidationError):
        DetectSettings(score_published_tail_floor_sigmas=9.0)


def test_the_tail_round_trips_and_restores_into_a_detector_with_it_off() -> None:
    x = _values(1200)
    _, _, _, st = _run(x, **ON)
    g = next(iter(st._groups.values()))
    original = g.detectors[0]
    assert isinstance(original, ResidualDetector) and original.scorer.tail is not None
    clone = ResidualDetector(BuildContext(g.layout, st.settings, LEVELS, Metrics(CollectorRegistry())))
    clone.restore(original.state())
    assert clone.scorer.tail is not None
    np.testing.assert_array_equal(clone.scorer.tail.rate, original.scorer.tail.rate)
    off = DetectSettings.model_validate(st.settings.model_dump() | {"score_published_tail": False})
    bare = ResidualDetector(BuildContext(g.layout, off, LEVELS, Metrics(CollectorRegistry())))
    bare.restore(original.state())  # the saved tail is dropped, the rest restored
    assert bare.scorer.tail is None
    np.testing.assert_array_equal(bare.scorer.scale.sigma(), original.scorer.scale.sigma())


def _peak_after(x: np.ndarray, **kw: object) -> float:
    _, _, _, st = _run(x, score_refractory_steps=100, **kw)
    det = next(iter(st._groups.values())).detectors[0]
    assert isinstance(det, ResidualDetector)
    return float(det.scorer._peak[0])


def test_the_refractory_peak_remembers_the_bounded_surprise() -> None:
    # Right after a late recurring excursion the peak later surprises are judged against is what the excursion was
    # worth by the tag's record (a few decades), not its normal-law surprise (~350 decades), which would hide any
    # smaller real event for hundreds of ticks; with a floor, at most the floor's surprise.
    x = _values(100 + 15 * EVERY + 1)
    assert _peak_after(x) > 300.0
    assert _peak_after(x, **ON) < 3.0
    assert _peak_after(x, score_published_tail_floor_sigmas=5.0, **ON) <= float(surprisal(np.array([5.0]))[0])
