"""detect/held_spread.py and ``detect.asset_estimate_held_spread``: a slow fault whose estimate band widens with it."""

from __future__ import annotations

import dataclasses

import numpy as np

from sentinelle.detect.held_spread import HeldSpread
from sentinelle.records import AlertEvent
from sentinelle.settings import TagSettings

from .detect_helpers import SIGMA, batch, stage

TAGS = tuple(TagSettings(name=f"c.t{i}", asset="c", node_id=f"n{i}", unit="u") for i in range(3))
_Z = np.array([-1.2816, 0.0, 1.2816])
LEVELS = (0.1, 0.5, 0.9)


def run_widening(
    held: bool, drift_per_s: float = 0.004, steps: int = 800, onset: int = 400, extra: dict[str, object] | None = None
) -> list[AlertEvent]:
    """Tag 1 drifts off its estimate from ``onset`` while its own forecast follows it (a univariate forecaster
    at a slow fault); the estimate's band widens with the deviation (spread SIGMA + 2 |deviation|), as the blind
    asset model's does when the tags stop agreeing, so the residual in the tick's own band stays under 0.5 of
    it.  The estimate's scale and usual width learn 100 ticks late."""
    st, _ = stage(TAGS, asset_estimate_learn_delay_steps=100, asset_estimate_held_spread=held)
    rng = np.random.default_rng(3)
    nominal = np.array([10.0, 20.0, 30.0])
    events: list[AlertEvent] = []
    for k in range(steps):
        dev = drift_per_s * max(0, k - onset)
        values = nominal + rng.normal(0.0, 0.03, 3)
        values[1] += dev
        spread = np.full(3, SIGMA) * np.exp(rng.normal(0.0, 0.1, 3))  # healthy bands jitter a little
        spread[1] += 2.0 * dev
        fb = batch(TAGS, float(k), values.tolist(), values.tolist())
        events += st.process(dataclasses.replace(fb, estimate=nominal[:, None] + _Z[None, :] * spread[:, None]))
    return [e for e in events if e.kind == "relation" and e.event == "opened"]


def test_a_drift_hidden_by_its_widening_band_is_caught_in_the_usual_width() -> None:
    assert run_widening(held=False) == []  # z stays below 0.5 spreads: never surprising
    opened = run_widening(held=True)
    assert {e.tag for e in opened} == {"c.t1"}
    assert 400 < min(e.event_ts for e in opened) < 600  # 4 usual spreads after 100 s


def test_no_drift_no_alert_with_the_usual_width() -> None:
    assert run_widening(held=True, drift_per_s=0.0) == []


def band(width: float) -> np.ndarray:
    return np.array([[10.0 - width / 2, 10.0, 10.0 + width / 2]])


def test_the_usual_width_is_learned_late_and_not_while_barred() -> None:
    held = HeldSpread(1, LEVELS, memory_steps=5000, delay_steps=40)
    yes, no = np.ones(1, bool), np.zeros(1, bool)
    assert held.apply(band(4.0)).tolist() == band(4.0).tolist()  # nothing learned: left as it is
    for _ in range(50):
        held.learn(band(1.0), yes)
    for _ in range(30):  # the band widens: not learned for 40 ticks
        held.learn(band(4.0), yes)
    assert held.learned.tolist() == [40.0]
    assert np.allclose(held.apply(band(4.0)), band(1.0))
    for _ in range(100):  # widths pushed while an alert was open are never learned, nor anything while barred now
        held.learn(band(8.0), no)
    assert held.learned.tolist() == [40.0]
    for _ in range(40):  # now free to learn, but what comes out of the line was pushed barred
        held.learn(band(8.0), yes)
    assert held.learned.tolist() == [40.0]
    for _ in range(40):
        held.learn(band(8.0), yes)
    assert held.learned.tolist() == [80.0]
    assert 1.0 < float(np.exp(held.mean_log[0])) < 8.0


def test_a_degenerate_band_is_left_alone() -> None:
    held = HeldSpread(1, LEVELS, memory_steps=5000, delay_steps=0)
    held.learn(band(1.0), np.ones(1, bool))
    flat = np.array([[10.0, 10.0, 10.0]])
    assert held.apply(flat).tolist() == flat.tolist()
    assert np.allclose(held.apply(np.array([[9.0, 10.0, 14.0]])), [[9.8, 10.0, 10.8]])  # the skew is kept


def test_the_usual_width_survives_a_restart() -> None:
    from sentinelle.detect.detectors.asset_estimate import AssetEstimateDetector

    kw = {"asset_estimate_held_spread": True, "asset_estimate_learn_delay_steps": 5}
    st, _ = stage(TAGS, **kw)
    nominal = np.array([10.0, 20.0, 30.0])
    for k in range(20):
        fb = batch(TAGS, float(k), nominal.tolist(), nominal.tolist())
        st.process(dataclasses.replace(fb, estimate=nominal[:, None] + _Z[None, :] * (SIGMA * (1 + k / 10))))
    (det,) = [d for d in next(iter(st._groups.values())).detectors if isinstance(d, AssetEstimateDetector)]
    assert det.usual is not None and det.usual.learned.min() > 0
    fresh, _ = stage(TAGS, **kw)
    fb = batch(TAGS, 0.0, nominal.tolist(), nominal.tolist())
    fresh.process(dataclasses.replace(fb, estimate=nominal[:, None] + _Z[None, :] * SIGMA))
    (other,) = [d for d in next(iter(fresh._groups.values())).detectors if isinstance(d, AssetEstimateDetector)]
    other.restore(det.state())
    assert other.usual is not None
    for name, value in det.usual.arrays().items():
        assert np.array_equal(other.usual.arrays()[name], value, equal_nan=True), name
