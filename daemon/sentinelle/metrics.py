"""Every Prometheus metric of sentinelle, declared once on an injected registry.

Names follow ``sentinelle_<thing>_<unit>`` with ``_total`` for counters and base
units.  Labels are bounded: source, reason, queue, sink, asset, tag, severity —
never timestamps or free text.

Per-tag values (actual, forecast quantiles, the asset model's estimate from the
other tags, anomaly score) are *not* gauges set per tick: at 10,000 tags that
would cost tens of milliseconds of label lookups every second.  The detect stage
keeps them in numpy arrays, and :class:`TagStateCollector` reads the latest
arrays only when Prometheus scrapes.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .records import COMMAND_STATUSES, COMMAND_TYPES, REJECT_REASONS, FloatArray

NAMESPACE = "sentinelle"

DROP_REASONS = (
    "bad_quality",
    "uncertain_quality",
    "non_numeric",
    "non_finite",
    "duplicate",
    "out_of_order",
    "late",
    "unknown_tag",
    "queue_overflow",
    "malformed_date",
    "malformed_value",
    "malformed_row",
    "publish_failed",
)
"""Every reason a sample may be skipped; all are pre-declared so dashboards see zeros.

The ``malformed_*`` reasons come from history files and tables (``sources/history/``):
a row whose date or value cannot be read, or whose column count is wrong.  ``publish_failed``: a
collector (``scaleout/collector.py``) could not write them to the samples topic."""


GATE_REASONS = ("stuck", "spike", "missing", "recovery", "mode", "mode_holdoff", "maintenance")
"""Why a tag tick was kept out of scoring and process alarms (``detect/quality.py``, ``detect/modes.py``):
a data-quality condition (``stuck``, ``spike``, ``missing``), the ticks after one (``recovery``), a
non-detecting operating mode of its asset (``mode``), the hold-off after a mode change, or its asset
in a maintenance window (``maintenance``, ``detect/maintenance.py``)."""

ALERT_EVENT_TYPES = ("opened", "updated", "acknowledged", "cleared")

DATA_QUALITY_REASONS = ("stuck", "spike", "missing", "source_down")


@dataclass(frozen=True, slots=True)
class TagSnapshot:
    """The latest per-tag values of one tag group, replaced as a whole each tick."""

    tags: tuple[str, ...]
    assets: tuple[str, ...]
    actual: FloatArray
    forecast: FloatArray
    """Shape (n_tags, n_levels): next-step forecast quantiles."""
    levels: tuple[float, ...]
    score: FloatArray
    estimate: FloatArray | None = None
    """Shape (n_tags, n_levels), the forecast's levels: each tag's value now estimated from the other tags
    of its asset (the asset model, ``forecast.asset_model_path``); NaN rows: no estimate for that tag;
    None: no asset model."""


class TagStateCollector(Collector):
    """Exposes per-tag gauges from the latest snapshots, computed at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshots: dict[tuple[float, str], TagSnapshot] = {}

    def publish(self, period_s: float, snapshot: TagSnapshot) -> None:
        """Replace the snapshot of one tag group (called from the event loop).

        A group is keyed by its period and first tag: one group per period in the all-in-one
        mode, one per asset and period in a scale-out worker (``scaleout/worker.py``).
        """
        with self._lock:
            self._snapshots[(period_s, snapshot.tags[0] if snapshot.tags else "")] = snapshot

    def forget(self, tags: frozenset[str]) -> None:
        """Drop the snapshots of groups whose tags are among ``tags`` (a worker let their asset go)."""
        with self._lock:
            for key in [k for k in self._snapshots if k[1] in tags]:
                del self._snapshots[key]

    def snapshots(self) -> list[TagSnapshot]:
        """The latest snapshot of every group, ordered by period (then first tag)."""
        with self._lock:
            return [self._snapshots[k] for k in sorted(self._snapshots)]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        # Called from the HTTP server's thread: take a consistent reference first.
        snaps = self.snapshots()
        actual = GaugeMetricFamily(
            f"{NAMESPACE}_tag_actual", "Latest resampled value of the tag.", labels=["asset", "tag"]
        )
        forecast = GaugeMetricFamily(
            f"{NAMESPACE}_tag_forecast",
            "Forecast of the tag's latest value, made one step earlier, per quantile level "
            "(label level; Prometheus reserves quantile for summaries).",
            labels=["asset", "tag", "level"],
        )
        estimate = GaugeMetricFamily(
            f"{NAMESPACE}_tag_estimate",
            "The tag's latest value as the asset model estimates it from the asset's other tags at that "
            "instant, per quantile level (label level); no series for a tag without an estimate.",
            labels=["asset", "tag", "level"],
        )
        score = GaugeMetricFamily(
            f"{NAMESPACE}_tag_anomaly_score",
            "Anomaly score of the tag's latest residual, 0 (normal) to 1.",
            labels=["asset", "tag"],
        )
        for s in snaps:
            level_names = [_level_label(q) for q in s.levels]
            for i, (tag, asset) in enumerate(zip(s.tags, s.assets, strict=True)):
                a = float(s.actual[i])
                if math.isfinite(a):
                    actual.add_metric([asset, tag], a)
                sc = float(s.score[i])
                if math.isfinite(sc):
                    score.add_metric([asset, tag], sc)
                _add_levels(forecast, [asset, tag], level_names, s.forecast[i])
                if s.estimate is not None:
                    _add_levels(estimate, [asset, tag], level_names, s.estimate[i])
        yield actual
        yield forecast
        yield estimate
        yield score

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Describing without data keeps registration cheap and avoids a collect() at register time.
        return iter(())


def _add_levels(family: GaugeMetricFamily, labels: list[str], level_names: list[str], row: FloatArray) -> None:
    """One sample per finite level of ``row``: a NaN (no forecast, no estimate yet) is no series."""
    for j, name in enumerate(level_names):
        v = float(row[j])
        if math.isfinite(v):
            family.add_metric([*labels, name], v)


def _level_label(q: float) -> str:
    return f"{q:g}"


class Metrics:
    """All metrics of one daemon, on one registry (tests pass their own)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        ns = NAMESPACE

        self.samples_ingested = Counter(
            "samples_ingested", "Samples received from a source.", ["source"], namespace=ns, registry=r
        )
        self.samples_accepted = Counter(
            "samples_accepted", "Samples that entered a tag's window.", namespace=ns, registry=r
        )
        self.samples_dropped = Counter(
            "samples_dropped", "Samples skipped, by reason.", ["reason"], namespace=ns, registry=r
        )
        for reason in DROP_REASONS:
            self.samples_dropped.labels(reason)
        self.slots_gap = Counter(
            "window_gap_slots", "Closed slots without a usable value (gaps).", namespace=ns, registry=r
        )
        self.queue_depth = Gauge("queue_depth", "Items waiting in a stage queue.", ["queue"], namespace=ns, registry=r)

        self.source_connected = Gauge(
            "source_connected", "1 while the source is connected and subscribed.", ["source"], namespace=ns, registry=r
        )
        self.source_reconnects = Counter(
            "source_reconnects",
            "Outages that ended with a reconnection (one per outage, however many attempts it took).",
            ["source"],
            namespace=ns,
            registry=r,
        )
        self.source_errors = Counter(
            "source_errors", "Source failures, by kind.", ["source", "kind"], namespace=ns, registry=r
        )

        self.forecast_batch_seconds = Histogram(
            "forecast_batch_seconds",
            "Wall time of one forecaster call.",
            namespace=ns,
            registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.forecast_batch_size = Histogram(
            "forecast_batch_size",
            "Windows per forecaster call.",
            namespace=ns,
            registry=r,
            buckets=(1, 4, 16, 64, 256, 1024, 4096, 16384),
        )
        self.forecaster_info = Gauge(
            "forecaster_active", "1 for the forecaster in use.", ["forecaster"], namespace=ns, registry=r
        )
        self.forecast_errors = Counter(
            "forecast_errors", "Forecaster calls that failed.", ["forecaster"], namespace=ns, registry=r
        )
        self.forecast_fallback_active = Gauge(
            "forecast_fallback_active",
            "1 while the configured forecaster is replaced by its baseline for whole calls (it failed, or "
            "could not be loaded); sentinelle_forecaster_active names the one in use.",
            namespace=ns,
            registry=r,
        )
        self.forecast_fallback_rows = Counter(
            "forecast_fallback_rows",
            "Windows whose forecast was not finite and came from the baseline instead, by the forecaster that failed.",
            ["forecaster"],
            namespace=ns,
            registry=r,
        )
        self.forecast_overruns = Counter(
            "forecast_overruns",
            "Forecast passes that took longer than the tick of their windows with more windows already "
            "waiting: the forecast stage is falling behind (raise forecast.refresh_every_steps, use a GPU).",
            ["forecaster"],
            namespace=ns,
            registry=r,
        )

        self.detect_latency_seconds = Histogram(
            "sample_to_detection_seconds",
            "From receiving a slot's newest sample to its detection result.",
            namespace=ns,
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.ticks_scored = Counter("ticks_scored", "Tag ticks that got an anomaly score.", namespace=ns, registry=r)
        self.ticks_anomalous = Counter(
            "ticks_anomalous", "Tag ticks flagged anomalous.", ["kind"], namespace=ns, registry=r
        )
        self.alerts_active = Gauge("alerts_active", "Open alerts.", ["asset", "severity"], namespace=ns, registry=r)
        self.alert_events = Counter(
            "alert_events", "Alert events produced, by event type.", ["event"], namespace=ns, registry=r
        )
        for ev in ALERT_EVENT_TYPES:
            self.alert_events.labels(ev)
        # Alarm-system KPIs (ISA-18.2 / EEMUA 191; detect/kpi.py computes the same from event lists):
        # openings per 10 min per asset = increase(sentinelle_alert_openings_total[10m]).
        self.alert_openings = Counter(
            "alert_openings",
            "Alerts opened (an operator's alarm load), by asset and kind; flood members are not openings.",
            ["asset", "kind"],
            namespace=ns,
            registry=r,
        )
        self.alert_openings_window = Gauge(
            "alert_openings_in_flood_window",
            "Alerts the asset opened, flood members included, in the last detect.flood_window_s (default 10 min).",
            ["asset"],
            namespace=ns,
            registry=r,
        )
        self.alert_reactivations = Counter(
            "alert_reactivations",
            "Cleared alerts that came back within their re-arm time and continued (chatter), per subject: a "
            "tag or an asset, bounded by the configuration.",
            ["asset", "kind", "subject"],
            namespace=ns,
            registry=r,
        )
        self.alert_latched = Counter(
            "alert_latched",
            "Alerts latched because their subject chattered (detect.chatter_openings within chatter_window_s).",
            ["asset", "kind"],
            namespace=ns,
            registry=r,
        )
        self.alert_flood_members = Counter(
            "alert_flood_members",
            "Openings grouped into the asset's flood alert instead of opening alerts of their own.",
            ["asset"],
            namespace=ns,
            registry=r,
        )
        self.ticks_gated = Counter(
            "ticks_gated",
            "Tag ticks kept out of scoring and process alarms, by reason.",
            ["reason"],
            namespace=ns,
            registry=r,
        )
        for reason in GATE_REASONS:
            self.ticks_gated.labels(reason)
        self.data_quality_alerts = Counter(
            "data_quality_alerts",
            "Data-quality alerts opened (for instrument technicians), by reason.",
            ["reason"],
            namespace=ns,
            registry=r,
        )
        for reason in DATA_QUALITY_REASONS:
            self.data_quality_alerts.labels(reason)
        self.asset_mode = Gauge(
            "asset_mode",
            "1 for the operating mode each asset with mode rules is in, 0 for its other modes.",
            ["asset", "mode"],
            namespace=ns,
            registry=r,
        )
        self.asset_detection_gated = Gauge(
            "asset_detection_gated",
            "1 while detection on the asset is paused (non-detecting mode or hold-off after a change).",
            ["asset"],
            namespace=ns,
            registry=r,
        )
        self.asset_maintenance = Gauge(
            "asset_maintenance",
            "1 while the asset is in a maintenance window (no alerts, no learning), 0 otherwise.",
            ["asset"],
            namespace=ns,
            registry=r,
        )
        self.alerts_suppressed = Counter(
            "alerts_suppressed",
            "Alerts that would have opened (the open rule met) but were not, by asset and reason.",
            ["asset", "reason"],
            namespace=ns,
            registry=r,
        )

        self.commands = Counter(
            "commands",
            "Operator command records read (sources/commands.py), by type (unknown when unreadable) and status.",
            ["type", "status"],
            namespace=ns,
            registry=r,
        )
        for command_type in (*COMMAND_TYPES, "unknown"):
            for status in COMMAND_STATUSES:
                self.commands.labels(command_type, status)
        self.commands_rejected = Counter(
            "commands_rejected", "Operator commands rejected, by reason.", ["reason"], namespace=ns, registry=r
        )
        for reason in REJECT_REASONS:
            self.commands_rejected.labels(reason)
        self.commands_replayed = Counter(
            "commands_replayed",
            "Commands re-read at start to rebuild the maintenance calendar (answered in an earlier run).",
            namespace=ns,
            registry=r,
        )

        self.sink_events = Counter(
            "sink_events_delivered", "Alert events delivered, per sink.", ["sink"], namespace=ns, registry=r
        )
        self.sink_errors = Counter("sink_errors", "Failed deliveries, per sink.", ["sink"], namespace=ns, registry=r)
        self.sink_dropped = Counter(
            "sink_events_dropped",
            "Events a sink had to drop (queue or spool full, a torn spool record, no spool at shutdown).",
            ["sink"],
            namespace=ns,
            registry=r,
        )
        self.alert_pending = Gauge(
            "alert_pending_events",
            "Alert events accepted by the Kafka sink and not yet acknowledged (in memory, in flight or spooled).",
            namespace=ns,
            registry=r,
        )
        self.alert_spool_events = Gauge(
            "alert_spool_events", "Alert events waiting in the on-disk spool.", namespace=ns, registry=r
        )
        self.alert_spool_bytes = Gauge(
            "alert_spool_bytes", "Size of the on-disk alert spool's files.", namespace=ns, registry=r
        )
        self.alert_spool_torn = Counter(
            "alert_spool_torn_records",
            "Spool records found torn or corrupt at start (a crash while writing); also counted as dropped.",
            namespace=ns,
            registry=r,
        )

        self.backfill_samples = Counter(
            "backfill_samples",
            "Samples read from a history source by the start-up backfill.",
            ["source"],
            namespace=ns,
            registry=r,
        )
        self.backfill_events_suppressed = Counter(
            "backfill_events_suppressed",
            "Alert events the backfill computed for the historical period and did not send.",
            ["event"],
            namespace=ns,
            registry=r,
        )
        for ev in ("opened", "updated", "cleared"):
            self.backfill_events_suppressed.labels(ev)
        self.backfill_seconds = Gauge(
            "backfill_duration_seconds", "Wall time of the start-up backfill.", namespace=ns, registry=r
        )

        self.up = Gauge("up_state", "1 while the daemon runs its main loop.", namespace=ns, registry=r)
        self._scaleout(ns, r)

    def _scaleout(self, ns: str, r: CollectorRegistry) -> None:
        """Collectors and workers over Kafka (``scaleout/``); zero in the all-in-one mode."""
        self.scaleout_records = Counter(
            "scaleout_records",
            "Samples-topic records by role (collector: produced, worker: consumed).",
            ["role"],
            namespace=ns,
            registry=r,
        )
        self.scaleout_bad_records = Counter(
            "scaleout_bad_records",
            "Records skipped because they cannot be read (malformed, unknown version), by topic (samples, state).",
            ["topic"],
            namespace=ns,
            registry=r,
        )
        for topic in ("samples", "state"):
            self.scaleout_bad_records.labels(topic)
        self.scaleout_restore_failures = Counter(
            "scaleout_restore_failures",
            "Asset snapshots (or parts) not used: they do not fit the configuration; the asset started cold.",
            ["part"],
            namespace=ns,
            registry=r,
        )
        for part in ("asset", "detector"):
            self.scaleout_restore_failures.labels(part)
        self.detector_state_upgrades = Counter(
            "detector_state_upgrades",
            "Saved detector states of an older version, by detector and outcome: migrated, or discarded "
            "(it could not be migrated without loss; that detector started fresh, the others kept theirs).",
            ["detector", "outcome"],
            namespace=ns,
            registry=r,
        )
        self.scaleout_assigned_partitions = Gauge(
            "scaleout_assigned_partitions", "Samples-topic partitions this worker holds.", namespace=ns, registry=r
        )
        self.scaleout_assigned_assets = Gauge(
            "scaleout_assigned_assets", "Configured assets of this worker's partitions.", namespace=ns, registry=r
        )
        self.scaleout_lag_records = Gauge(
            "scaleout_lag_records",
            "Records of this worker's partitions not consumed yet (high watermark minus position), summed.",
            namespace=ns,
            registry=r,
        )
        self.scaleout_checkpoint_age_seconds = Gauge(
            "scaleout_checkpoint_age_seconds",
            "Seconds since this worker last wrote its assets' snapshots.",
            namespace=ns,
            registry=r,
        )
        self.scaleout_checkpoint_bytes = Gauge(
            "scaleout_checkpoint_bytes",
            "Bytes of the last checkpoint (all assets of this worker).",
            namespace=ns,
            registry=r,
        )
        self.scaleout_snapshot_too_large = Counter(
            "scaleout_snapshot_too_large",
            "Asset snapshots not written: larger than scaleout.max_snapshot_bytes.",
            namespace=ns,
            registry=r,
        )
        self.scaleout_restore_seconds = Histogram(
            "scaleout_restore_seconds",
            "Time to read and apply the snapshots of newly assigned partitions.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            namespace=ns,
            registry=r,
        )
        self.scaleout_rebalances = Counter(
            "scaleout_rebalances",
            "Consumer-group rebalances this worker went through (partitions assigned).",
            namespace=ns,
            registry=r,
        )

        self.tag_state = TagStateCollector()
        r.register(self.tag_state)

    def drop(self, reason: str, n: int = 1) -> None:
        self.samples_dropped.labels(reason).inc(n)


def levels_or_nan(levels: Sequence[float], n: int) -> FloatArray:
    """An (n, len(levels)) array of NaN: the forecast before the first forecast exists."""
    return np.full((n, len(levels)), np.nan)
