"""The simulator's OPC-UA server against a plain asyncua client on loopback.

Each test starts a :class:`ChillerServer` on a free port at 20× real time, so a
simulated second lasts 50 ms.  Waits are on events and queues, all bounded by
``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.status_codes import StatusCodes

from sentinelle.settings import FaultSettings, SimulatorSettings
from sentinelle.sim import NAMESPACE_URI, ChillerServer, chiller_tags

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

START_TS = 1_700_000_000.0  # 2023-11-14T22:13:20Z
WATCHED = ("chiller1.chw_temp_c", "chiller1.power_kw", "chiller1.pump1_speed_pct")


class _Collector:
    """asyncua subscription handler: every data change into a queue."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, ua.DataValue]] = asyncio.Queue()

    def datachange_notification(self, node: Any, value: Any, data: Any) -> None:
        self.queue.put_nowait((node.nodeid.to_string(), data.monitored_item.Value))


@asynccontextmanager
async def _running(settings: SimulatorSettings) -> AsyncIterator[ChillerServer]:
    async with ChillerServer(settings) as server:
        task = asyncio.create_task(server.run())
        try:
            await server.wait_started()
            yield server
        finally:
            server.stop()
            await task


async def test_subscription_gets_increasing_simulated_timestamps(tmp_path: Path) -> None:
    ground_truth = tmp_path / "truth" / "faults.jsonl"
    settings = SimulatorSettings(
        port=0,
        time_scale=20.0,
        start_ts=START_TS,
        seed=7,
        faults=(FaultSettings(kind="sensor_drift", onset_s=30.0, duration_s=60.0),),
        ground_truth_path=ground_truth,
    )
    async with asyncio.timeout(30), _running(settings) as server:
        assert server.url == f"opc.tcp://127.0.0.1:{server.port}/sentinelle/"
        assert server.port != 0
        watched_ids = {server.node_ids[name]: name for name in WATCHED}
        collector = _Collector()
        async with Client(server.url) as client:
            subscription = await client.create_subscription(50, collector)
            await subscription.subscribe_data_change([client.get_node(node_id) for node_id in watched_ids])
            seen: dict[str, list[datetime]] = {node_id: [] for node_id in watched_ids}
            while min(len(stamps) for stamps in seen.values()) < 8:
                node_id, value = await collector.queue.get()
                assert value.StatusCode is not None and value.StatusCode.is_good()
                assert value.Value is not None and isinstance(value.Value.Value, float)
                assert value.SourceTimestamp is not None and value.ServerTimestamp is not None
                seen[node_id].append(value.SourceTimestamp)
            await subscription.delete()

    for node_id, stamps in seen.items():
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), watched_ids[node_id]
        # Simulated time: from start_ts in whole sample periods, far from the wall clock.
        first = stamps[0].timestamp()
        assert START_TS <= first < START_TS + 600, watched_ids[node_id]
        assert all((s.timestamp() - START_TS) % 1.0 == pytest.approx(0.0, abs=1e-3) for s in stamps)

    lines = ground_truth.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "kind": "sensor_drift",
            "asset": "chiller1",
            "tags": ["chiller1.chw_temp_c"],
            "start_ts": START_TS + 30.0,
            "end_ts": START_TS + 90.0,
            "start": "2023-11-14T22:13:50.000Z",
            "end": "2023-11-14T22:14:50.000Z",
        }
    ]


async def test_restart_on_same_port_keeps_node_ids() -> None:
    settings = SimulatorSettings(port=0, time_scale=20.0, extra_tags=60)
    async with asyncio.timeout(60):
        async with _running(settings) as first:
            port, node_ids = first.port, dict(first.node_ids)
            async with Client(first.url) as client:
                before = await _read_all(client, node_ids.values())
                namespace_index = await client.get_namespace_index(NAMESPACE_URI)

        again = settings.model_copy(update={"port": port})
        async with _running(again) as second:
            assert second.port == port
            assert dict(second.node_ids) == node_ids
            async with Client(second.url) as client:
                after = await _read_all(client, node_ids.values())
                assert await client.get_namespace_index(NAMESPACE_URI) == namespace_index == 2

    assert set(before) == set(after) == set(node_ids.values())
    assert node_ids["chiller1.chw_temp_c"] == "ns=2;s=chiller1.chw_temp_c"
    assert node_ids["bench.t00042"] == "ns=2;s=bench.t00042"
    # The daemon's tag configuration reads exactly the nodes the server has.
    assert {t.name: t.node_id for t in chiller_tags(settings)} == node_ids


async def _read_all(client: Client, node_ids: Any) -> dict[str, float]:
    nodes = [client.get_node(node_id) for node_id in node_ids]
    values = await client.read_values(nodes)
    assert all(isinstance(v, float) for v in values)
    return {node.nodeid.to_string(): v for node, v in zip(nodes, values, strict=True)}


async def test_before_run_values_are_not_data() -> None:
    """A client connecting before run() must see 'waiting for initial data', not a fake 0.0."""
    async with asyncio.timeout(30), ChillerServer(SimulatorSettings(port=0)) as server:
        async with Client(server.url) as client:
            node = client.get_node(server.node_ids["chiller1.chw_temp_c"])
            value = await node.read_data_value(raise_on_bad_status=False)
        assert value.StatusCode is not None
        assert value.StatusCode.value == StatusCodes.BadWaitingForInitialData
        assert server.sim_start_ts is None
