"""Engineering ranges from a real asyncua server's AnalogItemType variables (sources/opcua_ranges.py) on loopback.

The server exposes AnalogItemType variables (instantiated from the standard type, so they carry
the ``EURange`` and ``EngineeringUnits`` properties as a plant server's would) — one with a good
range, one with a bad one, one whose range and unit the configuration overrides — and one plain
variable with no properties.  The source's ranges go to a real :class:`~sentinelle.windows.Windows`,
as the daemon wires them, and come out in the window batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
import pytest
from asyncua import Server, ua
from asyncua.common.instantiate_util import instantiate
from prometheus_client import CollectorRegistry

from sentinelle.metrics import Metrics
from sentinelle.queues import SampleQueue
from sentinelle.records import EngineeringRange, Sample, WindowBatch
from sentinelle.settings import OpcUaSourceSettings, TagSettings, WindowSettings
from sentinelle.sources.opcua import OpcUaSource
from sentinelle.windows import Windows

from .test_opcua_source import free_port, ua_node

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

ANALOG = {
    # name: (EURange low, high, EngineeringUnits display name)
    "ahu1.valve_pct": (0.0, 100.0, "%"),
    "ahu1.bad_range": (5.0, 5.0, "kW"),
    "ahu1.supply_temp_c": (-20.0, 120.0, "°F"),
}
PLAIN = "ahu1.fan_status"


@contextlib.asynccontextmanager
async def analog_server() -> AsyncIterator[str]:
    url = f"opc.tcp://127.0.0.1:{free_port()}/sentinelle-eu/"
    server = Server()
    await server.init()
    server.set_endpoint(url)
    ns = await server.register_namespace("urn:sentinelle:test:analog")
    plant = await server.nodes.objects.add_object(ua_node("ahu1", ns), "ahu1")
    analog_type = server.get_node(ua.NodeId(ua.Int32(ua.ObjectIds.AnalogItemType)))
    for name, (low, high, unit) in ANALOG.items():
        await instantiate(plant, analog_type, nodeid=ua_node(name, ns), bname=ua.QualifiedName(name, ns))
        variable = server.get_node(ua_node(name, ns))
        await (await variable.get_child("0:EURange")).write_value(ua.Range(ua.Double(low), ua.Double(high)))
        units = await variable.get_child("0:EngineeringUnits")
        await units.write_value(ua.EUInformation(DisplayName=ua.LocalizedText(unit)))
        await variable.write_value(ua.Variant(1.0, ua.VariantType.Double))
    await plant.add_variable(ua_node(PLAIN, ns), PLAIN, ua.Variant(1.0, ua.VariantType.Double))
    await server.start()
    try:
        yield url
    finally:
        await server.stop()


def _tags() -> list[TagSettings]:
    return [
        TagSettings(name="ahu1.valve_pct", asset="ahu1", node_id="ns=2;s=ahu1.valve_pct", unit="%"),
        TagSettings(name="ahu1.bad_range", asset="ahu1", node_id="ns=2;s=ahu1.bad_range", unit="kW"),
        # Configured range and unit: neither is replaced; the differing unit is warned about.
        TagSettings(
            name="ahu1.supply_temp_c",
            asset="ahu1",
            node_id="ns=2;s=ahu1.supply_temp_c",
            unit="degC",
            eu_low=0.0,
            eu_high=50.0,
        ),
        TagSettings(name=PLAIN, asset="ahu1", node_id=f"ns=2;s={PLAIN}"),
    ]


async def subscribe_once(source: OpcUaSource, timeout_s: float = 10.0) -> None:
    """Run ``source`` until it has connected and subscribed (its ranges read), then stop it."""
    task = asyncio.create_task(source.run())
    try:
        assert await source.wait_connected(timeout_s), source.last_error
    finally:
        task.cancel()
        await asyncio.wait({task})


async def _connect(url: str, tags: Sequence[TagSettings], **over: Any) -> tuple[OpcUaSource, Windows, Metrics]:
    s = OpcUaSourceSettings(name="plant", url=url, publishing_interval_ms=50.0, connect_timeout_s=2.0, **over)
    metrics = Metrics(CollectorRegistry())
    windows = Windows(tags, WindowSettings(context_steps=8, allowed_lateness_s=0.0), metrics)
    queue = SampleQueue(capacity=10_000, on_drop=lambda n: None)
    source = OpcUaSource(s, tags, metrics, queue, on_ranges=windows.set_engineering_ranges)
    return source, windows, metrics


async def test_eu_ranges_of_analog_items_reach_the_windows_and_a_bad_one_is_counted_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tags = _tags()
    async with asyncio.timeout(20), analog_server() as url:
        source, windows, metrics = await _connect(url, tags)
        with caplog.at_level(logging.INFO, logger="sentinelle.sources.opcua_ranges"):
            await subscribe_once(source)
        assert source.engineering is not None and source.engineering.report is not None
        report = source.engineering.report
        assert report.ranges == (EngineeringRange("ahu1.valve_pct", 0.0, 100.0),)
        assert report.origins == {
            "ahu1.valve_pct": "server",
            "ahu1.bad_range": "online",
            "ahu1.supply_temp_c": "configuration",
            PLAIN: "online",
        }
        bad = metrics.registry.get_sample_value(
            "sentinelle_source_errors_total", {"source": "plant", "kind": "bad_eu_range"}
        )
        assert bad == 1.0
        assert (
            metrics.registry.get_sample_value("sentinelle_source_errors_total", {"source": "plant", "kind": "bad_node"})
            == 0.0
        ), "a bad range does not stop the tag being subscribed"
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert "ahu1.bad_range: EURange skipped, low (5.0) not below high (5.0)" in text
        assert "configured unit 'degC', the server's EngineeringUnits '°F'" in text
        assert "ahu1.valve_pct: configured unit" not in text  # % and % agree
        assert "1 configured, 1 from the server (EURange), 2 learned online (1 with a bad EURange)" in text

        # What the windows carry to the detectors from the next slot on: the read range only.
        batches: list[WindowBatch] = []
        for ts in (100.0, 101.0, 102.0):
            batches += windows.ingest([Sample(t.name, ts, 1.0) for t in tags])
        low, high = batches[-1].eu_low, batches[-1].eu_high
        assert low is not None and high is not None
        np.testing.assert_array_equal(low, [0.0, np.nan, np.nan, np.nan])
        np.testing.assert_array_equal(high, [100.0, np.nan, np.nan, np.nan])


async def test_with_read_eu_range_off_nothing_is_read() -> None:
    tags = _tags()
    async with asyncio.timeout(20), analog_server() as url:
        source, windows, _ = await _connect(url, tags, read_eu_range=False)
        await subscribe_once(source)
        assert source.engineering is None
        assert all(g.eu_low is None for g in windows.groups)
