"""The tag's own excursion record (detect/tail.py) bounding the per-tag surprise, on hand-made sequences.

A held, quantised control signal forecast by "the last value" (its forecast spread: one quantum): it holds for
hours, then steps as its schedule commands.  Each test fails if the mechanism it names is removed.
"""

from __future__ import annotations

import numpy as np

from sentinelle.detect.scoring import ResidualScorer
from sentinelle.detect.tail import ExcursionTail
from sentinelle.records import BoolArray, ForecastBatch, WindowBatch
from sentinelle.settings import DetectSettings

LEVELS = (0.1, 0.5, 0.9)
Z90 = 1.2815515655446004
QUANTUM = 0.01
DAY = 300
"""Ticks between two commanded steps ("a day")."""


class HeldSignal:
    """One tag scored tick by tick against a naive forecast (median: the last value, σ: one quantum)."""

    def __init__(self, tail: bool) -> None:
        self.scorer = ResidualScorer.from_settings(
            1, LEVELS, np.array([QUANTUM]), DetectSettings(score_tail_calibration=tail)
        )
        self.t = 0
        self.last = 0.0

    def step(self, value: float) -> tuple[bool, bool]:
        """(flagged, severe) for this tick's value."""
        w = WindowBatch(
            ts=float(self.t), period_s=1.0, tags=("v",), assets=("a",), values=np.array([value]),
            contexts=np.array([[value]]),
        )  # fmt: skip
        q = np.array([[value - Z90 * QUANTUM, value, value + Z90 * QUANTUM]])[:, :, None] + np.zeros((1, 1, 2))
        _, _, _, flagged = self.scorer.score(ForecastBatch(w, LEVELS, q, "naive"), np.ones(1, dtype=bool))
        self.t += 1
        self.last = value
        return bool(flagged[0]), bool(self.scorer.severe[0])

    def hold(self, value: float, ticks: int) -> list[bool]:
        return [self.step(value)[0] for _ in range(ticks)]


def _schedule(sig: HeldSignal, days: int, step: float) -> list[bool]:
    """Hold at 0, step to ``step`` mid-day and back at its end, ``days`` times: the flags of the steps' ticks."""
    flags = []
    for _ in range(days):
        sig.hold(0.0, DAY // 2)
        flags.append(sig.step(step)[0])
        sig.hold(step, DAY // 2 - 1)
    return flags


def test_one_quantum_step_of_a_held_signal_is_not_an_alarm() -> None:
    for tail in (False, True):
        sig = HeldSignal(tail)
        assert not any(sig.hold(0.0, 200))
        assert sig.step(QUANTUM) == (False, False)  # the floor at the resolution (min_spread, residual_min_sigma)


def test_a_daily_commanded_step_is_learned_as_the_tags_own_behaviour() -> None:
    plain, tailed = HeldSignal(tail=False), HeldSignal(tail=True)
    # A step of 30 quanta every "day": 30 σ of a forecast sure to one quantum.
    assert all(_schedule(plain, 5, 0.3))  # without the record, every commanded step alarms (severe)
    flags = _schedule(tailed, 5, 0.3)
    assert flags[0]  # the first one is news
    assert not any(flags[1:])  # the next ones are this tag's usual excursions


def test_a_step_beyond_the_tags_record_still_alarms_at_once() -> None:
    sig = HeldSignal(tail=True)
    _schedule(sig, 5, 0.3)
    sig.hold(0.0, DAY // 2)
    assert sig.step(0.7) == (True, True)  # 70 σ: a level (√2) beyond any excursion it made: severe


def test_a_lasting_excursion_keeps_its_surprise_while_it_lasts() -> None:
    """An excursion is counted when it ends: the first ticks of a lasting one do not excuse the rest."""
    tail = ExcursionTail(n_rows=1, memory_steps=5000)
    for _ in range(500):
        tail.learn(np.zeros(1), np.ones(1, dtype=bool))
    during = []
    for _ in range(20):
        r = np.array([12.0])
        during.append(float(tail.decades(r)[0]))
        tail.learn(r, np.ones(1, dtype=bool))
    assert all(np.isinf(d) for d in during)  # no bound while it lasts
    tail.learn(np.zeros(1), np.ones(1, dtype=bool))
    after = float(tail.decades(np.array([12.0]))[0])
    assert 2.5 < after < 3.0  # once over: one excursion in ~600 ticks
    # and it is one excursion at every level it crossed, not twenty
    assert float(tail.decades(np.array([3.0]))[0]) == after


def test_gated_ticks_teach_nothing() -> None:
    tail = ExcursionTail(n_rows=2, memory_steps=5000)
    mask: BoolArray = np.array([True, False])
    for x in (0.0, 20.0, 0.0):
        tail.learn(np.array([x, x]), mask)
    d = tail.decades(np.array([20.0, 20.0]))
    assert np.isfinite(d[0]) and np.isinf(d[1])
    assert tail.learned.tolist() == [3, 0]


def test_the_excursion_record_is_saved_and_restored_with_the_residual_detector() -> None:
    from prometheus_client import CollectorRegistry

    from sentinelle.detect.detectors import BuildContext, build_all
    from sentinelle.detect.detectors.residual import ResidualDetector
    from sentinelle.metrics import Metrics
    from sentinelle.settings import TagSettings

    from .detect_helpers import LEVELS as STAGE_LEVELS
    from .detect_helpers import batch, stage

    tags = (TagSettings(name="a.v", asset="a", node_id="n1", min_spread=QUANTUM),)
    st, _ = stage(tags, score_tail_calibration=True)
    for k in range(300):
        st.process(batch(tags, float(k), [5.0 if 150 <= k < 153 else 0.0], [0.0]))
    g = next(iter(st._groups.values()))
    original = next(d for d in g.detectors if isinstance(d, ResidualDetector))
    assert original.scorer.tail is not None and original.scorer.tail.rate.any()  # it learned an excursion
    clone = next(
        d
        for d in build_all(BuildContext(g.layout, st.settings, STAGE_LEVELS, Metrics(CollectorRegistry())))
        if isinstance(d, ResidualDetector)
    )
    clone.restore(original.state())
    assert clone.scorer.tail is not None
    for name in ("rate", "inside", "learned"):
        np.testing.assert_array_equal(getattr(clone.scorer.tail, name), getattr(original.scorer.tail, name))
