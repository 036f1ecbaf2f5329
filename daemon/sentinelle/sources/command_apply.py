"""Applying one operator-command record: parse, de-duplicate, apply, count, log, and the reply to it.

The job of :class:`CommandApplier`, apart from the Kafka consumer (``commands.py``, which reads the
records, sends the replies through ``command_replies.py`` and commits): the wire format is checked by
``command_wire.py``; a valid command is applied by the :class:`CommandHandler` (the detect stage's
operator control, which owns the alert book and the maintenance calendar).  See ``commands.py``'s
docstring for the guarantees (nothing crashes the daemon, applied once, replayed silently at start).
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol

from ..metrics import Metrics
from ..records import COMMAND_TYPES, AlertEvent, Command, CommandOutcome, CommandStatus, RejectReason
from .command_wire import CommandReply, Rejection, parse_command

log = logging.getLogger(__name__)

_REMEMBERED_IDS: Final = 100_000
"""Command ids kept for de-duplication (oldest forgotten first): far more than a plant sends in a retention period."""

_MALFORMED_LOG_INTERVAL_S: Final = 10.0
"""Malformed commands are logged at most this often (each is counted): a misbehaving producer must not flood the log."""
_MAX_LOGGED_BYTES: Final = 200


class CommandHandler(Protocol):
    """Applies valid commands (the detect stage); synchronous, so a command never lands in the middle of a tick."""

    def apply_command(self, command: Command, *, now: float, replay: bool) -> CommandOutcome:
        """Apply ``command`` at wall-clock ``now``; ``replay``: rebuilding state at start (no events wanted)."""
        ...


class CommandApplier:
    """Applies command records one by one through ``handler``, remembering the ids it saw.

    ``daemon`` names this daemon in the replies (``kafka.client_id``); ``clock`` is the wall clock
    (a record without a timestamp is dated by it, ``until`` is compared with it).
    """

    def __init__(self, metrics: Metrics, handler: CommandHandler, daemon: str, clock: Callable[[], float]) -> None:
        self.handler = handler
        self._daemon = daemon
        self._clock = clock
        self._commands = metrics.commands
        self._rejected = metrics.commands_rejected
        self._replayed_count = metrics.commands_replayed
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._malformed_unlogged = 0
        self._malformed_logged_at = -_MALFORMED_LOG_INTERVAL_S

    def apply(self, record: Any, *, replay: bool) -> tuple[CommandReply | None, list[AlertEvent]]:
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
            outcome = self.handler.apply_command(command, now=now, replay=replay)
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
            daemon=self._daemon,
            alert_ids=tuple(alert_ids),
        )

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
