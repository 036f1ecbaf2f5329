"""Scale-out's formats without servers: the samples codec, asset snapshots and their handover.

The handover property: a unit restored from another's snapshot, fed the same samples after
it, makes the same alert events (same ``event_id``) as the unit it was saved from.
"""

from __future__ import annotations

import contextlib
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from sentinelle.forecast import make_forecaster
from sentinelle.forecast.batcher import ForecastPass
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent, Quality, Sample
from sentinelle.scaleout.codec import VERSION, CodecError, decode_samples, encode_samples
from sentinelle.scaleout.state import AssetUnit, SnapshotMismatch, decode_snapshot, encode_snapshot
from sentinelle.scaleout.worker import partition_of
from sentinelle.settings import (
    AssetDetectSettings,
    CommandSettings,
    DaemonSettings,
    DetectSettings,
    ForecastSettings,
    ModeRuleSettings,
    Settings,
    TagSettings,
    WindowSettings,
)

values = st.one_of(
    st.floats(allow_nan=False),
    st.booleans(),
    st.integers(min_value=-(2**52), max_value=2**52),
    st.none(),
    st.text(max_size=5),
)
samples = st.lists(
    st.builds(
        Sample,
        tag=st.text(min_size=1, max_size=30),
        source_ts=st.floats(allow_nan=False),
        value=values,
        quality=st.sampled_from(list(Quality)),
    ),
    max_size=50,
)


def _expected(s: Sample) -> Sample:
    v = s.value
    if isinstance(v, bool):
        return s
    if isinstance(v, (int, float)):
        return Sample(s.tag, s.source_ts, float(v), s.quality)
    return Sample(s.tag, s.source_ts, None, s.quality)


@settings(max_examples=300, deadline=None)
@given(samples)
def test_codec_round_trip(batch: list[Sample]) -> None:
    out = decode_samples(encode_samples(batch))
    assert out == [_expected(s) for s in batch]
    for a, b in zip(out, batch, strict=True):
        assert type(a.value) is (bool if isinstance(b.value, bool) else type(None) if a.value is None else float)


def test_codec_is_compact() -> None:
    batch = [Sample(f"chiller1.t{i % 7}", 1_700_000_000.0 + i // 7, 5.0 + i, Quality.GOOD) for i in range(700)]
    blob = encode_samples(batch)
    assert len(blob) < 21 * len(batch) + 200  # 20 bytes a sample plus the names, not JSON's ~80


@settings(max_examples=300, deadline=None)
@given(samples, st.data())
def test_codec_rejects_every_truncation_and_corruption(batch: list[Sample], data: st.DataObject) -> None:
    blob = encode_samples(batch)
    cut = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    with pytest.raises(CodecError):
        decode_samples(blob[:cut])
    with pytest.raises(CodecError):
        decode_samples(blob + b"\x00")
    # Any single corrupted byte: decoded (it may still be a valid record) or a CodecError, never another error.
    pos = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    bad = bytearray(blob)
    bad[pos] ^= data.draw(st.integers(min_value=1, max_value=255))
    with contextlib.suppress(CodecError):
        decode_samples(bytes(bad))


def test_codec_refuses_another_version_and_garbage() -> None:
    blob = bytearray(encode_samples([Sample("a", 1.0, 2.0)]))
    blob[2] = VERSION + 1
    with pytest.raises(CodecError, match="version"):
        decode_samples(bytes(blob))
    for junk in (b"", b"{}", b'{"tag": "a", "value": 1}', struct.pack("<2sBH", b"SS", VERSION, 3)):
        with pytest.raises(CodecError):
            decode_samples(junk)


# -- snapshots ------------------------------------------------------------------------------


def _tags(asset: str = "c1", high: float = 5.2) -> list[TagSettings]:
    return [
        TagSettings(name=f"{asset}.t", asset=asset, node_id=f"ns=2;s={asset}.t", high_limit=high, limit_deadband=0.05),
        TagSettings(name=f"{asset}.p", asset=asset, node_id=f"ns=2;s={asset}.p"),
    ]


def _unit(tags: list[TagSettings] | None = None) -> AssetUnit:
    return AssetUnit("c1", tags or _tags(), WindowSettings(), DetectSettings(), Metrics(CollectorRegistry()))


def _stream(start: int, end: int) -> list[list[Sample]]:
    """One chunk per second: a noisy level, above the high limit from 150 s to 260 s."""
    rng = np.random.default_rng(start)
    out = []
    for k in range(start, end):
        ts = 1_700_000_000.0 + k
        t = 5.0 + 0.02 * rng.standard_normal() + (0.6 if 150 <= k < 260 else 0.0)
        p = 100.0 + 3 * math.sin(k / 30) + rng.standard_normal()
        out.append([Sample("c1.t", ts, t), Sample("c1.p", ts, p)])
    return out


def _run(unit: AssetUnit, chunks: list[list[Sample]]) -> list[AlertEvent]:
    f = ForecastSettings(forecaster="holt")
    forecaster = make_forecaster(f)
    events: list[AlertEvent] = []
    for chunk in chunks:
        windows = unit.windows.ingest(chunk, 0.0)
        if windows:
            fp = ForecastPass.of(windows, 1)
            for fb in fp.split(forecaster.levels, forecaster.forecast(fp.contexts, fp.assets), forecaster.name):
                events += unit.detect.process(fb)
    return events


def test_restored_unit_makes_the_same_events_as_the_original() -> None:
    original = _unit()
    before = _run(original, _stream(0, 200))
    assert [e.event for e in before if e.kind == "limit_high"] == ["opened"]  # open at the snapshot
    snap = decode_snapshot(encode_snapshot(original))
    taken_over = _unit()
    taken_over.restore(snap)
    rest = _stream(200, 400)
    after_original = _run(original, rest)
    after_restored = _run(taken_over, rest)
    assert [e.event_id for e in after_restored] == [e.event_id for e in after_original]
    assert [e.to_dict() for e in after_restored] == [e.to_dict() for e in after_original]
    # The alert open at the handover is cleared by the new owner, as the same alert.
    opened = next(e for e in before if e.kind == "limit_high")
    assert any(e.alert_id == opened.alert_id and e.event == "cleared" for e in after_restored)


def test_cold_unit_differs_so_the_handover_test_can_fail() -> None:
    original = _unit()
    _run(original, _stream(0, 200))
    rest = _stream(200, 400)
    cold = [e.event_id for e in _run(_unit(), rest)]
    assert cold != [e.event_id for e in _run(original, rest)]


def test_snapshot_of_other_tags_is_refused() -> None:
    original = _unit()
    _run(original, _stream(0, 50))
    snap = decode_snapshot(encode_snapshot(original))
    changed = [*_tags(), TagSettings(name="c1.q", asset="c1", node_id="ns=2;s=c1.q")]
    with pytest.raises(SnapshotMismatch):
        _unit(changed).restore(snap)


def test_snapshot_bad_bytes_are_codec_errors() -> None:
    blob = encode_snapshot(_unit())
    for junk in (b"", b"SW", b"SW\x02" + blob[3:], b"XX" + blob[2:], blob[:-10], b"SW\x01not a zip"):
        with pytest.raises(CodecError):
            decode_snapshot(junk)


def test_partition_of_is_stable_and_spreads() -> None:
    parts = {partition_of(f"asset{i}", 12) for i in range(200)}
    assert parts == set(range(12))
    assert partition_of("chiller1", 12) == partition_of("chiller1", 12)


def test_worker_mode_refuses_commands_and_history() -> None:
    with pytest.raises(ValueError, match="commands"):
        Settings(daemon=DaemonSettings(mode="worker"), commands=CommandSettings(enabled=True))
    assert Settings(daemon=DaemonSettings(mode="collector")).scaleout.samples_topic == "sentinelle.samples"


def _mode_unit() -> AssetUnit:
    """c1 is ``stopped`` while its pump c1.p is below 50, with a 60 s hold-off after every mode change."""
    stopped = ModeRuleSettings(mode="stopped", tag="c1.p", below=50.0)
    detect = DetectSettings(assets=(AssetDetectSettings(name="c1", modes=(stopped,), mode_holdoff_s=60.0),))
    return AssetUnit("c1", _tags(), WindowSettings(), detect, Metrics(CollectorRegistry()))


def _start_up(start: int, end: int) -> list[list[Sample]]:
    """The pump stopped from 100 s to 120 s, then running again: a hold-off from about 120 s to 180 s."""
    return [
        [Sample("c1.t", 1_700_000_000.0 + k, 5.0), Sample("c1.p", 1_700_000_000.0 + k, 0.0 if 100 <= k < 120 else 90.0)]
        for k in range(start, end)
    ]


def test_mode_hold_off_under_way_goes_on_after_a_takeover() -> None:
    original = _mode_unit()
    _run(original, _start_up(0, 130))
    ts = 1_700_000_000.0 + 130
    assert original.detect.modes.gate("c1", ts) == "mode_holdoff"
    taken_over = _mode_unit()
    taken_over.restore(decode_snapshot(encode_snapshot(original)))
    assert taken_over.detect.modes.mode("c1") == "running"
    assert taken_over.detect.modes.gate("c1", ts) == "mode_holdoff"
    # A cold unit sees "running" as its first mode, not as a change: it would detect at once.
    cold = _mode_unit()
    _run(cold, _start_up(125, 130))
    assert cold.detect.modes.gate("c1", ts) is None
    # The hold-off ends for both at the same data time.
    rest = _start_up(130, 200)
    _run(original, rest)
    _run(taken_over, rest)
    end = 1_700_000_000.0 + 200
    assert original.detect.modes.gate("c1", end) is None
    assert taken_over.detect.modes.gate("c1", end) is None


def test_saved_mode_no_rule_names_any_more_is_not_restored() -> None:
    unit = _mode_unit()
    unit.detect.modes.restore({"c1": {"mode": "defrost", "changed_at": 1.0}, "other": {"mode": "running"}})
    assert unit.detect.modes.mode("c1") is None
    assert unit.detect.modes.gate("c1", 2.0) is None
