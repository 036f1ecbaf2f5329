"""Rules and data-quality checks on hand-made sequences: rate of change, energy balance, stuck, spike, missing.

Each test feeds one row per second (ts = row index) with the forecast median fixed at
the nominal level (spread 0.1), and compares the events with lists worked out by hand
from the settings: open after 3 of 5 violating ticks, clear after 4 normal ticks,
data-quality alerts open on their first bad tick.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from sentinelle.detect.rules import RateOfChange
from sentinelle.errors import ConfigError
from sentinelle.settings import TagSettings, load_settings

from .detect_helpers import batch, feed, noisy, stage, summary


def _value(m: object, name: str, labels: dict[str, str] | None = None) -> float:
    v = m.registry.get_sample_value(name, labels or {})  # type: ignore[attr-defined]
    return float(v) if v is not None else math.nan


# -- rate of change ---------------------------------------------------------------------------

RATE_TAGS = (
    TagSettings(name="c.t", asset="c", node_id="n1", unit="degC", rate_limit_per_s=0.5),
    TagSettings(name="c.p", asset="c", node_id="n2", unit="kW"),
)
RATE_NOMINAL = [5.0, 100.0]


def _ramp(slope: float) -> list[list[float]]:
    rows = noisy(RATE_NOMINAL, 30)
    rows += [[5.0 + slope * (k + 1), 100.0] for k in range(6)]  # ticks 30..35 climb at `slope`/s
    rows += [[5.0 + slope * 6, 100.0] for _ in range(10)]  # 36..45 hold
    return rows


def test_a_fast_ramp_opens_a_rate_alert_after_k_of_n_and_clears_with_hysteresis() -> None:
    st, m = stage(RATE_TAGS)
    events = [e for e in feed(st, RATE_TAGS, _ramp(1.5), RATE_NOMINAL) if e.kind == "rate_of_change"]
    # Violating ticks 30, 31, 32 -> opens at 32; within the limit from 36: 36..39 -> clears at 39.
    assert summary(events) == [("opened", "rate_of_change", "c.t", 32.0), ("cleared", "rate_of_change", "c.t", 39.0)]
    opened = events[0]
    assert opened.severity == "critical"  # 1.5 / 0.5 = 3 >= rule_critical_ratio 2
    assert opened.category == "process" and opened.reason is None
    assert opened.score == pytest.approx(3.0, abs=0.2)
    assert "beyond its rate limit ±0.5 degC/s" in opened.message
    assert _value(m, "sentinelle_ticks_anomalous_total", {"kind": "rate_of_change"}) == 6


def test_a_ramp_just_over_the_limit_is_a_warning() -> None:
    st, _ = stage(RATE_TAGS)
    events = [e for e in feed(st, RATE_TAGS, _ramp(0.75), RATE_NOMINAL) if e.kind == "rate_of_change"]
    assert [e.severity for e in events if e.event == "opened"] == ["warning"]  # 0.75 / 0.5 = 1.5 < 2


def test_a_single_jump_is_not_a_rate_alert() -> None:
    st, _ = stage(RATE_TAGS)
    rows = noisy(RATE_NOMINAL, 30) + [[8.0, 100.0]] * 10  # one tick at 3 degC/s, then flat at the new level
    assert [e for e in feed(st, RATE_TAGS, rows, RATE_NOMINAL) if e.kind == "rate_of_change"] == []


def test_rate_over_a_window_of_several_periods() -> None:
    tag = TagSettings(name="t", asset="a", node_id="n", rate_limit_per_s=1.0, rate_window_s=2.0)
    r = RateOfChange([tag], period_s=1.0)
    rates = [float(r.check(np.array([v])).rate[0]) for v in (0.0, 1.0, 3.0, 6.0, np.nan, 7.0, 8.0)]
    # (x[t] - x[t-2]) / 2 s: unknown for the first two ticks and where x[t] or x[t-2] is missing.
    assert np.allclose(rates, [np.nan, np.nan, 1.5, 2.5, np.nan, 0.5, np.nan], equal_nan=True)


# -- energy balance ---------------------------------------------------------------------------

EB_TAGS = (
    TagSettings(name="c.flow", asset="c", node_id="n1", unit="m3/h"),
    TagSettings(name="c.hot", asset="c", node_id="n2", unit="degC"),
    TagSettings(name="c.cold", asset="c", node_id="n3", unit="degC"),
    TagSettings(name="c.power", asset="c", node_id="n4", unit="kW"),
)
EXPECTED_KW = 1.163 * 60.0 * (12.0 - 5.0)  # 488.46
EB_NOMINAL = [60.0, 12.0, 5.0, EXPECTED_KW]
EB_ASSET = {
    "name": "c",
    "energy_balance": {
        "flow_tag": "c.flow",
        "hot_temp_tag": "c.hot",
        "cold_temp_tag": "c.cold",
        "power_tag": "c.power",
        "relative_tolerance": 0.1,
    },
}


def _balance_rows(power: float) -> list[list[float]]:
    return noisy(EB_NOMINAL, 40) + [[60.0, 12.0, 5.0, power]] * 5 + noisy(EB_NOMINAL, 10, seed=1)


def test_energy_balance_opens_when_power_disagrees_with_flow_and_delta_t() -> None:
    st, _ = stage(EB_TAGS, assets=[EB_ASSET])
    events = [e for e in feed(st, EB_TAGS, _balance_rows(420.0), EB_NOMINAL) if e.kind == "energy_balance"]
    # 420 / 488.46 - 1 = -14 %: violating at 40, 41, 42 -> opens at 42; balanced from 45: clears at 48.
    assert summary(events) == [
        ("opened", "energy_balance", "c.power", 42.0),
        ("cleared", "energy_balance", "c.power", 48.0),
    ]
    opened = events[0]
    assert opened.asset == "c" and opened.alert_id == "c/c.power/energy_balance/42000"
    assert opened.actual == 420.0
    assert opened.forecast == pytest.approx(EXPECTED_KW)
    assert opened.lower == pytest.approx(0.9 * EXPECTED_KW) and opened.upper == pytest.approx(1.1 * EXPECTED_KW)
    assert opened.score == pytest.approx(0.1402 / 0.1, abs=0.01)  # ratio to the tolerance
    assert opened.severity == "warning"
    assert "-14.0%" in opened.message and "±10%" in opened.message


def test_energy_balance_far_off_is_critical_and_within_tolerance_is_silent() -> None:
    st, _ = stage(EB_TAGS, assets=[EB_ASSET])
    far = [e for e in feed(st, EB_TAGS, _balance_rows(200.0), EB_NOMINAL) if e.kind == "energy_balance"]
    assert [(e.event, e.severity) for e in far] == [("opened", "critical"), ("cleared", "critical")]
    st, _ = stage(EB_TAGS, assets=[EB_ASSET])
    near = [e for e in feed(st, EB_TAGS, _balance_rows(450.0), EB_NOMINAL) if e.kind == "energy_balance"]
    assert near == []  # -7.9 % is inside ±10 %


def test_energy_balance_is_not_checked_below_its_minimum_expected_power() -> None:
    asset = {**EB_ASSET, "energy_balance": {**EB_ASSET["energy_balance"], "min_expected_power": 600.0}}  # type: ignore[dict-item]
    st, _ = stage(EB_TAGS, assets=[asset])
    assert [e for e in feed(st, EB_TAGS, _balance_rows(200.0), EB_NOMINAL) if e.kind == "energy_balance"] == []


# -- data quality: stuck ----------------------------------------------------------------------

DQ_TAGS = (
    TagSettings(name="c.t", asset="c", node_id="n1", unit="degC", stuck_after_s=5.0, stuck_tolerance=0.001),
    TagSettings(name="c.p", asset="c", node_id="n2", unit="kW", spike_factor=10.0),
)
DQ_NOMINAL = [5.0, 100.0]


def test_a_stuck_tag_is_gated_and_reported_as_data_quality() -> None:
    st, m = stage(DQ_TAGS)
    rows = noisy(DQ_NOMINAL, 30)
    rows += [[5.013, 100.0 + 0.02 * ((-1) ** k)] for k in range(15)]  # 30..44: c.t frozen
    rows += noisy(DQ_NOMINAL, 15, seed=1)  # 45..: moving again
    events = feed(st, DQ_TAGS, rows[:35], DQ_NOMINAL)
    detector = st._groups[("c.t", "c.p")].scorer
    learned_before = detector.learned[0]
    events += feed(st, DQ_TAGS, rows[35:], DQ_NOMINAL, start=35.0)
    # Flat since 30: stuck from 35 (5 s); moves at 45, normal 45..48 -> cleared at 48.
    assert summary(events) == [("opened", "data_quality", "c.t", 35.0), ("cleared", "data_quality", "c.t", 48.0)]
    opened = events[0]
    assert (opened.category, opened.reason, opened.severity) == ("data_quality", "stuck", "warning")
    assert opened.alert_id == "c/c.t/data_quality/35000"
    assert opened.to_dict()["category"] == "data_quality" and opened.to_dict()["reason"] == "stuck"
    assert "stuck at 5.013 degC for 5 s" in opened.message
    assert _value(m, "sentinelle_ticks_gated_total", {"reason": "stuck"}) == 10  # 35..44
    assert _value(m, "sentinelle_ticks_gated_total", {"reason": "recovery"}) == 10  # 45..54 (dq_recovery_steps)
    assert _value(m, "sentinelle_data_quality_alerts_total", {"reason": "stuck"}) == 1
    # Stuck and recovery ticks (35..54) taught the detector nothing; 55..59 did.
    assert detector.learned[0] == learned_before + 5


def test_a_tag_without_stuck_after_s_may_stay_flat() -> None:
    tags = (TagSettings(name="c.t", asset="c", node_id="n1"), DQ_TAGS[1])
    st, _ = stage(tags)
    rows = noisy(DQ_NOMINAL, 30) + [[5.013, 100.0]] * 30
    assert [e for e in feed(st, tags, rows, DQ_NOMINAL) if e.kind == "data_quality"] == []


# -- data quality: spikes -----------------------------------------------------------------------


def _spike_rows(samples: int, back: bool) -> list[list[float]]:
    rows = noisy(DQ_NOMINAL, 40)
    rows += noisy([5.0, 105.0], samples, seed=2)  # from tick 40: +5 kW, about 180 sigmas of its steps
    rows += noisy(DQ_NOMINAL if back else [5.0, 105.0], 20, seed=1)
    return rows


def test_a_two_sample_spike_is_gated_and_reported_not_alarmed() -> None:
    st, m = stage(DQ_TAGS, open_k=2, open_n=3)
    events = feed(st, DQ_TAGS, _spike_rows(2, back=True), DQ_NOMINAL)
    # Suspected at 40 and 41 (held out), back at 42: confirmed; normal 43..46 -> cleared at 46.
    assert summary(events) == [("opened", "data_quality", "c.p", 42.0), ("cleared", "data_quality", "c.p", 46.0)]
    assert events[0].reason == "spike" and events[0].score == pytest.approx(5.0, abs=0.1)
    assert _value(m, "sentinelle_ticks_gated_total", {"reason": "spike"}) == 3  # 40, 41 and the return 42


def test_the_same_spike_without_spike_factor_is_a_process_alarm() -> None:
    """The control for the test above: gating is what keeps the spike out of the residual detector."""
    tags = (DQ_TAGS[0], TagSettings(name="c.p", asset="c", node_id="n2", unit="kW"))
    st, _ = stage(tags, open_k=2, open_n=3)
    events = feed(st, tags, _spike_rows(2, back=True), DQ_NOMINAL)
    assert [(e.event, e.kind, e.event_ts) for e in events][:1] == [("opened", "forecast_residual", 41.0)]


def test_a_jump_that_stays_is_a_level_change_scored_after_spike_max_steps() -> None:
    st, m = stage(DQ_TAGS, open_k=2, open_n=3)
    events = feed(st, DQ_TAGS, _spike_rows(20, back=False), DQ_NOMINAL)
    # Held out at 40 and 41 (spike_max_steps = 2), released at 42: flagged 42, 43 -> opens at 43.
    assert [e.kind for e in events] == ["forecast_residual"]
    assert (events[0].event, events[0].tag, events[0].event_ts) == ("opened", "c.p", 43.0)
    assert _value(m, "sentinelle_ticks_gated_total", {"reason": "spike"}) == 2
    assert _value(m, "sentinelle_data_quality_alerts_total", {"reason": "spike"}) == 0


def test_a_fast_ramp_is_held_out_once_then_scored() -> None:
    st, m = stage(DQ_TAGS)
    rows = noisy(DQ_NOMINAL, 40) + [[5.0 + 0.02 * (-1) ** k, 100.0 + 5.0 * (k + 1)] for k in range(10)]  # +5 kW a tick
    events = feed(st, DQ_TAGS, rows, DQ_NOMINAL)
    # Suspected at 40 and 41, released at 42; not suspected again while its steps fill the spread.
    assert _value(m, "sentinelle_ticks_gated_total", {"reason": "spike"}) == 2
    assert [e.kind for e in events if e.event == "opened"] == ["forecast_residual"]


# -- data quality: missing values ------------------------------------------------------------------


def test_missing_values_make_one_alert_per_asset_listing_its_tags() -> None:
    tags = (*DQ_TAGS, TagSettings(name="d.x", asset="d", node_id="n3"))
    nominal = [*DQ_NOMINAL, 0.0]
    st, _ = stage(tags, missing_after_s=5.0)
    nan = math.nan
    rows = noisy(nominal, 30)
    rows += [[nan, 100.0, 0.0]] * 5  # 30..34: c.t has no value
    rows += [[nan, nan, 0.0]] * 10  # 35..44: nor has c.p
    rows += noisy(nominal, 10, seed=1)  # 45..: both back
    events = feed(st, tags, rows, nominal)
    # c.t last seen at 29: missing from 34; c.p last seen at 34: missing from 39 (joins: updated);
    # every value back at 45: normal 45..48 -> cleared at 48.
    assert summary(events) == [
        ("opened", "data_quality", "c.t", 34.0),
        ("updated", "data_quality", "c.t", 39.0),
        ("cleared", "data_quality", "c.t", 48.0),
    ]
    assert {e.alert_id for e in events} == {"c/c.t/data_quality/34000"}
    assert [e.reason for e in events] == ["missing"] * 3
    assert "from c.p, c.t" in events[1].message
    assert [e.score for e in events] == [1.0, 2.0, 2.0]  # tags without values, at most


def test_a_disconnected_source_makes_one_source_down_alert_per_asset_at_once() -> None:
    """Issue 15: gaps flagged source_down are missing at once (not after missing_after_s), reason source_down."""
    tags = (*DQ_TAGS, TagSettings(name="d.x", asset="d", node_id="n3"))
    nominal = [*DQ_NOMINAL, 0.0]
    st, m = stage(tags, missing_after_s=60.0)
    nan = math.nan
    events = feed(st, tags, noisy(nominal, 30), nominal)
    down = np.array([True, True, False])
    for k in range(30, 35):  # c's server is down: both its tags are gaps, flagged
        b = batch(tags, float(k), [nan, nan, 0.0], nominal)
        events += st.process(dataclasses.replace(b, window=dataclasses.replace(b.window, source_down=down)))
    events += feed(st, tags, noisy(nominal, 10, seed=1), nominal, start=35.0)
    assert summary(events) == [
        ("opened", "data_quality", "c.t", 30.0),
        ("cleared", "data_quality", "c.t", 38.0),
    ]
    assert [e.reason for e in events] == ["source_down"] * 2
    assert events[0].message == "c: source disconnected, no values from c.p, c.t (data quality)"
    assert m.registry.get_sample_value("sentinelle_data_quality_alerts_total", {"reason": "source_down"}) == 1.0


# -- settings ---------------------------------------------------------------------------------------


def _tags_dicts() -> list[dict[str, object]]:
    return [t.model_dump(exclude_none=True) for t in EB_TAGS]


@pytest.mark.parametrize(
    ("asset", "field"),
    [
        ({**EB_ASSET, "name": "nope"}, "detect.assets[nope].name"),
        (
            {**EB_ASSET, "energy_balance": {**EB_ASSET["energy_balance"], "power_tag": "c.nope"}},  # type: ignore[dict-item]
            "detect.assets[c].energy_balance.power_tag",
        ),
        (
            {"name": "c", "modes": [{"mode": "stopped", "tag": "c.nope", "below": 5.0}]},
            "detect.assets[c].modes[stopped].tag",
        ),
    ],
)
def test_asset_rules_must_name_configured_assets_and_tags(asset: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(tags=_tags_dicts(), detect={"assets": [asset]})
    assert field in str(e.value)


def test_energy_balance_tags_must_share_a_period() -> None:
    tags = _tags_dicts()
    tags[0]["period_s"] = 10.0
    with pytest.raises(ConfigError, match="share one period_s"):
        load_settings(tags=tags, detect={"assets": [EB_ASSET]})


@pytest.mark.parametrize(
    "rule",
    [
        {"mode": "stopped", "tag": "c.flow", "below": 5.0, "above": 50.0},  # two conditions
        {"mode": "stopped", "tag": "c.flow"},  # none
        {"mode": "running", "tag": "c.flow", "below": 5.0},  # the default mode's name
        {"mode": "Stopped!", "tag": "c.flow", "below": 5.0},  # not a metric label value
    ],
)
def test_mode_rules_are_validated(rule: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        load_settings(tags=_tags_dicts(), detect={"assets": [{"name": "c", "modes": [rule]}]})
