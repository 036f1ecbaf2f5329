"""Fixtures for integration tests: real Kafka, Prometheus and PostgreSQL on loopback.

The servers are started by ``make test`` (``deploy/services.sh start``), which
exports their addresses.  A test that needs one and runs without it fails with
a message saying how to run it — it does not skip, so a broken set-up cannot
pass unnoticed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the integration tests through `make test`, which starts the servers")
    return value


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """host:port of the real Kafka broker started by deploy/kafka/kafka.sh."""
    return _required_env("SENTINELLE_TEST_KAFKA_BOOTSTRAP")


@pytest.fixture(scope="session")
def prometheus_url() -> str:
    """Base URL of the real Prometheus started by deploy/prometheus/prometheus.sh."""
    return _required_env("SENTINELLE_TEST_PROMETHEUS_URL")


@pytest.fixture(scope="session")
def prometheus_targets_dir() -> Path:
    """Directory whose *.json file_sd target files Prometheus scrapes."""
    return Path(_required_env("SENTINELLE_TEST_PROMETHEUS_TARGETS_DIR"))


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """DSN of the throwaway PostgreSQL cluster started by deploy/postgres/postgres.sh (trust auth, loopback)."""
    return _required_env("SENTINELLE_TEST_POSTGRES_DSN")


@pytest.fixture(scope="session")
def kafka_tls() -> dict[str, str]:
    """The test Kafka's secured listeners (deploy/kafka/kafka.sh): addresses and the files made at start.

    ``sasl_bootstrap`` (SASL_SSL: SCRAM-SHA-512 and PLAIN), ``ssl_bootstrap`` (SSL, client
    certificate required), ``ca``, ``client_cert``, ``client_key``, ``user``, ``password``.
    """
    tls = Path(_required_env("SENTINELLE_TEST_KAFKA_TLS_DIR"))
    return {
        "sasl_bootstrap": _required_env("SENTINELLE_TEST_KAFKA_SASL_BOOTSTRAP"),
        "ssl_bootstrap": _required_env("SENTINELLE_TEST_KAFKA_SSL_BOOTSTRAP"),
        "ca": str(tls / "ca.pem"),
        "client_cert": str(tls / "client.pem"),
        "client_key": str(tls / "client.key"),
        "user": "sentinelle",
        "password": (tls / "sasl-password").read_text().strip(),
    }
