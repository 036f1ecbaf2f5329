"""The OPC-UA source against a real asyncua server on loopback.

Each test starts its own small server (a few Double variables and one String
variable with string node ids, namespace 2) on a free port, runs
:class:`OpcUaSource` against it and reads what arrives on the SampleQueue and in
the metrics.  Everything is bounded by ``asyncio.timeout``; waits poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from asyncua import Server, ua
from prometheus_client import CollectorRegistry

from sentinelle.metrics import Metrics
from sentinelle.queues import SampleQueue
from sentinelle.records import Quality, Sample
from sentinelle.settings import OpcUaSourceSettings, TagSettings
from sentinelle.sources.opcua import OpcUaSource

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

NAMESPACE_URI = "urn:sentinelle:test:plant"
DOUBLES = ("chiller1.chw_temp_c", "chiller1.cw_temp_c", "chiller1.power_kw", "chiller1.flow_m3h")
STRING = "chiller1.mode"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def node_id(name: str) -> str:
    return f"ns=2;s={name}"


def ua_node(name: str, ns: int) -> ua.NodeId:
    """The string node id ``name`` in namespace ``ns``, in asyncua's own wrapper types."""
    return ua.NodeId(ua.String(name), ua.Int16(ns))


class PlantServer:
    """A minimal asyncua server: the DOUBLES as Double variables, STRING as a String variable."""

    def __init__(self, port: int) -> None:
        self.url = f"opc.tcp://127.0.0.1:{port}/sentinelle-test/"
        self.server: Server | None = None
        self.ns = 0

    async def start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.url)
        self.ns = await server.register_namespace(NAMESPACE_URI)
        assert self.ns == 2, "node ids in the tests assume namespace index 2"
        plant = await server.nodes.objects.add_object(ua_node("chiller1", self.ns), "chiller1")
        for name in DOUBLES:
            await plant.add_variable(ua_node(name, self.ns), name, ua.Variant(0.0, ua.VariantType.Double))
        await plant.add_variable(ua_node(STRING, self.ns), STRING, ua.Variant("off", ua.VariantType.String))
        await server.start()
        self.server = server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def write(
        self,
        name: str,
        value: Any,
        *,
        source_ts: dt.datetime | None = None,
        status: int = ua.StatusCodes.Good,
    ) -> None:
        assert self.server is not None
        vtype = ua.VariantType.String if name == STRING else ua.VariantType.Double
        source = None if source_ts is None else ua.DateTime.combine(source_ts.date(), source_ts.timetz())
        datavalue = ua.DataValue(
            ua.Variant(value, vtype), StatusCode=ua.StatusCode(ua.UInt32(status)), SourceTimestamp=source
        )
        await self.server.write_attribute_value(ua_node(name, self.ns), datavalue)


@contextlib.asynccontextmanager
async def plant_server(port: int | None = None) -> AsyncIterator[PlantServer]:
    server = PlantServer(port or free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class Harness:
    """An OpcUaSource with its own registry and queue, running in a task."""

    def __init__(self, url: str, names: list[str], *, unknown: tuple[str, ...] = (), **settings: Any) -> None:
        defaults: dict[str, Any] = {
            "name": "plant",
            "url": url,
            "publishing_interval_ms": 50.0,
            "connect_timeout_s": 2.0,
            "reconnect_initial_s": 0.05,
            "reconnect_max_s": 0.2,
        }
        self.settings = OpcUaSourceSettings(**(defaults | settings))
        self.served = set(names)
        self.tags = [TagSettings(name=n, asset="chiller1", node_id=node_id(n)) for n in [*names, *unknown]]
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self.dropped = 0
        self.queue = SampleQueue(capacity=100_000, on_drop=self._on_drop)
        self.states: list[bool] = []
        """What the source told the window stage: False when an outage began, True when it ended."""
        self.source = OpcUaSource(self.settings, self.tags, self.metrics, self.queue, on_state=self.states.append)
        self.task: asyncio.Task[None] | None = None

    def _on_drop(self, n: int) -> None:
        self.dropped += n

    def start(self) -> None:
        self.task = asyncio.create_task(self.source.run())

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task

    def value(self, metric: str, **labels: str) -> float:
        v = self.registry.get_sample_value(metric, {"source": "plant", **labels})
        return 0.0 if v is None else v

    async def chunks_until(self, done: Callable[[list[Sample]], bool]) -> list[list[Sample]]:
        """Read chunks until ``done(all samples so far)``; returns the chunks."""
        chunks: list[list[Sample]] = []
        seen: list[Sample] = []
        while not done(seen):
            chunk = list(await self.queue.get())
            chunks.append(chunk)
            seen.extend(chunk)
        return chunks

    async def drain_initial(self) -> None:
        """The server sends every item's current value right after subscribing."""
        await self.chunks_until(lambda seen: {s.tag for s in seen} >= self.served)


@contextlib.asynccontextmanager
async def running(harness: Harness) -> AsyncIterator[Harness]:
    harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


async def poll(condition: Callable[[], bool], interval_s: float = 0.02) -> None:
    """Metrics and the connection state have no event to await: poll, inside the test's timeout."""
    while not condition():
        await asyncio.sleep(interval_s)


T0 = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)


async def test_samples_arrive_in_chunks_with_tags_values_timestamps_and_quality() -> None:
    async with asyncio.timeout(15), plant_server() as server:
        harness = Harness(server.url, [*DOUBLES, STRING])
        async with running(harness):
            assert await harness.source.wait_connected(5.0)
            assert harness.source.connected
            assert harness.value("sentinelle_source_connected") == 1.0
            await harness.drain_initial()

            # One burst of changes on distinct items: few chunks, not one per sample.
            for i, name in enumerate(DOUBLES):
                await server.write(name, 10.0 + i, source_ts=T0 + dt.timedelta(seconds=i))
            await server.write(STRING, "cooling", source_ts=T0 + dt.timedelta(seconds=9))
            chunks = await harness.chunks_until(lambda seen: len(seen) >= len(DOUBLES) + 1)
            samples = {s.tag: s for chunk in chunks for s in chunk}
            assert len(chunks) < len(DOUBLES) + 1
            for i, name in enumerate(DOUBLES):
                assert samples[name] == Sample(name, T0.timestamp() + i, 10.0 + i, Quality.GOOD)
            assert samples[STRING] == Sample(STRING, T0.timestamp() + 9, "cooling", Quality.GOOD)
            assert isinstance(samples[STRING].value, str)

            # A Bad status: the server nulls the value; the source keeps it as delivered.
            await server.write(
                DOUBLES[0],
                99.0,
                source_ts=T0 + dt.timedelta(seconds=20),
                status=ua.StatusCodes.BadSensorFailure,
            )
            await server.write(
                DOUBLES[1],
                5.5,
                source_ts=T0 + dt.timedelta(seconds=21),
                status=ua.StatusCodes.UncertainLastUsableValue,
            )
            chunks = await harness.chunks_until(lambda seen: len(seen) >= 2)
            samples = {s.tag: s for chunk in chunks for s in chunk}
            assert samples[DOUBLES[0]] == Sample(DOUBLES[0], T0.timestamp() + 20, None, Quality.BAD)
            assert samples[DOUBLES[1]] == Sample(DOUBLES[1], T0.timestamp() + 21, 5.5, Quality.UNCERTAIN)

            assert harness.dropped == 0
            assert harness.value("sentinelle_samples_ingested_total") >= 2 * (len(DOUBLES) + 1) + 2
            assert harness.value("sentinelle_source_reconnects_total") == 0.0
        # Cancelled: disconnected, and said so.
        assert not harness.source.connected
        assert harness.value("sentinelle_source_connected") == 0.0


async def test_unreachable_server_at_start_is_retried_with_backoff() -> None:
    url = f"opc.tcp://127.0.0.1:{free_port()}/nobody-home/"
    harness = Harness(url, list(DOUBLES))
    async with asyncio.timeout(10), running(harness):
        assert not await harness.source.wait_connected(1.0)
        assert not harness.source.connected
        assert harness.value("sentinelle_source_connected") == 0.0
        # Attempts are counted as errors; a reconnect is counted only when an outage ends.
        await poll(lambda: harness.value("sentinelle_source_errors_total", kind="connect") >= 3)
        assert harness.value("sentinelle_source_reconnects_total") == 0.0
        assert harness.states == [False]  # down from the first failure: its tags are gaps


async def test_server_restart_resumes_samples_and_counts_the_reconnect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    port = free_port()
    async with asyncio.timeout(20):
        async with plant_server(port) as server:
            harness = Harness(server.url, list(DOUBLES))
            harness.start()
            assert await harness.source.wait_connected(5.0)
            await harness.drain_initial()
        # The server is stopped: the loss is noticed and shown.
        await poll(lambda: not harness.source.connected)
        assert harness.value("sentinelle_source_connected") == 0.0
        await poll(lambda: harness.value("sentinelle_source_errors_total", kind="connect") >= 2)
        assert harness.value("sentinelle_source_reconnects_total") == 0.0  # still in the outage
        async with plant_server(port) as server:
            try:
                assert await harness.source.wait_connected(10.0)
                await harness.drain_initial()
                await server.write(DOUBLES[2], 42.0, source_ts=T0)
                chunks = await harness.chunks_until(lambda seen: any(s.value == 42.0 for s in seen))
                assert Sample(DOUBLES[2], T0.timestamp(), 42.0, Quality.GOOD) in chunks[-1]
                assert harness.value("sentinelle_source_connected") == 1.0
                assert harness.value("sentinelle_source_errors_total", kind="connection_lost") == 1.0
                # One outage, several attempts: one reconnect (SentinelleSourceFlapping counts outages).
                assert harness.value("sentinelle_source_reconnects_total") == 1.0
                # The window stage was told once that the outage began and once that it ended.
                assert harness.states == [False, True]
            finally:
                await harness.stop()
    ours = [r for r in caplog.records if r.name == "sentinelle.sources.opcua"]
    assert len([r for r in ours if r.levelno == logging.WARNING]) == 1, "one warning per outage"
    assert any("reconnected" in r.getMessage() for r in ours if r.levelno == logging.INFO)
    assert not [r for r in caplog.records if "Publish iteration crashed" in r.getMessage()]


async def test_unknown_node_id_is_counted_and_the_other_tags_keep_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with asyncio.timeout(15), plant_server() as server:
        harness = Harness(server.url, list(DOUBLES), unknown=("no.such.tag",))
        async with running(harness):
            assert await harness.source.wait_connected(5.0)
            assert harness.value("sentinelle_source_errors_total", kind="bad_node") == 1.0
            await harness.drain_initial()
            await server.write(DOUBLES[3], 7.0, source_ts=T0)
            chunks = await harness.chunks_until(lambda seen: any(s.value == 7.0 for s in seen))
            assert Sample(DOUBLES[3], T0.timestamp(), 7.0, Quality.GOOD) in chunks[-1]
    rejected = [r for r in caplog.records if "rejected tag" in r.getMessage()]
    assert len(rejected) == 1 and "no.such.tag" in rejected[0].getMessage()


@pytest.mark.parametrize("report_unchanged", [True, False])
async def test_unchanged_value_with_new_timestamp_is_reported_only_when_asked(report_unchanged: bool) -> None:
    """A frozen transmitter repeats its value with fresh timestamps: a flat line, not silence."""
    async with asyncio.timeout(15), plant_server() as server:
        harness = Harness(server.url, [DOUBLES[0]], report_unchanged=report_unchanged)
        async with running(harness):
            assert await harness.source.wait_connected(5.0)
            await harness.drain_initial()
            await server.write(DOUBLES[0], 7.0, source_ts=T0)
            await harness.chunks_until(lambda seen: len(seen) >= 1)
            for i in range(1, 4):
                await server.write(DOUBLES[0], 7.0, source_ts=T0 + dt.timedelta(seconds=i))
            if report_unchanged:
                chunks = await harness.chunks_until(lambda seen: len(seen) >= 3)
                stamps = [s.source_ts for c in chunks for s in c]
                assert stamps == [T0.timestamp() + i for i in range(1, 4)]
            else:
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(1.5):
                        await harness.chunks_until(lambda seen: len(seen) >= 1)
