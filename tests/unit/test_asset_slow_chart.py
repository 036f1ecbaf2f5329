"""The slow second chart (``detect.asset_slow_chart_*``): a lasting shift of 1.5 σ that the fast chart's limit
lets pass is flagged; clipping its input bounds how long it stays up after a large fault; with a hold it opens but
does not hold a process's new level after a fault, and open-only it does not begin an excursion while the alert is
open; off by default; its state travels with the detector's snapshot."""

from __future__ import annotations

import math

import numpy as np
from prometheus_client import CollectorRegistry

from sentinelle.detect.asset import AssetT2Q
from sentinelle.detect.detectors import BuildContext
from sentinelle.detect.detectors.asset_t2q import AssetDetector
from sentinelle.metrics import Metrics
from sentinelle.settings import DetectSettings, TagSettings

from .detect_helpers import LEVELS, feed, noisy, stage

WARMUP = 400


def _warmed(
    slow_alpha: float = 0.0,
    slow_clip: float = math.inf,
    seed: int = 0,
    slow_hold: int | None = None,
    slow_open_only: bool = False,
) -> AssetT2Q:
    """Two independent white-noise tags (σ 1), all components in T², a fast chart (0.3 × 2.5) as SKAB's."""
    det = AssetT2Q(
        2,
        np.zeros(2),
        WARMUP,
        1.0,
        0.99,
        3.0,
        chart_alpha=0.3,
        chart_factor=2.5,
        slow_alpha=slow_alpha,
        slow_factor=2.5,
        slow_clip=slow_clip,
        slow_hold=slow_hold,
        slow_open_only=slow_open_only,
    )
    rng = np.random.default_rng(seed)
    for _ in range(WARMUP):
        det.step(rng.normal(size=2), learn=True)
    return det


def _flags(det: AssetT2Q, shift: float, ticks: int, seed: int, alert_open: bool = False) -> list[bool]:
    rng = np.random.default_rng(seed)
    x = np.array([shift, 0.0])
    return [bool(det.assess(x + rng.normal(size=2), alert_open=alert_open)[1]) for _ in range(ticks)]


def test_a_lasting_shift_of_one_and_a_half_sigma_passes_the_fast_chart_and_is_found_by_the_slow_one() -> None:
    """A valve partly closed: the flow 1.5 σ low for 300 ticks.  The fast chart's limit (2.5 × its warm-up
    99 % quantile, about 2.7 σ) lets it pass most ticks; the slow chart (weight 0.05) averages the noise away
    and holds it."""
    fast = _flags(_warmed(), -1.5, 300, seed=1)
    both = _flags(_warmed(slow_alpha=0.05), -1.5, 300, seed=1)
    assert np.mean(fast[60:]) < 0.3, np.mean(fast[60:])
    assert np.mean(both[60:]) > 0.97, np.mean(both[60:])


def test_the_slow_chart_is_quiet_on_normal_data() -> None:
    det = _warmed(slow_alpha=0.05, seed=2)
    assert np.isfinite(det._slow_limit).all() and (det._slow_limit < det._chart_limit).all()
    assert np.mean(_flags(det, 0.0, 3000, seed=3)) < 0.02


def test_clipping_bounds_how_long_the_slow_chart_stays_up_after_a_large_fault() -> None:
    """A 20 σ fault for 100 ticks, then normal: unclipped, the slow chart needs about ln(20/limit)/alpha ticks to
    come back under its limit; clipped at 3 σ, about ln(3/limit)/alpha."""

    def back_after(clip: float) -> int:
        det = _warmed(slow_alpha=0.05, slow_clip=clip, seed=4)
        _flags(det, 20.0, 100, seed=5)
        after = _flags(det, 0.0, 300, seed=6)
        return next(i for i in range(len(after)) if not any(after[i : i + 10]))

    unclipped, clipped = back_after(math.inf), back_after(3.0)
    assert clipped < 30 < 40 < unclipped, (clipped, unclipped)  # about 20 against about 50 (limit ≈ 1.1 σ)


# A fault as on SKAB's valve1: the flow 1.5 σ low for 40 ticks (the slow chart's), 8 σ low for 100 (the fast
# chart's), then the process comes back 1.2 σ low for good (its new level: under the fast chart's limit, over the
# slow one's).
FAULT_THEN_OFFSET = [(-1.5, 40), (-8.0, 100), (-1.2, 300)]


def _run(det: AssetT2Q, segments: list[tuple[float, int]], seed: int = 9) -> list[bool]:
    return [f for k, (shift, ticks) in enumerate(segments) for f in _flags(det, shift, ticks, seed=seed + k)]


def test_without_a_hold_the_slow_chart_holds_the_new_level_after_a_fault_for_good() -> None:
    flags = _run(_warmed(slow_alpha=0.05, slow_clip=3.0), FAULT_THEN_OFFSET)
    assert np.mean(flags[200:]) > 0.9


def test_with_a_hold_the_slow_chart_opens_early_but_does_not_hold_the_new_level() -> None:
    fast = _run(_warmed(), FAULT_THEN_OFFSET)
    det = _warmed(slow_alpha=0.05, slow_clip=3.0, slow_hold=5)
    held = _run(det, FAULT_THEN_OFFSET)
    opened = next(i for i, f in enumerate(held) if f)
    assert opened < 40 <= next(i for i, f in enumerate(fast) if f)  # found on the 1.5 σ step, before the drop
    last = max(i for i, f in enumerate(held[:300]) if f)
    assert 140 <= last < 140 + 5 + 10  # the fast chart's fault, then the hold (and the fast chart's decay)
    assert not any(held[160:]) and det.last_slow.max() > 1.0  # over its limit, spent: it does not count


def test_a_small_fault_the_fast_statistics_never_see_is_held_for_as_long_as_it_lasts() -> None:
    det = _warmed(slow_alpha=0.05, slow_clip=3.0, slow_hold=5, seed=10)
    flags = _run(det, [(0.0, 50), (-1.5, 300), (0.0, 100)], seed=11)
    assert np.mean(flags[100:350]) > 0.97 and not any(flags[380:])


def test_a_spent_slow_chart_counts_again_after_it_came_back_inside_its_limit() -> None:
    det = _warmed(slow_alpha=0.05, slow_clip=3.0, slow_hold=5, seed=12)
    flags = _run(det, [(-8.0, 60), (-1.5, 100), (0.0, 100), (-1.5, 200)], seed=13)
    assert not any(flags[80:160])  # the new level after the fault: spent
    assert np.mean(flags[300:]) > 0.95  # a new small shift after a return inside the limit: counted


def test_open_only_an_excursion_begun_while_the_alert_is_open_does_not_count() -> None:
    """The fault's end: the flow back to normal for 40 ticks (the slow chart back inside its limit), then 1.5 σ low
    while the alert is still open (as sent: within its re-arm time), then for good.  The excursion that begins
    there would hold the alert as its own; open-only, it is spent from its start."""

    def after(open_only: bool) -> list[bool]:
        det = _warmed(slow_alpha=0.05, slow_clip=3.0, slow_hold=5, slow_open_only=open_only, seed=14)
        _flags(det, -8.0, 100, seed=15, alert_open=True)
        _flags(det, 0.0, 40, seed=16, alert_open=True)
        assert det.slow_phase == 0  # back inside its limit
        return _flags(det, -1.5, 60, seed=17, alert_open=True) + _flags(det, -1.5, 200, seed=18)

    # (open-only: what flags is the fast chart's rare touch of its limit on the 1.5 σ shift)
    assert np.mean(after(False)[100:]) > 0.95 and np.mean(after(True)[100:]) < 0.05


def test_open_only_an_excursion_begun_with_the_alert_closed_opens_it() -> None:
    det = _warmed(slow_alpha=0.05, slow_clip=3.0, slow_hold=5, slow_open_only=True, seed=10)
    flags = _run(det, [(0.0, 50), (-1.5, 300), (0.0, 100)], seed=11)
    assert np.mean(flags[100:350]) > 0.97 and not any(flags[380:])


def test_contributions_name_the_tag_whose_slow_chart_decides() -> None:
    det = _warmed(slow_alpha=0.05, seed=7)
    _flags(det, -1.5, 200, seed=8)
    det.step(np.array([-1.5, 0.5]), learn=False)
    assert det.last_slow[0] > 1.0 and np.argmax(det.contributions) == 0


def test_off_by_default_and_from_settings() -> None:
    s = DetectSettings()
    assert s.asset_slow_chart_alpha == 0.0
    plain = AssetT2Q.from_settings(np.zeros(2), s)
    assert plain.slow_alpha == 0.0
    tuned = AssetT2Q.from_settings(
        np.zeros(2), DetectSettings(asset_chart_factor=2.5, asset_slow_chart_alpha=0.05, asset_slow_chart_clip=3.0)
    )
    assert (tuned.slow_alpha, tuned.slow_factor, tuned.slow_clip, tuned.slow_hold) == (0.05, 2.5, 3.0, None)
    assert (
        not tuned.slow_open_only
        and AssetT2Q.from_settings(
            np.zeros(2), DetectSettings(asset_slow_chart_hold_steps=5, asset_slow_chart_open_only=True)
        ).slow_open_only
    )
    own = AssetT2Q.from_settings(np.zeros(2), DetectSettings(asset_slow_chart_alpha=0.05, asset_slow_chart_factor=4))
    assert own.slow_factor == 4.0 and own.slow_clip == math.inf


TAGS = (
    TagSettings(name="a.x", asset="a", node_id="n1", min_spread=0.01),
    TagSettings(name="a.y", asset="a", node_id="n2", min_spread=0.01),
)
NOMINAL = [1.0, 2.0]


def test_a_snapshot_carries_the_slow_chart_and_an_old_one_without_it_restores() -> None:
    st, _ = stage(
        TAGS,
        asset_enabled=True,
        asset_warmup_steps=150,
        score_threshold=0.99,
        asset_slow_chart_alpha=0.05,
        asset_slow_chart_hold_steps=5,
    )
    with st.replaying_history():
        feed(st, TAGS, noisy(NOMINAL, 200, noise=0.05, seed=1), NOMINAL)
    g = next(iter(st._groups.values()))
    det = next(d for d in g.detectors if d.name == "asset_state")
    assert isinstance(det, AssetDetector) and np.isfinite(det.models[0]._slow_limit).all()
    ctx = BuildContext(g.layout, st.settings, LEVELS, Metrics(CollectorRegistry()))
    clone = AssetDetector(ctx)
    clone.restore(det.state())
    for name in ("_slow", "_slow_limit", "last_slow"):
        assert np.array_equal(getattr(clone.models[0], name), getattr(det.models[0], name), equal_nan=True), name
    det.models[0].slow_phase, det.models[0].slow_run = 2, 4  # a shared excursion, the others normal 4 ticks
    det._since_open[:] = 7
    clone.restore(det.state())
    assert (clone.models[0].slow_phase, clone.models[0].slow_run) == (2, 4) and clone._since_open.tolist() == [7]
    # A snapshot from before the slow chart existed: the model restores without one (limit inf: never flags).
    old = AssetDetector(ctx)
    old_blob = _without_slow(det.state())
    old.restore(old_blob)
    assert (old.models[0]._slow_limit == math.inf).all()


def _without_slow(blob: bytes) -> bytes:
    from sentinelle.detect.detectors.base import pack, unpack

    arrays, meta = unpack(blob, "asset_state", 1)
    gone = ("._slow", "._slow_limit", ".last_slow", ".slow_state")
    kept = {k: v for k, v in arrays.items() if not k.endswith(gone) and k != "since_open"}
    return pack("asset_state", 1, kept, meta)
