"""Where alerts and metrics go, and the operator commands read back from Kafka
(``[kafka]``, ``[commands]``, ``[prometheus]``, ``[console]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from ..config_checks import BootstrapServers
from .base import _Section


class KafkaSettings(_Section):
    enabled: bool = True
    bootstrap_servers: BootstrapServers = Field(
        default="127.0.0.1:9092", description="host:port[,host:port...]; IPv6 addresses in brackets: [::1]:9092."
    )
    topic: str = Field(default="sentinelle.alerts", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    client_id: str = "sentinelle"
    required_at_start: bool = True
    request_timeout_ms: int = Field(default=10_000, ge=100)
    linger_ms: int = Field(default=5, ge=0)
    max_pending_events: int = Field(default=10_000, ge=1, description="Bound of the in-memory send queue.")
    spool_dir: Path | None = Field(
        default=Path("/var/lib/sentinelle/spool"),
        description="On-disk spool of events Kafka has not acknowledged (on stop, and in outages longer than "
        "spool_after_s); sent on recovery or the next start. Under systemd's StateDirectory. None: no spool, "
        "undelivered events are dropped at stop (counted, exit 75).",
    )

    spool_max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=4096, description="Bound of the spool's files; overflow drops the oldest."
    )
    spool_after_s: float = Field(
        default=30.0,
        gt=0,
        description="Write pending events to the spool once Kafka has not acknowledged any this long.",
    )
    spool_fsync: Literal["always", "never"] = Field(
        default="always",
        description="always: every spool write reaches the disk before it counts; never: the OS decides.",
    )

    @field_validator("spool_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        """TOML has no null: ``spool_dir = ""`` turns the spool off."""
        return None if value == "" else value

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="For the alert producer and the command consumer alike. SSL: TLS (with ssl_certificate_path "
        "for a client certificate); SASL_SSL: TLS plus a SASL user.",
    )
    sasl_mechanism: Literal["SCRAM-SHA-512", "PLAIN"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = Field(
        default=None, description="A secret file kafka.sasl_password (LoadCredential=, daemon.secrets_dir)."
    )
    ssl_ca_path: Path | None = Field(
        default=None, description="CA certificate(s) (PEM) the broker's certificate must chain to; None: the system's."
    )
    ssl_certificate_path: Path | None = Field(default=None, description="Client certificate (PEM), mutual TLS.")
    ssl_key_path: Path | None = Field(default=None, description="Its private key (PEM).")
    ssl_key_password: SecretStr | None = None
    ssl_check_hostname: bool = Field(default=True, description="The broker's certificate must name its host.")

    @model_validator(mode="after")
    def _security_complete(self) -> KafkaSettings:
        if self.security_protocol == "SASL_SSL" and (self.sasl_username is None or self.sasl_password is None):
            raise ValueError("sasl_username and sasl_password: required with security_protocol SASL_SSL")
        if (self.ssl_certificate_path is None) != (self.ssl_key_path is None):
            raise ValueError("ssl_certificate_path and ssl_key_path: set both or neither")
        if self.security_protocol == "PLAINTEXT":
            for name in ("sasl_username", "ssl_ca_path", "ssl_certificate_path"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: set, but security_protocol is PLAINTEXT (no TLS, no SASL)")
        return self


class CommandSettings(_Section):
    """Operator commands on Kafka (``sources/commands.py``): maintenance, acknowledgements; cluster of ``[kafka]``."""

    enabled: bool = Field(
        default=False,
        description="Read operator commands. Off by default: it is an inbound control path, so restrict who may "
        "write to the topic (Kafka ACLs) before turning it on.",
    )
    topic: str = Field(default="sentinelle.commands", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    reply_topic: str = Field(default="sentinelle.command-replies", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    group_id: str = Field(
        default="sentinelle",
        min_length=1,
        description="Consumer group that stores this daemon's offsets (only those); one per daemon instance.",
    )
    max_maintenance_s: float = Field(
        default=7 * 86_400.0,
        gt=0,
        description="Longest maintenance window a command may open (until - issued_at). Keep the topic's "
        "retention longer: the daemon rebuilds its maintenance state from the topic at start.",
    )


class PrometheusSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535, description="0: pick a free port (tests).")


class ConsoleSettings(_Section):
    jsonl_path: Path | None = Field(default=None, description="Append alert events as JSON lines here.")
    live_view: bool = Field(default=False, description="Redraw a per-tag table on the terminal.")
    live_view_interval_s: float = Field(default=1.0, gt=0)
