"""The end of a compressed replay's hand-over (``detect.history_held_drop_after_steps``, issue 17).

After a replay with held slots, a tag's residual scale is a prior worth
``history_held_weight_steps / held share`` live ticks; with a finite drop-after it leaves
altogether once that many live ticks were scored by forecasts made from fully live contexts,
and the scale is then exactly what those ticks teach a cold scale.
"""

from __future__ import annotations

import math

import numpy as np

from sentinelle.detect.detectors.base import pack, unpack
from sentinelle.detect.detectors.residual import ResidualDetector
from sentinelle.detect.scoring import ResidualScorer
from sentinelle.detect.surprise import RobustScale
from sentinelle.records import FloatArray, ForecastBatch, WindowBatch
from sentinelle.settings import DetectSettings, TagSettings

from .deadband_helpers import compress
from .detect_helpers import stage

LEVELS = (0.1, 0.5, 0.9)
Z90 = 1.2815515655446004
SIGMA = 0.1
DEADBAND = 0.25
CONTEXT = 16
NEW_KEYS = ("_handover_steps", "_live_from")
"""The scorer's arrays that state v2 added (with the cold scale's ``live.*``)."""


def _batch(t: int, value: float, held: bool | None) -> ForecastBatch:
    """A fixed forecast 10 ± SIGMA (80 % band), a context of CONTEXT slots: z is (value − 10) / SIGMA."""
    w = WindowBatch(ts=60.0 * t, period_s=60.0, tags=("a.t",), assets=("a",), values=np.array([value]),
                    contexts=np.full((1, CONTEXT), 10.0), held=None if held is None else np.array([held]))  # fmt: skip
    q = np.repeat(np.array([[10.0 - Z90 * SIGMA, 10.0, 10.0 + Z90 * SIGMA]])[:, :, None], 2, axis=2)
    return ForecastBatch(window=w, levels=LEVELS, quantiles=q, forecaster="fixed")


def _replayed(drop_after_steps: float) -> ResidualScorer:
    """A scorer after a replay of 3000 compressed slots of noise (widen), before its first live tick."""
    s = DetectSettings(residual_min_sigma=0.01, history_held_drop_after_steps=drop_after_steps)
    sc = ResidualScorer.from_settings(1, LEVELS, np.array([0.01]), s)
    rng = np.random.default_rng(1)
    values, held = compress(10.0 + rng.normal(0.0, SIGMA, 3000), DEADBAND)
    for t, (v, h) in enumerate(zip(values.tolist(), held.tolist(), strict=True)):
        sc.score(_batch(t, v, h), np.ones(1, bool), np.array([DEADBAND]))
    sc.history_replayed()
    return sc


def _live(sc: ResidualScorer, live: FloatArray) -> None:
    for k, v in enumerate(live.tolist()):
        sc.score(_batch(3000 + k, v, None), np.ones(1, bool))


def test_after_the_hand_over_the_scale_is_what_the_live_ticks_alone_teach() -> None:
    live = 10.0 + np.random.default_rng(2).normal(0.0, 0.7 * SIGMA, 1500)  # live residuals of 0.7 spreads
    dropped, kept = _replayed(60.0), _replayed(math.inf)
    assert dropped._handover_steps[0] > 60.0  # 60 / held share (< 1) ticks
    _live(dropped, live)
    _live(kept, live)
    assert dropped._handover_steps[0] == 0.0  # handed over
    # The reference: a cold scale fed the z of the live ticks scored from fully live contexts only (the
    # forecast scoring live tick k was made after k live values; k >= CONTEXT).
    ref = RobustScale(1, DetectSettings().score_memory_steps, DetectSettings().score_clip_sigmas, 0.01)
    for v in live[CONTEXT:].tolist():
        ref.learn(np.array([(v - 10.0) / SIGMA]), np.ones(1, bool))
    np.testing.assert_allclose(dropped.scale.sigma(), ref.sigma(), rtol=1e-12)
    np.testing.assert_allclose(dropped.scale.location, ref.location, rtol=1e-12, atol=1e-15)
    # Kept (inf: the behaviour before), the replay's widened scale still shows 1500 ticks later.
    assert kept.scale.sigma()[0] > 1.02 * ref.sigma()[0]
    assert abs(dropped.scale.sigma()[0] - 0.7) < 0.05


def test_without_held_slots_nothing_is_handed_over() -> None:
    s = DetectSettings(history_held_drop_after_steps=60.0)
    sc = ResidualScorer.from_settings(1, LEVELS, np.array([0.01]), s)
    rng = np.random.default_rng(3)
    for t, v in enumerate((10.0 + rng.normal(0.0, SIGMA, 500)).tolist()):
        sc.score(_batch(t, v, False), np.ones(1, bool), np.array([DEADBAND]))
    sc.history_replayed()
    assert sc._handover_steps[0] == 0.0


def test_a_version_1_state_restores_with_no_hand_over_pending() -> None:
    tag = TagSettings(name="a.t", asset="a", node_id="n1")
    st, _ = stage((tag,), history_held_drop_after_steps=60.0)
    st.process(_batch(0, 10.0, None))
    d = next(iter(st._groups.values())).detectors[0]
    assert isinstance(d, ResidualDetector)
    arrays, meta = unpack(d.state(), d.name, 2)
    assert any(k.startswith("live.") for k in arrays)
    v1 = {k: v for k, v in arrays.items() if not k.startswith("live.") and k.split(".")[-1] not in NEW_KEYS}
    d.scorer._handover_steps[:] = 5.0  # mid hand-over when an older daemon's state is restored
    d.restore(pack(d.name, 1, v1, meta))
    assert not d.scorer._handover_steps.any()


def _live_until_handed_over(sc: ResidualScorer, live: FloatArray) -> int:
    """Live ticks until the hand-over ends (the tick that ends it included); all of ``live`` if it never does."""
    for k, v in enumerate(live.tolist()):
        sc.score(_batch(3000 + k, v, None), np.ones(1, bool))
        if sc._handover_steps[0] == 0.0:
            return k + 1
    return len(live)


def test_keeping_the_location_replaces_only_the_spread() -> None:
    # Live residuals centred 0.5 spreads off the replay's, spread 0.7: the live ticks' own location is
    # ~0.5, the blended one (the replay's prior and every live tick) lies between.
    live = 10.0 + SIGMA * (0.5 + np.random.default_rng(4).normal(0.0, 0.7, 1500))
    kept = _replayed(math.inf)
    keep = _replayed(60.0)
    keep.history_held_drop_keeps_location = True
    full = _replayed(60.0)
    n = _live_until_handed_over(keep, live)
    assert n < len(live) and keep._handover_steps[0] == 0.0
    assert _live_until_handed_over(full, live) == n  # the same tick ends both
    _live(kept, live[:n])
    # The location and its learning rate are the blended ones, exactly (the never-dropped scorer's) ...
    assert keep.scale.location[0] == kept.scale.location[0]
    assert keep.scale.discounted[0] == kept.scale.discounted[0]
    assert 0.05 < keep.scale.location[0] < full.scale.location[0] - 0.05
    # ... the spread is the live ticks' about that location: their own spread widened by the shift.
    shift = full.scale.location[0] - keep.scale.location[0]
    np.testing.assert_allclose(keep.scale.square, full.scale.square + shift**2, rtol=1e-12)
    assert keep.scale.sigma()[0] > full.scale.sigma()[0]
    assert abs(keep.scale.sigma()[0] - kept.scale.sigma()[0]) > 0.02  # not the replay's widened scale


def test_keeping_the_location_is_read_from_the_settings() -> None:
    s = DetectSettings(history_held_drop_keeps_location=True)
    assert ResidualScorer.from_settings(1, LEVELS, np.array([0.01]), s).history_held_drop_keeps_location
    default = ResidualScorer.from_settings(1, LEVELS, np.array([0.01]), DetectSettings())
    assert not default.history_held_drop_keeps_location
