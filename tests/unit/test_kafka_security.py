"""Kafka security settings and aiokafka arguments, without a broker (the broker tests are in
tests/integration/test_kafka_security.py)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from sentinelle.errors import ConfigError
from sentinelle.settings import KafkaSettings
from sentinelle.sinks.kafka_security import kafka_security_kwargs


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"security_protocol": "SASL_SSL", "sasl_username": "u"}, "required with security_protocol SASL_SSL"),
        ({"security_protocol": "SSL", "ssl_certificate_path": "c.pem"}, "set both or neither"),
        ({"sasl_username": "u"}, "security_protocol is PLAINTEXT"),
        ({"ssl_ca_path": "ca.pem"}, "security_protocol is PLAINTEXT"),
    ],
)
def test_contradictory_security_settings_are_refused(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        KafkaSettings(**over)


def test_sasl_ssl_arguments_carry_the_password_and_a_verifying_context() -> None:
    settings = KafkaSettings(
        security_protocol="SASL_SSL", sasl_username="sentinelle", sasl_password=SecretStr("pw"), sasl_mechanism="PLAIN"
    )
    kw = kafka_security_kwargs(settings)
    assert kw["security_protocol"] == "SASL_SSL"
    assert (kw["sasl_mechanism"], kw["sasl_plain_username"], kw["sasl_plain_password"]) == ("PLAIN", "sentinelle", "pw")
    context: ssl.SSLContext = kw["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_an_unreadable_ca_is_a_config_error(tmp_path: Path) -> None:
    settings = KafkaSettings(security_protocol="SSL", ssl_ca_path=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match=r"kafka: cannot load the TLS files"):
        kafka_security_kwargs(settings)
