"""detect/averaged_residual.py and its use in detect/detectors/asset_estimate.py (``detect.asset_estimate_mean_*``):
a bias that each noisy tick shows only near the threshold opens through the mean of the last ticks, scored against
the per-tick residual's scale learned late; off, every row as before, bit for bit."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from sentinelle.detect.averaged_residual import AveragedResidual
from sentinelle.detect.detectors.asset_estimate import AssetEstimateDetector
from sentinelle.detect.stage import DetectStage
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent
from sentinelle.settings import DetectSettings

from .detect_helpers import SIGMA, batch, short_cycles
from .test_asset_estimate_group_learn import _Z, GROUP, NOMINAL, TAGS

BASE: dict[str, Any] = {
    "asset_estimate_learn_delay_steps": 100,
    "asset_estimate_min_learned_steps": 200,
    "asset_estimate_open_k": 20,
    "asset_estimate_open_n": 24,
}
MEAN: dict[str, Any] = {
    "asset_estimate_mean_steps": 60,
    "asset_estimate_mean_learn_delay_steps": 400,
    "asset_estimate_mean_min_learned_steps": 200,
}


def run(
    bias_row: int | None = None,
    bias: float = 0.6,
    steps: int = 1400,
    onset: int = 700,
    seed: int = 4,
    groups: tuple[tuple[str, ...], ...] = (),
    **kw: object,
) -> tuple[list[AlertEvent], AssetEstimateDetector]:
    """Noise of 0.15 (1.5 estimate spreads: the tick's own noise) around an estimate at nominal; ``bias_row`` reads
    ``bias`` high from ``onset`` on (0.6: 6 spreads, about 4 of the learned per-tick scale of 1.5, so a tick reaches
    the threshold of 3.55 about 2 times in 3 and 20 of 24 rarely; 0.5, 3.3 of it, is under the threshold even
    without noise).  Opened estimate alerts, the detector."""
    st = DetectStage(TAGS, short_cycles(**{**BASE, **kw}), Metrics(CollectorRegistry()), estimate_groups=groups)
    rng = np.random.default_rng(seed)
    events: list[AlertEvent] = []
    for k in range(steps):
        values = NOMINAL + rng.normal(0.0, 0.15, len(TAGS))
        if bias_row is not None and k >= onset:
            values[bias_row] += bias
        fb = batch(TAGS, float(k), values.tolist(), values.tolist())
        events += st.process(dataclasses.replace(fb, estimate=NOMINAL[:, None] + _Z[None, :] * SIGMA))
    (det,) = [d for d in next(iter(st._groups.values())).detectors if isinstance(d, AssetEstimateDetector)]
    return [e for e in events if e.kind == "relation" and e.event == "opened"], det


def test_a_bias_under_the_tick_noise_opens_only_through_the_mean() -> None:
    plain, det0 = run(bias_row=1)
    assert plain == [] and det0.mean is None  # each tick near the threshold: 20 of 24 never
    averaged, _ = run(bias_row=1, **MEAN)
    assert {e.tag for e in averaged} == {"c.t1"}
    assert 700 <= min(e.event_ts for e in averaged) < 800


def test_no_fault_no_alert_with_the_mean() -> None:
    for seed in (4, 5, 6):
        quiet, _ = run(seed=seed, **MEAN)
        assert quiet == []


def test_a_scale_of_the_mean_learning_at_once_follows_the_bias() -> None:
    """The mean's scale learns late: learning at once, it takes the bias in as it comes and nothing opens."""
    for seed in (4, 5):
        late, _ = run(bias_row=1, seed=seed, **MEAN)
        soon, _ = run(bias_row=1, seed=seed, **{**MEAN, "asset_estimate_mean_learn_delay_steps": 0})
        assert late and soon == []
    under, _ = run(bias_row=1, bias=0.5, **MEAN)
    assert under == []  # a bias under the threshold stays under it: the mean is not a lower threshold


def test_off_is_bit_for_bit_the_detector_without_it() -> None:
    a, d0 = run(bias_row=1, bias=1.0)
    b, d1 = run(bias_row=1, bias=1.0, asset_estimate_mean_steps=0, asset_estimate_mean_learn_delay_steps=300)
    assert a and a == b
    for name in ("location", "square", "learned"):
        assert np.array_equal(getattr(d0.scale, name), getattr(d1.scale, name)), name


def test_the_group_side_holds_for_the_mean() -> None:
    side: dict[str, Any] = {"asset_estimate_group_flag_side": 1, **MEAN}
    down, _ = run(bias_row=2, bias=-0.6, groups=GROUP, **side)
    up, _ = run(bias_row=2, groups=GROUP, **side)
    assert down == [] and {e.tag for e in up} == {"c.t2"}


def test_the_mean_can_leave_the_groups_rows_out() -> None:
    out: dict[str, Any] = {"asset_estimate_mean_groups": False, **MEAN}
    grouped, det = run(bias_row=2, groups=GROUP, **out)
    assert grouped == [] and det.mean_rows.tolist() == [True, True, False, False]
    other, _ = run(bias_row=1, groups=GROUP, **out)
    assert {e.tag for e in other} == {"c.t1"}  # a row outside the group: caught by its mean as before
    kept, _ = run(bias_row=2, groups=GROUP, **MEAN)
    assert {e.tag for e in kept} == {"c.t2"}  # the default: the group's rows too


def test_the_minimum_holds_the_mean_back() -> None:
    held, det = run(bias_row=1, **{**MEAN, "asset_estimate_mean_min_learned_steps": 1000})
    assert det.mean_grace == 1000.0
    assert held == [] or min(e.event_ts for e in held) >= 1400  # 1000 learned 400 late: tick 1400


def test_state_round_trip_keeps_the_mean() -> None:
    _, det = run(steps=500, **MEAN)
    _, fresh = run(steps=1, **MEAN)
    fresh.restore(det.state())
    assert fresh.mean is not None and det.mean is not None
    for name, value in det.mean.arrays().items():
        assert np.array_equal(fresh.mean.arrays()[name], value, equal_nan=True), name


def test_the_mean_and_the_delay_line() -> None:
    avg = AveragedResidual(2, window=4, delay=3, memory_steps=100, clip_sigmas=3.0, min_sigma=0.1)
    ok = np.ones(2, bool)
    means = []
    for k in range(6):
        z = np.array([float(k), np.nan if k < 4 else 1.0])
        means.append(avg.push(z))
        avg.learn(z, np.isfinite(z), ok)
    assert means[3][0] == pytest.approx(1.5) and np.isnan(means[3][1])  # row 1: no residual this tick
    assert np.isnan(means[4][1]) and means[5][1] == 1.0  # row 1: 1 of 4 finite is too few, 2 (half) enough
    assert means[5][0] == pytest.approx(3.5)
    assert avg.scale.learned.tolist() == [3, 0]  # 6 pushed, 3 still in the line; row 1's were NaN then
    with pytest.raises(ValueError):
        AveragedResidual(1, window=0, delay=0, memory_steps=100, clip_sigmas=3.0, min_sigma=0.1)


def test_the_settings_default_off() -> None:
    s = DetectSettings()
    assert (s.asset_estimate_mean_steps, s.asset_estimate_mean_learn_delay_steps) == (0, 0)
    assert s.asset_estimate_mean_min_learned_steps == 0 and s.asset_estimate_mean_groups is True
