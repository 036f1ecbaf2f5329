"""Operator commands applied to the detect stage's state: maintenance windows and acknowledgements.

The command consumer (``sources/commands.py``) validates the form of a command;
this module decides whether it makes sense *here* — is the asset monitored by this
daemon, is the alert open, is the window still in the future — and applies it:

* ``maintenance.start`` adds the window ``[issued_at, until)`` to the
  :class:`~sentinelle.detect.maintenance.MaintenanceCalendar`; the detect stage
  clears the asset's open alerts and stops its learning at the next tick inside it.
  Rejected ``expired`` when ``until`` has passed (a command that waited in the topic
  while the daemon was down), ``too_long`` beyond ``commands.max_maintenance_s``.
* ``maintenance.end`` ends, at ``issued_at``, every window of the asset covering it
  (configured ones included); ``not_in_maintenance`` when none does.
* ``ack`` asks the alert book to acknowledge one open alert (``alert_id``) or every
  open alert of the asset; the book publishes one ``acknowledged`` event per alert.

While the consumer replays the topic at start (``replay=True``), maintenance commands
are re-applied so the calendar survives a restart, and acknowledgements are skipped:
the alerts they named died with the previous process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Protocol

from ..records import Command, CommandOutcome
from .maintenance import MaintenanceCalendar, MaintenanceWindow

_KEEP_ENDED_S = 86_400.0
"""Windows that ended longer ago than this are forgotten (only a replay of older history would need them)."""


class Acknowledger(Protocol):
    """The alert book, as far as acknowledgements go."""

    def acknowledge(self, asset: str, alert_id: str | None, *, by: str, at_ts: float, reason: str) -> CommandOutcome:
        """Acknowledge ``alert_id`` (None: every open alert of ``asset``): the ``acknowledged`` events, or why not."""
        ...


class OperatorControl:
    """Applies :class:`Command` records to a maintenance calendar and an alert book.

    ``alerts`` is called for every acknowledgement, so a stage that swaps its book
    (the start-up backfill does) is always asked about the live one.

    >>> cal = MaintenanceCalendar()
    >>> control = OperatorControl({"chiller1"}, cal, lambda: None, max_maintenance_s=3600)
    >>> cmd = Command("c-1", "maintenance.start", "chiller1", "ana", issued_at=1000.0, until=2800.0)
    >>> control.apply_command(cmd, now=1001.0, replay=False).status, cal.in_maintenance("chiller1", 1500.0)
    ('accepted', True)
    >>> end = Command("c-2", "maintenance.end", "pump9", "ana", issued_at=1002.0)
    >>> control.apply_command(end, now=1002.0, replay=False).reason
    'unknown_asset'
    """

    def __init__(
        self,
        assets: Iterable[str],
        calendar: MaintenanceCalendar,
        alerts: Callable[[], Acknowledger],
        *,
        max_maintenance_s: float,
    ) -> None:
        self.assets = frozenset(assets)
        self.calendar = calendar
        self._alerts = alerts
        self.max_maintenance_s = max_maintenance_s

    def apply_command(self, command: Command, *, now: float, replay: bool) -> CommandOutcome:
        if command.asset not in self.assets:
            return CommandOutcome(
                "rejected", f"asset {command.asset!r} is not monitored by this daemon", "unknown_asset"
            )
        if command.type == "maintenance.start":
            return self._start(command, now)
        if command.type == "maintenance.end":
            return self._end(command)
        if replay:
            return CommandOutcome("accepted", "acknowledgement from before the restart: skipped")
        return self._alerts().acknowledge(
            command.asset, command.alert_id, by=command.by, at_ts=command.issued_at, reason=command.reason
        )

    def _start(self, command: Command, now: float) -> CommandOutcome:
        until = command.until
        if until is None:  # the parser guarantees it; a hand-made record may not
            return CommandOutcome("rejected", "maintenance.start needs until", "invalid_command")
        if until <= now:
            return CommandOutcome("rejected", f"the window ended at {_iso(until)}, before it could apply", "expired")
        if until - command.issued_at > self.max_maintenance_s:
            return CommandOutcome(
                "rejected",
                f"the window is longer than commands.max_maintenance_s ({self.max_maintenance_s:g} s)",
                "too_long",
            )
        self.calendar.prune(now - _KEEP_ENDED_S)
        self.calendar.add(
            MaintenanceWindow(
                asset=command.asset,
                start_ts=command.issued_at,
                end_ts=until,
                origin="command",
                window_id=command.command_id,
                by=command.by,
                reason=command.reason,
            )
        )
        return CommandOutcome(
            "accepted", f"{command.asset} in maintenance from {_iso(command.issued_at)} until {_iso(until)}"
        )

    def _end(self, command: Command) -> CommandOutcome:
        ended = self.calendar.end(command.asset, command.issued_at)
        if not ended:
            return CommandOutcome(
                "rejected", f"{command.asset} is not in maintenance at {_iso(command.issued_at)}", "not_in_maintenance"
            )
        return CommandOutcome("accepted", f"maintenance of {command.asset} ended at {_iso(command.issued_at)}")


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
