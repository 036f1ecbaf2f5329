"""Alert events as JSON lines in a file: the simplest durable record, for the demo and audits."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from ..errors import SinkUnavailable
from ..metrics import Metrics
from ..records import AlertEvent

log = logging.getLogger(__name__)


class JsonlSink:
    name = "jsonl"

    def __init__(self, path: Path, metrics: Metrics) -> None:
        self.path = path
        self.metrics = metrics
        self._f: IO[str] | None = None

    async def start(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115, ASYNC230 - once, at start
        except OSError as e:
            raise SinkUnavailable(f"cannot open alert file {self.path}: {e.strerror}") from None

    async def send(self, events: Sequence[AlertEvent]) -> None:
        if self._f is None:
            return
        try:
            for ev in events:
                self._f.write(json.dumps(ev.to_dict(), separators=(",", ":")) + "\n")
            self._f.flush()
        except OSError as e:
            self.metrics.sink_errors.labels(self.name).inc(len(events))
            log.error("could not write %d alert events to %s: %s", len(events), self.path, e)
            return
        self.metrics.sink_events.labels(self.name).inc(len(events))

    async def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
