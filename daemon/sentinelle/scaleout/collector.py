"""Collector mode: the daemon's sources, into the samples topic — no windows, no detection.

Samples from every source go through the daemon's drop-oldest :class:`~sentinelle.queues.SampleQueue`
(a collector behind Kafka drops, counted, rather than grow without bound), are grouped by
asset and, every ``scaleout.collector_flush_interval_ms``, written as one record per asset
(``codec.py``; key = the asset, so an asset's tags stay in one partition, in order) by an
idempotent producer (``acks=all``): a broker retry never duplicates or reorders a record.

A flush waits for Kafka's acknowledgements before the next one, so a slow cluster slows
the collector down and the sample queue, not memory, absorbs it.  Records Kafka refuses
(after the producer's own retries) are dropped and counted
(``sentinelle_samples_dropped_total{reason="publish_failed"}``), never retried out of order.
Samples of tags not in ``[[tags]]`` are dropped and counted (``unknown_tag``) here already.

A source that disconnects or reconnects is told to the workers in the same stream: per asset, a
record with the header ``sentinelle-source`` (``down`` / ``up``) whose samples name the tags
(values empty), sent after the samples already taken from the queue; the worker marks those tags'
source down (their slots are gaps, ``source_down`` alerts) as the all-in-one daemon does.
The engineering ranges a source read at its subscription (OPC-UA EURange) follow the same way, per
asset, in a record with the header ``sentinelle-eu-range`` (``codec.RANGE_HEADER``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ..errors import SourceUnavailable
from ..notify import sd_notify
from ..queues import CLOSED
from ..records import EngineeringRange, Sample
from ..sinks.kafka_security import kafka_security_kwargs
from .codec import RANGE_HEADER, SOURCE_HEADER, encode_samples
from .topics import ensure_topics

if TYPE_CHECKING:
    from ..app import Daemon

log = logging.getLogger(__name__)


class Collector:
    """Runs the sources of ``daemon`` into the samples topic (``daemon.mode = "collector"``)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.settings = daemon.settings
        self.asset_of = {t.name: t.asset for t in self.settings.tags}
        self._producer: Any = None
        self.records_sent = 0
        self._states: list[tuple[tuple[str, ...], bool]] = []
        """Source state changes not sent yet: (tags, down)."""
        daemon.on_source_state = lambda tags, down: self._states.append((tags, down))
        self._ranges: list[EngineeringRange] = []
        """Engineering ranges read by the sources, not sent yet."""
        daemon.on_source_ranges = self._ranges.extend

    async def start(self) -> None:
        """Metrics endpoint, topics, producer; :class:`SourceUnavailable` when Kafka cannot be reached."""
        self.daemon.start_metrics_endpoint()
        k, sc = self.settings.kafka, self.settings.scaleout
        await ensure_topics(k, sc)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=k.bootstrap_servers,
            client_id=f"{k.client_id}-collector",
            acks="all",
            enable_idempotence=True,
            linger_ms=sc.collector_linger_ms,
            request_timeout_ms=k.request_timeout_ms,
            **kafka_security_kwargs(k),
        )
        try:
            async with asyncio.timeout(k.request_timeout_ms / 1000):
                await self._producer.start()
        except (KafkaError, OSError, TimeoutError) as e:
            await self._stop_producer()
            raise SourceUnavailable(f"Kafka at {k.bootstrap_servers} is unreachable for the collector: {e}") from None

    async def serve(self, stop: asyncio.Event) -> None:
        """Run the sources and publish their samples until ``stop``; then publish what is queued and stop."""
        d = self.daemon
        try:
            async with asyncio.TaskGroup() as tg:
                sources = [tg.create_task(src.run(), name=f"source-{src.name}") for src in d.sources]
                await d.check_required_sources()
                publisher = tg.create_task(self._publish(), name="collector-publish")
                d.metrics.up.set(1)
                sd_notify("READY=1")
                log.info("collecting %d tags from %d sources into %s", len(self.asset_of), len(d.sources), self._topic)
                await stop.wait()
                sd_notify("STOPPING=1")
                d.metrics.up.set(0)
                for t in sources:
                    t.cancel()
                await asyncio.gather(*sources, return_exceptions=True)
                d.samples.close()
                try:
                    async with asyncio.timeout(self.settings.daemon.shutdown_timeout_s):
                        await publisher
                except TimeoutError:
                    log.error("the samples queued at the stop were not all published within the grace period")
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        await self._stop_producer()
        await self.daemon.aclose()

    @property
    def _topic(self) -> str:
        return self.settings.scaleout.samples_topic

    async def _publish(self) -> None:
        interval = self.settings.scaleout.collector_flush_interval_ms / 1000
        samples = self.daemon.samples
        by_asset: dict[str, list[Sample]] = {}
        due = time.monotonic() + interval
        while True:
            chunk = await samples.get_within(max(0.0, due - time.monotonic()))
            if chunk is CLOSED:
                break
            if chunk is not None:
                self._group(chunk, by_asset)
            if time.monotonic() >= due or self._states or self._ranges:
                await self._flush(by_asset)
                await self._send_states()
                by_asset = {}
                due = time.monotonic() + interval
        await self._flush(by_asset)
        await self._send_states()

    async def _send_states(self) -> None:
        """The source state changes so far, one record per asset and change, after the samples before them;
        then the engineering ranges read so far, one record per asset."""
        ranges, self._ranges = self._ranges, []
        by_asset_ranges: dict[str, list[Sample]] = {}
        for r in ranges:
            asset = self.asset_of.get(r.tag)
            if asset is not None:
                by_asset_ranges.setdefault(asset, []).append(Sample(r.tag, r.low, r.high))
        states, self._states = self._states, []
        for tags, down in states:
            by_asset: dict[str, list[Sample]] = {}
            now = time.time()
            for tag in tags:
                asset = self.asset_of.get(tag)
                if asset is not None:
                    by_asset.setdefault(asset, []).append(Sample(tag, now, None))
            header = [(SOURCE_HEADER, b"down" if down else b"up")]
            await self._flush(by_asset, header)
        await self._flush(by_asset_ranges, [(RANGE_HEADER, b"1")])

    def _group(self, chunk: Sequence[Sample], by_asset: dict[str, list[Sample]]) -> None:
        unknown = 0
        for s in chunk:
            asset = self.asset_of.get(s.tag)
            if asset is None:
                unknown += 1
            else:
                by_asset.setdefault(asset, []).append(s)
        if unknown:
            self.daemon.metrics.drop("unknown_tag", unknown)

    async def _flush(self, by_asset: dict[str, list[Sample]], headers: list[tuple[str, bytes]] | None = None) -> None:
        """One record per asset; wait for every acknowledgement (failures dropped and counted)."""
        if not by_asset or self._producer is None:
            return
        m = self.daemon.metrics
        sends = []
        for asset, samples in by_asset.items():
            try:
                fut = await self._producer.send(
                    self._topic, encode_samples(samples), key=asset.encode(), headers=headers
                )
            except KafkaError as e:
                m.drop("publish_failed", len(samples))
                log.error("samples of %s not published: %s", asset, e)
                continue
            sends.append((asset, len(samples), fut))
        for asset, n, fut in sends:
            try:
                await fut
            except KafkaError as e:
                m.drop("publish_failed", n)
                log.error("%d samples of %s not published: %s", n, asset, e)
            else:
                self.records_sent += 1
                m.scaleout_records.labels("collector").inc()

    async def _stop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                async with asyncio.timeout(self.settings.kafka.request_timeout_ms / 1000):
                    await producer.stop()
