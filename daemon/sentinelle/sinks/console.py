"""The console: alert lines for logs, or a live per-tag table for the demo.

The live view reads the same per-tag snapshots that Prometheus scrapes
(:class:`~sentinelle.metrics.TagStateCollector`), so what a person sees on the
terminal is exactly what Grafana would show.

Beside each tag's forecast (made one step earlier from the tag's own past) the
view shows, when the asset model runs (``forecast.asset_model_path``), the
estimate of the tag *from the other tags of its asset now* and how far the actual
value stands from it in units of that estimate's half band (``dev``: ±1 is the
edge of its 80 % band).  The two disagree on purpose: a forecast follows whatever
the tag does, the estimate says what the rest of the asset implies.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import shutil
import sys
from collections.abc import Sequence
from typing import TextIO

from ..metrics import Metrics
from ..records import AlertEvent, _iso

_RED, _YELLOW, _GREEN, _DIM, _BOLD, _RESET = "\x1b[31m", "\x1b[33m", "\x1b[32m", "\x1b[2m", "\x1b[1m", "\x1b[0m"


def format_event(ev: AlertEvent) -> str:
    return f"{_iso(ev.event_ts)} {ev.event.upper():8} {ev.severity:8} {ev.alert_id}  {ev.message}"


class ConsoleSink:
    """Prints alert events, or keeps the recent ones for the live view."""

    name = "console"

    def __init__(self, metrics: Metrics, *, live: bool, interval_s: float = 1.0, out: TextIO | None = None) -> None:
        self.metrics = metrics
        self.live = live
        self.interval_s = interval_s
        self.out = out or sys.stdout
        self.recent: collections.deque[AlertEvent] = collections.deque(maxlen=8)
        self.open: dict[str, AlertEvent] = {}
        self._task: asyncio.Task[None] | None = None
        self.title = "sentinelle"

    async def start(self) -> None:
        if self.live:
            self._task = asyncio.create_task(self._redraw_loop(), name="console-live-view")

    async def send(self, events: Sequence[AlertEvent]) -> None:
        for ev in events:
            self.recent.append(ev)
            if ev.event == "cleared":
                self.open.pop(ev.alert_id, None)
            else:
                self.open[ev.alert_id] = ev
            if not self.live:
                print(format_event(ev), file=self.out, flush=True)
        self.metrics.sink_events.labels(self.name).inc(len(events))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self.out.write(self.render(color=False) + "\n")
            self.out.flush()

    async def _redraw_loop(self) -> None:
        tty = self.out.isatty()
        while True:
            text = self.render(color=tty)
            if tty:
                self.out.write("\x1b[H\x1b[2J" + text + "\n")
            else:
                self.out.write(text + "\n\n")
            self.out.flush()
            await asyncio.sleep(self.interval_s)

    def render(self, *, color: bool) -> str:
        """The table of tags (actual, forecast and band, estimate from the others, score), latest alert events.

        >>> import numpy as np
        >>> from sentinelle.metrics import Metrics, TagSnapshot
        >>> m = Metrics()
        >>> m.tag_state.publish(1.0, TagSnapshot(("c.t", "c.p"), ("c", "c"), np.array([5.4, 2.0]),
        ...     np.array([[5.0, 5.2, 5.4], [1.0, 2.0, 3.0]]), (0.1, 0.5, 0.9), np.array([0.5, 0.1]),
        ...     estimate=np.array([[4.8, 5.0, 5.2], [np.nan] * 3])))
        >>> print("\\n".join(ConsoleSink(m, live=True).render(color=False).splitlines()[1:4]))
        tag                                  actual   forecast             80% band  from others    dev  score
        c.t                                     5.4        5.2             [5, 5.4]            5   +2.0    0.5
        c.p                                       2          2               [1, 3]            -      -    0.1
        """

        def c(code: str, s: str) -> str:
            return f"{code}{s}{_RESET}" if color else s

        width = shutil.get_terminal_size((120, 40)).columns
        snaps = self.metrics.tag_state.snapshots()
        lines = [c(_BOLD, f"{self.title} — live view (Ctrl-C to stop)")]
        alerting = {(ev.tag) for ev in self.open.values()}
        header = (
            f"{'tag':32} {'actual':>10} {'forecast':>10} {'80% band':>20} {'from others':>12} {'dev':>6} {'score':>6}"
        )
        lines.append(c(_DIM, header))
        shown = 0
        for s in snaps:
            lo_i, mid_i, hi_i = 0, s.levels.index(0.5), len(s.levels) - 1
            for i, tag in enumerate(s.tags):
                if shown >= 24:
                    break
                shown += 1
                a, f = float(s.actual[i]), float(s.forecast[i, mid_i])
                lo, hi = float(s.forecast[i, lo_i]), float(s.forecast[i, hi_i])
                sc = float(s.score[i])
                band = f"[{_fmt(lo)}, {_fmt(hi)}]"
                est, dev = "-", "-"
                if s.estimate is not None and math.isfinite(e := float(s.estimate[i, mid_i])):
                    est = _fmt(e)
                    dev = _band_units(a, float(s.estimate[i, lo_i]), e, float(s.estimate[i, hi_i]))
                row = f"{tag:32} {_fmt(a):>10} {_fmt(f):>10} {band:>20} {est:>12} {dev:>6} {_fmt(sc, 3):>6}"
                if tag in alerting:
                    row = c(_RED, row + "  ALERT")
                elif math.isfinite(sc) and sc > 0.99:
                    row = c(_YELLOW, row)
                lines.append(row)
        if not snaps:
            lines.append(c(_DIM, "waiting for the first closed slots ..."))
        lines.append("")
        lines.append(c(_BOLD, f"open alerts: {len(self.open)}   recent alert events:"))
        for ev in list(self.recent)[-8:]:
            code = _GREEN if ev.event == "cleared" else (_RED if ev.severity == "critical" else _YELLOW)
            lines.append(c(code, format_event(ev)[:width]))
        return "\n".join(lines)


def _band_units(actual: float, low: float, median: float, high: float) -> str:
    """How far ``actual`` stands from ``median``, in half bands on its side: ±1 at the band's edge.

    >>> _band_units(7.0, 4.0, 5.0, 6.0), _band_units(4.5, 4.0, 5.0, 7.0), _band_units(5.0, 5.0, 5.0, 5.0)
    ('+2.0', '-0.5', '-')
    """
    half = (high if actual >= median else low) - median
    if not math.isfinite(actual) or not math.isfinite(half) or half == 0.0:
        return "-"
    return f"{(actual - median) / abs(half):+.1f}"


def _fmt(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}g}" if math.isfinite(x) else "-"
