"""The collector's grouping and publishing without Kafka: one record per asset, unknown tags counted."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from sentinelle.app import Daemon
from sentinelle.metrics import Metrics
from sentinelle.records import EngineeringRange, Sample
from sentinelle.scaleout.codec import decode_samples, ranges_of
from sentinelle.scaleout.collector import Collector
from sentinelle.settings import load_settings


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.headers: list[list[tuple[str, bytes]] | None] = []

    async def send(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]] | None = None
    ) -> asyncio.Future[None]:
        self.sent.append((topic, key, value))
        self.headers.append(headers)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _collector() -> tuple[Collector, Metrics, _Producer]:
    settings = load_settings(
        tags=[
            {"name": "c1.t", "asset": "c1", "node_id": "ns=2;s=c1.t"},
            {"name": "c1.p", "asset": "c1", "node_id": "ns=2;s=c1.p"},
            {"name": "c2.t", "asset": "c2", "node_id": "ns=2;s=c2.t"},
        ],
        daemon={"mode": "collector"},
        forecast={"forecaster": "holt"},
        prometheus={"enabled": False},
    )
    metrics = Metrics(CollectorRegistry())
    collector = Collector(Daemon(settings, metrics, sinks=[], sources=[]))
    producer = _Producer()
    collector._producer = producer
    return collector, metrics, producer


@pytest.mark.asyncio
async def test_samples_are_published_per_asset_and_unknown_tags_counted() -> None:
    collector, metrics, producer = _collector()
    chunk = [Sample("c1.t", 1.0, 5.0), Sample("c2.t", 1.0, 7.0), Sample("x.y", 1.0, 0.0), Sample("c1.p", 1.0, True)]
    by_asset: dict[str, list[Sample]] = {}
    collector._group(chunk, by_asset)
    await collector._flush(by_asset)
    assert [(t, k) for t, k, _ in producer.sent] == [("sentinelle.samples", b"c1"), ("sentinelle.samples", b"c2")]
    assert decode_samples(producer.sent[0][2]) == [chunk[0], chunk[3]]
    assert decode_samples(producer.sent[1][2]) == [chunk[1]]
    assert metrics.registry.get_sample_value("sentinelle_samples_dropped_total", {"reason": "unknown_tag"}) == 1
    assert metrics.registry.get_sample_value("sentinelle_scaleout_records_total", {"role": "collector"}) == 2


@pytest.mark.asyncio
async def test_a_source_that_goes_down_is_told_per_asset_with_its_tags() -> None:
    collector, _, producer = _collector()
    assert collector.daemon.on_source_state is not None
    collector.daemon.on_source_state(("c1.t", "c1.p", "c2.t"), True)
    await collector._send_states()
    assert [k for _, k, _ in producer.sent] == [b"c1", b"c2"]
    assert producer.headers == [[("sentinelle-source", b"down")]] * 2
    assert [s.tag for s in decode_samples(producer.sent[0][2])] == ["c1.t", "c1.p"]


@pytest.mark.asyncio
async def test_engineering_ranges_a_source_read_are_told_per_asset() -> None:
    collector, _, producer = _collector()
    ranges = [EngineeringRange("c1.t", 0.0, 10.0), EngineeringRange("c2.t", -5.0, 5.0), EngineeringRange("x", 0, 1)]
    collector.daemon._source_ranges(ranges)  # what an OPC-UA source calls at its subscription
    await collector._send_states()
    assert [k for _, k, _ in producer.sent] == [b"c1", b"c2"]
    assert producer.headers == [[("sentinelle-eu-range", b"1")]] * 2
    assert [ranges_of(decode_samples(v)) for _, _, v in producer.sent] == [ranges[:1], ranges[1:2]]
    await collector._send_states()
    assert len(producer.sent) == 2  # sent once
