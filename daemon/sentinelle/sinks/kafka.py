"""Alert events to a Kafka topic, for the data engineers downstream (``docs/alerts.md``).

One record per :class:`~sentinelle.records.AlertEvent`: key = asset (UTF-8), so
every event of an asset lands in one partition and keeps its order; value =
compact JSON of :meth:`AlertEvent.to_dict` (``docs/alert-event.schema.json``);
headers ``schema_version`` and ``event`` so consumers can route without parsing.

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

aiokafka's exceptions never leave this module: :meth:`KafkaSink.start` raises
:class:`~sentinelle.errors.SinkUnavailable` (or ``ConfigError`` for bootstrap
servers it cannot parse), and delivery problems are counted and logged, never raised.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, MessageSizeTooLargeError

from ..errors import ConfigError, SinkError, SinkUnavailable
from ..metrics import Metrics
from ..records import AlertEvent
from ..settings import KafkaSettings
from .kafka_security import explain_connect_failure, kafka_security_kwargs

log = logging.getLogger(__name__)

SINK_NAME: Final = "kafka"

_CHUNK_EVENTS = 500
"""Events handed to the producer before waiting for their acknowledgements.

Waiting per event would cost ``linger_ms`` plus a round trip each (~150 events/s);
a burst of thousands of alerts (a plant trip) must not take minutes to publish.
"""

_ABORT_GRACE_S = 1.0
"""How long a cancelled ``close`` still waits for requests already on the wire."""

_OVERFLOW_LOG_INTERVAL_S = 10.0
"""Queue overflow is logged at most this often: a long outage overflows on every send."""


@dataclass(frozen=True, slots=True)
class _Message:
    """An event already encoded, so a malformed one fails in ``send``, not in the delivery task."""

    alert_id: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def encode(event: AlertEvent) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the Kafka record of ``event``.

    ``allow_nan=False``: JSON has no NaN, and :meth:`AlertEvent.to_dict` already
    turns non-finite numbers into null; anything else is a bug to report, not to
    publish as invalid JSON.

    >>> from sentinelle.records import AlertEvent
    >>> ev = AlertEvent("opened", "chiller1/chiller1.chw_temp_c/limit_high/1700000000000",
    ...                 "limit_high", "chiller1", "chiller1.chw_temp_c", "warning",
    ...                 1_700_000_000.0, 1_700_000_000.0, None, 1.0, 9.1, 5.0, 4.6, 5.4,
    ...                 "degC", "above the high limit")
    >>> key, value, headers = encode(ev)
    >>> key, headers
    (b'chiller1', [('schema_version', b'1'), ('event', b'opened')])
    >>> value[:40]
    b'{"schema_version":1,"event":"opened","al'
    """
    value = json.dumps(event.to_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    headers = [("schema_version", str(event.schema_version).encode()), ("event", event.event.encode())]
    return event.asset.encode(), value.encode(), headers


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

        self._queue: collections.deque[_Message] = collections.deque()
        self._in_flight: list[_Message] = []
        """Taken from the queue, handed to the producer, not yet acknowledged."""
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._producer: Any = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._overflow_unlogged = 0
        self._overflow_logged_at = -_OVERFLOW_LOG_INTERVAL_S

    @property
    def pending(self) -> int:
        """Events accepted by :meth:`send` and neither delivered nor dropped yet."""
        return len(self._queue) + len(self._in_flight)

    @property
    def connected(self) -> bool:
        """True while a started producer exists (it may still be waiting for a broker that went away)."""
        return self._producer is not None

    async def start(self) -> None:
        """Connect, and make sure the topic exists (auto-created on first metadata request).

        Raises :class:`SinkUnavailable` naming the bootstrap servers when the cluster
        cannot be reached and ``required_at_start`` is set; otherwise logs a warning
        and keeps connecting in the background while ``send`` queues events.
        Raises :class:`~sentinelle.errors.ConfigError` when ``bootstrap_servers``
        cannot be parsed, required or not: retrying would not help.
        """
        if self._worker is not None:
            return
        try:
            self._producer = await self._connect()
        except SinkError as e:
            if self._settings.required_at_start:
                raise SinkUnavailable(f"{e} (kafka.required_at_start is true)") from None
            log.warning("%s; retrying in the background, alert events are queued meanwhile", e)
        else:
            log.info("Kafka sink connected to %s, topic %s", self._settings.bootstrap_servers, self._settings.topic)
        self._worker = asyncio.create_task(self._deliver_forever(), name="kafka-sink")

    async def send(self, events: Sequence[AlertEvent]) -> None:
        """Queue ``events`` for delivery and return at once; never raises for delivery problems."""
        if not events:
            return
        if self._closed:
            self._dropped.inc(len(events))
            log.error("Kafka sink is closed: dropped %d alert events", len(events))
            return
        for event in events:
            try:
                key, value, headers = encode(event)
            except (TypeError, ValueError):
                self._errors.inc()
                self._dropped.inc()
                log.exception("Alert event %s cannot be encoded as JSON; dropped", event.alert_id)
                continue
            self._queue.append(_Message(event.alert_id, key, value, tuple(headers)))
        self._enforce_bound()
        if self._queue:
            self._drained.clear()
            self._wake.set()

    async def close(self) -> None:
        """Deliver what is pending, then stop the producer.

        Waits as long as delivery takes: the caller bounds it (``asyncio.timeout``).
        When cancelled, the undelivered events are counted as dropped and logged,
        the producer is stopped without waiting for them, and the cancellation
        propagates.
        """
        if self._closed:
            return
        self._closed = True
        try:
            await self._wait_drained()
        except asyncio.CancelledError:
            self._drop_pending()
            await self._stop(abort=True)
            raise
        # Only a sink that was never started, or a bug, leaves events pending here.
        self._drop_pending()
        await self._stop(abort=False)

    def _drop_pending(self) -> None:
        undelivered = self.pending
        if undelivered:
            self._dropped.inc(undelivered)
            log.error(
                "Kafka sink closed before %d alert events were acknowledged by %s; counted as dropped",
                undelivered,
                self._settings.topic,
            )
        self._queue.clear()
        self._in_flight = []

    # --- delivery task -------------------------------------------------------------------------

    async def _deliver_forever(self) -> None:
        """Connect when needed and deliver the queue's head, in order, until cancelled by ``close``."""
        delay = self._retry_initial_s
        while True:
            try:
                if self._producer is None:
                    try:
                        self._producer = await self._connect()
                    except SinkError as e:
                        if self.pending:
                            self._errors.inc()
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
                if not self._queue:
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
                self._requeue(self._in_flight)
                self._errors.inc()
                log.exception("Kafka sink delivery failed unexpectedly; retrying")
                abort = True  # the producer may still hold the requeued events: do not wait for them
            # Something failed: a fresh producer after a pause is the one recovery that fits every cause.
            await self._discard_producer(abort=abort)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max_s)

    async def _deliver_chunk(self, producer: Any) -> bool:
        """Send up to ``_CHUNK_EVENTS`` events from the head and wait for all acknowledgements.

        Returns False when some must be retried (they are back at the head of the queue).
        """
        chunk = [self._queue.popleft() for _ in range(min(len(self._queue), _CHUNK_EVENTS))]
        self._in_flight = chunk
        acks: list[asyncio.Future[Any] | None] = []
        send_error: KafkaError | None = None
        for message in chunk:
            try:
                ack = await producer.send(
                    self._settings.topic, value=message.value, key=message.key, headers=list(message.headers)
                )
            except MessageSizeTooLargeError as e:
                log.error("Alert event %s is too large for Kafka (%s); dropped", message.alert_id, e)
                ack = None
            except KafkaError as e:
                # Metadata not available or the producer's buffer full for request_timeout_ms:
                # this and every later event of the chunk go back to the queue.
                send_error = e
                break
            acks.append(ack)
        await self._wait_acks([a for a in acks if a is not None])

        retry_keys: set[bytes] = set()
        retry: list[_Message] = []
        first_error: BaseException | None = send_error
        delivered = 0
        for i, message in enumerate(chunk):
            if i < len(acks):
                ack = acks[i]
                if ack is None:
                    self._errors.inc()
                    self._dropped.inc()
                    continue
                error = SinkError("acknowledgement cancelled") if ack.cancelled() else ack.exception()
            else:
                error = send_error
            if error is not None or message.key in retry_keys:
                # Later events of this asset are re-sent too, so they are not followed by an older one.
                first_error = first_error or error
                retry_keys.add(message.key)
                retry.append(message)
            else:
                delivered += 1
        self._delivered.inc(delivered)
        self._in_flight = []
        if not retry:
            return True
        self._errors.inc()
        self._requeue(retry)
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
                self._errors.inc()
                log.warning(
                    "%d alert events not acknowledged by Kafka at %s after %.1f s; the producer retries",
                    len(waiting),
                    self._settings.bootstrap_servers,
                    self._request_timeout_s,
                )

    def _requeue(self, messages: list[_Message]) -> None:
        self._queue.extendleft(reversed(messages))
        self._in_flight = []
        self._enforce_bound()

    def _enforce_bound(self) -> None:
        """Drop the oldest queued events beyond ``max_pending_events`` (fresh alerts matter more).

        The bound is on the queue; up to ``_CHUNK_EVENTS`` more may be in flight.
        """
        excess = len(self._queue) - self._settings.max_pending_events
        if excess <= 0:
            return
        for _ in range(excess):
            self._queue.popleft()
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
        """A started producer that knows the topic's partitions, or :class:`SinkError`.

        Each step is bounded by the request timeout: aiokafka's own start waits
        for a producer id without limit while brokers answer but cannot give one.
        Asking for the topic's partitions up front auto-creates a new topic, so the
        first alert does not pay for it, and proves the topic is usable.
        """
        servers = self._settings.bootstrap_servers
        producer = AIOKafkaProducer(
            bootstrap_servers=servers,
            client_id=self._settings.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=self._settings.linger_ms,
            request_timeout_ms=self._settings.request_timeout_ms,
            **kafka_security_kwargs(self._settings),
        )
        step = f"Kafka cluster at {servers} is unreachable"
        try:
            async with asyncio.timeout(self._request_timeout_s):
                await producer.start()
            step = f"Kafka topic {self._settings.topic!r} at {servers} is not available"
            async with asyncio.timeout(self._request_timeout_s):
                await producer.partitions_for(self._settings.topic)
        except ValueError as e:
            # aiokafka parses bootstrap_servers only when it connects.
            await self._stop_producer(producer, abort=False)
            raise ConfigError(f"cannot parse {servers!r}: {e}", field="kafka.bootstrap_servers") from None
        except (KafkaError, OSError, TimeoutError) as e:
            await self._stop_producer(producer, abort=False)
            if isinstance(e, TimeoutError):
                detail = f"no answer within {self._request_timeout_s:g} s"
            elif isinstance(e, KafkaConnectionError):
                detail = explain_connect_failure(self._settings) or "no bootstrap server accepted a connection"
            else:
                detail = f"{type(e).__name__}: {e}"
            raise SinkError(f"{step}: {detail}") from None
        except BaseException:
            await self._stop_producer(producer, abort=False)
            raise
        return producer

    async def _discard_producer(self, *, abort: bool) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await self._stop_producer(producer, abort=abort)

    async def _stop(self, *, abort: bool) -> None:
        """Cancel the delivery task, then stop the producer."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            await asyncio.wait([worker])
        producer, self._producer = self._producer, None
        if producer is not None:
            await self._stop_producer(producer, abort=abort)

    async def _stop_producer(self, producer: Any, *, abort: bool) -> None:
        """Stop ``producer``, bounded; never raises.

        ``AIOKafkaProducer.stop`` first waits for every batch it holds, and an
        idempotent producer retries a sent batch until a broker takes it, so with
        the broker gone ``stop`` would never return.  When ``abort`` is set (the
        events are given up) the producer is torn down without that wait.
        """
        if abort and await self._abort_producer(producer):
            return
        try:
            async with asyncio.timeout(self._request_timeout_s):
                await producer.stop()
        except Exception as e:
            # aiokafka's teardown errors must not leave this module; the events are accounted for.
            log.warning("Kafka producer did not stop cleanly: %s", str(e) or type(e).__name__)

    async def _abort_producer(self, producer: Any) -> bool:
        """``AIOKafkaProducer.stop`` without waiting for undelivered batches; False if not possible.

        aiokafka has no public way to give up pending batches, so this repeats
        what ``stop`` does minus the flush, through two private attributes of
        aiokafka 0.14 (``_closed``, ``_sender``), checked first.  Alternatives
        tried: failing the batches with the accumulator's ``fail_all`` races the
        sender and crashes it; cancelling a bounded ``stop`` leaves its flush task
        pending forever.
        """
        sender = getattr(producer, "_sender", None)
        close_sender = getattr(sender, "close", None)
        if not hasattr(producer, "_closed") or not callable(close_sender):
            return False
        producer._closed = True  # what stop() sets first; it also marks the producer closed for __del__
        try:
            # The sender waits for its requests on the wire; those are given up too after a grace.
            async with asyncio.timeout(_ABORT_GRACE_S):
                await close_sender()
        except Exception as e:
            log.debug("Kafka producer sender did not stop cleanly: %r", e)
        try:
            async with asyncio.timeout(self._request_timeout_s):
                await producer.client.close()
        except Exception as e:
            log.warning("Kafka producer connections did not close cleanly: %s", str(e) or type(e).__name__)
        return True
