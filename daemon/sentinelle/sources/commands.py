"""Operator commands from a Kafka topic: maintenance windows and alert acknowledgements.

An operator console (or any producer a data engineer writes) puts one JSON object
per command on ``commands.topic`` (default ``sentinelle.commands``); the contract is
``docs/command.schema.json``, explained in ``docs/alerts.md``.  This module reads
them, validates them strictly (the wire format is ``command_wire.py``), hands each valid one to the detect stage (the
:class:`CommandHandler`, which owns the alert book and the maintenance calendar),
publishes the ``acknowledged`` alert events that result, answers every command on
``commands.reply_topic`` and commits its offset.  One job per module: this one reads, replays and
commits; ``command_apply.py`` applies one record (parse, de-duplicate, apply, count, the reply);
``command_replies.py`` publishes the replies.

Guarantees, and why:

* **Nothing crashes the daemon.**  Bytes that are not UTF-8 JSON, an object that does
  not match the schema, an unknown ``type`` or ``schema_version``: each is counted in
  ``sentinelle_commands_rejected_total{reason}``, logged (rate-limited, with its
  partition and offset) and answered ``rejected``.  A valid command the daemon cannot
  apply (unknown asset, unknown or closed alert, expired window…) is answered
  ``rejected`` with its reason too, never dropped silently.
* **Applied once.**  ``command_id`` is the idempotency key: a command whose id was
  already seen (a producer retry, a re-sent message) is answered ``duplicate`` and not
  applied again.  The ids of the last ``_REMEMBERED_IDS`` commands are kept.
* **Offsets: commit after apply.**  The consumer commits a record's offset only after
  it was applied, its alert events handed on and its reply sent (or counted as failed).
  A daemon that stops in between re-reads the record at start and applies it then.
* **Commands sent while the daemon was down apply when it starts** — in order, answered
  as usual; a ``maintenance.start`` whose ``until`` has passed is answered ``expired``.
* **Maintenance survives restarts.**  The calendar lives in memory, so at start the
  consumer first reads the topic from its beginning up to the committed offsets and
  re-applies the maintenance commands *silently* (no reply, no event; acknowledgements
  are skipped: the alerts they named belonged to the previous process).  The topic's
  retention must therefore exceed ``commands.max_maintenance_s`` (the longest window
  a command may open); the daemon's start waits for this replay, so the first live
  tick already knows which assets are in maintenance.
* **Every daemon reads every partition** (manual assignment, no group rebalancing):
  each instance must see every command for its assets.  ``commands.group_id`` is used
  only to store the offsets: give each daemon instance its own.

aiokafka's exceptions stay in this module: a required cluster unreachable at start is
:class:`~sentinelle.errors.SourceUnavailable`; later failures are counted in
``sentinelle_source_errors_total{source="commands"}``, logged, and retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from ..errors import ConfigError, SourceUnavailable
from ..metrics import Metrics
from ..records import AlertEvent
from ..settings import CommandSettings, KafkaSettings
from ..sinks.kafka_security import explain_connect_failure, kafka_security_kwargs
from .command_apply import CommandApplier, CommandHandler
from .command_replies import REPLY_SINK_NAME, ReplyPublisher
from .command_wire import CommandReply

__all__ = ["REPLY_SINK_NAME", "SOURCE_NAME", "CommandConsumer", "CommandHandler", "EventEmitter"]

log = logging.getLogger(__name__)

SOURCE_NAME: Final = "commands"

_POLL_TIMEOUT_MS: Final = 1_000
_MAX_RECORDS_PER_POLL: Final = 500


EventEmitter = Callable[[list[AlertEvent]], Awaitable[None]]


# --- the consumer --------------------------------------------------------------------------


class _Unavailable(Exception):
    """The cluster or the topic cannot be used right now (retried)."""


class CommandConsumer:
    """Reads ``settings.topic``, applies each command through ``handler``, replies, commits.

    ``emit`` receives the alert events a command caused (the app puts them on the
    sinks' queue).  ``clock`` is the wall clock (``until`` is compared with it).
    """

    name = SOURCE_NAME

    def __init__(
        self,
        settings: CommandSettings,
        kafka: KafkaSettings,
        metrics: Metrics,
        handler: CommandHandler,
        emit: EventEmitter,
        *,
        clock: Callable[[], float] = time.time,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        self._settings = settings
        self._kafka = kafka
        self._emit = emit
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._timeout_s = kafka.request_timeout_ms / 1000
        self._connected = metrics.source_connected.labels(SOURCE_NAME)
        self._errors = metrics.source_errors.labels(SOURCE_NAME, "kafka")
        self.applier = CommandApplier(metrics, handler, kafka.client_id, clock)
        """Applies each record (parse, de-duplicate, apply, count) and makes its reply."""
        self._replies = ReplyPublisher(metrics, settings.reply_topic, self._timeout_s)
        self._consumer: Any = None
        self._producer: Any = None
        self._partitions: list[TopicPartition] = []
        self._next_offset: dict[TopicPartition, int] = {}
        """Next offset to apply, per partition, once the start-up replay is done: survives reconnections."""
        self._replayed = False
        self.ready = asyncio.Event()
        """Set once the start-up replay is done: the maintenance calendar is up to date."""

    @property
    def connected(self) -> bool:
        return self._consumer is not None

    async def start(self) -> None:
        """Connect and replay the topic up to the committed offsets (see the module docstring).

        Raises :class:`SourceUnavailable` when the cluster cannot be reached and
        ``kafka.required_at_start`` is set; otherwise logs a warning and :meth:`run`
        keeps trying.  :class:`ConfigError` for bootstrap servers that cannot be parsed.
        """
        if self._consumer is not None:
            return
        try:
            await self._connect()
        except _Unavailable as e:
            if self._kafka.required_at_start:
                raise SourceUnavailable(f"{e} (kafka.required_at_start is true)") from None
            log.warning("%s; operator commands are not read until it is reachable", e)

    async def run(self) -> None:
        """Apply commands until cancelled; reconnect with backoff after any failure."""
        delay = self._retry_initial_s
        while True:
            try:
                if self._consumer is None:
                    await self._connect()
                await self._poll_once()
                delay = self._retry_initial_s
                continue
            except asyncio.CancelledError:
                raise
            except _Unavailable as e:
                self._errors.inc()
                log.warning("%s; retrying in %.1f s", e, delay)
            except KafkaError as e:
                self._errors.inc()
                log.warning(
                    "reading operator commands failed (%s: %s); reconnecting in %.1f s", type(e).__name__, e, delay
                )
            except Exception:
                self._errors.inc()
                log.exception("operator command consumer failed unexpectedly; reconnecting in %.1f s", delay)
            await self._disconnect()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max_s)

    async def close(self) -> None:
        await self._disconnect()

    # --- connection ---------------------------------------------------------------------------

    async def _connect(self) -> None:
        """A consumer assigned every partition of the topic, and a reply producer; replays once."""
        servers = self._kafka.bootstrap_servers
        topic = self._settings.topic
        common: dict[str, Any] = {
            "bootstrap_servers": servers,
            "client_id": f"{self._kafka.client_id}-commands",
            "request_timeout_ms": self._kafka.request_timeout_ms,
            **kafka_security_kwargs(self._kafka),
        }
        producer = AIOKafkaProducer(acks="all", enable_idempotence=True, linger_ms=0, **common)
        consumer = AIOKafkaConsumer(
            group_id=self._settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=_MAX_RECORDS_PER_POLL,
            **common,
        )
        step = f"Kafka cluster at {servers} is unreachable"
        try:
            async with asyncio.timeout(self._timeout_s):
                await producer.start()
            step = f"command topic {topic!r} at {servers} is not available"
            async with asyncio.timeout(self._timeout_s):
                # Asking a producer for the partitions auto-creates the topic where the broker allows it.
                partitions = await producer.partitions_for(topic)
                await producer.partitions_for(self._settings.reply_topic)
            step = f"Kafka cluster at {servers} refused the command consumer"
            async with asyncio.timeout(self._timeout_s):
                await consumer.start()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            if not self._replayed:
                step = f"replaying command topic {topic!r} at {servers} failed"
                await self._replay(consumer, tps)
            else:
                for tp in tps:
                    if tp in self._next_offset:
                        consumer.seek(tp, self._next_offset[tp])
                    else:  # a partition added while we were disconnected: read it all
                        await consumer.seek_to_beginning(tp)
        except ValueError as e:
            await self._disconnect(consumer, producer)
            raise ConfigError(f"cannot parse {servers!r}: {e}", field="kafka.bootstrap_servers") from None
        except (KafkaError, OSError, TimeoutError) as e:
            await self._disconnect(consumer, producer)
            detail = (
                f"no answer within {self._timeout_s:g} s"
                if isinstance(e, TimeoutError)
                else explain_connect_failure(self._kafka) or f"{type(e).__name__}: {e}"
            )
            raise _Unavailable(f"{step}: {detail}") from None
        except BaseException:
            await self._disconnect(consumer, producer)
            raise
        self._consumer, self._producer, self._partitions = consumer, producer, tps
        if not self._replayed:
            self._replayed = True
            self.ready.set()
        self._connected.set(1)
        log.info("reading operator commands from %s (%d partitions) on %s", topic, len(tps), servers)

    async def _disconnect(self, consumer: Any = None, producer: Any = None) -> None:
        if consumer is None and producer is None:
            consumer, self._consumer = self._consumer, None
            producer, self._producer = self._producer, None
        self._connected.set(0)
        for client in (consumer, producer):
            if client is None:
                continue
            try:
                async with asyncio.timeout(self._timeout_s):
                    await client.stop()
            except Exception as e:
                log.warning("Kafka command client did not stop cleanly: %s", str(e) or type(e).__name__)

    async def _replay(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Re-apply, silently, every record before the committed offsets; set where live reading starts.

        Progress is judged by the consumer's position, not by the last record's offset:
        transaction markers occupy offsets that are never returned as records.  A replay
        that makes no progress for ``request_timeout_ms`` fails (and is retried).
        """
        committed: dict[TopicPartition, int] = {}
        async with asyncio.timeout(self._timeout_s):
            begin = await consumer.beginning_offsets(partitions)
            end = await consumer.end_offsets(partitions)
            for tp in partitions:
                c = await consumer.committed(tp)
                # No commit yet (a new group): every record is new, applied and answered.
                committed[tp] = begin[tp] if c is None else min(max(c, begin[tp]), end[tp])
            await consumer.seek_to_beginning(*partitions)
        pending = {tp for tp in partitions if committed[tp] > begin[tp]}
        replayed = 0
        loop = asyncio.get_running_loop()
        stalled_at = loop.time() + self._timeout_s
        while pending:
            if loop.time() > stalled_at:
                raise TimeoutError
            async with asyncio.timeout(self._timeout_s):
                batches = await consumer.getmany(*pending, timeout_ms=_POLL_TIMEOUT_MS)
                if batches:
                    stalled_at = loop.time() + self._timeout_s
                for tp, records in batches.items():
                    for record in records:
                        if record.offset < committed[tp]:
                            self.applier.apply(record, replay=True)
                            replayed += 1
                for tp in list(pending):
                    if await consumer.position(tp) >= committed[tp]:
                        pending.discard(tp)
        for tp in partitions:
            self._next_offset[tp] = committed[tp]
            consumer.seek(tp, committed[tp])
        if replayed:
            log.info("replayed %d operator commands to rebuild the maintenance calendar", replayed)

    # --- reading ------------------------------------------------------------------------------

    async def _poll_once(self) -> None:
        """Apply one batch of records in order, publish their events and replies, commit."""
        consumer = self._consumer
        batches = await consumer.getmany(timeout_ms=_POLL_TIMEOUT_MS, max_records=_MAX_RECORDS_PER_POLL)
        if not batches:
            return
        replies: list[CommandReply] = []
        commits: dict[TopicPartition, int] = {}
        for tp, records in batches.items():
            for record in records:
                if record.offset < self._next_offset.get(tp, 0):
                    continue  # already applied (a seek raced a fetch)
                reply, events = self.applier.apply(record, replay=False)
                if events:
                    await self._emit(events)
                if reply is not None:
                    replies.append(reply)
                commits[tp] = record.offset + 1
                self._next_offset[tp] = record.offset + 1
        await self._replies.send(self._producer, replies)
        if commits:
            try:
                async with asyncio.timeout(self._timeout_s):
                    await consumer.commit(commits)
            except (KafkaError, TimeoutError) as e:
                # Not fatal: the commands were applied; after a restart they would be applied again.
                self._errors.inc()
                log.warning("committing command offsets failed (%s); continuing", str(e) or type(e).__name__)
