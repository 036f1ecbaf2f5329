"""Where samples come from: live OPC-UA servers (``opcua.py``) and plant history (``history.py``).

Every source turns its input into :class:`~sentinelle.records.Sample` records and
delivers them in chunks — the live source onto the :class:`~sentinelle.queues.SampleQueue`,
the history readers to the start-up backfill; it judges nothing beyond reading its
format — quality and value checks happen once, in ``windows``.

``commands.py`` is the other input: operator commands (maintenance, acknowledgements)
from Kafka, validated and handed to the detect stage, not samples.
"""

from __future__ import annotations

from typing import Protocol


class Source(Protocol):
    """A running source of samples."""

    name: str

    async def run(self) -> None:
        """Deliver samples until cancelled; reconnect on failures by itself."""
        ...
