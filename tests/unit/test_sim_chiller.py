"""The simulated chiller model alone: determinism, regulation, faults, extra tags.

Every fault test runs the plant twice with the same seed, with and without the
fault: the noise streams are independent of the faults, so the two runs are
identical before the onset and any difference is the fault's doing.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from sentinelle.errors import ConfigError
from sentinelle.records import FloatArray
from sentinelle.settings import FaultKind, FaultSettings, SimulatorSettings
from sentinelle.sim.chiller import CHILLER_TAGS, PUMP_TAGS, ChillerModel, extra_tag_asset
from sentinelle.sim.server import chiller_tags

START_TS = 1_700_000_000.0
COLUMN = {name: i for i, name in enumerate(CHILLER_TAGS)}
# Sample-to-sample noise of each tag in a fault-free run (measured, rounded up): the yardstick of "visible".
NOISE_SIGMA = {
    "flow_m3h": 0.15,
    "pump1_speed_pct": 0.4,
    "pump2_speed_pct": 0.35,
    "pump3_speed_pct": 0.35,
    "supply_temp_c": 0.03,
    "chw_temp_c": 0.03,
    "power_kw": 2.5,
}


def _run(steps: int, **overrides: object) -> tuple[ChillerModel, FloatArray]:
    settings = SimulatorSettings.model_validate({"seed": 11, **overrides})
    model = ChillerModel(settings)
    out = np.empty((steps, len(model.tag_names)))
    for k in range(steps):
        out[k] = model.step_array(START_TS + k * settings.sample_period_s)
    return model, out


def test_same_seed_same_values_other_seed_other_values() -> None:
    _, a = _run(600, seed=3)
    _, b = _run(600, seed=3)
    _, c = _run(600, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_step_dict_matches_array() -> None:
    first = ChillerModel(SimulatorSettings(seed=5)).step(START_TS)
    second = ChillerModel(SimulatorSettings(seed=5)).step_array(START_TS)
    assert list(first) == list(CHILLER_TAGS)
    assert list(first.values()) == second.tolist()


def test_two_days_without_faults_hold_the_setpoint() -> None:
    _, out = _run(2 * 86_400)
    chw = out[:, COLUMN["chw_temp_c"]]
    assert chw.min() >= 4.8 and chw.max() <= 5.2
    assert chw.mean() == pytest.approx(5.0, abs=0.01)
    flow, supply, power = (out[:, COLUMN[n]] for n in ("flow_m3h", "supply_temp_c", "power_kw"))
    expected = 1.163 * flow * (supply - chw)
    assert power.mean() == pytest.approx(expected.mean(), rel=0.03)
    assert flow.mean() == pytest.approx(60.0, rel=0.01)
    # The daily load cycle shows on the supply temperature and on the pumps, within their range.
    assert supply.max() - supply.min() > 2.0
    for pump in PUMP_TAGS:
        speeds = out[:, COLUMN[pump]]
        assert speeds.min() > 0.0 and speeds.max() < 100.0
        assert speeds.max() - speeds.min() > 10.0


def test_a_slower_sample_period_keeps_the_same_physics() -> None:
    _, out = _run(86_400 // 5, sample_period_s=5.0)
    chw = out[:, COLUMN["chw_temp_c"]]
    assert chw.min() >= 4.8 and chw.max() <= 5.2


ONSET_S, DURATION_S = 1800, 1800
END_S = ONSET_S + DURATION_S


def _with_and_without(kind: FaultKind, **fault: object) -> tuple[ChillerModel, FloatArray, FloatArray]:
    steps = END_S + 1800
    _, base = _run(steps)
    spec = FaultSettings.model_validate({"kind": kind, "onset_s": ONSET_S, "duration_s": DURATION_S, **fault})
    model, faulty = _run(steps, faults=[spec])
    return model, base, faulty


def _smoothed(x: FloatArray, width: int = 30) -> FloatArray:
    return np.convolve(x, np.ones(width) / width, mode="valid")


@pytest.mark.parametrize(
    "kind",
    [
        "pump_degradation",
        "sensor_drift",
        "stuck_sensor",
        "spike",
        "setpoint_violation",
        "fouling",
        "control_oscillation",
    ],
)
def test_each_fault_is_visible_on_its_tags_and_the_plant_recovers(kind: FaultKind) -> None:
    model, base, faulty = _with_and_without(kind)
    (fault,) = model.faults
    assert fault.affected, kind
    np.testing.assert_array_equal(faulty[:ONSET_S], base[:ONSET_S])

    during = slice(ONSET_S, END_S)
    for tag in fault.affected:
        column = COLUMN[tag]
        if kind == "stuck_sensor":
            assert np.ptp(faulty[during, column]) == 0.0
            assert np.ptp(base[during, column]) > 10 * NOISE_SIGMA[tag]
            continue
        difference = faulty[during, column] - base[during, column]
        # Spikes are short: judge single samples; the others by 30 s means, above the noise.
        moved = np.abs(difference).max() if kind == "spike" else np.abs(_smoothed(difference)).max()
        assert moved > 8 * NOISE_SIGMA[tag], (kind, tag, moved)

    # Tags the fault does not name stay as they were, apart from the loop's own small reaction.
    for tag in set(CHILLER_TAGS) - set(fault.affected):
        column = COLUMN[tag]
        difference = _smoothed(faulty[during, column] - base[during, column])
        assert np.abs(difference).max() < 5 * NOISE_SIGMA[tag], (kind, tag)

    # Recovered: ten minutes after the end, the plant is back on the fault-free trajectory.
    after = slice(END_S + 600, None)
    for tag, column in COLUMN.items():
        assert np.abs(faulty[after, column] - base[after, column]).max() < NOISE_SIGMA[tag], (kind, tag)
    chw_after = faulty[END_S:, COLUMN["chw_temp_c"]]
    assert chw_after.min() >= 4.8 and chw_after.max() <= 5.2, kind


def test_fault_shapes() -> None:
    """The typical sizes the docs promise."""
    chw, power = COLUMN["chw_temp_c"], COLUMN["power_kw"]
    hold = slice(ONSET_S + 600, END_S - 600)

    _, base, faulty = _with_and_without("sensor_drift")
    drift = faulty[ONSET_S:END_S, chw] - base[ONSET_S:END_S, chw]
    assert drift[-1] == pytest.approx(0.6, abs=0.01)
    assert drift[len(drift) // 2] == pytest.approx(0.3, abs=0.01)

    _, base, faulty = _with_and_without("setpoint_violation")
    assert faulty[hold, chw].mean() == pytest.approx(5.8, abs=0.1)
    assert faulty[hold, COLUMN["pump1_speed_pct"]].mean() > 99.0  # saturated: the plant cannot keep up

    _, base, faulty = _with_and_without("fouling")
    assert (faulty[hold, power] / base[hold, power]).mean() == pytest.approx(0.85, abs=0.005)
    np.testing.assert_array_equal(faulty[:, chw], base[:, chw])

    _, base, faulty = _with_and_without("control_oscillation")
    assert faulty[hold, chw].std() > 5 * base[hold, chw].std()

    _, base, faulty = _with_and_without("pump_degradation", tag="pump2_speed_pct", magnitude=0.5)
    for pump in PUMP_TAGS:
        assert faulty[hold, COLUMN[pump]].mean() > base[hold, COLUMN[pump]].mean() + 5.0

    _, base, faulty = _with_and_without("spike", tag="chw_temp_c", magnitude=2.0)
    spiked = np.flatnonzero(faulty[:, chw] != base[:, chw])
    assert 1 <= len(spiked) <= 10
    assert spiked.min() >= ONSET_S and spiked.max() < END_S
    assert np.abs(faulty[spiked, chw] - base[spiked, chw]).min() > 1.5


def test_stuck_sensor_repeats_the_last_value_before_the_onset() -> None:
    _, base, faulty = _with_and_without("stuck_sensor", tag="flow_m3h")
    flow = COLUMN["flow_m3h"]
    assert np.all(faulty[ONSET_S:END_S, flow] == base[ONSET_S - 1, flow])
    np.testing.assert_array_equal(faulty[END_S:, flow], base[END_S:, flow])


@pytest.mark.parametrize(
    ("fault", "field"),
    [
        ({"kind": "pump_degradation", "tag": "chw_temp_c"}, "simulator.faults.0.tag"),
        ({"kind": "sensor_drift", "tag": "no_such_tag"}, "simulator.faults.0.tag"),
        ({"kind": "fouling", "tag": "power_kw"}, "simulator.faults.0.tag"),
        ({"kind": "fouling", "magnitude": 1.5}, "simulator.faults.0.magnitude"),
        ({"kind": "control_oscillation", "magnitude": 0.5}, "simulator.faults.0.magnitude"),
    ],
)
def test_faults_that_cannot_apply_are_config_errors(fault: dict[str, object], field: str) -> None:
    spec = FaultSettings.model_validate({"onset_s": 0, "duration_s": 60, **fault})
    with pytest.raises(ConfigError) as raised:
        ChillerModel(SimulatorSettings(faults=(spec,)))
    assert raised.value.field == field


def test_extra_tags_are_cheap_and_leave_the_chiller_alone() -> None:
    model, out = _run(120, extra_tags=120)
    _, plain = _run(120)
    assert model.tag_names[len(CHILLER_TAGS)] == "bench.t00000"
    assert model.tag_names[-1] == "bench.t00119"
    assert extra_tag_asset(49) == "bench.g000" and extra_tag_asset(50) == "bench.g001"
    np.testing.assert_array_equal(out[:, : len(CHILLER_TAGS)], plain)
    extra = out[:, len(CHILLER_TAGS) :]
    assert np.all(np.isfinite(extra))
    assert np.all(extra.std(axis=0) > 0)
    _, again = _run(120, extra_tags=120)
    np.testing.assert_array_equal(again, out)

    big = ChillerModel(SimulatorSettings(extra_tags=10_000))
    assert big.step_array(START_TS).shape == (len(CHILLER_TAGS) + 10_000,)
    began = time.perf_counter()
    for k in range(1, 21):
        big.step_array(START_TS + k)
    # ~1 ms on a 2-core VM; the bound only catches a per-tag Python loop.
    assert (time.perf_counter() - began) / 20 < 0.05


def test_chiller_tags_match_the_simulator() -> None:
    settings = SimulatorSettings(extra_tags=3, sample_period_s=2.0)
    tags = {t.name: t for t in chiller_tags(settings, source="sim")}
    assert len(tags) == len(CHILLER_TAGS) + 3
    chw = tags["chiller1.chw_temp_c"]
    assert (chw.low_limit, chw.high_limit, chw.unit) == (4.8, 5.2, "degC")
    assert chw.node_id == "ns=2;s=chiller1.chw_temp_c" and chw.source == "sim" and chw.period_s == 2.0
    assert 0 < chw.limit_deadband < 0.2 and 0 < chw.min_spread <= 0.03
    extra = tags["bench.t00002"]
    assert (extra.asset, extra.node_id) == ("bench.g000", "ns=2;s=bench.t00002")
