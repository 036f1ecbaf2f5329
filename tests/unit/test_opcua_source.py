"""From OPC-UA notifications to Samples, with small fakes of asyncua's objects (no server)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from asyncua import ua
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent
from prometheus_client import CollectorRegistry

from sentinelle.errors import ConfigError
from sentinelle.metrics import Metrics
from sentinelle.queues import SampleQueue
from sentinelle.records import Quality, Sample
from sentinelle.settings import OpcUaSourceSettings, TagSettings
from sentinelle.sources.opcua import OpcUaSource, epoch_seconds, quality_of, sample_from_datavalue

UTC = dt.UTC
T = dt.datetime(2024, 5, 1, 12, 0, 0, 250_000)
T_EPOCH = 1_714_564_800.25


@dataclass
class FakeVariant:
    Value: Any


@dataclass
class FakeStatus:
    value: int


@dataclass
class FakeDataValue:
    Value: FakeVariant | None = None
    StatusCode: FakeStatus | None = None
    SourceTimestamp: dt.datetime | None = None
    ServerTimestamp: dt.datetime | None = None


def dv(
    value: Any = 1.0,
    status: int | None = 0,
    source: dt.datetime | None = T,
    server: dt.datetime | None = None,
) -> FakeDataValue:
    return FakeDataValue(FakeVariant(value), None if status is None else FakeStatus(status), source, server)


# --- timestamps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (T, T_EPOCH),  # naive: UTC, never local time
        (T.replace(tzinfo=UTC), T_EPOCH),
        (T.replace(hour=14, tzinfo=dt.timezone(dt.timedelta(hours=2))), T_EPOCH),
        (dt.datetime(1970, 1, 1), 0.0),
        (None, None),
        (dt.datetime(1601, 1, 1, tzinfo=UTC), None),  # the OPC-UA null DateTime, as asyncua decodes it
        (dt.datetime(1601, 1, 1), None),
    ],
)
def test_epoch_seconds(timestamp: dt.datetime | None, expected: float | None) -> None:
    assert epoch_seconds(timestamp) == expected


def test_source_timestamp_wins_over_server_timestamp() -> None:
    later = dt.datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
    assert sample_from_datavalue("t", dv(source=T, server=later)).source_ts == T_EPOCH


def test_server_timestamp_when_source_timestamp_missing_or_null() -> None:
    server = T.replace(tzinfo=UTC)
    missing: list[int] = []
    assert sample_from_datavalue("t", dv(source=None, server=server), lambda: missing.append(1)).source_ts == T_EPOCH
    null = dt.datetime(1601, 1, 1, tzinfo=UTC)
    assert sample_from_datavalue("t", dv(source=null, server=server), lambda: missing.append(1)).source_ts == T_EPOCH
    assert missing == []


def test_arrival_time_when_no_timestamp_at_all_and_it_is_reported() -> None:
    missing: list[int] = []
    before = time.time()
    sample = sample_from_datavalue("t", dv(source=None, server=None), lambda: missing.append(1))
    assert before <= sample.source_ts <= time.time()
    assert missing == [1]


# --- quality ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "quality"),
    [
        (ua.StatusCodes.Good, Quality.GOOD),
        (ua.StatusCodes.GoodClamped, Quality.GOOD),
        (0x000004A0, Quality.GOOD),  # Good with info bits (overflow, limit bits) set
        (ua.StatusCodes.Uncertain, Quality.UNCERTAIN),
        (ua.StatusCodes.UncertainLastUsableValue, Quality.UNCERTAIN),
        (ua.StatusCodes.UncertainSensorNotAccurate, Quality.UNCERTAIN),
        (ua.StatusCodes.Bad, Quality.BAD),
        (ua.StatusCodes.BadSensorFailure, Quality.BAD),
        (ua.StatusCodes.BadNoCommunication, Quality.BAD),
        (0xC0000000, Quality.BAD),  # severity 0b11 is reserved: treated as bad
        (0xFFFFFFFF, Quality.BAD),
    ],
)
def test_quality_from_the_top_two_bits(status: int, quality: Quality) -> None:
    assert quality_of(status) is quality
    assert sample_from_datavalue("t", dv(status=status)).quality is quality


def test_missing_status_code_means_good() -> None:
    assert sample_from_datavalue("t", dv(status=None)).quality is Quality.GOOD


# --- values -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [21.5, -3, 0, True, False, "running", "", None, float("nan"), [1.0, 2.0]])
def test_value_is_passed_as_delivered(value: Any) -> None:
    sample = sample_from_datavalue("t", dv(value=value))
    assert sample.value is value  # not converted, not filtered: the window stage judges


def test_missing_variant_gives_none() -> None:
    assert sample_from_datavalue("t", FakeDataValue(None, FakeStatus(0), T)).value is None


def test_real_asyncua_datavalue() -> None:
    value = ua.DataValue(
        ua.Variant(7.25, ua.VariantType.Double),
        StatusCode=ua.StatusCode(ua.UInt32(ua.StatusCodes.UncertainInitialValue)),
        SourceTimestamp=ua.DateTime.combine(T.date(), T.time(), tzinfo=UTC),
    )
    assert sample_from_datavalue("chiller1.chw_temp_c", value) == Sample(
        "chiller1.chw_temp_c", T_EPOCH, 7.25, Quality.UNCERTAIN
    )


# --- notifications through the source: batching and counting -------------------------------


@dataclass
class FakeNode:
    nodeid: ua.NodeId


@dataclass
class FakeMonitoredItem:
    Value: FakeDataValue


@dataclass
class FakeNotif:
    monitored_item: FakeMonitoredItem


def change(node: str, value: FakeDataValue) -> DataChangeEvent:
    nodeid = ua.NodeId.from_string(node)
    return DataChangeEvent(node=FakeNode(nodeid), value=None, data=FakeNotif(FakeMonitoredItem(value)))  # type: ignore[arg-type]


class FakeSubscription:
    """Yields events like asyncua's iterator API: one publish response's worth per turn."""

    def __init__(self, *responses: list[Any]) -> None:
        self._responses = responses

    async def __aiter__(self) -> AsyncIterator[Any]:
        for events in self._responses:
            await asyncio.sleep(0)  # the next publish response arrives on a later turn of the loop
            for event in events:
                yield event


def make_source(queue: SampleQueue, registry: CollectorRegistry) -> OpcUaSource:
    tags = [
        TagSettings(name="chiller1.chw_temp_c", asset="chiller1", node_id="ns=2;s=chiller1.chw_temp_c"),
        TagSettings(name="chiller1.mode", asset="chiller1", node_id="ns=2;i=1001"),
    ]
    return OpcUaSource(OpcUaSourceSettings(name="plant"), tags, Metrics(registry), queue)


@pytest.mark.asyncio
async def test_one_chunk_per_publish_response_with_tags_mapped_and_counted() -> None:
    registry = CollectorRegistry()
    queue = SampleQueue(1000, on_drop=lambda n: None)
    source = make_source(queue, registry)
    first = [
        change("ns=2;s=chiller1.chw_temp_c", dv(5.0, source=T)),
        change("ns=2;i=1001", dv("cooling", source=None, server=None)),
        change("ns=2;s=not.ours", dv(1.0)),  # a node we did not ask for: ignored
    ]
    second = [change("ns=2;s=chiller1.chw_temp_c", dv(5.5, status=ua.StatusCodes.BadSensorFailure))]
    bad_status = StatusChangeEvent(
        notification=ua.StatusChangeNotification(Status=ua.StatusCode(ua.UInt32(ua.StatusCodes.BadTimeout)))
    )
    reason = await source._consume(FakeSubscription(first, second, [bad_status]))  # type: ignore[arg-type]
    assert "BadTimeout" in reason
    await asyncio.sleep(0)  # let the last scheduled flush run

    chunk1 = list(await queue.get())
    assert [s.tag for s in chunk1] == ["chiller1.chw_temp_c", "chiller1.mode"]
    assert chunk1[0] == Sample("chiller1.chw_temp_c", T_EPOCH, 5.0, Quality.GOOD)
    assert chunk1[1].value == "cooling"
    assert list(await queue.get()) == [Sample("chiller1.chw_temp_c", T_EPOCH, 5.5, Quality.BAD)]
    assert len(queue) == 0

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"source": "plant", **labels})

    assert value("sentinelle_samples_ingested_total") == 3.0
    assert value("sentinelle_source_errors_total", kind="no_timestamp") == 1.0
    assert value("sentinelle_source_errors_total", kind="bad_node") == 0.0
    assert value("sentinelle_source_connected") == 0.0


def test_invalid_node_id_is_a_config_error() -> None:
    tags = [TagSettings(name="x", asset="a", node_id="ns=2;q=nonsense")]
    queue = SampleQueue(10, on_drop=lambda n: None)
    with pytest.raises(ConfigError, match=r"tags\.x\.node_id"):
        OpcUaSource(OpcUaSourceSettings(), tags, Metrics(CollectorRegistry()), queue)


@pytest.mark.asyncio
async def test_wait_connected_times_out_before_run() -> None:
    source = make_source(SampleQueue(10, on_drop=lambda n: None), CollectorRegistry())
    assert not source.connected
    assert not await source.wait_connected(0.01)


async def _swallowing_connect(self: object) -> None:
    """Like an asyncua connect() that turns a cancellation into a connection error."""
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        raise ConnectionRefusedError("cancelled inside connect") from None


@pytest.mark.asyncio
async def test_cancel_during_connect_stops_the_source_even_if_the_client_swallows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A daemon stopping while a connection attempt is under way must not keep retrying."""
    from asyncua.client.client import Client  # the class sentinelle.sources.opcua connects with
    from prometheus_client import CollectorRegistry

    import sentinelle.sources.opcua as opcua_module
    from sentinelle.metrics import Metrics
    from sentinelle.queues import SampleQueue
    from sentinelle.settings import OpcUaSourceSettings, TagSettings

    monkeypatch.setattr(Client, "connect", _swallowing_connect)
    settings = OpcUaSourceSettings(url="opc.tcp://127.0.0.1:1/x/", connect_timeout_s=30.0, reconnect_initial_s=0.05)
    source = opcua_module.OpcUaSource(
        settings,
        [TagSettings(name="a", asset="x", node_id="ns=2;s=a")],
        Metrics(CollectorRegistry()),
        SampleQueue(10, on_drop=lambda n: None),
    )
    task = asyncio.create_task(source.run())
    await asyncio.sleep(0.2)  # inside connect()
    task.cancel()
    await asyncio.wait({task}, timeout=2)
    assert task.done(), "the source kept retrying after it was cancelled"
    assert task.cancelled()
