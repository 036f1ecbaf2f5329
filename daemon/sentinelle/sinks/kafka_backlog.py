"""What the Kafka sink holds that Kafka has not acknowledged: the memory queue, the chunk in flight, the spool.

The delivery side (``sinks/kafka.py``) only takes chunks from the head, settles them and
puts failures back; the rules of where an event waits live here:

* events in memory are always newer than those in the spool, and a chunk comes from the
  spool's head while the spool has any, so each asset's order survives outages and restarts;
* a spill appends every pending event not on disk yet — the chunk in flight first, then the
  queue — and remembers the spool serials of the chunk, which is then committed on disk
  (forgotten) only once acknowledged;
* the queue is bounded (``kafka.max_pending_events``): beyond it, spill, or without a spool
  drop the oldest, counted and logged.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterable

from ..metrics import Metrics
from ..records import AlertEvent
from ..settings import KafkaSettings
from .kafka_message import Message, message
from .spool import Spool

log = logging.getLogger(__name__)

CHUNK_EVENTS = 500
"""Events handed to the producer before waiting for their acknowledgements.

Waiting per event would cost ``linger_ms`` plus a round trip each (~150 events/s);
a burst of thousands of alerts (a plant trip) must not take minutes to publish.
"""

_SPILL_LOG_INTERVAL_S = 60.0
"""Spilling during one outage is logged at most this often (with the count since the last line)."""

_OVERFLOW_LOG_INTERVAL_S = 10.0
"""Queue overflow is logged at most this often: a long outage overflows on every send."""


class Backlog:
    """The sink's undelivered events, in memory and on disk, in delivery order.

    ``in_outage``: whether spills should be logged at most once a minute (the sink is in an
    outage and not closing: its watcher spills every second).
    """

    def __init__(self, settings: KafkaSettings, metrics: Metrics, in_outage: Callable[[], bool]) -> None:
        self._settings = settings
        self._metrics = metrics
        self._errors = metrics.sink_errors.labels("kafka")
        self._dropped = metrics.sink_dropped.labels("kafka")
        self._in_outage = in_outage
        self.queue: collections.deque[Message] = collections.deque()
        self.in_flight: list[Message] = []
        """Taken from the queue or the spool, handed to the producer, not yet acknowledged."""
        self.in_flight_serials: list[int | None] | None = None
        """Spool serials of ``in_flight`` when it is on disk (read from the spool, or spilled since); else None."""
        self.spool: Spool | None = None
        if settings.spool_dir is not None:
            self.spool = Spool(
                settings.spool_dir,
                max_bytes=settings.spool_max_bytes,
                fsync=settings.spool_fsync,
                on_drop=self._dropped.inc,
                on_torn=self._torn,
            )
        self._spool_open = False
        self._overflow_unlogged = 0
        self._overflow_logged_at = -_OVERFLOW_LOG_INTERVAL_S
        self._spill_unlogged = 0
        self._spill_logged_at = -_SPILL_LOG_INTERVAL_S

    @property
    def in_memory(self) -> int:
        """Events only in memory: the queue, and the chunk in flight unless it is on disk."""
        return len(self.queue) + (len(self.in_flight) if self.in_flight_serials is None else 0)

    @property
    def pending(self) -> int:
        """Events neither delivered nor dropped yet (memory and spool)."""
        return self.in_memory + self.spooled

    @property
    def spooled(self) -> int:
        """Events waiting in the on-disk spool (those in flight from it included)."""
        return self.spool.events if self.spool is not None else 0

    def open_spool(self) -> None:
        """Open the spool (once); raises ``SinkUnavailable`` when its directory cannot be used."""
        if self.spool is not None and not self._spool_open:
            self.spool.open()
            self._spool_open = True

    def add(self, events: Iterable[AlertEvent]) -> None:
        """Encode and queue alert events; one that cannot be encoded is counted, logged and dropped."""
        for event in events:
            try:
                self.queue.append(message(event))
            except (TypeError, ValueError):
                self._errors.inc()
                self._dropped.inc()
                log.exception("Alert event %s cannot be encoded as JSON; dropped", event.alert_id)
        self.enforce_bound()

    def take_chunk(self) -> list[Message]:
        """Up to :data:`CHUNK_EVENTS` events from the spool's head when it has any, else from the queue's: the
        new ``in_flight``."""
        if not self.spooled:
            self.in_flight_serials = None
            self.in_flight = [self.queue.popleft() for _ in range(min(len(self.queue), CHUNK_EVENTS))]
            return self.in_flight
        assert self.spool is not None
        chunk: list[Message] = []
        serials: list[int | None] = []
        for serial, payload in self.spool.head(CHUNK_EVENTS):
            try:
                m = Message.from_record(payload)
            except (ValueError, KeyError, TypeError) as e:
                if chunk:
                    break  # the chunk before it first; then it is at the head
                self._errors.inc()
                self._dropped.inc()
                log.error("alert spool record %d is unreadable (%s); dropped", serial, e)
                self.commit(serial)
                continue
            chunk.append(m)
            serials.append(serial)
        self.in_flight, self.in_flight_serials = chunk, serials
        return chunk

    def settle(self) -> None:
        """The chunk in flight is done with (delivered, dropped, or put back)."""
        self.in_flight = []
        self.in_flight_serials = None

    def commit(self, serial: int) -> None:
        """Forget the spool's events up to ``serial``: delivered."""
        assert self.spool is not None
        try:
            self.spool.commit(serial)
        except OSError as e:
            # The events went out; a stale cursor only re-sends them after a restart (same event ids).
            self._errors.inc()
            log.error("alert spool %s: cannot record delivered events (%s)", self.spool.directory, e)

    def requeue(self, messages: list[Message]) -> None:
        """Put events that failed back at the head of the queue (events on disk are re-read from the spool)."""
        if self.in_flight_serials is None:
            self.queue.extendleft(reversed(messages))
        self.settle()
        self.enforce_bound()

    def enforce_bound(self) -> None:
        """Beyond ``max_pending_events`` queued: spill to the spool, or without one drop the oldest.

        The bound is on the queue; up to :data:`CHUNK_EVENTS` more may be in flight.
        """
        excess = len(self.queue) - self._settings.max_pending_events
        if excess <= 0:
            return
        if self.spill(f"more than {self._settings.max_pending_events} alert events pending"):
            return
        for _ in range(excess):
            self.queue.popleft()
        self._dropped.inc(excess)
        self._overflow_unlogged += excess
        now = time.monotonic()
        if now - self._overflow_logged_at >= _OVERFLOW_LOG_INTERVAL_S:
            log.error(
                "Kafka sink queue full (%d events): dropped the %d oldest alert events",
                self._settings.max_pending_events,
                self._overflow_unlogged,
            )
            self._overflow_unlogged = 0
            self._overflow_logged_at = now

    def spill(self, why: str) -> int:
        """Append every pending event not on disk yet to the spool — in flight first, then the queue.

        Returns how many were written; on a disk error they stay in memory (counted, logged).
        """
        if self.spool is None or not self._spool_open:
            return 0
        in_flight = self.in_flight if self.in_flight_serials is None else []
        messages = [*in_flight, *self.queue]
        if not messages:
            return 0
        try:
            serials = self.spool.append([m.to_record() for m in messages])
        except OSError as e:
            self._errors.inc()
            log.error(
                "cannot write %d alert events to the spool %s (%s); they stay in memory",
                len(messages),
                self.spool.directory,
                e,
            )
            return 0
        if in_flight:
            self.in_flight_serials = serials[: len(in_flight)]
        self.queue.clear()
        self._spill_unlogged += len(messages)
        now = time.monotonic()
        # During an outage the watcher spills every second: one line a minute says enough.
        if not self._in_outage() or now - self._spill_logged_at >= _SPILL_LOG_INTERVAL_S:
            log.warning(
                "%s: wrote %d alert events to the spool %s (%d waiting there, %d bytes)",
                why,
                self._spill_unlogged,
                self.spool.directory,
                self.spool.events,
                self.spool.size_bytes,
            )
            self._spill_unlogged = 0
            self._spill_logged_at = now
        self.update_gauges()
        return len(messages)

    def spill_or_drop(self, why: str) -> None:
        """At a stop: spill what is pending in memory, and give up what the disk refused (counted, logged)."""
        self.spill(why)
        undelivered = self.in_memory
        if undelivered:
            self._dropped.inc(undelivered)
            log.error(
                "Kafka sink closed before %d alert events were acknowledged by %s; counted as dropped",
                undelivered,
                self._settings.topic,
            )
        self.queue.clear()
        self.settle()

    def close_spool(self) -> None:
        if self.spool is None or not self._spool_open:
            return
        if self.spool.events:
            log.warning(
                "%d alert events wait in the spool %s for the next start", self.spool.events, self.spool.directory
            )
        try:
            self.spool.close()
        except OSError as e:
            self._errors.inc()
            log.error("alert spool %s did not close cleanly: %s", self.spool.directory, e)
        self._spool_open = False
        self.update_gauges()

    def update_gauges(self) -> None:
        self._metrics.alert_pending.set(self.pending)
        self._metrics.alert_spool_events.set(self.spooled)
        self._metrics.alert_spool_bytes.set(self.spool.size_bytes if self.spool is not None else 0)

    def _torn(self, n: int) -> None:
        self._dropped.inc(n)
        self._metrics.alert_spool_torn.inc(n)
