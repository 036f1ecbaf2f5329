"""Where alert events go: Kafka for downstream consumers, JSON lines and the console for people.

Every sink implements :class:`AlertSink`; ``app`` fans each batch of events out to all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..records import AlertEvent


class AlertSink(Protocol):
    """A destination of alert events.

    ``start`` may raise :class:`~sentinelle.errors.SinkUnavailable` when the sink is
    required and unreachable; ``send`` never raises for delivery problems — it
    counts and logs them; ``close`` flushes what is pending within the caller's timeout.
    """

    name: str

    async def start(self) -> None: ...

    async def send(self, events: Sequence[AlertEvent]) -> None: ...

    async def close(self) -> None: ...
