"""Learned relations (virtual sensors) on hand-made sequences: the check alone, in the stage, in the settings."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from sentinelle.detect.relations import RelationCheck
from sentinelle.errors import ConfigError
from sentinelle.records import AlertEvent
from sentinelle.settings import TagSettings, load_settings

from .detect_helpers import feed, stage, summary

NOISE = 0.01


def _check(**kw: object) -> RelationCheck:
    base: dict[str, object] = dict(
        fit_intercept=False, z_threshold=6.0, learn_below_z=4.0, warmup_steps=50, forget=1.0, min_spread=0.001
    )
    base.update(kw)
    n_inputs = int(base.pop("n_inputs", 1))  # type: ignore[call-overload]
    return RelationCheck(n_inputs, **base)  # type: ignore[arg-type]


def _learn_double(rel: RelationCheck, steps: int = 300, low: float = 1.0, high: float = 2.0, seed: int = 0) -> None:
    """y = 2x + noise, x uniform in [low, high], every tick learned."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = rng.uniform(low, high)
        rel.step(2.0 * x + rng.normal(0.0, NOISE), np.array([x]), learn=True)


def test_learns_y_equals_2x_and_flags_a_break_in_both_directions() -> None:
    rel = _check()
    _learn_double(rel)
    assert rel.weights[0] == pytest.approx(2.0, abs=0.002)
    assert rel.spread == pytest.approx(NOISE, rel=0.25)
    z, flagged = rel.step(2.0 * 1.5, np.array([1.5]), learn=False)
    assert abs(z) < 4.0 and not flagged
    z, flagged = rel.step(2.0 * 1.5 - 0.2, np.array([1.5]), learn=False)  # 0.2 below: about -20 spreads
    assert flagged and z < -6.0 and rel.expected == pytest.approx(3.0, abs=0.01)
    z, flagged = rel.step(2.0 * 1.5 + 0.2, np.array([1.5]), learn=False)
    assert flagged and z > 6.0


def test_proportional_relation_extrapolates_beyond_the_learned_range_and_one_with_an_intercept_is_learned_too() -> None:
    rel = _check()
    _learn_double(rel, low=1.0, high=1.1)  # a narrow operating range
    _, flagged = rel.step(2.0 * 3.0, np.array([3.0]), learn=False)  # far outside it, same law
    assert not flagged
    affine = _check(fit_intercept=True)
    rng = np.random.default_rng(1)
    for _ in range(400):
        x = rng.uniform(0.0, 10.0)
        affine.step(3.0 + 2.0 * x + rng.normal(0.0, NOISE), np.array([x]), learn=True)
    assert affine.weights == pytest.approx([2.0, 3.0], abs=0.01)
    assert not affine.step(3.0 + 2.0 * 5.0, np.array([5.0]), learn=False)[1]
    assert affine.step(3.0 + 2.0 * 5.0 - 1.0, np.array([5.0]), learn=False)[1]


def test_warm_up_scores_nothing_and_counts_only_learned_ticks() -> None:
    rel = _check(warmup_steps=20)
    for k in range(40):
        z, flagged = rel.step(100.0, np.array([1.0]), learn=k % 2 == 0)  # way off, but nothing learned yet
        if k < 39:
            assert math.isnan(z) and not flagged
    assert rel.count == 20 and rel.warm


def test_nan_target_or_input_is_skipped_and_counted_never_learned() -> None:
    rel = _check(n_inputs=2)
    z, flagged = rel.step(math.nan, np.array([1.0, 2.0]), learn=True)
    assert math.isnan(z) and not flagged
    assert rel.step(3.0, np.array([1.0, math.nan]), learn=True)[1] is False
    assert rel.step(3.0, np.array([math.inf, 1.0]), learn=True)[1] is False
    assert rel.skipped == 3 and rel.count == 0
    assert math.isnan(rel.expected) and math.isnan(rel.z)


def test_a_sustained_break_is_not_absorbed_while_learning_is_allowed() -> None:
    rel = _check()
    _learn_double(rel)
    flags = [rel.step(2.0 * 1.5 - 0.2, np.array([1.5]), learn=True)[1] for _ in range(5000)]
    assert all(flags)  # |z| above learn_below_z: never learned, so never the new normal
    assert rel.weights[0] == pytest.approx(2.0, abs=0.002)


def _creep(rel: RelationCheck, to_gain: float, steps: int) -> list[bool]:
    """After y = 2x was learned, the gain moves linearly to ``to_gain`` over ``steps``, then holds as long."""
    rng = np.random.default_rng(2)
    flags = []
    for k in range(2 * steps):
        x = rng.uniform(1.0, 2.0)
        gain = 2.0 + (to_gain - 2.0) * min(k, steps) / steps
        flags.append(rel.step(gain * x + rng.normal(0.0, NOISE), np.array([x]), learn=True)[1])
    return flags


def test_a_fault_ramping_in_is_flagged_and_stays_flagged() -> None:
    rel = _check(forget=math.exp(-1.0 / 10_000.0))
    _learn_double(rel)
    flags = _creep(rel, to_gain=1.8, steps=300)  # 10 % lost over 300 ticks, about 0.1 spread per tick
    assert any(flags[:300]) and all(flags[400:])


def test_a_slow_harmless_change_is_followed_with_short_memory() -> None:
    rel = _check(forget=math.exp(-1.0 / 20.0))  # memory 20 ticks: lags the creep by about one spread
    _learn_double(rel)
    assert not any(_creep(rel, to_gain=2.6, steps=3000))
    assert rel.weights[0] == pytest.approx(2.6, abs=0.01)


def test_collinear_inputs_give_the_smallest_weights_and_no_crash() -> None:
    rel = _check(n_inputs=2)
    rng = np.random.default_rng(3)
    for _ in range(300):
        s = rng.uniform(50.0, 60.0)  # two parallel pumps at one speed
        rel.step(3.0 * s + rng.normal(0.0, NOISE), np.array([s, s]), learn=True)
    assert rel.weights == pytest.approx([1.5, 1.5], abs=0.01)
    assert not rel.step(3.0 * 80.0, np.array([80.0, 80.0]), learn=False)[1]


# -- in the detect stage -------------------------------------------------------------------------

TAGS = (
    TagSettings(name="c.power", asset="c", node_id="n1", unit="kW", min_spread=0.001),
    TagSettings(name="c.pump1", asset="c", node_id="n2", unit="%"),
    TagSettings(name="c.pump2", asset="c", node_id="n3", unit="%"),
)
ASSET = {"name": "c", "relations": [{"target": "c.power", "inputs": ["c.pump1", "c.pump2"], "warmup_steps": 40}]}


def _rows(n: int, seed: int = 0, power_factor: float = 1.0) -> list[list[float]]:
    """power = 2·pump1 + pump2 (pump2 = pump1 − 10, as one controller drives both), slow load moves."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        p1 = 60.0 + 5.0 * math.sin(k / 20.0)
        p2 = p1 - 10.0
        rows.append([power_factor * (2.0 * p1 + p2) + rng.normal(0.0, 0.05), p1, p2])
    return rows


def test_a_broken_relation_opens_one_alert_naming_the_tags_and_clears() -> None:
    st, m = stage(TAGS, assets=[ASSET])
    # The forecast median follows the values, so only the relation can alert.
    rows = _rows(100) + _rows(8, seed=1, power_factor=0.9) + _rows(10, seed=2)
    events: list[AlertEvent] = []
    for k, r in enumerate(rows):
        events += feed(st, TAGS, [r], r, start=float(k))
    rel = [e for e in events if e.kind == "relation"]
    # Broken at 100..107: opens at its 3rd anomalous tick (102), clears after 4 normal ticks (108..111).
    assert summary(rel) == [("opened", "relation", "c.power", 102.0), ("cleared", "relation", "c.power", 111.0)]
    opened = rel[0]
    assert opened.alert_id == "c/c.power/relation/102000" and opened.asset == "c"
    assert opened.actual < opened.lower < opened.forecast < opened.upper
    assert opened.severity == "critical"  # about 10 % of 170 kW is far beyond critical_z spreads
    assert "lower than c.pump1, c.pump2 imply" in opened.message
    assert opened.contributors[0].tag == "c.power"
    assert {c.tag for c in opened.contributors} == {"c.power", "c.pump1", "c.pump2"}
    assert opened.contributors[0].residual_z < -6.0
    assert m.registry.get_sample_value("sentinelle_ticks_anomalous_total", {"kind": "relation"}) == 8.0


def test_relation_of_a_fault_free_asset_stays_silent_and_a_nan_input_is_skipped() -> None:
    st, _ = stage(TAGS, assets=[ASSET])
    rows = _rows(200)
    rows[150][1] = math.nan  # a missing pump speed: gated, the relation skips the tick
    events: list[AlertEvent] = []
    for k, r in enumerate(rows):
        events += feed(st, TAGS, [r], [x if math.isfinite(x) else 0.0 for x in r], start=float(k))
    assert [e for e in events if e.kind == "relation"] == []


def test_a_relation_whose_tags_are_not_in_the_group_is_not_checked() -> None:
    tags = TAGS[:2]  # a replay without c.pump2
    st, _ = stage(tags, assets=[ASSET])
    rows = [r[:2] for r in _rows(60)]
    events = feed(st, tags, rows, rows[0])
    assert [e for e in events if e.kind == "relation"] == []


# -- settings ---------------------------------------------------------------------------------------


def _tags_dicts() -> list[dict[str, object]]:
    return [t.model_dump(exclude_none=True) for t in TAGS]


@pytest.mark.parametrize(
    ("relation", "match"),
    [
        ({"target": "c.nope", "inputs": ["c.pump1"]}, "detect.assets[c].relations[c.nope]: unknown tag 'c.nope'"),
        ({"target": "c.power", "inputs": ["c.pump1", "c.x"]}, "unknown tag 'c.x'"),
        ({"target": "c.power", "inputs": ["c.power"]}, "own inputs"),
        ({"target": "c.power", "inputs": ["c.pump1", "c.pump1"]}, "listed twice"),
        ({"target": "c.power", "inputs": []}, "at least 1"),
        ({"target": "c.power", "inputs": ["c.other"]}, "belongs to 'd'"),
    ],
)
def test_relations_are_validated(relation: dict[str, object], match: str) -> None:
    tags = [*_tags_dicts(), {"name": "c.other", "asset": "d", "node_id": "n9"}]
    with pytest.raises(ConfigError, match=re.escape(match)):
        load_settings(tags=tags, detect={"assets": [{"name": "c", "relations": [relation]}]})


def test_relation_tags_must_share_a_period_and_a_target_is_predicted_once() -> None:
    tags = _tags_dicts()
    tags[1]["period_s"] = 10.0
    with pytest.raises(ConfigError, match="share one period_s"):
        load_settings(tags=tags, detect={"assets": [ASSET]})
    twice = {"name": "c", "relations": [ASSET["relations"][0], {"target": "c.power", "inputs": ["c.pump1"]}]}
    with pytest.raises(ConfigError, match=re.escape("two relations predict 'c.power'")):
        load_settings(tags=_tags_dicts(), detect={"assets": [twice]})
    settings = load_settings(tags=_tags_dicts(), detect={"assets": [ASSET]})
    assert settings.detect.assets[0].relations[0].fit_intercept is False
