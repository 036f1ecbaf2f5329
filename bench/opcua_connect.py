"""Time to connect to an OPC-UA server, unsecured against secured, as the live source connects.

One connection = what :class:`~sentinelle.sources.opcua.OpcUaSource` does at start and at
every reconnect: apply the security settings (for a secured policy: ask for the endpoints, load
the trust folder, check the server's certificate) and ``connect`` (socket, hello, secure channel,
CreateSession, ActivateSession with user and password), then disconnect.  The first connection of
a case is reported apart (``first_ms``: the private key is parsed then, ~150 ms, and cached).  Against the
simulator's asyncua server and, when installed (``deploy/node-opcua/node-opcua.sh install``),
the independent node-opcua server.  Certificates are made in a temporary folder.

Writes ``bench/results/opcua_connect.json`` with the machine it ran on.

    python bench/opcua_connect.py --connections 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from asyncua.client.client import Client
from pydantic import SecretStr

from _machine import write_result
from sentinelle.settings import OpcUaSourceSettings, SimulatorSettings
from sentinelle.sim import ChillerServer
from sentinelle.sources.opcua_security import ClientSecurity, make_certificate

USER, PASSWORD = "bench", "bench-Pa55"
CASES = (
    ("None", "SignAndEncrypt"),
    ("Basic256Sha256", "Sign"),
    ("Basic256Sha256", "SignAndEncrypt"),
    ("Aes128_Sha256_RsaOaep", "SignAndEncrypt"),
    ("Aes256_Sha256_RsaPss", "SignAndEncrypt"),
)
PEER = Path(__file__).resolve().parents[1] / "deploy" / "node-opcua"


async def connect_once(settings: OpcUaSourceSettings, security: ClientSecurity) -> float:
    began = time.perf_counter()
    client = Client(settings.url, timeout=settings.connect_timeout_s)
    await security.apply(client)
    await client.connect()
    elapsed = time.perf_counter() - began
    await client.disconnect()
    return elapsed


async def measure(base: dict[str, Any], n: int, server_name: str, *, none_ok: bool) -> list[dict[str, Any]]:
    rows = []
    for policy, mode in CASES:
        if policy == "None" and not none_ok:
            continue
        over: dict[str, Any] = {"security_policy": policy, "security_mode": mode}
        settings = OpcUaSourceSettings(**(base | over))
        # One ClientSecurity per source, as in the daemon: the key is parsed at the first connect only.
        security = ClientSecurity(settings)
        first = await connect_once(settings, security)
        times = [await connect_once(settings, security) for _ in range(n)]
        ms = sorted(t * 1000 for t in times)
        row = {
            "server": server_name,
            "policy": policy,
            "mode": mode if policy != "None" else "None",
            "connections": n,
            "first_ms": round(first * 1000, 1),
            "median_ms": round(statistics.median(ms), 1),
            "p90_ms": round(ms[int(0.9 * (n - 1))], 1),
        }
        print(
            f"{server_name:10} {policy:22} {row['mode']:15} median {row['median_ms']:6.1f} ms  p90 {row['p90_ms']:6.1f}"
        )
        rows.append(row)
    return rows


async def main_async(n: int) -> list[dict[str, Any]]:
    d = Path(tempfile.mkdtemp(prefix="opcua-connect-"))
    try:
        make_certificate(d / "server.der", d / "server.pem", application_uri="urn:bench:server", server=True)
        make_certificate(d / "client.der", d / "client.pem", application_uri="urn:bench:client")
        for sub in ("trusted-servers", "trusted-clients"):
            (d / sub).mkdir()
        shutil.copy(d / "server.der", d / "trusted-servers")
        shutil.copy(d / "client.der", d / "trusted-clients")
        sim = SimulatorSettings(
            port=0,
            security_policies=("None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"),
            certificate_path=d / "server.der",
            private_key_path=d / "server.pem",
            trusted_client_certs_dir=d / "trusted-clients",
            username=USER,
            password=SecretStr(PASSWORD),
        )
        base: dict[str, Any] = {
            "certificate_path": d / "client.der",
            "private_key_path": d / "client.pem",
            "trusted_server_certs_dir": d / "trusted-servers",
            "username": USER,
            "password": PASSWORD,
        }
        rows: list[dict[str, Any]] = []
        async with ChillerServer(sim) as server:
            rows += await measure(base | {"url": server.url}, n, "asyncua", none_ok=True)
        if (PEER / "node_modules" / "node-opcua").is_dir():
            rows += await measure_node(base, d, n)
        return rows
    finally:
        shutil.rmtree(d, ignore_errors=True)


async def measure_node(base: dict[str, Any], d: Path, n: int) -> list[dict[str, Any]]:
    pki = d / "node-pki"
    (pki / "trusted" / "certs").mkdir(parents=True)
    shutil.copy(d / "client.der", pki / "trusted" / "certs")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"NODE_OPCUA_USER": USER, "NODE_OPCUA_PASSWORD": PASSWORD}
    cert_out = d / "trusted-servers" / "node-opcua.der"
    proc = await asyncio.create_subprocess_exec(
        "node", str(PEER / "server.js"), str(port), str(pki), str(cert_out), env=env, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        url = ""
        async with asyncio.timeout(60):
            while not url:
                line = (await proc.stdout.readline()).decode()
                if not line:
                    raise RuntimeError("node-opcua server exited")
                if line.startswith("listening "):
                    url = line.split()[1]
        drain = asyncio.create_task(proc.stdout.read())
        rows = await measure(base | {"url": url}, n, "node-opcua", none_ok=False)
        drain.cancel()
        return rows
    finally:
        proc.terminate()
        await proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=30, help="timed connections per case (default 30)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "opcua_connect.json")
    args = p.parse_args()
    rows = asyncio.run(main_async(args.connections))
    write_result(args.out, "opcua_connect", "cpu", {"connections": args.connections, "user_token": "UserName"}, rows)


if __name__ == "__main__":
    main()
