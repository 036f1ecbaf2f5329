"""The one error hierarchy of sentinelle.

Lower-level exceptions (asyncua, aiokafka, sockets, pydantic, torch) are caught
in the module that talks to that library and re-raised as one of these, so the
rest of the daemon never has to know which library failed::

    SentinelleError
    ├── ConfigError          bad or contradictory settings      → exit 78 (EX_CONFIG)
    ├── ServiceUnavailable   a required service is unreachable  → exit 69 (EX_UNAVAILABLE)
    │   ├── SourceUnavailable
    │   └── SinkUnavailable
    ├── SourceError          a source failed while running (retried by the source)
    ├── SinkError            a sink failed to deliver (counted, retried or reported)
    └── ModelError           a forecaster could not be loaded or run
"""

from __future__ import annotations


class SentinelleError(Exception):
    """Base class of every error sentinelle raises on purpose."""


class ConfigError(SentinelleError):
    """Settings are malformed or contradict each other; the message names the field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class ServiceUnavailable(SentinelleError):
    """A service the configuration marks as required cannot be reached at start."""


class SourceUnavailable(ServiceUnavailable):
    """A required data source (e.g. an OPC-UA server) cannot be reached at start."""


class SinkUnavailable(ServiceUnavailable):
    """A required sink (e.g. the Kafka cluster) cannot be reached at start."""


class SourceError(SentinelleError):
    """A source failed while running; sources retry with backoff."""


class SinkError(SentinelleError):
    """A sink could not deliver an event."""


class ModelError(SentinelleError):
    """A forecaster could not be loaded or failed to run."""
