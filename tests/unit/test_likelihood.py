"""The anomaly-likelihood layer alone on hand-made score sequences, and over the asset T² in a replay."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sentinelle.detect.likelihood import AnomalyLikelihood
from sentinelle.evaluation.replay import replay, replay_settings
from sentinelle.settings import DetectSettings

from .detect_helpers import shifted_pair

T0 = 1_700_000_000.0
# Scores 0 and 1 in turn: mean 0.5, population σ 0.5.
ZERO_ONE = np.tile([0.0, 1.0], 50)


def _layer(short_steps: int = 1, history_steps: int = 1000, z_threshold: float = 3.0) -> AnomalyLikelihood:
    layer = AnomalyLikelihood(short_steps, history_steps, z_threshold)
    layer.seed(ZERO_ONE)
    return layer


def test_z_is_the_short_mean_in_long_term_sigma_and_flags_strictly_above_the_threshold() -> None:
    layer = _layer()
    z, flagged = layer.step(2.0, learn=False)
    assert z == pytest.approx(3.0) and not flagged
    assert layer.likelihood == pytest.approx(0.99865, abs=1e-5)
    z, flagged = layer.step(2.1, learn=False)
    assert z == pytest.approx(3.2) and flagged


def test_the_short_term_mean_needs_a_lasting_excursion() -> None:
    layer = _layer(short_steps=4)
    for _ in range(4):
        layer.step(0.5, learn=False)
    # One score of 5 moves the mean of four by 1.125: z 2.25; a second one: z 4.5.
    z, flagged = layer.step(5.0, learn=False)
    assert z == pytest.approx(2.25) and not flagged
    z, flagged = layer.step(5.0, learn=False)
    assert z == pytest.approx(4.5) and flagged


def test_learns_only_normal_unflagged_scores() -> None:
    layer = _layer(short_steps=1)
    layer.step(0.5, learn=False)  # not normal (an open alert): not learned
    layer.step(9.0, learn=True)  # flagged: not learned
    assert layer._filled == len(ZERO_ONE)
    layer.step(0.5, learn=True)
    assert layer._filled == len(ZERO_ONE) + 1


def test_missing_scores_are_skipped_without_effect() -> None:
    layer = _layer(short_steps=2)
    layer.step(0.5, learn=True)
    filled = layer._filled
    z, flagged = layer.step(math.nan, learn=True)
    assert math.isnan(z) and not flagged and layer._filled == filled
    assert layer.step(0.5, learn=False)[0] == pytest.approx(0.0, abs=1e-9)  # the NaN is not in the short mean
    layer.seed(np.array([math.nan, math.inf, 0.5]))
    assert layer._filled == filled + 1


def test_no_history_no_judgement_and_a_constant_history_uses_the_spread_floor() -> None:
    empty = AnomalyLikelihood(1, 10, 3.0)
    z, flagged = empty.step(100.0, learn=False)
    assert math.isnan(z) and not flagged and math.isnan(empty.likelihood)
    constant = AnomalyLikelihood(1, 10, 3.0, min_spread=0.01)
    constant.seed(np.full(10, 0.2))
    z, flagged = constant.step(0.25, learn=False)
    assert z == pytest.approx(5.0) and flagged


def test_the_history_is_a_bounded_ring_that_forgets_old_scores() -> None:
    layer = AnomalyLikelihood(1, history_steps=10, z_threshold=3.0)
    layer.seed(np.full(10, 100.0))
    for x in ZERO_ONE[:10]:
        layer.step(float(x), learn=True)  # z far below the threshold: all learned
    assert layer._history.shape == (10,) and layer._filled == 10
    assert layer.step(2.0, learn=False)[0] == pytest.approx(3.0)  # the seed of 100 is gone


def test_from_settings_uses_the_likelihood_fields() -> None:
    s = DetectSettings(asset_likelihood_short_steps=5, asset_likelihood_history_steps=300, asset_likelihood_z=4.5)
    layer = AnomalyLikelihood.from_settings(s)
    assert (layer.short_steps, layer.history_steps, layer.z_threshold) == (5, 300, 4.5)


def test_over_the_asset_t2_a_shift_opens_one_alert_and_gaps_do_not_crash() -> None:
    # As test_replay's T² test: two correlated tags, both shift by 0.5 from row 300; here
    # values are missing (NaN) in the warm-up and during the shift.
    rec = shifted_pair(gaps=[(40, 0), (350, 0)], t0=T0)
    settings = DetectSettings(
        asset_enabled=True, asset_warmup_steps=150, asset_likelihood_enabled=True, asset_likelihood_z=5.0
    )
    trace = replay(rec, replay_settings("holt", settings))
    opened = [e for e in trace.events if e.kind == "asset_state" and e.event == "opened"]
    assert len(opened) == 1 and T0 + 300 <= opened[0].event_ts <= T0 + 305
    assert not trace.anomalous[150:300].any() and trace.anomalous[310:].all()
