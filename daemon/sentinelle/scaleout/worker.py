"""Worker mode: the samples topic → windows → forecast → detect → sinks, as one member of a consumer group.

Kafka assigns each worker some partitions of the samples topic; the worker holds one
:class:`~.state.AssetUnit` (windows and detect stage) per configured asset of those
partitions — an asset's partition is its key's under Kafka's default partitioner, the one
collectors write with.  A worker that joins, leaves or dies moves partitions between workers.

Handover, and why nothing is lost or doubled except as repeats of an event id:

* **One consistent point per checkpoint.**  Every ``scaleout.checkpoint_interval_s`` (and when
  partitions are revoked, and at a stop) the worker (1) waits until the alert events of all it
  processed are durable (every sink's ``flush`` where it has one: the Kafka sink's events
  acknowledged or spooled; the JSON-lines sink writes at once), (2) writes every asset's
  snapshot to the compacted state topic and waits for the acknowledgements, (3) only then
  commits the offsets it processed.  The committed offsets and the snapshots thus describe the
  same point of the stream.
* **Takeover.**  A worker given a partition restores its assets' snapshots and the consumer
  resumes at the committed offset: it replays what the previous owner processed after its last
  checkpoint, with the same state, and so re-makes the same alert events with the same
  ``event_id`` (``{alert_id}:{sequence}:{event}``).  A consumer de-duplicating on it sees each
  event once; nothing the crashed worker had not made durable is lost.
* **Rebalancing.**  aiokafka 0.14 implements only the eager protocol (every partition is revoked,
  then all are assigned again; no KIP-429 cooperative rebalancing), so the worker uses the sticky
  assignor: a rebalance mostly gives a worker its partitions back, and the units of assets it
  keeps stay in memory (checkpointed at the revocation, so they are consistent either way).
  Processing and the rebalance callbacks take one lock, so a revocation never cuts a batch in two.
* **Bad input.**  A record that cannot be decoded (``codec.py``: malformed, unknown version) on
  either topic is counted (``sentinelle_scaleout_bad_records_total{topic}``) and logged, and
  skipped; a snapshot that does not fit the configuration (tags or detectors changed) is ignored
  with a warning (``sentinelle_scaleout_restore_failures_total``) and its asset starts cold.

Not in worker mode: operator commands and the history backfill (the all-in-one mode's; the
settings refuse them here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from ..errors import SourceUnavailable
from ..forecast.batcher import ForecastPass
from ..notify import sd_notify, watchdog_period_s
from ..records import AlertEvent, Sample, WindowBatch
from ..settings import TagSettings
from ..sinks.kafka_security import kafka_security_kwargs
from .codec import RANGE_HEADER, SOURCE_HEADER, CodecError, decode_samples, ranges_of
from .state import AssetUnit, Snapshot, SnapshotMismatch, decode_snapshot, encode_snapshot
from .topics import ensure_topics

if TYPE_CHECKING:
    from ..app import Daemon

log = logging.getLogger(__name__)

_POLL_MS = 200
_BAD_LOG_INTERVAL_S = 10.0


def partition_of(asset: str, partitions: int) -> int:
    """The samples-topic partition of ``asset``: what a producer's default partitioner picks for its key.

    >>> partition_of("chiller1", 12) == partition_of("chiller1", 12), 0 <= partition_of("chiller1", 12) < 12
    (True, True)
    """
    every = list(range(partitions))
    return int(DefaultPartitioner()(asset.encode(), every, every))


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self.worker.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        await self.worker.on_assigned(assigned)


class Worker:
    """Runs the detection of ``daemon`` on the samples topic (``daemon.mode = "worker"``)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.settings = daemon.settings
        self.sc = self.settings.scaleout
        self.metrics = daemon.metrics
        self.asset_tags: dict[str, list[TagSettings]] = {}
        for t in self.settings.tags:
            self.asset_tags.setdefault(t.asset, []).append(t)
        self.units: dict[str, AssetUnit] = {}
        self._partition: dict[str, int] = {}
        """Held asset → its samples-topic partition."""
        self._lock = asyncio.Lock()
        self._assigned: set[TopicPartition] = set()
        self._next: dict[TopicPartition, int] = {}
        """Per assigned partition: the offset after the last record processed (what a commit stores)."""
        self._consumer: Any = None
        self._producer: Any = None
        self._closing = False
        self._checkpointed_at = time.monotonic()
        self._checkpoint_due = self._checkpointed_at + self.sc.checkpoint_interval_s
        """A failed checkpoint is retried an interval later, not at every poll (a sink's flush may wait)."""
        self._bad_logged_at = -_BAD_LOG_INTERVAL_S
        self.last_restore: tuple[int, int, float] | None = None
        """(assets restored, assets started cold, seconds) of the latest assignment."""

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Metrics, sinks, forecaster (the daemon's start), topics, the state producer, the group."""
        await self.daemon.start()
        k = self.settings.kafka
        await ensure_topics(k, self.sc)
        security = kafka_security_kwargs(k)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=k.bootstrap_servers,
            client_id=f"{k.client_id}-worker-state",
            acks="all",
            enable_idempotence=True,
            max_request_size=self.sc.max_snapshot_bytes + 65_536,
            request_timeout_ms=k.request_timeout_ms,
            **security,
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=k.bootstrap_servers,
            client_id=f"{k.client_id}-worker",
            group_id=self.sc.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self.sc.start_from,
            max_poll_records=self.sc.poll_max_records,
            session_timeout_ms=self.sc.session_timeout_ms,
            heartbeat_interval_ms=self.sc.heartbeat_interval_ms,
            partition_assignment_strategy=(StickyPartitionAssignor,),
            request_timeout_ms=max(k.request_timeout_ms, self.sc.session_timeout_ms + 5000),
            **security,
        )
        try:
            async with asyncio.timeout(k.request_timeout_ms / 1000):
                await self._producer.start()
                await self._consumer.start()
        except (KafkaError, OSError, TimeoutError) as e:
            await self._stop_clients()
            raise SourceUnavailable(f"Kafka at {k.bootstrap_servers} is unreachable for the worker: {e}") from None
        self._consumer.subscribe([self.sc.samples_topic], listener=_Rebalance(self))

    async def serve(self, stop: asyncio.Event) -> None:
        """Consume, detect, checkpoint and commit until ``stop``; then checkpoint, commit and leave the group."""
        m = self.metrics
        m.up.set(1)
        sd_notify("READY=1")
        log.info("worker of group %s on %s", self.sc.group_id, self.sc.samples_topic)
        watchdog = min(1.0, watchdog_period_s(self.settings.daemon.watchdog_interval_s))
        notified = time.monotonic()
        try:
            while not stop.is_set():
                batch = await self._consumer.getmany(timeout_ms=_POLL_MS, max_records=self.sc.poll_max_records)
                async with self._lock:
                    await self._handle(batch)
                    if time.monotonic() >= self._checkpoint_due:
                        await self._checkpoint_and_commit("periodic")
                        self._checkpoint_due = time.monotonic() + self.sc.checkpoint_interval_s
                self._gauges()
                if time.monotonic() - notified >= watchdog:
                    sd_notify("WATCHDOG=1")
                    notified = time.monotonic()
            sd_notify("STOPPING=1")
            m.up.set(0)
            try:
                async with asyncio.timeout(self.settings.daemon.shutdown_timeout_s), self._lock:
                    await self._checkpoint_and_commit("stop")
                    self._closing = True
            except TimeoutError:
                log.error("no final checkpoint within the shutdown grace: the next owner replays from the last one")
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        self._closing = True
        await self._stop_clients()
        await self.daemon.aclose()

    async def _stop_clients(self) -> None:
        for client in (self._consumer, self._producer):
            if client is not None:
                with contextlib.suppress(KafkaError, OSError, TimeoutError):
                    async with asyncio.timeout(self.settings.kafka.request_timeout_ms / 1000):
                        await client.stop()
        self._consumer = self._producer = None

    # -- one poll ---------------------------------------------------------------------------

    async def _handle(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Decode, window, forecast, detect and hand the events to the sinks (not yet durable)."""
        by_asset: dict[str, list[Sample]] = {}
        windows: list[WindowBatch] = []
        m = self.metrics
        for tp in self._assigned - self._next.keys() if self._consumer is not None else ():
            # Where reading starts (the committed offset): a partition with nothing new is caught up.
            with contextlib.suppress(KafkaError):
                self._next[tp] = int(await self._consumer.position(tp))
        for tp, records in batch.items():
            if tp not in self._assigned:
                continue  # fetched before a revocation: the next owner reads it from the committed offset
            m.scaleout_records.labels("worker").inc(len(records))
            for rec in records:
                self._next[tp] = rec.offset + 1
                try:
                    asset = rec.key.decode()
                    samples = decode_samples(rec.value)
                except (CodecError, UnicodeDecodeError, AttributeError, TypeError) as e:
                    self._bad("samples", f"{tp.topic}[{tp.partition}]@{rec.offset}", e)
                    continue
                headers = dict(rec.headers or ())
                state = headers.get(SOURCE_HEADER)
                if asset not in self.units:
                    m.drop("unknown_tag", len(samples))
                elif state is not None or RANGE_HEADER in headers:
                    # The samples before it first, in order; then the tags' source goes down or up, or their
                    # engineering ranges (read by the collector's source) travel with their windows from now on.
                    if asset in by_asset:
                        windows += self.units[asset].windows.ingest(by_asset.pop(asset), time.monotonic())
                    if state is not None:
                        self.units[asset].windows.set_source_down([s.tag for s in samples], state == b"down")
                    else:
                        self.units[asset].windows.set_engineering_ranges(ranges_of(samples))
                else:
                    by_asset.setdefault(asset, []).extend(samples)
        now = time.monotonic()
        events: list[AlertEvent] = []
        rows = sum(len(w) for w in windows)
        max_rows = self.settings.forecast.max_batch
        for asset, samples in by_asset.items():
            closed = self.units[asset].windows.ingest(samples, now)
            windows += closed
            rows += sum(len(w) for w in closed)
            if rows >= max_rows:  # a backlog closes many ticks: detect as they come, memory stays bounded
                events += await self._detect(windows)
                windows, rows = [], 0
        # Silence closes slots by the wall clock only on partitions read to their end: a worker
        # catching up (a takeover's replay, a backlog) has data for them still to come.
        caught_up = self._caught_up()
        for asset, unit in self.units.items():
            if self._partition.get(asset) in caught_up:
                windows += unit.windows.tick_idle()
        events += await self._detect(windows)
        if events:
            for sink in self.daemon.sinks:
                await sink.send(events)

    def _caught_up(self) -> set[int]:
        """Partitions (numbers) whose every record so far has been processed."""
        out = set()
        for tp in self._assigned:
            high = self._consumer.highwater(tp) if self._consumer is not None else None
            if high is not None and self._next.get(tp, -1) >= high:
                out.add(tp.partition)
        return out

    async def _detect(self, windows: list[WindowBatch]) -> list[AlertEvent]:
        """Forecast in passes of at most ``forecast.max_batch`` windows (a backlog is many ticks), then detect."""
        events: list[AlertEvent] = []
        batcher = self.daemon.batcher
        f = self.settings.forecast
        start = 0
        while start < len(windows):
            end, rows = start, 0
            while end < len(windows) and (end == start or rows + len(windows[end]) <= f.max_batch):
                rows += len(windows[end])
                end += 1
            fp = ForecastPass.of(windows[start:end], f.refresh_every_steps)
            quantiles, name = await asyncio.to_thread(batcher.predict, fp.contexts, fp.assets)
            for fb in fp.split(batcher.forecaster.levels, quantiles, name):
                events += self.units[fb.window.assets[0]].detect.process(fb)
            start = end
        return events

    def _bad(self, topic: str, where: str, e: Exception) -> None:
        self.metrics.scaleout_bad_records.labels(topic).inc()
        now = time.monotonic()
        if now - self._bad_logged_at >= _BAD_LOG_INTERVAL_S:
            self._bad_logged_at = now
            log.error("skipped an unreadable %s record (%s): %s", topic, where, e)

    # -- checkpoints ------------------------------------------------------------------------

    async def _checkpoint_and_commit(self, why: str) -> bool:
        """Sinks durable, then every held asset's snapshot acknowledged, then the offsets committed."""
        if self._producer is None or self._consumer is None:
            return False
        for sink in self.daemon.sinks:
            flush = getattr(sink, "flush", None)
            if flush is not None and not await flush(self.settings.kafka.request_timeout_ms / 1000):
                log.warning("alert events not durable yet (%s checkpoint): offsets not committed", why)
                return False
        sends, size = [], 0
        # On a thread, so the group's heartbeats go on (nothing else touches the units: the lock is held).
        blobs = await asyncio.to_thread(lambda: [(a, encode_snapshot(u)) for a, u in self.units.items()])
        for asset, blob in blobs:
            if len(blob) > self.sc.max_snapshot_bytes:
                self.metrics.scaleout_snapshot_too_large.inc()
                log.error(
                    "snapshot of %s is %d bytes (max_snapshot_bytes %d): not written",
                    asset,
                    len(blob),
                    self.sc.max_snapshot_bytes,
                )
                continue
            size += len(blob)
            sends.append(await self._producer.send(self.sc.state_topic, blob, key=asset.encode()))
        try:
            await asyncio.gather(*sends)
            offsets = {tp: off for tp, off in self._next.items() if tp in self._assigned}
            if offsets:
                await self._consumer.commit(offsets)
        except KafkaError as e:
            log.warning("%s checkpoint not completed (%s): the next owner replays from the previous one", why, e)
            return False
        self._checkpointed_at = time.monotonic()
        self.metrics.scaleout_checkpoint_bytes.set(size)
        log.debug("%s checkpoint: %d assets, %d bytes", why, len(sends), size)
        return True

    # -- rebalancing ------------------------------------------------------------------------

    async def on_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        """Eager rebalance: checkpoint everything held and commit; the units stay until the assignment."""
        if self._closing or not self._assigned:
            return
        async with self._lock:
            await self._checkpoint_and_commit("revocation")
            self._assigned = set()

    async def on_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        """Hold the assets of ``assigned``: keep those already held, restore the others from the state topic."""
        async with self._lock:
            t0 = time.monotonic()
            topic = self.sc.samples_topic
            count = len(self._consumer.partitions_for_topic(topic) or ()) or self.sc.partitions
            mine = {tp.partition for tp in assigned if tp.topic == topic}
            self._partition = {a: partition_of(a, count) for a in self.asset_tags}
            wanted = {a for a, p in self._partition.items() if p in mine}
            for asset in [a for a in self.units if a not in wanted]:
                self.units.pop(asset).release()
            new = sorted(wanted - self.units.keys())
            snaps = await self._read_state(mine, set(new), count) if new else {}
            restored = 0
            for asset in new:
                unit = self._unit(asset)
                snap = snaps.get(asset)
                if snap is not None:
                    try:
                        unit.restore(snap)
                        restored += 1
                    except SnapshotMismatch as e:
                        self.metrics.scaleout_restore_failures.labels("asset").inc()
                        log.warning("snapshot of %s does not fit the configuration, it starts cold: %s", asset, e)
                        unit = self._unit(asset)
                self.units[asset] = unit
            self._assigned = set(assigned)
            self._next = {tp: off for tp, off in self._next.items() if tp in self._assigned}
            took = time.monotonic() - t0
            self.last_restore = (restored, len(new) - restored, took)
            self.metrics.scaleout_rebalances.inc()
            self.metrics.scaleout_restore_seconds.observe(took)
            self._gauges()
            log.info(
                "assigned partitions %s: %d assets (%d restored, %d cold, %d kept) in %.2f s",
                sorted(mine),
                len(self.units),
                restored,
                len(new) - restored,
                len(self.units) - len(new),
                took,
            )

    def _unit(self, asset: str) -> AssetUnit:
        s = self.settings
        return AssetUnit(
            asset,
            self.asset_tags[asset],
            s.windows,
            s.detect,
            self.metrics,
            self.daemon.calendar,
            refresh_every_steps=s.forecast.refresh_every_steps,
        )

    async def _read_state(self, partitions: set[int], assets: set[str], count: int) -> dict[str, Snapshot]:
        """The latest snapshot of each of ``assets`` in the state topic (its partitions of the same numbers)."""
        k = self.settings.kafka
        reader = AIOKafkaConsumer(
            bootstrap_servers=k.bootstrap_servers,
            client_id=f"{k.client_id}-worker-restore",
            enable_auto_commit=False,
            request_timeout_ms=k.request_timeout_ms,
            **kafka_security_kwargs(k),
        )
        latest: dict[str, bytes] = {}
        try:
            async with asyncio.timeout(max(30.0, 3 * k.request_timeout_ms / 1000)):
                await reader.start()
                # The producer waits for the topic's metadata (a consumer's cache may not have it yet).
                have = set(await self._producer.partitions_for(self.sc.state_topic))
                # Same count: an asset's snapshot is in its samples partition's number; else read them all.
                numbers = partitions if len(have) == count else have
                tps = [TopicPartition(self.sc.state_topic, p) for p in sorted(numbers) if p in have]
                if tps:
                    reader.assign(tps)
                    await reader.seek_to_beginning(*tps)
                    end = await reader.end_offsets(tps)
                    while any([await reader.position(tp) < end[tp] for tp in tps]):
                        for records in (await reader.getmany(*tps, timeout_ms=500)).values():
                            for rec in records:
                                key = rec.key.decode(errors="replace") if rec.key else ""
                                if key in assets:
                                    if rec.value is None:
                                        latest.pop(key, None)  # a tombstone: forgotten
                                    else:
                                        latest[key] = rec.value
        except (KafkaError, OSError, TimeoutError) as e:
            log.error("could not read the state topic (%s): %d assets start cold", e, len(assets))
            latest = {}
        finally:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                await reader.stop()
        out: dict[str, Snapshot] = {}
        for asset, blob in latest.items():
            try:
                out[asset] = decode_snapshot(blob)
            except CodecError as e:
                self._bad("state", asset, e)
        return out

    def _gauges(self) -> None:
        m = self.metrics
        m.scaleout_assigned_partitions.set(len(self._assigned))
        m.scaleout_assigned_assets.set(len(self.units))
        m.scaleout_checkpoint_age_seconds.set(time.monotonic() - self._checkpointed_at)
        lag = 0
        if self._consumer is not None:
            for tp in self._assigned:
                high = self._consumer.highwater(tp)
                if high is not None and tp in self._next:
                    lag += max(0, high - self._next[tp])
        m.scaleout_lag_records.set(lag)
