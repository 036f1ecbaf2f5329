"""The daemon itself and its maintenance windows (``[daemon]``, ``[maintenance]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from .base import _Section


class MaintenanceWindowSettings(_Section):
    """A planned maintenance window of one asset: ``[start, end)``, compared with the tags' source timestamps."""

    asset: str = Field(min_length=1)
    start: AwareDatetime = Field(description="With a zone: a TOML offset date-time, e.g. 2026-12-01T06:00:00Z.")
    end: AwareDatetime
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindowSettings:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end.isoformat()}) must be later than start ({self.start.isoformat()})")
        return self


class MaintenanceSettings(_Section):
    """Planned maintenance (``detect/maintenance.py``); operators add windows with commands (``[commands]``)."""

    windows: tuple[MaintenanceWindowSettings, ...] = ()


class DaemonSettings(_Section):
    shutdown_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Grace for draining and flushing at stop; then undelivered alerts go to the spool. Keep it a "
        "few seconds under the unit's TimeoutStopSec (30 s).",
    )
    samples_queue_size: int = Field(default=200_000, ge=1, description="Overflow drops the oldest, counted.")
    stage_queue_size: int = Field(default=64, ge=1, description="Batches between stages; full queues block.")
    watchdog_interval_s: float = Field(default=5.0, gt=0, description="Used when systemd gives no WATCHDOG_USEC.")
    secrets_dir: Path | None = Field(
        default=None,
        description="A folder of secret files named by field path (sources.plant.password); systemd's "
        "$CREDENTIALS_DIRECTORY is read as well (and wins).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    mode: Literal["all", "collector", "worker"] = Field(
        default="all",
        description="all: sources → detection → sinks in this process; collector: sources → the samples topic "
        "([scaleout]); worker: the samples topic → detection → sinks, one member of the consumer group.",
    )
