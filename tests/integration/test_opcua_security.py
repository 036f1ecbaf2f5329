"""Secured OPC-UA: the live source against the simulator's secured endpoints on loopback.

Certificates are made at test time (``make_certificate``, as ``sentinelle make-cert`` does)
in ``tmp_path``: one for the server, one for the client, and a stranger of each kind.  Each
test starts a :class:`ChillerServer` with the endpoints, trusted client certificates and
user it needs, runs :class:`OpcUaSource` against it, and checks either that samples flow or
that the refusal is explained (``last_error``, the ``security`` error count).  Waits poll,
bounded by ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from sentinelle.metrics import Metrics
from sentinelle.queues import SampleQueue
from sentinelle.records import Sample
from sentinelle.settings import OpcUaSourceSettings, SimulatorSettings, TagSettings
from sentinelle.sim import ChillerServer
from sentinelle.sources.opcua import OpcUaSource
from sentinelle.sources.opcua_security import make_certificate

from .daemon_proc import run_daemon

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

TAGS = ("chiller1.chw_temp_c", "chiller1.power_kw")
USER, PASSWORD = "sentinelle", "s3cret-Pa55"


@dataclass(frozen=True)
class Pki:
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    trusted_servers: Path
    """The client's trust folder: holds the server's certificate."""
    trusted_clients: Path
    """The server's trust folder: holds the client's certificate."""
    other_server_cert: Path
    other_server_key: Path
    other_client_cert: Path
    other_client_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    names = ("localhost", "127.0.0.1")
    server_uri = "urn:test:server"
    make_certificate(d / "server.der", d / "server.pem", application_uri=server_uri, hostnames=names, server=True)
    make_certificate(d / "client.der", d / "client.pem", application_uri="urn:test:client", hostnames=names)
    make_certificate(d / "other-server.der", d / "other-server.pem", application_uri="urn:test:server", server=True)
    make_certificate(d / "other-client.der", d / "other-client.pem", application_uri="urn:test:client")
    (d / "trusted-servers").mkdir()
    (d / "trusted-clients").mkdir()
    shutil.copy(d / "server.der", d / "trusted-servers" / "server.der")
    shutil.copy(d / "client.der", d / "trusted-clients" / "client.der")
    return Pki(
        server_cert=d / "server.der",
        server_key=d / "server.pem",
        client_cert=d / "client.der",
        client_key=d / "client.pem",
        trusted_servers=d / "trusted-servers",
        trusted_clients=d / "trusted-clients",
        other_server_cert=d / "other-server.der",
        other_server_key=d / "other-server.pem",
        other_client_cert=d / "other-client.der",
        other_client_key=d / "other-client.pem",
    )


def sim_settings(pki: Pki, **over: Any) -> SimulatorSettings:
    base: dict[str, Any] = {
        "port": 0,
        "time_scale": 20.0,
        "security_policies": ("Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"),
        "certificate_path": pki.server_cert,
        "private_key_path": pki.server_key,
        "trusted_client_certs_dir": pki.trusted_clients,
        "username": USER,
        "password": PASSWORD,
    }
    return SimulatorSettings(**(base | over))


def source_settings(pki: Pki, url: str, **over: Any) -> OpcUaSourceSettings:
    base: dict[str, Any] = {
        "url": url,
        "publishing_interval_ms": 50.0,
        "connect_timeout_s": 4.0,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.2,
        "security_policy": "Basic256Sha256",
        "security_mode": "SignAndEncrypt",
        "certificate_path": pki.client_cert,
        "private_key_path": pki.client_key,
        "trusted_server_certs_dir": pki.trusted_servers,
        "username": USER,
        "password": PASSWORD,
    }
    return OpcUaSourceSettings(**(base | over))


@asynccontextmanager
async def simulator(settings: SimulatorSettings) -> AsyncIterator[ChillerServer]:
    async with ChillerServer(settings) as server:
        task = asyncio.create_task(server.run())
        try:
            await server.wait_started()
            yield server
        finally:
            server.stop()
            await task


class Running:
    """An OpcUaSource running in a task, with its own registry and queue."""

    def __init__(self, settings: OpcUaSourceSettings) -> None:
        self.registry = CollectorRegistry()
        self.queue = SampleQueue(capacity=100_000, on_drop=lambda n: None)
        tags = [TagSettings(name=t, asset="chiller1", node_id=f"ns=2;s={t}") for t in TAGS]
        self.source = OpcUaSource(settings, tags, Metrics(self.registry), self.queue)
        self.task: asyncio.Task[None] | None = None

    def errors(self, kind: str) -> float:
        value = self.registry.get_sample_value("sentinelle_source_errors_total", {"source": "plant", "kind": kind})
        return value or 0.0

    async def samples(self, n: int, timeout_s: float = 10.0) -> list[Sample]:
        got: list[Sample] = []
        async with asyncio.timeout(timeout_s):
            while len(got) < n:
                got.extend(await self.queue.get())
        return got

    async def refused(self, timeout_s: float = 10.0) -> str:
        """Wait for the first security refusal and return its explanation."""
        async with asyncio.timeout(timeout_s):
            while self.errors("security") == 0:
                await asyncio.sleep(0.02)
        assert not self.source.connected
        assert self.source.last_error is not None
        return self.source.last_error


@asynccontextmanager
async def running(settings: OpcUaSourceSettings) -> AsyncIterator[Running]:
    r = Running(settings)
    r.task = asyncio.create_task(r.source.run())
    try:
        yield r
    finally:
        r.task.cancel()
        await asyncio.wait({r.task})


@pytest.mark.parametrize(
    ("policy", "mode"),
    [
        ("Basic256Sha256", "SignAndEncrypt"),
        ("Aes256_Sha256_RsaPss", "Sign"),
        ("Aes128_Sha256_RsaOaep", "SignAndEncrypt"),
    ],
)
async def test_secured_connection_delivers_samples(pki: Pki, policy: str, mode: str) -> None:
    async with (
        simulator(sim_settings(pki)) as server,
        running(source_settings(pki, server.url, security_policy=policy, security_mode=mode)) as r,
    ):
        assert await r.source.wait_connected(10.0), r.source.last_error
        samples = await r.samples(4)
        assert {s.tag for s in samples} <= set(TAGS)
        assert all(isinstance(s.value, float) for s in samples)
        assert r.errors("security") == 0


async def test_untrusted_server_certificate_is_refused_then_trusted_without_restart(pki: Pki, tmp_path: Path) -> None:
    trust = tmp_path / "trusted"
    trust.mkdir()
    shutil.copy(pki.other_server_cert, trust / "other.der")  # trusts someone, not this server
    async with (
        simulator(sim_settings(pki)) as server,
        running(source_settings(pki, server.url, trusted_server_certs_dir=trust)) as r,
    ):
        reason = await r.refused()
        assert "server certificate not trusted" in reason
        assert str(trust) in reason
        assert len(r.queue) == 0
        # The admin checks the thumbprint and trusts the certificate: the next retry connects.
        shutil.copy(pki.server_cert, trust / "server.der")
        assert await r.source.wait_connected(10.0), r.source.last_error
        await r.samples(2)


async def test_server_with_another_certificate_is_refused(pki: Pki) -> None:
    """Same application URI, different key: an impostor is not trusted because of its name."""
    settings = sim_settings(pki, certificate_path=pki.other_server_cert, private_key_path=pki.other_server_key)
    async with simulator(settings) as server, running(source_settings(pki, server.url)) as r:
        assert "server certificate not trusted" in await r.refused()


async def test_client_certificate_the_server_does_not_trust_is_refused(pki: Pki) -> None:
    async with (
        simulator(sim_settings(pki)) as server,
        running(
            source_settings(
                pki, server.url, certificate_path=pki.other_client_cert, private_key_path=pki.other_client_key
            )
        ) as r,
    ):
        reason = await r.refused()
        assert "server refused our client certificate" in reason
        assert str(pki.other_client_cert) in reason


async def test_wrong_password_is_a_clear_error(pki: Pki) -> None:
    async with (
        simulator(sim_settings(pki)) as server,
        running(source_settings(pki, server.url, password="not-the-password")) as r,
    ):
        reason = await r.refused()
        assert f"server refused user {USER!r}" in reason
        assert "wrong user name or password" in reason
        assert "not-the-password" not in reason


async def test_policy_the_server_does_not_offer_is_named(pki: Pki) -> None:
    settings = sim_settings(pki, security_policies=("Basic256Sha256",))
    async with (
        simulator(settings) as server,
        running(source_settings(pki, server.url, security_policy="Aes256_Sha256_RsaPss")) as r,
    ):
        reason = await r.refused()
        assert "the server does not offer Aes256_Sha256_RsaPss/SignAndEncrypt" in reason
        assert "Basic256Sha256/SignAndEncrypt" in reason


async def test_unsecured_client_cannot_use_a_secured_only_server(pki: Pki) -> None:
    """A server offering only secured endpoints refuses a policy-None client (asyncua: no matching endpoint)."""
    async with (
        simulator(sim_settings(pki, username=None, password=None)) as server,
        running(
            OpcUaSourceSettings(url=server.url, connect_timeout_s=4.0, reconnect_initial_s=0.05, reconnect_max_s=0.2)
        ) as r,
    ):
        async with asyncio.timeout(10.0):
            while r.errors("connect") + r.errors("security") == 0:
                await asyncio.sleep(0.02)
        assert not r.source.connected


async def test_run_exits_69_naming_the_refusal_when_the_source_is_required(pki: Pki, tmp_path: Path) -> None:
    """``required_at_start``: the exit-69 message carries the security reason, not just "unreachable"."""
    empty = tmp_path / "trusted"
    empty.mkdir()
    async with simulator(sim_settings(pki)) as server:
        config = tmp_path / "sentinelle.toml"
        config.write_text(
            f"""
[[sources]]
name = "plant"
url = "{server.url}"
connect_timeout_s = 3.0
required_at_start = true
security_policy = "Basic256Sha256"
certificate_path = "{pki.client_cert}"
private_key_path = "{pki.client_key}"
trusted_server_certs_dir = "{empty}"
username = "{USER}"
[[tags]]
name = "chiller1.chw_temp_c"
asset = "chiller1"
node_id = "ns=2;s=chiller1.chw_temp_c"
[forecast]
forecaster = "holt"
[kafka]
enabled = false
[prometheus]
enabled = false
"""
        )
        code, stderr = await run_daemon(config, {"SENTINELLE_SOURCES__0__PASSWORD": PASSWORD})
    assert code == 69, stderr[-2000:]
    assert "unreachable at start: server certificate not trusted" in stderr, stderr[-2000:]
    assert PASSWORD not in stderr


async def test_x509_user_token_is_accepted_and_an_unknown_one_refused(pki: Pki, tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.mkdir()
    make_certificate(tmp_path / "user.der", tmp_path / "user.pem", application_uri="urn:test:user:ana")
    make_certificate(tmp_path / "eve.der", tmp_path / "eve.pem", application_uri="urn:test:user:eve")
    shutil.copy(tmp_path / "user.der", users / "ana.der")
    settings = sim_settings(pki, username=None, password=None, user_certificates_dir=users)
    x509_user: dict[str, Any] = {"username": None, "password": None}

    def token(name: str) -> dict[str, Any]:
        return x509_user | {
            "user_certificate_path": tmp_path / f"{name}.der",
            "user_private_key_path": tmp_path / f"{name}.pem",
        }

    async with simulator(settings) as server:
        ana = token("user")
        async with running(source_settings(pki, server.url, **ana)) as r:
            assert await r.source.wait_connected(10.0), r.source.last_error
            await r.samples(2)
        eve = token("eve")
        async with running(source_settings(pki, server.url, **eve)) as r:
            reason = await r.refused()
            assert f"server refused the user certificate {tmp_path / 'eve.der'}" in reason, reason
        # Anonymous is not offered when only X.509 users are: refused as well, and said so.
        async with running(source_settings(pki, server.url, **x509_user)) as r:
            reason = await r.refused()
            assert "anonymous" in reason, reason
