"""Collectors and detector workers over Kafka (``[scaleout]``; ``daemon.mode`` picks the mode)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import _Section


class ScaleoutSettings(_Section):
    """Collectors and detector workers over Kafka (``scaleout/``); the cluster and its security are ``[kafka]``'s."""

    samples_topic: str = Field(
        default="sentinelle.samples",
        pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description="Collectors write each asset's samples here, keyed by asset (an asset stays in one partition).",
    )
    state_topic: str = Field(
        default="sentinelle.worker-state",
        pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description="Compacted topic of per-asset snapshots (windows, detectors, open alerts), key = asset.",
    )
    group_id: str = Field(default="sentinelle-workers", min_length=1, description="The workers' consumer group.")
    partitions: int = Field(
        default=12,
        ge=1,
        le=10_000,
        description="Partitions of both topics when sentinelle creates them: the most workers that can share "
        "the load (more partitions than workers lets the group rebalance evenly).",
    )
    replication_factor: int = Field(default=1, ge=1, le=16, description="Of both topics when sentinelle creates them.")
    checkpoint_interval_s: float = Field(
        default=30.0, gt=0, description="A worker writes its assets' snapshots this often (and when it loses them)."
    )
    max_snapshot_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Bound of one asset's snapshot; a larger one is not written (counted, logged: that asset "
        "would restart cold).",
    )
    collector_linger_ms: int = Field(default=20, ge=0, description="The collector's producer batches this long.")
    collector_flush_interval_ms: int = Field(
        default=200, ge=1, description="The collector sends one record per asset with what arrived in this time."
    )
    poll_max_records: int = Field(
        default=500,
        ge=1,
        description="Records a worker takes per poll (a record: one asset's samples of one collector flush); "
        "a stop waits for the poll in hand.",
    )
    start_from: Literal["latest", "earliest"] = Field(
        default="latest",
        description="Where the group starts on a partition it has no committed offset for (a new group): the "
        "newest samples, or all the topic still holds.",
    )
    session_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        description="A worker that is not heard from this long is out of the group: its partitions move "
        "(the failover time after a crash).",
    )
    heartbeat_interval_ms: int = Field(default=1000, ge=100, description="Under a third of session_timeout_ms.")
