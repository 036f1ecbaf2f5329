"""Contextual novelty (detect/novelty.py, detectors/novelty.py) and the rest period (detect/rest.py), made-up data."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from sentinelle.detect.detectors.base import pack
from sentinelle.detect.detectors.novelty import NoveltyDetector
from sentinelle.detect.novelty import ContextNovelty
from sentinelle.detect.rest import Rest
from sentinelle.records import ForecastBatch
from sentinelle.settings import DetectSettings, TagSettings

from .detect_helpers import batch, stage
from .novelty_reference import ScalarNovelty


def _scores(n: ContextNovelty, xs: list[float] | np.ndarray) -> np.ndarray:
    one = np.ones(1, dtype=bool)
    return np.array([n.step(np.array([x]), one)[0] for x in xs])


def _novelty(**kw: object) -> ContextNovelty:
    args: dict[str, object] = dict(bins=4, orders=3, warmup_steps=20, max_contexts=1000)
    args.update(kw)
    return ContextNovelty(1, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("range_mode", ["expanding", "frozen"])
def test_a_repeating_pattern_scores_nothing_and_a_new_pattern_scores_once_then_rests(range_mode: str) -> None:
    n = _novelty(range_mode=range_mode)
    saw = [0.0, 1.0, 2.0, 3.0] * 50
    calm = _scores(n, saw)
    assert np.nanmax(calm[100:]) == 0.0
    novel = _scores(n, [3.0, 0.0, 3.0, 0.0, 3.0, 0.0])  # 3 → 3 and 3 → 0: never seen
    # An expanding range met 3 → 3 once while it grew (values 1 and 2 were its top cell then).
    assert novel[0] == (1.0 if range_mode == "frozen" else 2 / 3)
    rest = Rest(1, steps=10, level=0.5)
    published = [float(rest.apply(np.array([s]))[0]) for s in novel]
    assert published[0] == novel[0]
    assert published[1:] == [0.0] * 5  # still novel (orders 2, 3), but resting


def test_the_new_pattern_is_learned_and_stops_scoring() -> None:
    n = _novelty()
    _scores(n, [0.0, 1.0, 2.0, 3.0] * 50)
    after = _scores(n, [2.0, 0.0] * 30)  # 3 → 2, 2 → 0, 0 → 2: never seen
    assert after[0] > 0.5
    assert np.max(after[-10:]) == 0.0


def test_a_flat_start_scores_nothing_and_a_step_scores_then_settles() -> None:
    n = _novelty(orders=1)
    flat = _scores(n, [5.0] * 100)
    assert np.all(np.isnan(flat[:20]))
    assert np.nanmax(flat) == 0.0  # a flat tag: one cell, one context
    step = _scores(n, [8.0] * 10)
    assert step[0] == 1.0  # a cell never seen after the flat one
    assert step[1] == 1.0  # and never seen as a context
    assert np.max(step[2:]) == 0.0  # then the new level is a known context


def test_a_spike_in_a_noisy_periodic_signal_scores_high_and_the_noise_does_not() -> None:
    rng = np.random.default_rng(3)
    n = _novelty(bins=8, orders=2, warmup_steps=100)
    x = 10.0 * np.sin(np.arange(3000) * 2 * np.pi / 50) + rng.normal(0, 0.3, 3000)
    x[2500] += 40.0
    s = _scores(n, x)
    assert s[2500] == 1.0
    assert np.nanpercentile(s[1000:2500], 99) <= 0.5


def test_a_frozen_range_puts_new_extremes_in_outer_cells_and_keeps_old_contexts() -> None:
    n = _novelty(range_mode="frozen", orders=1)
    _scores(n, [0.0, 1.0, 2.0, 3.0] * 50)
    assert (n.cell(0, -5.0), n.cell(0, 100.0)) == (4, 5)  # below, above: the outer cells
    assert float(n.high[0]) == 3.0  # the range did not move
    assert _scores(n, [0.0, 1.0, 2.0, 3.0]).max() == 0.0


def test_nan_and_gated_rows_move_nothing() -> None:
    n = ContextNovelty(2, bins=4, orders=2, warmup_steps=5, max_contexts=100)
    for t in range(30):
        out = n.step(np.array([float(t % 4), np.nan]), np.array([True, True]))
    assert np.isnan(out[1]) and n.seen[1] == 0
    before = n.table[0].copy()
    out = n.step(np.array([99.0, 1.0]), np.array([False, True]))
    assert np.isnan(out[0]) and np.array_equal(n.table[0], before) and n.seen[0] == 30


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="cells"):
        _novelty(bins=1)
    with pytest.raises(ValueError, match="range_mode"):
        _novelty(range_mode="peek")
    with pytest.raises(ValueError, match="both"):
        _novelty(low=np.zeros(1))


def test_rest_mutes_after_a_firing_and_wakes_up() -> None:
    r = Rest(2, steps=3, level=0.5)
    seq = [[0.6, 0.1], [0.9, np.nan], [0.7, 0.6], [0.2, 0.7], [0.8, 0.9]]
    out = np.array([r.apply(np.array(s)) for s in seq])
    np.testing.assert_array_equal(out[:, 0], [0.6, 0.0, 0.0, 0.0, 0.8])
    np.testing.assert_array_equal(out[:, 1], [0.1, np.nan, 0.6, 0.0, 0.0])
    assert Rest(1, 0, 0.5).apply(np.array([0.9]))[0] == 0.9  # off


def test_the_stage_joins_novelty_to_the_published_score_and_rests_it() -> None:
    tags = [TagSettings(name="a.t", asset="a", node_id="ns=2;s=t", period_s=1.0)]
    st, _ = stage(
        tags,
        novelty_enabled=True,
        novelty_orders=2,
        novelty_range="frozen",
        score_rest_steps=50,
        score_rest_level=0.5,
    )
    published = []
    parts = []
    for k in range(700):
        v = float(k % 4) if k < 600 else float(3 * (k % 2))  # a sawtooth, then 0, 3, 0, 3 …: never seen
        st.process(batch(tags, float(k), [v], [v]))  # a perfect forecast: residuals never surprise
        assert st.last_tick is not None
        published.append(float(st.last_tick.score[0]))
        parts.append(float(dict(st.last_tick.parts)["contextual_novelty"][0]))
    g = next(iter(st._groups.values()))
    assert any(isinstance(d, NoveltyDetector) for d in g.detectors)
    assert max(published[300:600]) < 0.5
    onset = int(np.argmax(np.array(published[600:]) >= 0.5))
    assert published[600 + onset] == 1.0
    assert max(published[601 + onset : 650 + onset]) == 0.0  # resting
    assert parts[601 + onset] > 0.0  # though the detector still found something new (order 2)


def test_novelty_scores_by_default_and_opens_alerts_only_when_asked() -> None:
    s = DetectSettings()
    assert s.novelty_enabled and not s.novelty_opens_alerts
    tags = [TagSettings(name="a.t", asset="a", node_id="ns=2;s=t", period_s=1.0)]
    opened = {}
    for opens in (False, True):
        frozen = {"novelty_range": "frozen", "novelty_outer_cells": 8, "novelty_orders": 1}
        st, _ = stage(tags, novelty_opens_alerts=opens, score_rest_steps=0, **frozen)
        kinds, peak = [], 0.0
        for k in range(400):
            # A sawtooth, then a climb out of its range: a fresh outer cell every tick for a while.
            v = float(k % 4) if k < 300 else min(3.0 + 0.5 * (k - 299), 9.0)
            kinds += [e.kind for e in st.process(batch(tags, float(k), [v], [v]))]
            assert st.last_tick is not None
            peak = max(peak, float(dict(st.last_tick.parts)["contextual_novelty"][0]))
        assert peak == 1.0  # it scored either way
        opened[opens] = kinds.count("contextual_novelty")
    assert opened[False] == 0 and opened[True] >= 1


def test_a_stepped_range_moves_past_a_new_extreme_so_the_next_ones_do_not_move_it() -> None:
    n = _novelty(range_mode="stepped", range_step=0.5, orders=1)
    _scores(n, [0.0, 1.0, 2.0, 3.0] * 50)
    assert (float(n.low[0]), float(n.high[0])) == (0.0, 3.0)  # expanding during the warm-up
    _scores(n, [4.0])
    assert float(n.high[0]) == 4.0 + 0.5 * 3.0  # beyond the new extreme by half the old width
    _scores(n, [5.0])
    assert float(n.high[0]) == 5.5  # within the stepped range: nothing moved


def _hand_made(rows: int, ticks: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row a different tag: a sawtooth, a noisy sine with spikes and level steps, a walk, a flat line, gaps."""
    rng = np.random.default_rng(seed)
    t = np.arange(ticks)
    x = np.empty((ticks, rows))
    for r in range(rows):
        kind = r % 4
        if kind == 0:
            x[:, r] = (t % (3 + r)).astype(float)
        elif kind == 1:
            x[:, r] = 10 * np.sin(t * 2 * np.pi / (20 + r)) + rng.normal(0, 0.5, ticks)
            x[rng.random(ticks) < 0.01, r] += 60.0 * rng.choice([-1.0, 1.0])
            x[ticks // 2 :, r] += 25.0  # a level step past the range
        elif kind == 2:
            x[:, r] = np.cumsum(rng.normal(0, 1, ticks))
        else:
            x[:, r] = 4.0
    x[rng.random(x.shape) < 0.03] = np.nan
    learn = rng.random(x.shape) > 0.03  # gated now and then
    return x, learn


@pytest.mark.parametrize(
    "kw",
    [
        {"range_mode": "expanding", "orders": 1},
        {"range_mode": "expanding", "orders": 3, "bins": 5},
        {"range_mode": "frozen", "orders": 2},
        {"range_mode": "stepped", "orders": 1, "range_step": 0.5},
        {"range_mode": "stepped", "orders": 2, "range_step": 0.25, "max_contexts": 16},
    ],
)
def test_the_vectorised_detector_scores_exactly_as_the_scalar_reference(kw: dict[str, Any]) -> None:
    args: dict[str, Any] = {"bins": 8, "warmup_steps": 30, "max_contexts": 1000} | kw
    x, learn = _hand_made(8, 1500, seed=11)
    vec = ContextNovelty(8, **args)
    ref = ScalarNovelty(8, **args)
    got = np.array([vec.step(row, ok) for row, ok in zip(x, learn, strict=True)])
    want = np.array([ref.step(row, ok) for row, ok in zip(x, learn, strict=True)])
    np.testing.assert_array_equal(got, want)  # bit for bit, NaN where NaN
    assert np.nanmax(got) > 0.5 and np.isfinite(got).sum() > 5000  # the sequences did test something
    np.testing.assert_array_equal(vec.low, ref.low)
    np.testing.assert_array_equal(vec.count, [len(m) for m in ref.memory])


def test_a_given_range_scores_as_the_scalar_reference() -> None:
    x, learn = _hand_made(4, 800, seed=5)
    given = {"low": np.nanmin(x, axis=0), "high": np.nanmax(x, axis=0)}
    vec = ContextNovelty(4, bins=8, orders=2, warmup_steps=10, max_contexts=100, **given)
    ref = ScalarNovelty(4, bins=8, orders=2, warmup_steps=10, max_contexts=100, **given)
    got = np.array([vec.step(row, ok) for row, ok in zip(x, learn, strict=True)])
    want = np.array([ref.step(row, ok) for row, ok in zip(x, learn, strict=True)])
    np.testing.assert_array_equal(got, want)


def test_outer_cells_keep_the_frozen_width_and_the_farthest_is_open() -> None:
    n = _novelty(range_mode="frozen", orders=1, bins=4, outer_cells=3)
    _scores(n, [0.0, 1.0, 2.0, 4.0] * 10)  # range 0 … 4: cells of width 1
    cells = [n.cell(0, v) for v in (-0.5, -1.5, -2.5, -50.0, 4.5, 5.5, 6.5, 50.0, 3.99)]
    assert cells == [4, 6, 8, 8, 5, 7, 9, 9, 3]
    assert _scores(n, [5.5])[0] == 1.0  # a cell never seen
    assert _scores(n, [0.0, 5.5, 0.0, 5.5])[-1] == 0.0  # … until learned


def test_a_requantised_range_carries_what_it_learned_to_the_new_cells() -> None:
    kw: dict[str, Any] = {"range_mode": "stepped", "orders": 1, "bins": 4, "range_step": 1.0}
    moved, kept = _novelty(**kw, requantise=True), _novelty(**kw)
    saw = [0.0, 1.0, 2.0, 3.0] * 30
    for n in (moved, kept):
        _scores(n, saw)
        _scores(n, [7.0])  # a new extreme: the range becomes 0 … 10, cells of width 2.5 (were 0.75)
    assert (float(moved.low[0]), float(moved.high[0])) == (0.0, 10.0)
    # Old cells 0, 1, 2 (centres 0.375, 1.125, 1.875) became cell 0, old cell 3 (2.625) cell 1: four contexts
    # merged into two, 0 → {0, 1} and 1 → {0, the extreme's cell 2}.
    assert moved.count[0] == 2 and kept.count[0] == 4
    assert moved.table[0, :2].tolist() == [0b11, 0b101]
    after = [0.0, 1.0, 2.0, 3.0] * 3  # now cells 0 0 0 1 …; its first value follows the extreme (new)
    assert np.max(_scores(moved, after)[1:]) == 0.0
    assert np.max(_scores(kept, after)[1:]) > 0.0  # kept numbers: cell 0 → 0 was never seen


def test_a_flat_warm_up_then_requantised_keeps_the_flat_cell() -> None:
    n = _novelty(range_mode="expanding", orders=1, bins=4, requantise=True)
    _scores(n, [5.0] * 30)
    first = _scores(n, [9.0])[0]  # the range grows: 5 … 9, the flat cell (the old cell 0) is cell 0
    assert first == 1.0
    assert n.history[0, -1] == 3  # the new value's cell
    assert _scores(n, [5.0])[0] == 1.0  # 9 → 5: never seen (9 was new)
    assert _scores(n, [5.0])[0] == 0.0  # 5 → 5: learned while flat, carried over


def test_too_many_contexts_for_the_table_are_refused() -> None:
    with pytest.raises(ValueError, match="fewer bins or orders"):
        _novelty(bins=30, orders=3)
    with pytest.raises(ValueError, match="outer"):
        _novelty(bins=60, outer_cells=2)


def test_a_configured_range_per_row_is_used_as_given_and_other_rows_learn_theirs() -> None:
    x, learn = _hand_made(4, 800, seed=7)
    low = np.array([np.nanmin(x[:, 0]) - 1.0, np.nan, -20.0, np.nan])
    high = np.array([np.nanmax(x[:, 0]) + 1.0, np.nan, 20.0, np.nan])
    kw: dict[str, Any] = {"bins": 8, "orders": 1, "warmup_steps": 30, "max_contexts": 100}
    kw |= {"range_mode": "stepped", "range_step": 0.25, "requantise": True}
    mixed = ContextNovelty(4, low=low, high=high, **kw)
    given = ContextNovelty(4, low=np.nan_to_num(low, nan=0.0), high=np.nan_to_num(high, nan=1.0), **kw)
    online = ContextNovelty(4, **kw)
    got = np.array([mixed.step(r, ok) for r, ok in zip(x, learn, strict=True)])
    want_given = np.array([given.step(r, ok) for r, ok in zip(x, learn, strict=True)])
    want_online = np.array([online.step(r, ok) for r, ok in zip(x, learn, strict=True)])
    np.testing.assert_array_equal(got[:, [0, 2]], want_given[:, [0, 2]])
    np.testing.assert_array_equal(got[:, [1, 3]], want_online[:, [1, 3]])
    assert (float(mixed.low[2]), float(mixed.high[2])) == (-20.0, 20.0)  # the configured range never moved
    with pytest.raises(ValueError, match="low not above high"):
        ContextNovelty(1, low=np.array([2.0]), high=np.array([1.0]), **kw)


def test_a_tag_s_engineering_range_reaches_the_detector_and_survives_a_restore() -> None:
    tags = [
        TagSettings(name="a.t", asset="a", node_id="ns=2;s=t", period_s=1.0, eu_low=0.0, eu_high=100.0),
        TagSettings(name="a.u", asset="a", node_id="ns=2;s=u", period_s=1.0),
    ]
    stages = [stage(tags)[0], stage([tags[0].model_copy(update={"eu_high": 50.0}), tags[1]])[0]]
    dets = []
    for st in stages:
        for k in range(50):
            st.process(batch(tags, float(k), [float(k % 4), float(k % 4)], [float(k % 4), float(k % 4)]))
        g = next(iter(st._groups.values()))
        dets.append(next(d for d in g.detectors if isinstance(d, NoveltyDetector)))
    det = dets[0]
    assert (float(det.novelty.low[0]), float(det.novelty.high[0])) == (0.0, 100.0)
    assert (float(det.novelty.low[1]), float(det.novelty.high[1])) == (0.0, 3.0)  # learned
    dets[1].restore(det.state())  # saved with 0 … 100, now configured 0 … 50: the configuration wins
    assert (float(dets[1].novelty.low[0]), float(dets[1].novelty.high[0])) == (0.0, 50.0)
    assert float(dets[1].novelty.high[1]) == 3.0  # a learned range comes from the state
    with pytest.raises(ValueError, match="go together"):
        TagSettings(name="a.v", asset="a", node_id="ns=2;s=v", eu_low=1.0)


def test_a_state_saved_by_the_dict_based_detector_restores_and_scores_on_alike() -> None:
    tags = [TagSettings(name=f"a.t{i}", asset="a", node_id=f"ns=2;s=t{i}", period_s=1.0) for i in range(3)]
    kw: dict[str, Any] = {"bins": 8, "orders": 2, "warmup_steps": 30, "max_contexts": 10_000}
    kw |= {"range_mode": "stepped", "range_step": 0.5}
    x, learn = _hand_made(3, 900, seed=9)
    ref = ScalarNovelty(3, **kw)
    for row, ok in zip(x[:600], learn[:600], strict=True):
        ref.step(row, ok)
    # The blob as the dict-based detector's state() wrote it (version 1).
    history = np.full((3, 2), -1, dtype=np.int64)
    for r, h in enumerate(ref.history):
        history[r, 2 - len(h) :] = h
    arrays = {"low": ref.low, "high": ref.high, "seen": ref.seen, "history": history}
    arrays |= {
        "sizes": np.array([len(m) for m in ref.memory], dtype=np.int64),
        "keys": np.array([k for m in ref.memory for k in m], dtype=np.int64),
        "masks": np.array([v for m in ref.memory for v in m.values()], dtype=np.int64),
    }
    blob = pack("contextual_novelty", 1, arrays, {"tags": [t.name for t in tags], "orders": 2})
    settings: dict[str, Any] = {"novelty_orders": 2, "novelty_warmup_steps": 30, "novelty_range_step": 0.5}
    st, _ = stage(tags, novelty_bins=8, novelty_requantise=False, **settings)
    st.process(batch(tags, 0.0, [1.0] * 3, [1.0] * 3))  # the stage builds its detectors on its first tick
    det = next(d for d in next(iter(st._groups.values())).detectors if isinstance(d, NoveltyDetector))
    assert det.novelty.range_step == 0.5 and det.novelty.range_mode == "stepped"
    det.restore(blob)
    got = np.array([det.novelty.step(row, ok) for row, ok in zip(x[600:], learn[600:], strict=True)])
    want = np.array([ref.step(row, ok) for row, ok in zip(x[600:], learn[600:], strict=True)])
    np.testing.assert_array_equal(got, want)
    assert np.nanmax(want) > 0.0


def test_a_range_given_after_learning_keeps_what_was_learned_and_never_moves_again() -> None:
    n = _novelty(range_mode="expanding", orders=2, bins=4, warmup_steps=8)
    saw = [0.0, 1.0, 2.0, 3.0] * 30
    assert np.nanmax(_scores(n, saw)[40:]) == 0.0
    # Learned 0 … 3 (cells 0.75 wide); read -0.5 … 3.5 (1 wide): each value keeps its cell, and so do the old cells.
    n.give_range(np.array([0], dtype=np.int64), np.array([-0.5]), np.array([3.5]))
    assert bool(n.fixed[0]) and (float(n.low[0]), float(n.high[0])) == (-0.5, 3.5)
    assert np.nanmax(_scores(n, saw[:12])) == 0.0  # what was learned moved with the range: the pattern is known
    _scores(n, [10.0])
    assert (float(n.low[0]), float(n.high[0])) == (-0.5, 3.5)  # a new extreme lands in an outer cell
    fresh = _novelty(range_mode="expanding", orders=2, bins=4, warmup_steps=8)
    fresh.give_range(np.array([0], dtype=np.int64), np.array([0.0]), np.array([4.0]))  # nothing learned yet
    assert bool(fresh.fixed[0]) and int(fresh.count[0]) == 0
    with pytest.raises(ValueError, match="low below high"):
        n.give_range(np.array([0], dtype=np.int64), np.array([1.0]), np.array([1.0]))


def _with_read_ranges(fb: ForecastBatch, low: list[float], high: list[float]) -> ForecastBatch:
    window = dataclasses.replace(fb.window, eu_low=np.array(low), eu_high=np.array(high))
    return dataclasses.replace(fb, window=window)


def test_a_range_read_from_the_source_reaches_the_detector_unless_one_is_configured() -> None:
    tags = [
        TagSettings(name="a.t", asset="a", node_id="ns=2;s=t", period_s=1.0, eu_low=0.0, eu_high=100.0),
        TagSettings(name="a.u", asset="a", node_id="ns=2;s=u", period_s=1.0),
        TagSettings(name="a.v", asset="a", node_id="ns=2;s=v", period_s=1.0),
    ]
    st, _ = stage(tags)
    low, high = [5.0, 0.0, np.nan], [6.0, 10.0, np.nan]  # t: configured wins; u: read; v: none read
    for k in range(30):
        v = [float(k % 4)] * 3
        st.process(
            _with_read_ranges(batch(tags, float(k), v, v), low, high) if k >= 10 else batch(tags, float(k), v, v)
        )
    det = next(d for d in next(iter(st._groups.values())).detectors if isinstance(d, NoveltyDetector))
    nv = det.novelty
    assert (float(nv.low[0]), float(nv.high[0])) == (0.0, 100.0)
    assert (float(nv.low[1]), float(nv.high[1])) == (0.0, 10.0) and bool(nv.fixed[1])
    assert (float(nv.low[2]), float(nv.high[2])) == (0.0, 3.0) and not bool(nv.fixed[2])  # learned online
    # A restart: the state restores on the learned range, and the next tick's read range is given again.
    st2, _ = stage(tags)
    st2.process(batch(tags, 0.0, [1.0] * 3, [1.0] * 3))
    det2 = next(d for d in next(iter(st2._groups.values())).detectors if isinstance(d, NoveltyDetector))
    det2.restore(det.state())
    assert not bool(det2.novelty.fixed[1])
    st2.process(_with_read_ranges(batch(tags, 31.0, [1.0] * 3, [1.0] * 3), low, high))
    assert (float(det2.novelty.low[1]), float(det2.novelty.high[1])) == (0.0, 10.0) and bool(det2.novelty.fixed[1])
