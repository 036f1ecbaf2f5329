"""Operator commands from a Kafka topic: maintenance windows and alert acknowledgements.

An operator console (or any producer a data engineer writes) puts one JSON object
per command on ``commands.topic`` (default ``sentinelle.commands``); the contract is
``docs/command.schema.json``, explained in ``docs/alerts.md``.  This module reads
them, validates them strictly (the wire format is ``command_wire.py``), hands each valid one to the detect stage (the
:class:`CommandHandler`, which owns the alert book and the maintenance calendar),
publishes the ``acknowledged`` alert events that result, answers every command on
``commands.reply_topic`` and commits its offset.

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
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from ..errors import ConfigError, SourceUnavailable
from ..metrics import Metrics
from ..records import COMMAND_TYPES, AlertEvent, Command, CommandOutcome, CommandStatus, RejectReason
from ..settings import CommandSettings, KafkaSettings
from ..sinks.kafka_security import explain_connect_failure, kafka_security_kwargs
from .command_wire import CommandReply, Rejection, encode_reply, parse_command

log = logging.getLogger(__name__)

SOURCE_NAME: Final = "commands"
REPLY_SINK_NAME: Final = "command_replies"

_REMEMBERED_IDS: Final = 100_000
"""Command ids kept for de-duplication (oldest forgotten first): far more than a plant sends in a retention period."""

_POLL_TIMEOUT_MS: Final = 1_000
_MAX_RECORDS_PER_POLL: Final = 500
_MALFORMED_LOG_INTERVAL_S: Final = 10.0
"""Malformed commands are logged at most this often (each is counted): a misbehaving producer must not flood the log."""
_MAX_LOGGED_BYTES: Final = 200


class CommandHandler(Protocol):
    """Applies valid commands (the detect stage); synchronous, so a command never lands in the middle of a tick."""

    def apply_command(self, command: Command, *, now: float, replay: bool) -> CommandOutcome:
        """Apply ``command`` at wall-clock ``now``; ``replay``: rebuilding state at start (no events wanted)."""
        ...


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
        self._commands = metrics.commands
        self._rejected = metrics.commands_rejected
        self._replayed_count = metrics.commands_replayed
        self._handler = handler
        self._emit = emit
        self._clock = clock
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._timeout_s = kafka.request_timeout_ms / 1000
        self._connected = metrics.source_connected.labels(SOURCE_NAME)
        self._errors = metrics.source_errors.labels(SOURCE_NAME, "kafka")
        self._replies_delivered = metrics.sink_events.labels(REPLY_SINK_NAME)
        self._replies_failed = metrics.sink_errors.labels(REPLY_SINK_NAME)
        self._replies_dropped = metrics.sink_dropped.labels(REPLY_SINK_NAME)
        self._consumer: Any = None
        self._producer: Any = None
        self._partitions: list[TopicPartition] = []
        self._next_offset: dict[TopicPartition, int] = {}
        """Next offset to apply, per partition, once the start-up replay is done: survives reconnections."""
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._replayed = False
        self._malformed_unlogged = 0
        self._malformed_logged_at = -_MALFORMED_LOG_INTERVAL_S
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
                            self._apply(record, replay=True)
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
                reply, events = self._apply(record, replay=False)
                if events:
                    await self._emit(events)
                if reply is not None:
                    replies.append(reply)
                commits[tp] = record.offset + 1
                self._next_offset[tp] = record.offset + 1
        await self._send_replies(replies)
        if commits:
            try:
                async with asyncio.timeout(self._timeout_s):
                    await consumer.commit(commits)
            except (KafkaError, TimeoutError) as e:
                # Not fatal: the commands were applied; after a restart they would be applied again.
                self._errors.inc()
                log.warning("committing command offsets failed (%s); continuing", str(e) or type(e).__name__)

    def _apply(self, record: Any, *, replay: bool) -> tuple[CommandReply | None, list[AlertEvent]]:
        """Parse, de-duplicate and apply one record; the reply to send (None while replaying) and the events."""
        now = self._clock()
        ts_ms = int(record.timestamp) if record.timestamp is not None and record.timestamp >= 0 else round(now * 1000)
        parsed = parse_command(record.value, record_ts_ms=ts_ms)
        if isinstance(parsed, Rejection):
            if replay:
                return None, []
            self._commands.labels(parsed.type if parsed.type in COMMAND_TYPES else "unknown", "rejected").inc()
            self._rejected.labels(parsed.reason).inc()
            self._log_malformed(record, parsed)
            return (
                self._reply(
                    record,
                    now,
                    "rejected",
                    parsed.reason,
                    parsed.message,
                    parsed.command_id,
                    parsed.type,
                    parsed.asset,
                    parsed.alert_id,
                ),
                [],
            )
        command = parsed
        if command.command_id in self._seen:
            if replay:
                return None, []
            self._commands.labels(command.type, "duplicate").inc()
            log.info("command %s (%s %s) was already applied; ignored", command.command_id, command.type, command.asset)
            return self._reply(
                record,
                now,
                "duplicate",
                None,
                "already applied: this command_id was seen before",
                command.command_id,
                command.type,
                command.asset,
                command.alert_id,
            ), []
        self._seen[command.command_id] = None
        if len(self._seen) > _REMEMBERED_IDS:
            self._seen.popitem(last=False)
        try:
            outcome = self._handler.apply_command(command, now=now, replay=replay)
        except Exception:
            # A bug in applying one command must not stop the others (nor the daemon): answered and logged.
            log.exception("applying command %s failed", command.command_id)
            outcome = CommandOutcome("rejected", "internal error while applying the command", "invalid_command")
        if replay:
            self._replayed_count.inc()
            return None, []
        self._commands.labels(command.type, outcome.status).inc()
        if outcome.reason is not None:
            self._rejected.labels(outcome.reason).inc()
        level = logging.INFO if outcome.status == "accepted" else logging.WARNING
        log.log(
            level,
            "command %s by %s: %s %s%s -> %s (%s)",
            command.command_id,
            command.by,
            command.type,
            command.asset,
            f" {command.alert_id}" if command.alert_id else "",
            outcome.status,
            outcome.message,
        )
        reply = self._reply(
            record,
            now,
            outcome.status,
            outcome.reason,
            outcome.message,
            command.command_id,
            command.type,
            command.asset,
            command.alert_id,
            outcome.alert_ids,
        )
        return reply, list(outcome.events)

    def _reply(
        self,
        record: Any,
        now: float,
        status: CommandStatus,
        reason: RejectReason | None,
        message: str,
        command_id: str | None,
        kind: str | None,
        asset: str | None,
        alert_id: str | None,
        alert_ids: Sequence[str] = (),
    ) -> CommandReply:
        return CommandReply(
            status=status,
            reason=reason,
            message=message,
            command_id=command_id,
            type=kind,
            asset=asset,
            alert_id=alert_id,
            partition=int(record.partition),
            offset=int(record.offset),
            replied_at=now,
            daemon=self._kafka.client_id,
            alert_ids=tuple(alert_ids),
        )

    async def _send_replies(self, replies: list[CommandReply]) -> None:
        """Publish replies and wait for their acknowledgements; failures are counted and logged, not retried.

        Replies are for the producer's feedback; the command's effect does not depend on them,
        so a lost reply must not hold back the commit (the command would be applied twice).
        """
        if not replies:
            return
        producer = self._producer
        acks: list[asyncio.Future[Any]] = []
        try:
            async with asyncio.timeout(self._timeout_s):
                for reply in replies:
                    key, value, headers = encode_reply(reply)
                    acks.append(await producer.send(self._settings.reply_topic, value=value, key=key, headers=headers))
                results = await asyncio.gather(*acks, return_exceptions=True)
        except (KafkaError, TimeoutError) as e:
            for a in acks:
                a.cancel()
            self._replies_failed.inc()
            self._replies_dropped.inc(len(replies))
            log.warning(
                "%d command replies could not be published to %s: %s",
                len(replies),
                self._settings.reply_topic,
                str(e) or type(e).__name__,
            )
            return
        failed = sum(1 for r in results if isinstance(r, BaseException))
        self._replies_delivered.inc(len(replies) - failed)
        if failed:
            self._replies_failed.inc()
            self._replies_dropped.inc(failed)
            log.warning("%d command replies could not be published to %s", failed, self._settings.reply_topic)

    def _log_malformed(self, record: Any, rejection: Rejection) -> None:
        self._malformed_unlogged += 1
        now = time.monotonic()
        if now - self._malformed_logged_at < _MALFORMED_LOG_INTERVAL_S:
            return
        value = record.value[:_MAX_LOGGED_BYTES] if record.value is not None else None
        log.warning(
            "rejected command at %s[%d]@%d: %s (%s); value %r%s",
            record.topic,
            record.partition,
            record.offset,
            rejection.reason,
            rejection.message,
            value,
            f"; {self._malformed_unlogged - 1} more rejected since the last such message"
            if self._malformed_unlogged > 1
            else "",
        )
        self._malformed_unlogged = 0
        self._malformed_logged_at = now
