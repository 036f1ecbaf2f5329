"""Where samples come from: live OPC-UA servers (and, later, historians and files).

Every source turns its input into :class:`~sentinelle.records.Sample` records and
puts them, in chunks, on the :class:`~sentinelle.queues.SampleQueue`; it judges
nothing — quality and value checks happen once, in ``windows``.
"""

from __future__ import annotations

from typing import Protocol


class Source(Protocol):
    """A running source of samples."""

    name: str

    async def run(self) -> None:
        """Deliver samples until cancelled; reconnect on failures by itself."""
        ...
