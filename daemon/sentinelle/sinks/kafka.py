"""Alert events to a Kafka topic, for the data engineers downstream (``docs/alerts.md``).

One record per :class:`~sentinelle.records.AlertEvent` (``sinks/kafka_message.py``): key =
asset (UTF-8), so every event of an asset lands in one partition and keeps its order;
value = compact JSON of :meth:`AlertEvent.to_dict` (``docs/alert-event.schema.json``);
headers ``schema_version`` and ``event`` so consumers can route without parsing.  The
producer's connection is ``sinks/kafka_producer.py``; where undelivered events wait
(queue, chunk in flight, spool) is ``sinks/kafka_backlog.py``; this module is the sink's
life cycle and its delivery task.

Why a queue and a background task instead of sending from :meth:`KafkaSink.send`:
the detect stage must never wait on a broker.  ``send`` only appends to a bounded
in-memory queue (overflow drops the *oldest* events, counted in
``sentinelle_sink_events_dropped_total{sink="kafka"}`` and logged); one delivery
task takes events from its head in order, hands them to an idempotent
``AIOKafkaProducer`` (``acks=all``) and waits for the broker's acknowledgement
before it forgets them.  Nothing is lost silently: an event is delivered
(``sink_events_delivered_total``), dropped and counted, or still pending.

Failure handling, and why it preserves the order of each asset's events:

* An idempotent aiokafka producer retries a batch it has sent until the broker
  acknowledges it, and sends one batch per partition at a time, so a broker
  outage while connected only delays acknowledgements: every ``request_timeout_ms``
  without them counts one error and logs a warning; nothing is re-sent, so no
  duplicates.
* Any other failure (topic metadata not available, the producer's buffer full
  for too long, a batch expired without a partition leader, a fatal producer
  error) puts the failed events back at the head of the queue — together with
  every later event of the same asset, even one already acknowledged, so the
  asset's latest state is written last — counts an error, replaces the producer
  and retries with exponential backoff.  This is where duplicates can come from:
  delivery is at least once.
* An event that can never be delivered (larger than the producer's maximum
  request size) is dropped, counted as an error and as dropped, and logged.

Store and forward (``sinks/spool.py``), so that a stop or a long outage loses nothing:

* When Kafka has acknowledged nothing for ``spool_after_s`` while events are
  pending, when the memory queue overflows, and at :meth:`KafkaSink.close` (its
  deadline reached), every pending event not yet on disk — the unacknowledged
  chunk first, then the queue — is appended to the spool.  Events in memory are
  always newer than those in the spool, and delivery takes the spool's head
  first, so each asset's order survives outages and restarts.
* Spooled events are committed (forgotten) only once acknowledged; a restart
  sends what is left before any new event.  A re-send has the event's original
  ``event_id`` (in the JSON), which consumers de-duplicate on.
* Recovery is logged twice: when the first acknowledgement arrives after an
  outage (how long it lasted, how many events wait), and when that backlog is
  delivered (how many, in how long).

aiokafka's exceptions never leave this module: :meth:`KafkaSink.start` raises
:class:`~sentinelle.errors.SinkUnavailable` (or ``ConfigError`` for bootstrap
servers it cannot parse), and delivery problems are counted and logged, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any, Final

from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from ..errors import SinkError, SinkUnavailable
from ..metrics import Metrics
from ..records import AlertEvent
from ..settings import KafkaSettings
from .kafka_backlog import Backlog
from .kafka_message import Message, encode
from .kafka_producer import connect_producer, stop_producer

__all__ = ["SINK_NAME", "KafkaSink", "encode"]

log = logging.getLogger(__name__)

SINK_NAME: Final = "kafka"

_WATCH_INTERVAL_S = 1.0
"""How often gauges are refreshed and an outage is checked against ``spool_after_s``."""


class KafkaSink:
    """Publishes alert events to ``settings.topic``; see the module docstring for the guarantees.

    ``retry_initial_s`` and ``retry_max_s`` bound the exponential backoff between
    reconnections and retries (the settings tree has no field for them: the
    defaults suit a daemon, tests shorten them).
    """

    name = SINK_NAME

    def __init__(
        self,
        settings: KafkaSettings,
        metrics: Metrics,
        *,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        self._settings = settings
        self._request_timeout_s = settings.request_timeout_ms / 1000
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._delivered = metrics.sink_events.labels(SINK_NAME)
        self._errors = metrics.sink_errors.labels(SINK_NAME)
        self._dropped = metrics.sink_dropped.labels(SINK_NAME)
        self._backlog = Backlog(settings, metrics, lambda: not self._closed and self._outage_since is not None)
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._producer: Any = None
        self._worker: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False
        self._stalled_since: float | None = None
        """Since when events have been pending without any acknowledgement (monotonic)."""
        self._outage_since: float | None = None
        """Set by a failed delivery: when the stall it belongs to began; cleared by the next acknowledgement."""
        self._recovery: tuple[float, int] | None = None
        """After a recovery: when it began, and events delivered since (logged once the backlog is gone)."""

    @property
    def pending(self) -> int:
        """Events accepted by :meth:`send` and neither delivered nor dropped yet (memory and spool)."""
        return self._backlog.pending

    @property
    def spooled(self) -> int:
        """Events waiting in the on-disk spool (those in flight from it included)."""
        return self._backlog.spooled

    @property
    def connected(self) -> bool:
        """True while a started producer exists (it may still be waiting for a broker that went away)."""
        return self._producer is not None

    async def start(self) -> None:
        """Open the spool, connect, and make sure the topic exists (auto-created on first metadata request).

        Raises :class:`SinkUnavailable` when the spool directory cannot be used, or
        naming the bootstrap servers when the cluster cannot be reached and
        ``required_at_start`` is set; otherwise logs a warning and keeps connecting
        in the background while ``send`` queues events.  Events an earlier run
        spooled are sent first.
        Raises :class:`~sentinelle.errors.ConfigError` when ``bootstrap_servers``
        cannot be parsed, required or not: retrying would not help.
        """
        if self._worker is not None:
            return
        self._backlog.open_spool()
        if self._backlog.spooled:
            self._drained.clear()
        try:
            self._producer = await self._connect()
        except SinkError as e:
            if self._settings.required_at_start:
                raise SinkUnavailable(f"{e} (kafka.required_at_start is true)") from None
            log.warning("%s; retrying in the background, alert events are queued meanwhile", e)
        else:
            log.info("Kafka sink connected to %s, topic %s", self._settings.bootstrap_servers, self._settings.topic)
        self._worker = asyncio.create_task(self._deliver_forever(), name="kafka-sink")
        self._watcher = asyncio.create_task(self._watch(), name="kafka-sink-watch")

    async def send(self, events: Sequence[AlertEvent]) -> None:
        """Queue ``events`` for delivery and return at once; never raises for delivery problems."""
        if not events:
            return
        if self._closed:
            self._dropped.inc(len(events))
            log.error("Kafka sink is closed: dropped %d alert events", len(events))
            return
        self._backlog.add(events)
        if self._backlog.queue:
            if self._stalled_since is None:
                self._stalled_since = time.monotonic()
            self._drained.clear()
            self._wake.set()

    async def flush(self, timeout_s: float) -> bool:
        """Until every event given to :meth:`send` is acknowledged or on disk; True when none is only in memory.

        For a scale-out worker, which commits its input offsets only once the alert events they
        caused are durable: waits up to ``timeout_s`` for Kafka, then spools what is still pending.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._wait_drained()
        if self._drained.is_set():
            return True
        self._backlog.spill("a scale-out worker commits its offsets")
        return self.pending == self.spooled

    async def close(self) -> None:
        """Deliver what is pending, then stop the producer.

        Waits as long as delivery takes: the caller bounds it (``asyncio.timeout``).
        When cancelled, the undelivered events go to the spool (without one: are
        counted as dropped and logged), the producer is stopped without waiting
        for them (within about ``2 × kafka_producer.ABORT_GRACE_S``), and the cancellation propagates.
        """
        if self._closed:
            return
        self._closed = True
        try:
            await self._wait_drained()
        except asyncio.CancelledError:
            self._backlog.spill_or_drop("stopping before Kafka acknowledged them")
            await self._stop(abort=True)
            self._backlog.close_spool()
            raise
        # Only a sink that was never started, or a bug, leaves events pending here.
        self._backlog.spill_or_drop("stopping")
        await self._stop(abort=False)
        self._backlog.close_spool()

    # --- outages -------------------------------------------------------------------------------

    async def _watch(self) -> None:
        """Refresh the gauges; spill to the spool once nothing has been acknowledged for ``spool_after_s``."""
        after_s = self._settings.spool_after_s
        interval = min(_WATCH_INTERVAL_S, after_s / 4)
        while True:
            now = time.monotonic()
            if not self.pending:
                self._stalled_since = None
            elif self._stalled_since is None:
                self._stalled_since = now
            elif now - self._stalled_since >= after_s:
                self._backlog.spill(f"Kafka has acknowledged no alert event for {now - self._stalled_since:.0f} s")
            self._backlog.update_gauges()
            await asyncio.sleep(interval)

    def _note_failure(self) -> None:
        """Count a failed delivery attempt; it marks an outage, whose end :meth:`_note_progress` logs."""
        self._errors.inc()
        if self._outage_since is None:
            self._outage_since = self._stalled_since if self._stalled_since is not None else time.monotonic()

    def _note_progress(self, delivered: int) -> None:
        """Events were acknowledged: the stall is over; log a recovery and, later, its backlog delivered."""
        now = time.monotonic()
        self._stalled_since = now if self.pending else None
        if self._outage_since is not None:
            log.warning(
                "Kafka delivery recovered after %.1f s without acknowledgements; sending the %d alert events "
                "that waited (%d from the spool)",
                now - self._outage_since,
                self.pending + delivered,
                self.spooled,
            )
            self._outage_since = None
            self._recovery = (now, 0)
        if self._recovery is not None:
            began, sent = self._recovery
            self._recovery = (began, sent + delivered)
            if not self.pending:
                log.warning(
                    "Kafka backlog after the outage delivered: %d alert events in %.1f s", sent + delivered, now - began
                )
                self._recovery = None
        self._backlog.update_gauges()

    # --- delivery task -------------------------------------------------------------------------

    async def _deliver_forever(self) -> None:
        """Connect when needed and deliver the spool's head, then the queue's, in order, until cancelled."""
        delay = self._retry_initial_s
        while True:
            try:
                if self._producer is None:
                    try:
                        self._producer = await self._connect()
                    except SinkError as e:
                        if self.pending:
                            self._note_failure()
                        log.warning(
                            "%s; retrying in %.1f s (%d alert events pending)",
                            e,
                            delay,
                            self.pending,
                        )
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, self._retry_max_s)
                        continue
                    log.info("Kafka sink connected to %s", self._settings.bootstrap_servers)
                if not self._backlog.queue and not self.spooled:
                    self._drained.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if await self._deliver_chunk(self._producer):
                    delay = self._retry_initial_s
                    continue
                abort = False  # every acknowledgement has arrived: the producer holds nothing
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug must not stop delivery for good: requeue, count, and retry like any failure.
                self._backlog.requeue(self._backlog.in_flight)
                self._note_failure()
                log.exception("Kafka sink delivery failed unexpectedly; retrying")
                abort = True  # the producer may still hold the requeued events: do not wait for them
            # Something failed: a fresh producer after a pause is the one recovery that fits every cause.
            await self._discard_producer(abort=abort)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max_s)

    async def _deliver_chunk(self, producer: Any) -> bool:
        """Send up to ``CHUNK_EVENTS`` events from the head and wait for all acknowledgements.

        Returns False when some must be retried (they are back at the head of the queue, or still in the spool).
        """
        chunk = self._backlog.take_chunk()
        if not chunk:
            return True
        acks: list[asyncio.Future[Any] | None] = []
        send_error: KafkaError | None = None
        for message in chunk:
            try:
                ack = await producer.send(
                    self._settings.topic, value=message.value, key=message.key, headers=list(message.headers)
                )
            except MessageSizeTooLargeError as e:
                log.error("Alert event %s is too large for Kafka (%s); dropped", message.event_id, e)
                ack = None
            except KafkaError as e:
                # Metadata not available or the producer's buffer full for request_timeout_ms:
                # this and every later event of the chunk go back to the queue.
                send_error = e
                break
            acks.append(ack)
        await self._wait_acks([a for a in acks if a is not None])

        retry_keys: set[bytes] = set()
        retry: list[Message] = []
        first_error: BaseException | None = send_error
        delivered = 0
        done_serial: int | None = None
        """On disk: the last serial of the prefix of the chunk that is delivered (or dropped)."""
        serials = self._backlog.in_flight_serials
        for i, message in enumerate(chunk):
            ack = acks[i] if i < len(acks) else None
            if i >= len(acks):
                error: BaseException | None = send_error
            elif ack is None:  # too large: dropped, never retried
                self._errors.inc()
                self._dropped.inc()
                error = None
            else:
                error = SinkError("acknowledgement cancelled") if ack.cancelled() else ack.exception()
            acknowledged = ack is not None and error is None
            if serials is not None:
                # On disk, everything from the first failure on is re-sent from the spool, in order.
                if error is not None or retry:
                    first_error = first_error or error
                    retry.append(message)
                elif serials[i] is not None:
                    done_serial = serials[i]
                delivered += acknowledged
            elif error is not None or message.key in retry_keys:
                # Later events of this asset are re-sent too, so they are not followed by an older one.
                first_error = first_error or error
                retry_keys.add(message.key)
                retry.append(message)
            else:
                delivered += acknowledged
        self._delivered.inc(delivered)
        if done_serial is not None:
            self._backlog.commit(done_serial)
        self._backlog.settle()
        if delivered:
            self._note_progress(delivered)
        if not retry:
            return True
        self._note_failure()
        if serials is None:
            self._backlog.requeue(retry)
        log.warning(
            "Kafka delivery to %s failed (%s: %s); %d alert events will be retried",
            self._settings.topic,
            type(first_error).__name__,
            first_error,
            len(retry),
        )
        return False

    async def _wait_acks(self, acks: list[asyncio.Future[Any]]) -> None:
        """Wait for every acknowledgement, counting an error each ``request_timeout_ms`` without them.

        The idempotent producer retries sent batches until the broker takes them,
        so a broker outage shows up here as a long wait, not as an exception.
        """
        waiting = set(acks)
        while waiting:
            _, waiting = await asyncio.wait(waiting, timeout=self._request_timeout_s)
            if waiting:
                self._note_failure()
                log.warning(
                    "%d alert events not acknowledged by Kafka at %s after %.1f s; the producer retries",
                    len(waiting),
                    self._settings.bootstrap_servers,
                    self._request_timeout_s,
                )

    async def _wait_drained(self) -> None:
        """Until nothing is pending — or the delivery task is gone, which only a bug can cause."""
        if self._worker is None:
            return
        drained = asyncio.ensure_future(self._drained.wait())
        try:
            await asyncio.wait([drained, self._worker], return_when=asyncio.FIRST_COMPLETED)
        finally:
            drained.cancel()

    # --- producer life cycle -------------------------------------------------------------------

    async def _connect(self) -> Any:
        return await connect_producer(self._settings)

    async def _discard_producer(self, *, abort: bool) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await stop_producer(producer, abort=abort, timeout_s=self._request_timeout_s)

    async def _stop(self, *, abort: bool) -> None:
        """Cancel the delivery and watch tasks, then stop the producer."""
        tasks = [t for t in (self._worker, self._watcher) if t is not None]
        self._worker = self._watcher = None
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self._discard_producer(abort=abort)
