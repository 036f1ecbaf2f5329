"""The distribution-change detector (detect/distribution.py, detect/detectors/distribution.py) on hand-made series."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from sentinelle.detect.detectors import BuildContext
from sentinelle.detect.detectors.distribution import DistributionDetector
from sentinelle.detect.distribution import DistributionShift
from sentinelle.metrics import Metrics
from sentinelle.settings import DetectSettings, TagSettings

from .detect_helpers import LEVELS, batch, stage

THRESHOLD = DetectSettings().score_threshold
PERIOD = 10.0
"""Of the test sines, in ticks: the recent window (16 ticks by default) spans more than one cycle."""


def _shift(n: int = 1, **kw: int) -> DistributionShift:
    s = DetectSettings()
    args = dict(
        window_steps=s.distribution_window_steps,
        bins=s.distribution_bins,
        reference_steps=s.distribution_reference_steps,
        memory_steps=s.score_memory_steps,
        warmup_steps=s.distribution_warmup_steps,
        refractory_steps=0,
    )
    args.update(kw)
    return DistributionShift(n, min_spread=np.zeros(n), **args)


def _run(d: DistributionShift, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Score and surprise per tick (ticks × rows)."""
    xs = xs.reshape(len(xs), -1)
    score = np.empty(xs.shape)
    surprise = np.empty(xs.shape)
    for t, x in enumerate(xs):
        score[t] = d.step(x, np.ones(xs.shape[1], dtype=bool))
        surprise[t] = d.surprise
    return score, surprise


def _sine(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.sin(2 * np.pi * t / PERIOD) + 0.05 * rng.normal(size=t.size)


def test_a_sine_that_stops_at_its_mean_is_caught_though_each_step_moves_little() -> None:
    rng = np.random.default_rng(0)
    before = _sine(np.arange(3000), rng)
    after = 0.05 * rng.normal(size=60)  # the oscillation stops at its mean: every value inside the usual range
    # One-step changes after the stop are no larger than the sine's own (what a residual would see).
    assert np.abs(np.diff(after)).max() < np.abs(np.diff(before)).max()
    _, surprise = _run(_shift(), np.concatenate([before, after]))
    assert np.nanmax(surprise[2000:3000]) < THRESHOLD  # the same sine: nothing
    assert np.nanmax(surprise[3000:]) >= THRESHOLD  # it stopped: caught within one window
    assert np.argmax(surprise[3000:, 0] >= THRESHOLD) < DetectSettings().distribution_window_steps


def test_noise_that_doubles_is_caught() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(size=3000), 2.5 * rng.normal(size=100)])
    _, surprise = _run(_shift(), x)
    assert np.nanmax(surprise[3000:]) >= THRESHOLD


@pytest.mark.parametrize("phi", [0.0, 0.9])
def test_stationary_noise_is_not_flagged(phi: float) -> None:
    """White and strongly autocorrelated (AR(1), φ = 0.9) noise: the calibration learns each tag's usual G."""
    rng = np.random.default_rng(2)
    e = rng.normal(size=(6000, 3))
    x = np.empty_like(e)
    x[0] = e[0]
    for t in range(1, len(e)):
        x[t] = phi * x[t - 1] + e[t]
    _, surprise = _run(_shift(3), x)
    flagged = surprise[1000:] >= THRESHOLD
    assert flagged.mean() < 0.002, flagged.mean()


def test_a_flat_start_is_measured_without_nan_and_its_first_move_is_a_finite_decaying_surprise() -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate([np.full(500, 7.0), 7.0 + rng.normal(size=6000)])
    score, surprise = _run(_shift(refractory_steps=1000), x)
    assert np.all(np.isfinite(surprise[200:]))  # measured once warm, a zero scale included
    assert np.all(surprise[200:500] == 0.0)  # flat is not a change of a flat tag
    assert np.nanmax(surprise[500:600]) >= THRESHOLD  # it starts moving: a change
    assert np.all(surprise[500:] < 1.0)
    assert (surprise[4000:] >= THRESHOLD).mean() < 0.002  # the new normal was learned
    assert np.all((score[200:] >= 0.0) & (score[200:] <= 1.0))


def test_rows_are_independent() -> None:
    """All rows at once give each row what it gets alone (vectorised, no mixing)."""
    rng = np.random.default_rng(4)
    x = np.stack([_sine(np.arange(800), rng), rng.normal(size=800), np.full(800, 3.0)], axis=1)
    x[300:320, 1] = np.nan  # a gap on one row only
    together, _ = _run(_shift(3), x)
    for r in range(3):
        alone, _ = _run(_shift(1), x[:, r])
        np.testing.assert_array_equal(together[:, r], alone[:, 0])


def test_the_onset_scores_once_while_the_flag_lasts() -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([_sine(np.arange(3000), rng), 0.05 * rng.normal(size=100)])
    score, surprise = _run(_shift(refractory_steps=1000), x)
    flags = np.count_nonzero(surprise[3000:] >= THRESHOLD)
    assert flags >= 10  # the new distribution stays unlike the past for a while ...
    onset = score[3000:, 0] > 0.0
    assert 0 < np.count_nonzero(onset) < flags  # ... but only its onset (the rise of its surprise) scores
    assert not onset[-20:].any()


def test_the_detector_state_round_trips_and_the_restored_one_judges_identically() -> None:
    tags = [TagSettings(name=f"a.t{i}", asset="a", node_id=f"ns=2;s=t{i}", period_s=1.0) for i in range(2)]
    st, _ = stage(tags, distribution_enabled=True, distribution_warmup_steps=50, distribution_window_steps=16)
    rng = np.random.default_rng(6)
    for k in range(400):
        st.process(batch(tags, float(k), [np.sin(k / 4.0) + 0.01 * rng.normal(), rng.normal()], [0.0, 0.0]))
    g = next(iter(st._groups.values()))
    d = next(x for x in g.detectors if isinstance(x, DistributionDetector))
    clone = DistributionDetector(BuildContext(g.layout, st.settings, LEVELS, Metrics(CollectorRegistry())))
    clone.restore(d.state())
    for k in range(400, 460):
        fb = batch(tags, float(k), [0.7 + 0.01 * rng.normal(), rng.normal()], [0.0, 0.0])
        tick, _ = st._gate(g, fb)
        a, b = d.observe(tick), clone.observe(tick)
        np.testing.assert_array_equal(a.flagged, b.flagged)
        np.testing.assert_array_equal(a.score, b.score)
        assert a.tag_score is not None and b.tag_score is not None
        np.testing.assert_array_equal(a.tag_score, b.tag_score)
    assert d.state() == clone.state()


def test_the_stage_reports_the_larger_of_the_two_scores_and_opens_a_distribution_alert() -> None:
    tags = [TagSettings(name="a.t", asset="a", node_id="ns=2;s=t", period_s=1.0)]
    st, _ = stage(tags, distribution_enabled=True)
    rng = np.random.default_rng(7)
    events = []
    combined = []
    for k in range(3100):
        v = np.sin(2 * np.pi * k / PERIOD) + 0.05 * rng.normal() if k < 3000 else 0.05 * rng.normal()
        events += st.process(batch(tags, float(k), [v], [v]))  # a perfect forecast: residuals never surprise
        assert st.last_tick is not None
        combined.append(float(st.last_tick.surprise[0]))
    assert max(combined[3000:]) >= THRESHOLD
    assert [e.kind for e in events if e.event == "opened"] == ["distribution_change"]


def test_an_oscillation_that_speeds_up_is_caught_by_the_differences_not_the_values() -> None:
    """Same amplitude, same values' distribution, twice the frequency: the dynamics changed."""
    tags = [TagSettings(name="a.t", asset="a", node_id="ns=2;s=t", period_s=1.0)]
    st, _ = stage(tags, distribution_enabled=True)
    rng = np.random.default_rng(8)
    by_series: dict[str, list[float]] = {"values": [], "differences": []}
    for k in range(3100):
        period = PERIOD if k < 3000 else PERIOD / 2.5
        v = np.sin(2 * np.pi * k / period) + 0.02 * rng.normal()
        st.process(batch(tags, float(k), [v], [v]))
        g = next(iter(st._groups.values()))
        d = next(x for x in g.detectors if isinstance(x, DistributionDetector))
        for name, sh in d.shifts.items():
            by_series[name].append(float(sh.surprise[0]))
    values, differences = np.array(by_series["values"]), np.array(by_series["differences"])
    assert np.nanmax(differences[3000:]) >= THRESHOLD
    assert np.nanmax(values[3000:]) < np.nanmax(differences[3000:])
    assert np.nanmax(differences[2000:3000]) < THRESHOLD
