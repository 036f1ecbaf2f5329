"""The resampling and sample-check rules of windows.py, on hand-made sample sequences."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from sentinelle.metrics import Metrics
from sentinelle.records import EngineeringRange, Quality, Sample
from sentinelle.settings import TagSettings, WindowSettings
from sentinelle.windows import Windows, slot_of


def _setup(context: int = 8, lateness: float = 0.0, hold: float = 3.0) -> tuple[Windows, Metrics]:
    m = Metrics(CollectorRegistry())
    tags = [
        TagSettings(name="a", asset="x", node_id="ns=2;s=a"),
        TagSettings(name="b", asset="x", node_id="ns=2;s=b"),
    ]
    w = Windows(tags, WindowSettings(context_steps=context, allowed_lateness_s=lateness, max_hold_s=hold), m)
    return w, m


def _dropped(m: Metrics, reason: str) -> float:
    v = m.registry.get_sample_value("sentinelle_samples_dropped_total", {"reason": reason})
    return v or 0.0


def test_slot_boundaries_are_right_closed() -> None:
    assert slot_of(10.0, 1.0) == 10
    assert slot_of(10.000001, 1.0) == 11
    assert slot_of(9.5, 0.5) == 19


def test_last_value_per_slot_and_hold() -> None:
    w, _ = _setup()
    out = w.ingest([Sample("a", 100.0, 1.0), Sample("b", 100.0, 10.0)])
    out += w.ingest([Sample("a", 100.5, 2.0), Sample("a", 101.0, 3.0)])  # slot 101: last value 3
    out += w.ingest([Sample("a", 102.0, 4.0)])  # b sends nothing: holds 10.0
    closed = {b.ts: b for b in out}
    assert closed[100.0].values.tolist() == [1.0, 10.0]
    assert closed[101.0].values.tolist() == [3.0, 10.0]
    assert closed[101.0].contexts[0, -2:].tolist() == [1.0, 3.0]
    assert closed[101.0].contexts.shape == (2, 8)
    assert not closed[101.0].contexts.flags.writeable


def test_stale_value_becomes_gap() -> None:
    w, m = _setup(hold=2.0)
    out = []
    out += w.ingest([Sample("a", 100.0, 1.0), Sample("b", 100.0, 5.0)])
    for t in range(101, 106):
        out += w.ingest([Sample("a", float(t), float(t))])
    by_ts = {b.ts: b.values[1] for b in out}
    assert by_ts[101.0] == 5.0 and by_ts[102.0] == 5.0
    assert math.isnan(by_ts[103.0]) and math.isnan(by_ts[104.0])
    assert (m.registry.get_sample_value("sentinelle_window_gap_slots_total") or 0) >= 2


@pytest.mark.parametrize(
    ("sample", "reason"),
    [
        (Sample("a", 100.5, float("nan")), "non_finite"),
        (Sample("a", 100.5, float("inf")), "non_finite"),
        (Sample("a", 100.5, "12.5"), "non_numeric"),
        (Sample("a", 100.5, None), "non_numeric"),
        (Sample("a", 100.5, 1.0, Quality.BAD), "bad_quality"),
        (Sample("a", 100.5, 1.0, Quality.UNCERTAIN), "uncertain_quality"),
        (Sample("zzz", 100.5, 1.0), "unknown_tag"),
        (Sample("a", 100.0, 7.0), "duplicate"),
        (Sample("a", 99.5, 7.0), "out_of_order"),
    ],
)
def test_bad_samples_are_counted_and_skipped(sample: Sample, reason: str) -> None:
    w, m = _setup()
    w.ingest([Sample("a", 100.0, 1.0)])
    before = m.registry.get_sample_value("sentinelle_samples_accepted_total")
    w.ingest([sample])
    assert _dropped(m, reason) == 1
    assert m.registry.get_sample_value("sentinelle_samples_accepted_total") == before
    # The bad sample did not change the tag's value.
    out = w.ingest([Sample("b", 103.0, 0.0)])
    assert all(b.values[0] == 1.0 for b in out if b.ts >= 100.0)


def test_late_sample_for_closed_slot_is_counted() -> None:
    w, m = _setup()
    w.ingest([Sample("a", 100.0, 1.0)])
    w.ingest([Sample("a", 103.0, 2.0)])  # closes slots up to 102
    w.ingest([Sample("b", 101.0, 9.0)])  # b's first sample, but slot 101 already closed
    assert _dropped(m, "late") == 1


def test_booleans_are_numbers() -> None:
    w, _ = _setup()
    w.ingest([Sample("a", 100.0, True)])
    out = w.ingest([Sample("a", 101.0, False)])
    assert out[-1].values[0] == 1.0


def test_long_jump_keeps_one_window() -> None:
    w, _ = _setup(context=8)
    w.ingest([Sample("a", 100.0, 1.0)])
    out = w.ingest([Sample("a", 10_000.0, 2.0)])
    assert len(out) <= 8
    assert out[-1].ts == 9_999.0
    assert np.isnan(out[-1].contexts).all()


def test_idle_clock_closes_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    w, _ = _setup(hold=100.0)
    w.ingest([Sample("a", 100.0, 1.0), Sample("b", 100.0, 2.0)])
    assert w.tick_idle() == []
    real = time.monotonic
    monkeypatch.setattr("sentinelle.windows.time.monotonic", lambda: real() + 5.0)
    out = w.tick_idle()
    assert [b.ts for b in out][-1] >= 104.0
    assert out[-1].values.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("lateness", [0.0, 1.0, 2.5])
def test_a_slot_never_takes_a_later_slots_value(lateness: float) -> None:
    """With lateness of a period or more, later samples arrive before a slot closes."""
    w, _ = _setup(context=16, lateness=lateness, hold=100.0)
    out = []
    for t in range(100, 112):
        out += w.ingest([Sample("a", float(t), float(t)), Sample("b", float(t) + 0.5, -float(t))])
    closed = {b.ts: b for b in out}
    for ts, b in closed.items():
        if ts >= 101.0:
            assert b.values[0] == ts, (ts, b.values)  # a's sample at ts is the slot's last
            assert b.values[1] == -(ts - 1.0)  # b's sample at ts-0.5 is the last one at or before ts
            assert b.contexts[0, -1] == ts
    assert max(closed) >= 109.0 - lateness


def test_a_disconnected_source_gives_gaps_at_once_not_held_values() -> None:
    """Issue 15: the last value of a source that went away is not held for max_hold_s as if live."""
    w, _ = _setup(hold=30.0)
    out = w.ingest([Sample("a", 100.0, 1.0), Sample("b", 100.0, 5.0)])
    out += w.ingest([Sample("a", 101.0, 2.0)])
    w.set_source_down(["b", "unknown"], True)  # b's server disconnected (unknown names are ignored)
    out += w.ingest([Sample("a", 102.0, 3.0), Sample("a", 103.0, 4.0)])
    w.set_source_down(["b"], False)
    out += w.ingest([Sample("b", 103.5, 6.0), Sample("a", 104.0, 5.0), Sample("a", 105.0, 6.0)])
    by_ts = {b.ts: b for b in out}
    assert by_ts[100.0].values[1] == 5.0 and by_ts[100.0].source_down is None  # closed while connected
    for ts in (101.0, 102.0):  # closed while down (from the next slot to close on)
        assert math.isnan(by_ts[ts].values[1])  # down: a gap, although 5.0 is within max_hold_s
        assert by_ts[ts].values[0] == ts - 99.0  # the other source's tag is untouched
        down = by_ts[ts].source_down
        assert down is not None and down.tolist() == [False, True]
    # Back, but its first new value is for slot 104: the value from before the outage is not held.
    assert math.isnan(by_ts[103.0].values[1]) and by_ts[103.0].source_down is None
    assert by_ts[104.0].values.tolist() == [5.0, 6.0] and by_ts[104.0].source_down is None


def test_engineering_ranges_read_from_a_source_travel_with_every_window() -> None:
    w, _ = _setup()
    out = w.ingest([Sample("a", 100.0, 1.0), Sample("b", 100.0, 5.0), Sample("a", 101.0, 2.0)])  # closes 100
    w.set_engineering_ranges([EngineeringRange("b", 0.0, 10.0), EngineeringRange("unknown", 0.0, 1.0)])
    out += w.ingest([Sample("a", 102.0, 3.0)])
    w.set_engineering_ranges([EngineeringRange("b", 0.0, 10.0)])  # the same again (a reconnect): no new arrays
    out += w.ingest([Sample("a", 103.0, 4.0)])
    w.set_engineering_ranges([EngineeringRange("a", -1.0, 1.0)])  # another tag: b keeps its range
    out += w.ingest([Sample("a", 104.0, 5.0)])
    by_ts = {b.ts: b for b in out}
    assert by_ts[100.0].eu_low is None and by_ts[100.0].eu_high is None  # closed before any range was read
    first = by_ts[101.0]  # closed after b's range was read
    assert first.eu_low is not None and first.eu_high is not None
    np.testing.assert_array_equal(first.eu_low, [np.nan, 0.0])
    np.testing.assert_array_equal(first.eu_high, [np.nan, 10.0])
    assert not first.eu_low.flags.writeable
    assert by_ts[102.0].eu_low is first.eu_low  # the same ranges: the same array (detectors compare identity)
    last = by_ts[103.0]
    assert last.eu_low is not None and last.eu_high is not None and last.eu_low is not first.eu_low
    np.testing.assert_array_equal(last.eu_low, [-1.0, 0.0])
    np.testing.assert_array_equal(last.eu_high, [1.0, 10.0])


def _coarse_setup(stride: int = 4, context: int = 8) -> Windows:
    tags = [TagSettings(name=n, asset="x", node_id=f"ns=2;s={n}") for n in ("a", "b")]
    settings = WindowSettings(context_steps=context, allowed_lateness_s=0.0, max_hold_s=0.5)  # no hold
    return Windows(tags, settings, Metrics(CollectorRegistry()), coarse_stride_steps=stride)


def test_coarse_contexts_hold_means_of_stride_slots_closed_on_multiples_of_the_stride() -> None:
    """Stride 4: a coarse slot closes at slots 104, 108, ... with the mean of its 4 slots (a gap left out,
    4 gaps a gap); batches between share the last coarse contexts; stride 1 keeps none."""
    w = _coarse_setup()
    out = []
    for t in range(101, 114):
        b_value = [] if t in (105, 106, 107, 108) else [Sample("b", float(t), 10.0 * t)]  # b: 4 gaps
        a_value = [] if t == 110 else [Sample("a", float(t), float(t))]  # a: one gap
        out += w.ingest(a_value + b_value)
    by_ts = {b.ts: b for b in out}
    c = by_ts[112.0].coarse_contexts
    assert c is not None and c.shape == (2, 8) and by_ts[112.0].coarse_stride_steps == 4
    assert not c.flags.writeable
    want = [np.mean([101, 102, 103, 104]), np.mean([105, 106, 107, 108]), np.mean([109, 111, 112])]
    np.testing.assert_allclose(c[0, -3:], want)
    assert c[1, -3] == 10.0 * np.mean([101, 102, 103, 104]) and np.isnan(c[1, -2])  # b's 105..108: a gap
    assert np.isnan(c[:, :-3]).all()
    assert by_ts[111.0].coarse_contexts is by_ts[109.0].coarse_contexts  # nothing closed between 108 and 112
    assert by_ts[112.0].coarse_contexts is not by_ts[111.0].coarse_contexts
    assert _setup()[0].ingest([Sample("a", 1.0, 1.0), Sample("a", 2.0, 1.0)])[-1].coarse_contexts is None


def test_a_jump_past_the_window_leaves_gap_coarse_slots_and_state_keeps_the_coarse_ring() -> None:
    w = _coarse_setup(stride=2, context=8)
    for t in range(101, 109):
        w.ingest([Sample("a", float(t), float(t)), Sample("b", float(t), 1.0)])
    before = w.groups[0]._coarse_ctx
    assert before is not None and np.isfinite(before[:, -3:]).all()
    arrays, meta = w.state()
    again = _coarse_setup(stride=2, context=8)
    again.restore(arrays, meta)
    np.testing.assert_array_equal(again.groups[0]._coarse_ctx, before)
    other = _coarse_setup(stride=4, context=8)
    other.restore(arrays, meta)  # another stride: the coarse contexts start empty
    emptied = other.groups[0]._coarse_ctx
    assert emptied is not None and np.isnan(emptied).all()
    out = w.ingest([Sample("a", 200.0, 1.0)])  # 91 slots later: every coarse slot since is a gap
    assert out[-1].coarse_contexts is not None and np.isnan(out[-1].coarse_contexts).all()
    with pytest.raises(ValueError, match="coarse_stride_steps"):
        _coarse_setup(stride=9, context=8)
