"""Secured OPC-UA against an independent server: node-opcua (npm), not asyncua on both ends.

``deploy/node-opcua/node-opcua.sh install`` (run by ``tests/run-all.sh``) installs node-opcua
from its lock file; one ``deploy/node-opcua/server.js`` is started for this module with its own
PKI folder in ``tmp_path``.  It makes its own certificate (written out for our trust folder),
offers only secured endpoints, trusts only the client certificate the fixture put into its
``trusted/certs`` and accepts one user.  Skipped (with the reason) only where node or npm is
not installed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from sentinelle.metrics import Metrics
from sentinelle.queues import SampleQueue
from sentinelle.records import EngineeringRange, Sample
from sentinelle.settings import OpcUaSourceSettings, TagSettings
from sentinelle.sources.opcua import OpcUaSource
from sentinelle.sources.opcua_security import make_certificate

from .test_opcua_eu_range import subscribe_once

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

PEER_DIR = Path(__file__).resolve().parents[2] / "deploy" / "node-opcua"
TAGS = ("chiller1.chw_temp_c", "chiller1.power_kw")
VALVE = "chiller1.valve_pct"
"""An AnalogItemType variable: EURange 0 … 100, EngineeringUnits percent."""
USER, PASSWORD = "operator", "n0de-Pa55"
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Peer:
    url: str
    trusted_servers: Path
    """Our trust folder, holding node-opcua's certificate."""
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def peer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Peer]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed: the node-opcua interoperability tests need them (apt-get install npm)")
    if not (PEER_DIR / "node_modules" / "node-opcua").is_dir():
        pytest.fail("node-opcua is not installed: run deploy/node-opcua/node-opcua.sh install (tests/run-all.sh does)")
    d = tmp_path_factory.mktemp("node-peer")
    make_certificate(d / "client.der", d / "client.pem", application_uri="urn:test:client", hostnames=["localhost"])
    make_certificate(d / "stranger.der", d / "stranger.pem", application_uri="urn:test:client")
    pki = d / "server-pki"
    (pki / "trusted" / "certs").mkdir(parents=True)
    shutil.copy(d / "client.der", pki / "trusted" / "certs" / "client.der")
    trusted_servers = d / "trusted-servers"
    trusted_servers.mkdir()
    env = os.environ | {"NODE_OPCUA_USER": USER, "NODE_OPCUA_PASSWORD": PASSWORD}
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(PEER_DIR / "server.js"),
        str(_free_port()),
        str(pki),
        str(trusted_servers / "node-opcua.der"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    out: list[str] = []
    url = ""
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while not url:
                line = (await proc.stdout.readline()).decode(errors="replace")
                if not line:
                    pytest.fail(f"node-opcua server exited: {''.join(out)[-2000:]}")
                out.append(line)
                if line.startswith("listening "):
                    url = line.split()[1]
        # Keep reading its output so that it never blocks on a full pipe.
        drain = asyncio.create_task(proc.stdout.read())
        yield Peer(url, trusted_servers, d / "client.der", d / "client.pem", d / "stranger.der", d / "stranger.pem")
    finally:
        if proc.returncode is None:
            proc.terminate()
            async with asyncio.timeout(10):
                await proc.wait()
    drain.cancel()


def settings(peer: Peer, **over: Any) -> OpcUaSourceSettings:
    base: dict[str, Any] = {
        "url": peer.url,
        "publishing_interval_ms": 50.0,
        "connect_timeout_s": 5.0,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.5,
        "security_policy": "Basic256Sha256",
        "security_mode": "SignAndEncrypt",
        "certificate_path": peer.client_cert,
        "private_key_path": peer.client_key,
        "trusted_server_certs_dir": peer.trusted_servers,
        "username": USER,
        "password": PASSWORD,
    }
    return OpcUaSourceSettings(**(base | over))


class Running:
    def __init__(self, s: OpcUaSourceSettings) -> None:
        self.registry = CollectorRegistry()
        self.queue = SampleQueue(capacity=100_000, on_drop=lambda n: None)
        tags = [TagSettings(name=t, asset="chiller1", node_id=f"ns=1;s={t}") for t in TAGS]
        self.source = OpcUaSource(s, tags, Metrics(self.registry), self.queue)

    def errors(self, kind: str) -> float:
        value = self.registry.get_sample_value("sentinelle_source_errors_total", {"source": "plant", "kind": kind})
        return value or 0.0

    async def samples(self, n: int) -> list[Sample]:
        got: list[Sample] = []
        async with asyncio.timeout(10.0):
            while len(got) < n:
                got.extend(await self.queue.get())
        return got

    async def refused(self) -> str:
        async with asyncio.timeout(15.0):
            while self.errors("security") == 0:
                await asyncio.sleep(0.02)
        assert not self.source.connected
        assert self.source.last_error is not None
        return self.source.last_error


@asynccontextmanager
async def running(s: OpcUaSourceSettings) -> AsyncIterator[Running]:
    r = Running(s)
    task = asyncio.create_task(r.source.run())
    try:
        yield r
    finally:
        task.cancel()
        await asyncio.wait({task})


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("policy", "mode"),
    [
        ("Basic256Sha256", "SignAndEncrypt"),
        ("Aes128_Sha256_RsaOaep", "Sign"),
        ("Aes256_Sha256_RsaPss", "SignAndEncrypt"),
    ],
)
async def test_secured_session_with_node_opcua_delivers_samples(peer: Peer, policy: str, mode: str) -> None:
    async with running(settings(peer, security_policy=policy, security_mode=mode)) as r:
        assert await r.source.wait_connected(15.0), r.source.last_error
        samples = await r.samples(6)
        assert {s.tag for s in samples} <= set(TAGS)
        by_tag = [s.value for s in samples if s.tag == TAGS[0]]
        counts = [v for v in by_tag if isinstance(v, int | float)]
        assert counts == by_tag, "the peer's counter is a number"
        assert len(counts) >= 2 and counts == sorted(counts), "the peer counts up every 50 ms"


@pytest.mark.asyncio(loop_scope="module")
async def test_node_opcua_refuses_a_client_certificate_it_does_not_trust(peer: Peer) -> None:
    async with running(settings(peer, certificate_path=peer.stranger_cert, private_key_path=peer.stranger_key)) as r:
        reason = await r.refused()
        assert "server refused to open a secure channel" in reason, reason
        assert str(peer.stranger_cert) in reason


@pytest.mark.asyncio(loop_scope="module")
async def test_node_opcua_wrong_password_is_a_clear_error(peer: Peer) -> None:
    async with running(settings(peer, password="wrong")) as r:
        reason = await r.refused()
        assert f"server refused user {USER!r}" in reason, reason


@pytest.mark.asyncio(loop_scope="module")
async def test_node_opcua_certificate_not_in_our_trust_folder_is_refused(peer: Peer, tmp_path: Path) -> None:
    empty = tmp_path / "trusted"
    empty.mkdir()
    async with running(settings(peer, trusted_server_certs_dir=empty)) as r:
        reason = await r.refused()
        assert "server certificate not trusted" in reason, reason


@pytest.mark.asyncio(loop_scope="module")
async def test_node_opcua_analog_item_s_eu_range_is_read(peer: Peer) -> None:
    """An AnalogItemType variable made by another stack: its EURange becomes the tag's range, its unit is compared."""
    tags = [
        TagSettings(name=VALVE, asset="chiller1", node_id=f"ns=1;s={VALVE}", unit="%"),
        TagSettings(name=TAGS[0], asset="chiller1", node_id=f"ns=1;s={TAGS[0]}", unit="degC"),
    ]
    handed: list[Sequence[EngineeringRange]] = []
    queue = SampleQueue(capacity=100_000, on_drop=lambda n: None)
    source = OpcUaSource(settings(peer), tags, Metrics(CollectorRegistry()), queue, on_ranges=handed.append)
    await subscribe_once(source, 15.0)
    assert handed == [(EngineeringRange(VALVE, 0.0, 100.0),)]
    assert source.engineering is not None and source.engineering.report is not None
    assert source.engineering.report.origins == {VALVE: "server", TAGS[0]: "online"}  # a plain variable: none
    assert source.engineering.report.unit_mismatch == {}  # node-opcua's percent is "%"
