"""The worker's handling of one poll, without Kafka: bad records are counted and skipped, never a crash.

Only :meth:`Worker._handle` runs here (the records stand in for aiokafka's); the group, the
checkpoints and the takeover run against real Kafka in tests/integration/test_scaleout_failover.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from sentinelle.app import Daemon
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent, Sample
from sentinelle.scaleout.codec import encode_samples
from sentinelle.scaleout.worker import Worker
from sentinelle.settings import load_settings


@dataclass(frozen=True)
class _Record:
    key: bytes | None
    value: bytes
    offset: int
    headers: tuple[tuple[str, bytes], ...] = ()


class _Collect:
    name = "collect"

    def __init__(self) -> None:
        self.events: list[AlertEvent] = []

    async def start(self) -> None:
        pass

    async def send(self, events: Sequence[AlertEvent]) -> None:
        self.events.extend(events)

    async def close(self) -> None:
        pass


def _worker() -> tuple[Worker, Metrics, _Collect]:
    settings = load_settings(
        tags=[
            {"name": "c1.t", "asset": "c1", "node_id": "ns=2;s=c1.t", "high_limit": 5.2},
            {"name": "c2.t", "asset": "c2", "node_id": "ns=2;s=c2.t"},
        ],
        daemon={"mode": "worker"},
        forecast={"forecaster": "holt"},
        prometheus={"enabled": False},
        kafka={"enabled": False},
        windows={"allowed_lateness_s": 0.0},
    )
    metrics = Metrics(CollectorRegistry())
    sink = _Collect()
    worker = Worker(Daemon(settings, metrics, sinks=[sink], sources=[]))
    worker.units = {"c1": worker._unit("c1")}  # as if assigned the partition of c1 only
    return worker, metrics, sink


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    v = metrics.registry.get_sample_value(name, labels)
    return 0.0 if v is None else v


@pytest.mark.asyncio
async def test_bad_records_are_counted_and_the_rest_is_detected() -> None:
    worker, metrics, sink = _worker()
    tp, other = TopicPartition("samples", 0), TopicPartition("samples", 1)
    worker._assigned = {tp}
    good = [Sample("c1.t", 1000.0 + k, 5.0 if k < 10 else 6.0) for k in range(20)]
    batch = {
        tp: [
            _Record(b"c1", b"garbage", 0),
            _Record(b"c1", encode_samples(good[:10]), 1),
            _Record(None, encode_samples(good[:1]), 2),  # no key
            _Record(b"c1", b"SS\x02" + encode_samples(good)[3:], 3),  # another version
            _Record(b"c9", encode_samples([Sample("c9.x", 1000.0, 1.0)]), 4),  # an asset not held here
            _Record(b"c1", encode_samples(good[10:]), 5),
        ],
        other: [_Record(b"c2", encode_samples([Sample("c2.t", 1000.0, 1.0)]), 0)],  # not assigned: left alone
    }
    await worker._handle(batch)
    assert _value(metrics, "sentinelle_scaleout_bad_records_total", topic="samples") == 3
    assert _value(metrics, "sentinelle_samples_dropped_total", reason="unknown_tag") == 1
    assert worker._next == {tp: 6}
    assert _value(metrics, "sentinelle_samples_accepted_total") == 20
    assert [(e.kind, e.event) for e in sink.events if e.kind == "limit_high"] == [("limit_high", "opened")]


@pytest.mark.asyncio
async def test_tag_gauges_of_every_held_asset_and_none_of_a_released_one() -> None:
    worker, metrics, _ = _worker()
    worker.units["c2"] = worker._unit("c2")
    tp = TopicPartition("samples", 0)
    worker._assigned = {tp}
    both = [Sample(t, 1000.0 + k, 1.0 + k) for k in range(5) for t in ("c1.t", "c2.t")]
    await worker._handle(
        {tp: [_Record(b"c1", encode_samples(both[0::2]), 0), _Record(b"c2", encode_samples(both[1::2]), 1)]}
    )
    assert _value(metrics, "sentinelle_tag_actual", asset="c1", tag="c1.t") > 0
    assert _value(metrics, "sentinelle_tag_actual", asset="c2", tag="c2.t") > 0  # one group per asset, both shown
    worker.units.pop("c2").release()
    assert metrics.registry.get_sample_value("sentinelle_tag_actual", {"asset": "c2", "tag": "c2.t"}) is None


class _Log:
    """Fakes of the state producer, the group consumer and a sink with ``flush``, writing one shared log."""

    def __init__(self, durable: bool = True) -> None:
        self.calls: list[str] = []
        self.durable = durable

    async def flush(self, timeout_s: float) -> bool:
        self.calls.append("flush")
        return self.durable

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        self.calls.append(f"snapshot {key.decode()}")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.calls.append(f"commit {sorted(offsets.values())}")


class _FlushingSink(_Collect):
    def __init__(self, log: _Log) -> None:
        super().__init__()
        self.flush = log.flush


@pytest.mark.asyncio
@pytest.mark.parametrize("durable", [True, False])
async def test_offsets_are_committed_only_after_events_are_durable_and_snapshots_written(durable: bool) -> None:
    worker, _, _ = _worker()
    log = _Log(durable)
    worker.daemon.sinks = [_FlushingSink(log)]
    worker._producer = worker._consumer = log
    tp = TopicPartition("samples", 0)
    worker._assigned, worker._next = {tp}, {tp: 42}
    assert await worker._checkpoint_and_commit("test") is durable
    assert log.calls == (["flush", "snapshot c1", "commit [42]"] if durable else ["flush"])


async def _after_samples(marker: Sample, header: tuple[str, bytes]) -> tuple[Worker, TopicPartition]:
    """A worker that read three samples of c1.t, then a record of ``marker`` with ``header`` (one poll)."""
    worker, _, _ = _worker()
    tp = TopicPartition("samples", 0)
    worker._assigned = {tp}
    before = [Sample("c1.t", 1000.0 + k, 5.0) for k in range(3)]
    records = [_Record(b"c1", encode_samples(before), 0), _Record(b"c1", encode_samples([marker]), 1, (header,))]
    await worker._handle({tp: records})
    group = worker.units["c1"].windows.groups[0]
    assert group.last_ts.tolist() == [1002.0]  # the samples before the marker were taken first
    return worker, tp


@pytest.mark.asyncio
async def test_a_source_state_record_marks_the_tags_down_after_the_samples_before_it() -> None:
    worker, tp = await _after_samples(Sample("c1.t", 1003.0, None), ("sentinelle-source", b"down"))
    group = worker.units["c1"].windows.groups[0]
    assert group.down.tolist() == [True]
    up = (("sentinelle-source", b"up"),)
    await worker._handle({tp: [_Record(b"c1", encode_samples([Sample("c1.t", 1004.0, None)]), 2, up)]})
    assert group.down.tolist() == [False]


@pytest.mark.asyncio
async def test_an_engineering_range_record_reaches_the_windows_after_the_samples_before_it() -> None:
    worker, _ = await _after_samples(Sample("c1.t", 0.0, 10.0), ("sentinelle-eu-range", b"1"))
    group = worker.units["c1"].windows.groups[0]
    assert group.eu_low is not None and group.eu_high is not None
    assert (group.eu_low.tolist(), group.eu_high.tolist()) == ([0.0], [10.0])
    # A worker that takes the asset over gets them with the windows' snapshot.
    other, _, _ = _worker()
    other.units["c1"].windows.restore(*worker.units["c1"].windows.state())
    taken = other.units["c1"].windows.groups[0]
    assert taken.eu_low is not None and taken.eu_low.tolist() == [0.0]


class _Position:
    """The group consumer as the idle check sees it: a high watermark, and where reading starts."""

    def __init__(self, high: int) -> None:
        self.high = high

    def highwater(self, tp: TopicPartition) -> int:
        return self.high

    async def position(self, tp: TopicPartition) -> int:
        return 0


@pytest.mark.asyncio
async def test_silence_closes_slots_only_on_a_partition_read_to_its_end() -> None:
    worker, _, _ = _worker()
    tp = TopicPartition("samples", 0)
    worker._assigned, worker._partition = {tp}, {"c1": 0}
    behind = _Position(high=100)
    worker._consumer = behind
    await worker._handle({tp: [_Record(b"c1", encode_samples([Sample("c1.t", 1000.0 + k, 5.0) for k in range(5)]), 0)]})
    windows = worker.units["c1"].windows
    group = windows.groups[0]
    slot = group.next_slot
    windows._last_arrival_wall -= 100.0  # as if nothing had arrived for 100 s of wall time
    await worker._handle({})
    assert group.next_slot == slot  # records 1..99 are still to be read: silence is not the plant's
    behind.high = 1  # everything read
    await worker._handle({})
    assert group.next_slot is not None and slot is not None and group.next_slot > slot
