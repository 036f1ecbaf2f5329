"""detect/detectors/asset_estimate.py: a slow drift the own forecast follows is caught against the estimate."""

from __future__ import annotations

import dataclasses

import numpy as np

from sentinelle.records import AlertEvent
from sentinelle.settings import TagSettings

from .detect_helpers import SIGMA, batch, stage

TAGS = tuple(TagSettings(name=f"c.t{i}", asset="c", node_id=f"n{i}", unit="u") for i in range(3))
_Z = np.array([-1.2816, 0.0, 1.2816])


def run(with_estimate: bool, drift_per_s: float = 0.01, steps: int = 400) -> list[AlertEvent]:
    """Tag 1 drifts from t = 200; its own forecast follows the value (a univariate forecaster at a slow
    fault), the asset model's estimate stays where the other tags say the value should be (nominal)."""
    st, _ = stage(TAGS)
    rng = np.random.default_rng(0)
    nominal = np.array([10.0, 20.0, 30.0])
    events: list[AlertEvent] = []
    for k in range(steps):
        values = nominal + rng.normal(0.0, 0.02, 3)
        values[1] += drift_per_s * max(0, k - 200)
        fb = batch(TAGS, float(k), values.tolist(), values.tolist())  # the forecast follows
        if with_estimate:
            estimate = nominal[:, None] + _Z[None, :] * SIGMA
            fb = dataclasses.replace(fb, estimate=estimate)
        events += st.process(fb)
    return events


def estimate_alerts(events: list[AlertEvent]) -> list[AlertEvent]:
    return [e for e in events if e.kind == "relation"]  # no configured relation here: only this detector's


def test_a_drift_is_caught_against_the_estimate_and_only_on_its_tag() -> None:
    opened = [e for e in estimate_alerts(run(True)) if e.event == "opened"]
    assert opened, "the drifting tag should open an estimate alert"
    assert {e.tag for e in opened} == {"c.t1"}
    first = min(e.event_ts for e in opened)
    assert 200 < first < 300  # within 100 s of onset: drift 1 σ of the estimate after 10 s


def test_without_an_estimate_the_detector_is_silent() -> None:
    assert estimate_alerts(run(False)) == []


def test_no_drift_no_estimate_alert() -> None:
    assert estimate_alerts(run(True, drift_per_s=0.0)) == []


def run_bias(alpha: float, bias: float = 0.1, steps: int = 700, onset: int = 400, **settings: bool) -> list[AlertEvent]:
    """Tag 1 reads ``bias`` above the estimate from ``onset`` on: about one of the estimate's spreads (0.1),
    never a surprising tick alone, but a residual of one sign for minutes (a slow fault the estimate half
    follows). ``alpha``: the sustained-bias chart's weight (0: off). The values' noise (0.02) is a fifth
    of the band's spread: the band is too wide."""
    st, _ = stage(TAGS, asset_estimate_ewma_alpha=alpha, **settings)
    rng = np.random.default_rng(1)
    nominal = np.array([10.0, 20.0, 30.0])
    events: list[AlertEvent] = []
    for k in range(steps):
        values = nominal + rng.normal(0.0, 0.02, 3)
        values[1] += bias if k >= onset else 0.0
        fb = batch(TAGS, float(k), values.tolist(), values.tolist())
        fb = dataclasses.replace(fb, estimate=nominal[:, None] + _Z[None, :] * SIGMA)
        events += st.process(fb)
    return events


def test_a_sustained_small_bias_is_caught_by_the_chart_only() -> None:
    assert estimate_alerts(run_bias(0.0)) == []  # no tick is surprising alone
    opened = [e for e in estimate_alerts(run_bias(0.05)) if e.event == "opened"]
    assert {e.tag for e in opened} == {"c.t1"}
    assert 400 < min(e.event_ts for e in opened) < 460  # the EWMA (1/α = 20 ticks) crosses within a minute


def test_the_chart_stays_quiet_without_a_bias() -> None:
    assert estimate_alerts(run_bias(0.05, bias=0.0)) == []


def test_the_chart_survives_a_restart() -> None:
    from sentinelle.detect.detectors.asset_estimate import AssetEstimateDetector

    st, _ = stage(TAGS, asset_estimate_ewma_alpha=0.05)
    nominal = np.array([10.0, 20.0, 30.0])
    for k in range(60):
        fb = batch(TAGS, float(k), (nominal + 0.01 * k).tolist(), nominal.tolist())
        st.process(dataclasses.replace(fb, estimate=nominal[:, None] + _Z[None, :] * SIGMA))
    (det,) = [d for d in next(iter(st._groups.values())).detectors if isinstance(d, AssetEstimateDetector)]
    fresh, _ = stage(TAGS, asset_estimate_ewma_alpha=0.05)
    fresh.process(batch(TAGS, 0.0, nominal.tolist(), nominal.tolist()))  # builds its detectors
    (other,) = [d for d in next(iter(fresh._groups.values())).detectors if isinstance(d, AssetEstimateDetector)]
    other.restore(det.state())
    assert np.array_equal(other.ewma, det.ewma) and np.any(det.ewma != 0)
    assert np.array_equal(other.ewma_scale.square, det.ewma_scale.square)
    assert np.array_equal(other.ewma_scale.learned, det.ewma_scale.learned)


def run_burst(burst: int, **settings: int) -> list[AlertEvent]:
    """Tag 1 sits 30 estimate spreads off for ``burst`` ticks from t = 300: one poor estimate standing for
    its refresh period (8 ticks) when short, a lasting deviation when long."""
    st, _ = stage(TAGS, **settings)
    rng = np.random.default_rng(2)
    nominal = np.array([10.0, 20.0, 30.0])
    events: list[AlertEvent] = []
    for k in range(400):
        values = nominal + rng.normal(0.0, 0.02, 3)
        values[1] += 30 * SIGMA if 300 <= k < 300 + burst else 0.0
        fb = batch(TAGS, float(k), values.tolist(), values.tolist())
        fb = dataclasses.replace(fb, estimate=nominal[:, None] + _Z[None, :] * SIGMA)
        events += st.process(fb)
    return [e for e in estimate_alerts(events) if e.event == "opened"]


def test_the_estimate_residual_opens_on_its_own_k_of_n() -> None:
    own = {"asset_estimate_open_k": 16, "asset_estimate_open_n": 24}
    assert [e.tag for e in run_burst(8)] == ["c.t1"]  # the shared 3 of 5 opens on one stale estimate
    assert run_burst(8, **own) == []  # 16 of 24 waits for a second estimate to agree
    opened = run_burst(40, **own)
    assert [e.tag for e in opened] == ["c.t1"]
    assert 315 <= opened[0].event_ts < 330  # the 16th anomalous tick


def test_the_estimate_k_of_n_is_set_as_a_pair_and_k_within_n() -> None:
    import pydantic
    import pytest

    from sentinelle.settings import DetectSettings

    with pytest.raises(pydantic.ValidationError, match="set together"):
        DetectSettings(asset_estimate_open_k=16)
    with pytest.raises(pydantic.ValidationError, match="must not exceed"):
        DetectSettings(asset_estimate_open_k=16, asset_estimate_open_n=8)


def test_a_band_too_wide_hides_a_bias_that_the_calibrated_band_shows() -> None:
    assert estimate_alerts(run_bias(0.0)) == []  # the scorer's floor trusts the too-wide band
    opened = [e for e in estimate_alerts(run_bias(0.0, asset_estimate_calibrate_band=True)) if e.event == "opened"]
    assert {e.tag for e in opened} == {"c.t1"}
    assert 400 <= min(e.event_ts for e in opened) < 410  # the band, narrowed to the noise, makes it 5 spreads


def test_the_calibrated_band_stays_quiet_without_a_bias() -> None:
    assert estimate_alerts(run_bias(0.0, bias=0.0, asset_estimate_calibrate_band=True)) == []


def test_the_band_factors_survive_a_restart_and_older_states_restore() -> None:
    from sentinelle.detect.detectors.asset_estimate import AssetEstimateDetector

    def detector(**settings: bool) -> AssetEstimateDetector:
        st, _ = stage(TAGS, **settings)
        nominal = np.array([10.0, 20.0, 30.0])
        for k in range(50):
            fb = batch(TAGS, float(k), (nominal + 0.001 * k).tolist(), nominal.tolist())
            st.process(dataclasses.replace(fb, estimate=nominal[:, None] + _Z[None, :] * SIGMA))
        (det,) = [d for d in next(iter(st._groups.values())).detectors if isinstance(d, AssetEstimateDetector)]
        return det

    det = detector(asset_estimate_calibrate_band=True)
    assert det.band is not None and np.all(det.band.log_scale < 0)  # values well inside: the band narrows
    other = detector(asset_estimate_calibrate_band=True)
    other.restore(detector().state())  # a state without band factors: the band's own stay
    assert other.band is not None and np.all(other.band.log_scale < 0)
    other.restore(det.state())
    assert np.array_equal(other.band.log_scale, det.band.log_scale)
    assert np.array_equal(other.band.learned, det.band.learned)


def run_ramp(
    delay: int, rate: float = 0.001, steps: int = 1200, onset: int = 300, min_learned: int = 0
) -> list[AlertEvent]:
    """Tag 1 leaves the estimate by ``rate`` per tick from ``onset`` on (a drift against an estimate whose
    reference is older than it), 6 estimate spreads after 600 ticks: no tick jumps, the residual grows.
    ``delay``: ``detect.asset_estimate_learn_delay_steps``; ``min_learned``: ``..._min_learned_steps``."""
    st, _ = stage(TAGS, asset_estimate_learn_delay_steps=delay, asset_estimate_min_learned_steps=min_learned)
    rng = np.random.default_rng(3)
    nominal = np.array([10.0, 20.0, 30.0])
    events: list[AlertEvent] = []
    for k in range(steps):
        values = nominal + rng.normal(0.0, 0.02, 3)
        values[1] += rate * max(0, k - onset)
        fb = batch(TAGS, float(k), values.tolist(), values.tolist())
        fb = dataclasses.replace(fb, estimate=nominal[:, None] + _Z[None, :] * SIGMA)
        events += st.process(fb)
    return [e for e in estimate_alerts(events) if e.event == "opened"]


def test_a_growing_residual_is_learned_at_once_but_caught_when_the_scale_learns_late() -> None:
    assert run_ramp(0) == []  # the scale follows the residual as it grows
    late = run_ramp(200)
    assert {e.tag for e in late} == {"c.t1"}
    assert 300 < min(e.event_ts for e in late) < 700
    assert run_ramp(200, rate=0.0) == []  # no drift: quiet, late or not


def test_the_delay_line_survives_a_restart_and_another_delay_refills() -> None:
    from sentinelle.detect.detectors.asset_estimate import AssetEstimateDetector

    def detector(delay: int, ticks: int) -> AssetEstimateDetector:
        st, _ = stage(TAGS, asset_estimate_learn_delay_steps=delay)
        nominal = np.array([10.0, 20.0, 30.0])
        for k in range(ticks):
            fb = batch(TAGS, float(k), (nominal + 0.01 * k).tolist(), nominal.tolist())
            st.process(dataclasses.replace(fb, estimate=nominal[:, None] + _Z[None, :] * SIGMA))
        (det,) = [d for d in next(iter(st._groups.values())).detectors if isinstance(d, AssetEstimateDetector)]
        return det

    det = detector(5, 12)
    assert np.isfinite(det.late_z).all() and det.late_pos[0] == 12 % 5
    assert det.scale.learned.max() == 12 - 5  # the first 5 ticks are still in the line
    same = detector(5, 1)
    same.restore(det.state())
    assert np.array_equal(same.late_z, det.late_z) and same.late_pos[0] == det.late_pos[0]
    other = detector(3, 1)
    other.restore(det.state())
    assert np.isnan(other.late_z[1:]).all()  # another delay: the line refills


def test_a_row_flags_only_once_its_scale_has_learned_the_minimum() -> None:
    # Delay 200: the scale has learned k - 200 ticks at tick k, so 600 learned at tick 800.
    early = min(e.event_ts for e in run_ramp(200))
    assert early < 700
    late = run_ramp(200, min_learned=600)
    assert {e.tag for e in late} == {"c.t1"}  # the drift is still caught ...
    assert min(e.event_ts for e in late) >= 800  # ... but not before the scale has learned 600 ticks
    assert run_ramp(200, min_learned=50) == run_ramp(200)  # below the shared grace (and the onset): no change
    assert run_ramp(200, rate=0.0, min_learned=600) == []


def run_recovery(holdoff: int, late_onset: int = 360) -> list[AlertEvent]:
    """Tag 0 spikes for 10 ticks at 300 (its own forecast stays at nominal: a residual alert on the asset);
    from ``late_onset`` for 60 ticks tag 2 reads 1.0 (10 estimate spreads) off its estimate while its own
    forecast follows it — what an estimate whose reference still holds the fault's values does after it."""
    st, _ = stage(TAGS, asset_estimate_holdoff_steps=holdoff)
    rng = np.random.default_rng(2)
    nominal = np.array([10.0, 20.0, 30.0])
    events: list[AlertEvent] = []
    for k in range(late_onset + 200):
        values = nominal + rng.normal(0.0, 0.02, 3)
        median = values.copy()
        if 300 <= k < 310:
            values[0] += 5.0
            median[0] = nominal[0]
        if late_onset <= k < late_onset + 60:
            values[2] += 1.0
            median[2] = values[2]
        fb = batch(TAGS, float(k), values.tolist(), median.tolist())
        fb = dataclasses.replace(fb, estimate=nominal[:, None] + _Z[None, :] * SIGMA)
        events += st.process(fb)
    return events


def test_the_hold_off_silences_the_estimate_after_an_alert_and_only_for_its_length() -> None:
    def on_t2(events: list[AlertEvent]) -> list[AlertEvent]:
        return [e for e in estimate_alerts(events) if e.event == "opened" and e.tag == "c.t2"]

    assert [e for e in run_recovery(0) if e.event == "opened" and e.kind == "forecast_residual"]  # the spike
    assert on_t2(run_recovery(0)), "without the hold-off the transient opens an estimate alert"
    assert on_t2(run_recovery(200)) == []  # within 200 ticks of the spike's alert: held off
    late = on_t2(run_recovery(200, late_onset=600))  # the same deviation 300 ticks after: caught
    assert late and min(e.event_ts for e in late) >= 600


def test_the_hold_off_count_survives_a_restart() -> None:
    from sentinelle.detect.detectors.asset_estimate import AssetEstimateDetector

    st, _ = stage(TAGS, asset_estimate_holdoff_steps=100)
    for k in range(3):
        fb = batch(TAGS, float(k), [10.0, 20.0, 30.0], [10.0, 20.0, 30.0])
        st.process(dataclasses.replace(fb, estimate=np.array([10.0, 20.0, 30.0])[:, None] + _Z[None, :] * SIGMA))
    (det,) = [d for d in next(iter(st._groups.values())).detectors if isinstance(d, AssetEstimateDetector)]
    det.since_busy[:] = 7.0
    fresh, _ = stage(TAGS, asset_estimate_holdoff_steps=100)
    fb = batch(TAGS, 0.0, [10.0, 20.0, 30.0], [10.0, 20.0, 30.0])
    fresh.process(dataclasses.replace(fb, estimate=np.array([10.0, 20.0, 30.0])[:, None] + _Z[None, :] * SIGMA))
    (other,) = [d for d in next(iter(fresh._groups.values())).detectors if isinstance(d, AssetEstimateDetector)]
    other.restore(det.state())
    assert other.since_busy.tolist() == [7.0]
