"""The seasonal repeat bound of the published score (detect/seasonal.py, ``detect.score_seasonal_repeat_*``), on
hand-made sequences: a daily spike train is discounted once it has recurred, a first spike, a spike at a new phase
and a much larger one are not, flags and alerts are unchanged, and the state round-trips."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from sentinelle.detect.detectors import BuildContext
from sentinelle.detect.detectors.residual import ResidualDetector
from sentinelle.detect.seasonal import SeasonalRepeat
from sentinelle.detect.stage import DetectStage
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent
from sentinelle.settings import DetectSettings, TagSettings

from .detect_helpers import LEVELS, SIGMA, batch, stage

PERIOD_S = 300.0
DAY = 288
"""Ticks a day at 5-minute samples (NAB's AWS files)."""
TAGS = [TagSettings(name="a.t", asset="a", node_id="ns=2;s=t", period_s=PERIOD_S)]
SPIKE_Z = 45.0
"""The daily spike, in forecast spreads (the model's z on ``ec2_cpu_utilization_c6585a``, issue 13)."""
ON = {"score_seasonal_repeat_periods": 2}
NO_NOVELTY = {"novelty_enabled": False}
"""The residual's published score alone: the contextual novelty would score a spike's unseen context on its own."""


def _values(days: int, phase: int = 40, extra: dict[int, float] | None = None, seed: int = 3) -> np.ndarray:
    """Noise of one forecast spread, a one-tick spike at ``phase`` each day (±5 % in size, ±6 ticks in phase)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, SIGMA, days * DAY)
    for d in range(days):
        x[d * DAY + phase + int(rng.integers(-6, 7))] = SPIKE_Z * SIGMA * (1.0 + 0.05 * rng.uniform(-1, 1))
    for k, v in (extra or {}).items():
        x[k] = v
    return x


def _run(x: np.ndarray, **kw: object) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str, str]], DetectStage]:
    """Published score and flag surprise per tick, alert events, the stage."""
    st, _ = stage(TAGS, **(NO_NOVELTY | kw))
    published, surprise, events = [], [], list[AlertEvent]()
    for k, v in enumerate(x):
        events += st.process(batch(TAGS, k * PERIOD_S, [float(v)], [0.0]))
        t = st.last_tick
        assert t is not None
        published.append(float(t.score[0]))
        surprise.append(float(t.surprise[0]))
    return np.array(published), np.array(surprise), [(e.event, e.kind, e.subject) for e in events], st


def _spikes(x: np.ndarray) -> np.ndarray:
    return np.flatnonzero(x > 10 * SIGMA)


def test_a_daily_spike_train_is_discounted_once_it_has_recurred() -> None:
    x = _values(6)
    rows = _spikes(x)
    assert rows.size == 6
    plain, plain_surprise, plain_events, _ = _run(x, score_rest_steps=0)
    rep, rep_surprise, rep_events, _ = _run(x, score_rest_steps=0, **ON)
    # Without the bound every spike publishes a high score: yesterday's refractory peak has decayed.
    assert (plain[rows] > 0.5).all()
    # With it, the first spike and the second (only one period behind it) score as before; from the third on the
    # tag made one at this time of day on each of the last two days: expected, not news.
    assert rep[rows[0]] == plain[rows[0]] and rep[rows[1]] == plain[rows[1]]
    assert (rep[rows[2:]] < 0.05).all()
    # The flags, and so the alerts, never read it.
    np.testing.assert_array_equal(rep_surprise, plain_surprise)
    assert rep_events == plain_events
    assert DetectSettings().score_seasonal_repeat_periods == 0  # shipped off


def test_a_spike_at_a_new_phase_and_a_much_larger_one_are_scored() -> None:
    new_phase = 4 * DAY + 150  # 9 hours away from the daily spike
    x = _values(6, extra={new_phase: SPIKE_Z * SIGMA})
    rep, _, _, _ = _run(x, score_rest_steps=0, **ON)
    assert rep[new_phase] > 0.5
    # A spike √2 × 1.2 times the usual size at the usual phase (about 2.9 times the decades) scores the part
    # beyond twice the usual: still a detection.
    y = _values(6)
    big = _spikes(y)[4]
    y[big] *= 1.7
    rep, _, _, _ = _run(y, score_rest_steps=0, **ON)
    assert rep[big] > 0.5
    assert rep[_spikes(y)[5]] < 0.05  # and the day after it is the usual repeat again


def test_one_period_back_is_not_enough_with_two() -> None:
    # A spike on day 0 and day 2 only: one period back (day 1) had none at that phase, so day 2's is not discounted.
    x = _values(3)
    x[_spikes(x)[1]] = 0.0
    rep, _, _, _ = _run(x, score_rest_steps=0, **ON)
    assert rep[_spikes(x)[1]] > 0.5
    one, _, _, _ = _run(x, score_rest_steps=0, score_seasonal_repeat_periods=1)
    assert one[_spikes(x)[1]] > 0.5  # day 1 had nothing: with one period back neither


def test_phase_tolerance_gaps_and_noise() -> None:
    day = 86400.0
    rep = SeasonalRepeat(1, day, 3600.0, 2, min_decades=3.5)
    one = np.ones(1, bool)
    t0 = 3 * 3600.0 + 600.0  # 03:10 on day 0
    for ts in (t0, t0 + day + 80 * 60.0):  # 03:10, then 04:30 the next day (the jitter seen on NAB)
        rep.learn(ts, np.array([400.0]), one)
    assert rep.level(t0 + 2 * day + 15 * 60.0)[0] == 400.0  # 03:25 on day 2: both within the tolerance
    assert rep.bound(t0 + 2 * day + 15 * 60.0)[0] == 800.0
    assert rep.level(t0 + 2 * day + 4 * 3600.0)[0] == 0.0  # 07:10: no spike near it either day
    # Noise below the flag's decades is no repeat.
    quiet = SeasonalRepeat(1, day, 3600.0, 2, min_decades=3.5)
    for ts in np.arange(0.0, 2 * day, 300.0):
        quiet.learn(float(ts), np.array([2.0]), one)
    assert not quiet.level(2 * day + 1000.0).any()
    # A gap as long as the ring: the slots hold bins of long ago, which are no evidence.
    later = t0 + 2 * day + rep.bin_id.size * 3600.0
    assert rep.level(later)[0] == 0.0
    # NaN (no score) and masked rows are not learned.
    rep.learn(later, np.array([np.nan]), one)
    rep.learn(later + 1, np.array([50.0]), np.zeros(1, bool))
    assert not rep.peak[:, rep.bin_id == rep._bin(later)].any()
    with pytest.raises(ValueError):
        SeasonalRepeat(1, day, day / 3, 2, 3.5)
    with pytest.raises(ValidationError):
        DetectSettings(score_seasonal_repeat_periods=2, score_seasonal_repeat_tolerance_s=30000.0)


def test_the_bins_round_trip_through_the_detector_state() -> None:
    x = _values(4)
    _, _, _, st = _run(x[: 3 * DAY], score_rest_steps=0, **ON)
    g = next(iter(st._groups.values()))
    original = g.detectors[0]
    assert isinstance(original, ResidualDetector) and original.scorer.repeat is not None
    clone = ResidualDetector(BuildContext(g.layout, st.settings, LEVELS, Metrics(CollectorRegistry())))
    clone.restore(original.state())
    assert clone.scorer.repeat is not None
    np.testing.assert_array_equal(clone.scorer.repeat.peak, original.scorer.repeat.peak)
    np.testing.assert_array_equal(clone.scorer.repeat.bin_id, original.scorer.repeat.bin_id)
    # The whole stage, restored in another process, discounts day 3's spike as the original does.
    arrays, meta = st.state()
    other, _ = stage(TAGS, score_rest_steps=0, **NO_NOVELTY, **ON)
    other.restore(arrays, meta)
    spike = _spikes(x)[3]
    for k in range(3 * DAY, spike + 1):
        for s in (st, other):
            s.process(batch(TAGS, k * PERIOD_S, [float(x[k])], [0.0]))
    a, b = st.last_tick, other.last_tick
    assert a is not None and b is not None
    assert float(a.score[0]) == float(b.score[0]) < 0.05 and float(a.surprise[0]) > 0.5
    # Saved with the bound off, or with another tolerance (another number of bins): it starts afresh.
    for kw in ({}, {"score_seasonal_repeat_periods": 2, "score_seasonal_repeat_tolerance_s": 1800.0}):
        _, _, _, st2 = _run(x[:10], score_rest_steps=0, **kw)
        g2 = next(iter(st2._groups.values()))
        fresh = ResidualDetector(BuildContext(g.layout, st.settings, LEVELS, Metrics(CollectorRegistry())))
        fresh.restore(g2.detectors[0].state())
        assert fresh.scorer.repeat is not None and not fresh.scorer.repeat.peak.any()
