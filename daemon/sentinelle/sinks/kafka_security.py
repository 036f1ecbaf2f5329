"""Kafka TLS and SASL for the alert producer (``sinks/kafka.py``) and the command consumer
(``sources/commands.py``) alike: one place that turns ``[kafka]`` into aiokafka's arguments and
aiokafka's vague connection failures into reasons an admin can act on.

aiokafka reports a refused login, an untrusted broker certificate and a broker that drops a
client without a certificate all as ``KafkaConnectionError: Unable to bootstrap``; the cause is
only in its log line ("Unable connect to …: [Error 58] SaslAuthenticationFailed …").
:func:`explain_connect_failure` reads that line (a logging filter keeps the last one) and names
the setting to change.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any, Final

from aiokafka.helpers import create_ssl_context

from ..errors import ConfigError
from ..settings import KafkaSettings

__all__ = ["explain_connect_failure", "kafka_security_kwargs"]

_AIOKAFKA_CLIENT: Final = "aiokafka"
"""The logger aiokafka's client logs "Unable connect to …" on (a filter sees only its own logger's records)."""


class _LastConnectFailure(logging.Filter):
    """Remembers aiokafka's last "Unable connect to" message.

    ``silent``: the logger had been silenced (``sentinelle run`` sets it to CRITICAL: aiokafka
    logs every retry); its level is lowered to ERROR so that this filter sees the message, and
    the filter drops every record, so it stays silent.
    """

    def __init__(self, *, silent: bool) -> None:
        super().__init__()
        self.last: str | None = None
        self.silent = silent

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Unable connect to"):
            self.last = record.getMessage()
        return not self.silent


def _failures() -> _LastConnectFailure:
    logger = logging.getLogger(_AIOKAFKA_CLIENT)
    silent = logger.level > logging.ERROR
    for f in logger.filters:
        if isinstance(f, _LastConnectFailure):
            f.silent = f.silent or silent
            break
    else:
        f = _LastConnectFailure(silent=silent)
        logger.addFilter(f)
    if silent:
        logger.setLevel(logging.ERROR)
    return f


def kafka_security_kwargs(settings: KafkaSettings, *, field: str = "kafka") -> dict[str, Any]:
    """aiokafka client arguments for ``settings``' security; ConfigError for an unreadable file or key.

    >>> kafka_security_kwargs(KafkaSettings())
    {'security_protocol': 'PLAINTEXT'}
    """
    _failures()  # installed before the first connection, so its failure can be explained
    out: dict[str, Any] = {"security_protocol": settings.security_protocol}
    if settings.security_protocol == "PLAINTEXT":
        return out
    key_password = settings.ssl_key_password.get_secret_value() if settings.ssl_key_password else None
    try:
        context = create_ssl_context(
            cafile=str(settings.ssl_ca_path) if settings.ssl_ca_path else None,
            certfile=str(settings.ssl_certificate_path) if settings.ssl_certificate_path else None,
            keyfile=str(settings.ssl_key_path) if settings.ssl_key_path else None,
            password=key_password,
        )
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(
            f"cannot load the TLS files (CA {settings.ssl_ca_path}, certificate {settings.ssl_certificate_path}, "
            f"key {settings.ssl_key_path}): {e}",
            field=field,
        ) from None
    context.check_hostname = settings.ssl_check_hostname
    out["ssl_context"] = context
    if settings.security_protocol == "SASL_SSL":
        assert settings.sasl_username is not None and settings.sasl_password is not None  # by the validator
        out |= {
            "sasl_mechanism": settings.sasl_mechanism,
            "sasl_plain_username": settings.sasl_username,
            "sasl_plain_password": settings.sasl_password.get_secret_value(),
        }
    return out


def explain_connect_failure(settings: KafkaSettings) -> str | None:
    """Why the last connection attempt failed, when it was TLS or SASL; None when it looks like plain reach.

    Consumes the remembered failure, so a later unrelated failure is not explained by it.
    """
    f = _failures()
    text, f.last = f.last, None
    if text is None:
        return None
    if "SaslAuthenticationFailed" in text or "Authentication failed" in text:
        return (
            f"SASL {settings.sasl_mechanism} login as {settings.sasl_username!r} refused: wrong user name or "
            "password, or the user does not exist for this mechanism"
        )
    if "CERTIFICATE_VERIFY_FAILED" in text:
        trusted = f"the CA in {settings.ssl_ca_path}" if settings.ssl_ca_path else "the system's CAs"
        return f"the broker's TLS certificate is not trusted by {trusted} (kafka.ssl_ca_path): {text}"
    if "UnsupportedSaslMechanism" in text or "Unsupported SASL mechanism" in text:
        return f"the broker does not enable SASL mechanism {settings.sasl_mechanism} (kafka.sasl_mechanism)"
    if settings.security_protocol != "PLAINTEXT" and ("closed" in text or "SSL" in text):
        hint = "" if settings.ssl_certificate_path else "; does it require a client certificate (ssl_certificate_path)?"
        return f"the broker ended the TLS connection ({text}){hint}"
    return None
