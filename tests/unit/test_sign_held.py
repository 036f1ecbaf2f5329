"""``detect.asset_estimate_held_spread_sign_steps``: the usual width held only while the residual keeps its sign.

Why: the held width alone flagged healthy tags where the estimate's band is legitimately wide (development runs,
docs/results/chiller-detection/held-spread/); a drift's residual is one-sided for minutes, a healthy one wanders.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from sentinelle.detect.detectors.asset_estimate import AssetEstimateDetector
from sentinelle.detect.held_spread import HeldSpread, PersistentSign
from sentinelle.records import AlertEvent

from .detect_helpers import SIGMA, batch, stage
from .test_held_spread import _Z, LEVELS, TAGS, band, run_widening

SIGN: dict[str, object] = {"asset_estimate_held_spread_sign_steps": 30, "asset_estimate_held_spread_sign_share": 0.9}


def run_wandering(held: bool, sign_steps: int, steps: int = 900, onset: int = 400) -> list[AlertEvent]:
    """From ``onset`` tag 1's estimate band is 8 times as wide as before (the tags legitimately disagree) and the
    value wanders about the estimate by 6 usual spreads (a sine of 40 ticks): inside its own band, up to 6
    usual spreads off in the usual width.  The scale and usual width learn 100 ticks late."""
    kw = {"asset_estimate_learn_delay_steps": 100, "asset_estimate_held_spread": held}
    st, _ = stage(TAGS, **kw, asset_estimate_held_spread_sign_steps=sign_steps)
    rng = np.random.default_rng(5)
    nominal = np.array([10.0, 20.0, 30.0])
    events: list[AlertEvent] = []
    for k in range(steps):
        values = nominal + rng.normal(0.0, 0.03, 3)
        spread = np.full(3, SIGMA) * np.exp(rng.normal(0.0, 0.1, 3))
        if k >= onset:
            values[1] += 6.0 * SIGMA * math.sin(2.0 * math.pi * k / 40.0)
            spread[1] *= 8.0
        fb = batch(TAGS, float(k), values.tolist(), values.tolist())
        events += st.process(dataclasses.replace(fb, estimate=nominal[:, None] + _Z[None, :] * spread[:, None]))
    return [e for e in events if e.kind == "relation" and e.event == "opened"]


def test_a_drift_hidden_by_its_widening_band_is_caught_while_one_sided() -> None:
    assert run_widening(held=False, extra=SIGN) == []  # the sign gate alone (no held spread) changes nothing
    opened = run_widening(held=True, extra=SIGN)
    assert {e.tag for e in opened} == {"c.t1"}
    assert 400 < min(e.event_ts for e in opened) < 650  # one-sided for ~70 ticks, then 4 usual spreads


def test_a_wide_healthy_wandering_band_is_not_flagged() -> None:
    assert run_wandering(held=False, sign_steps=0) == []  # in its own band: quiet
    assert {e.tag for e in run_wandering(held=True, sign_steps=0)} == {"c.t1"}  # held on every tick: flagged
    assert run_wandering(held=True, sign_steps=30) == []  # held only while one-sided: quiet


def test_persistent_sign_needs_the_share_and_skips_missing_rows() -> None:
    sign = PersistentSign(n_rows=3, memory_steps=20, share=0.9)
    for _ in range(30):  # 30 one-sided ticks: 1 - (19/20)^30 = 0.79 of the way
        held = sign.step(np.array([0.5, -0.5, np.nan]))
    assert held.tolist() == [False, False, False]
    for _ in range(30):
        held = sign.step(np.array([0.5, -0.5, np.nan]))
    assert held.tolist() == [True, True, False]  # 0.95: one-sided either way; the missing row never moves
    assert sign.mean[2] == 0.0
    for _ in range(3):  # a few ticks on the other side close it again
        held = sign.step(np.array([-0.5, -0.5, np.nan]))
    assert held.tolist() == [False, True, False]


def test_held_spread_applies_to_the_given_rows_only() -> None:
    held = HeldSpread(2, LEVELS, memory_steps=5000, delay_steps=0)
    held.learn(np.vstack([band(1.0), band(1.0)]), np.ones(2, bool))
    wide = np.vstack([band(4.0), band(4.0)])
    out = held.apply(wide, np.array([True, False]))
    assert np.allclose(out[0], band(1.0)[0]) and np.allclose(out[1], band(4.0)[0])


def test_the_sign_survives_a_restart() -> None:
    kw = {"asset_estimate_held_spread": True, "asset_estimate_learn_delay_steps": 5, **SIGN}
    st, _ = stage(TAGS, **kw)
    nominal = np.array([10.0, 20.0, 30.0])
    est = nominal[:, None] + _Z[None, :] * SIGMA
    for k in range(40):
        values = nominal + np.array([0.0, 0.05, -0.05])
        st.process(dataclasses.replace(batch(TAGS, float(k), values.tolist(), values.tolist()), estimate=est))
    (det,) = [d for d in next(iter(st._groups.values())).detectors if isinstance(d, AssetEstimateDetector)]
    assert det.sign is not None and det.sign.mean[1] > 0.5 and det.sign.mean[2] < -0.5
    fresh, _ = stage(TAGS, **kw)
    fresh.process(dataclasses.replace(batch(TAGS, 0.0, nominal.tolist(), nominal.tolist()), estimate=est))
    (other,) = [d for d in next(iter(fresh._groups.values())).detectors if isinstance(d, AssetEstimateDetector)]
    other.restore(det.state())
    assert other.sign is not None and np.array_equal(other.sign.mean, det.sign.mean)
    off, _ = stage(TAGS, asset_estimate_held_spread=True, asset_estimate_learn_delay_steps=5)
    off.process(dataclasses.replace(batch(TAGS, 0.0, nominal.tolist(), nominal.tolist()), estimate=est))
    (plain,) = [d for d in next(iter(off._groups.values())).detectors if isinstance(d, AssetEstimateDetector)]
    plain.restore(det.state())  # a state with a sign restored where the gate is off: ignored
    assert plain.sign is None
