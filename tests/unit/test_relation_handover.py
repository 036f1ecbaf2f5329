"""The end of a compressed replay's hand-over for learned relations (``detect.history_held_relation_drop_after_steps``).

After the replay of a deadband-compressed export, a relation keeps the fit and spread it learned on held
values as a prior worth ``history_held_weight_steps / held share`` ticks.  A held target against held inputs
carries both deadbands' error, so that spread is wider than the live one and, only fading, stays wider for
days (seed 1586: 1.4 % a day later, a pump degradation one period later).  With a finite drop-after the
spread is replaced by the live ticks' own once that many (/ held share) were learned.
"""

from __future__ import annotations

import math

import numpy as np
from prometheus_client import CollectorRegistry

from sentinelle.detect.detectors.base import pack, unpack
from sentinelle.detect.detectors.relations import RelationDetector
from sentinelle.detect.relations import RelationCheck
from sentinelle.detect.stage import DetectStage
from sentinelle.metrics import Metrics
from sentinelle.records import FloatArray, ForecastBatch, WindowBatch
from sentinelle.settings import AssetDetectSettings, DetectSettings, RelationSettings, TagSettings

from .deadband_helpers import compress

LEVELS = (0.1, 0.5, 0.9)
Z90 = 1.2815515655446004
NOISE = 0.05
DEADBAND = 0.25
NAMES = ("a.x", "a.y")
T0 = 1_767_225_600.0
REPLAY = 3000
LIVE = 1500


def _plant(seed: int, n: int) -> tuple[FloatArray, FloatArray]:
    """y = 2x + noise, x a slow random walk around 10 (a load that moves past the deadband now and then)."""
    rng = np.random.default_rng(seed)
    x = 10.0 + np.cumsum(rng.normal(0.0, 0.05, n))
    return x, 2.0 * x + rng.normal(0.0, NOISE, n)


def _check(**kw: object) -> RelationCheck:
    base: dict[str, object] = dict(
        fit_intercept=False, z_threshold=6.0, learn_below_z=4.0, warmup_steps=50, forget=1.0, min_spread=0.001
    )
    base.update(kw)
    return RelationCheck(1, **base)  # type: ignore[arg-type]


def _feed(rel: RelationCheck, x: FloatArray, y: FloatArray) -> None:
    for xi, yi in zip(x.tolist(), y.tolist(), strict=True):
        rel.step(yi, np.array([xi]), learn=True)


def _replayed(drop_after: float) -> RelationCheck:
    """A check after a replay of REPLAY compressed ticks, discounted to 60 ticks as the detector does."""
    rel = _check()
    x, y = _plant(1, REPLAY)
    (hx, _), (hy, _) = compress(x, DEADBAND), compress(y, DEADBAND)
    _feed(rel, hx, hy)
    rel.discount(60.0)
    if math.isfinite(drop_after):
        rel.hand_over_spread(drop_after)
    return rel


def test_after_the_hand_over_the_spread_is_the_live_ticks_own() -> None:
    live_x, live_y = _plant(2, LIVE)
    cold = _check()
    _feed(cold, live_x, live_y)
    kept, dropped = _replayed(math.inf), _replayed(60.0)
    assert kept.spread > 1.5 * NOISE  # the replay taught both deadbands' error
    _feed(kept, live_x, live_y)
    _feed(dropped, live_x, live_y)
    assert dropped.handover_steps == 0.0 and dropped.live_learned == 60
    # The reference: the root mean square of the live residuals against the fit that scored them.
    assert abs(dropped.spread / cold.spread - 1.0) < 0.02
    assert kept.spread > 1.03 * cold.spread  # fading only (60 of 1560 ticks), the replay still shows
    np.testing.assert_allclose(dropped.weights, kept.weights, rtol=1e-12)  # the fit is kept


def test_until_the_hand_over_the_replayed_spread_scores() -> None:
    rel = _replayed(100.0)
    before = rel.spread
    live_x, live_y = _plant(3, 99)
    _feed(rel, live_x, live_y)
    assert rel.handover_steps == 100.0 and rel.live_learned == 99
    assert rel.spread < before  # the live ticks weigh in as they learn (the discounted prior fades) ...
    assert rel.spread > 1.2 * NOISE  # ... but the replay's wide spread still counts
    x, y = _plant(4, 1)
    _feed(rel, x, y)
    assert rel.handover_steps == 0.0 and rel.spread < 1.2 * NOISE


def _stage(drop_after: float) -> DetectStage:
    tags = tuple(TagSettings(name=n, asset="a", node_id=f"ns=2;s={n}", period_s=60.0, min_spread=0.001) for n in NAMES)
    relation = RelationSettings(target="a.y", inputs=("a.x",))
    s = DetectSettings(
        assets=(AssetDetectSettings(name="a", relations=(relation,)),),
        history_held_relation_drop_after_steps=drop_after,
    )
    return DetectStage(tags, s, Metrics(CollectorRegistry()))


def _detector(st: DetectStage) -> RelationDetector:
    """The stage's relation detector (built with the tag group, at the first batch)."""
    return next(d for g in st._groups.values() for d in g.detectors if isinstance(d, RelationDetector))


def _batch(t: int, xy: tuple[float, float], held: np.ndarray | None) -> ForecastBatch:
    w = WindowBatch(ts=T0 + 60.0 * t, period_s=60.0, tags=NAMES, assets=("a", "a"), values=np.array(xy),
                    contexts=np.array([[xy[0]] * 16, [xy[1]] * 16]), held=held)  # fmt: skip
    q = np.array([[xy[0] - Z90, xy[0], xy[0] + Z90], [xy[1] - Z90, xy[1], xy[1] + Z90]])
    return ForecastBatch(window=w, levels=LEVELS, quantiles=np.repeat(q[:, :, None], 2, axis=2), forecaster="f")


def _run(drop_after: float, history: bool, live: int = LIVE) -> RelationDetector:
    st = _stage(drop_after)
    t = 0
    if history:
        x, y = _plant(1, REPLAY)
        (hx, mx), (hy, my) = compress(x, DEADBAND), compress(y, DEADBAND)
        with st.replaying_history({"a.x": DEADBAND, "a.y": DEADBAND}):
            for k in range(REPLAY):
                st.process(_batch(t, (float(hx[k]), float(hy[k])), np.array([mx[k], my[k]])))
                t += 1
    x, y = _plant(2, live)
    for k in range(live):
        st.process(_batch(t, (float(x[k]), float(y[k])), None))
        t += 1
    return _detector(st)


def test_the_setting_hands_the_relation_over_after_the_replay_in_the_stage() -> None:
    cold = _run(math.inf, history=False).relations[0].check
    kept = _run(math.inf, history=True).relations[0].check
    dropped = _run(60.0, history=True).relations[0].check
    assert kept.handover_steps == 0.0 and kept.live_learned == 0  # inf: never started
    assert dropped.handover_steps == 0.0 and dropped.live_learned >= 60  # 60 / held share, then done
    assert kept.spread > 1.03 * cold.spread
    assert abs(dropped.spread / cold.spread - 1.0) < 0.02


def _fresh(drop_after: float) -> RelationDetector:
    """A relation detector that has seen one live tick (nothing learned yet)."""
    st = _stage(drop_after)
    st.process(_batch(0, (10.0, 20.0), None))
    return _detector(st)


def test_the_state_keeps_a_hand_over_in_flight_and_a_version_1_state_has_none() -> None:
    det = _run(200.0, history=True, live=30)
    check = det.relations[0].check
    assert check.handover_steps > 0 and check.live_learned == 30
    blob = det.state()
    fresh = _fresh(200.0)
    fresh.restore(blob)
    restored = fresh.relations[0].check
    assert (restored.handover_steps, restored.live_learned) == (check.handover_steps, 30)
    assert restored._live_square_sum == check._live_square_sum and restored.spread == check.spread
    arrays, meta = unpack(blob, det.name, 2)
    v1 = {k: v for k, v in arrays.items() if not k.endswith("_handover")}
    older = _fresh(200.0)
    older.relations[0].check.handover_steps = 5.0  # mid hand-over when an older daemon's state is restored
    older.restore(pack(det.name, 1, v1, meta))
    assert older.relations[0].check.handover_steps == 0.0
    assert older.relations[0].check.spread == check.spread
