"""What one read of one history source did: rows, samples, skips by reason, located.

Every reader of the package counts into a :class:`HistoryReport`; :class:`Chunks` hands
samples out a chunk at a time and counts them there, and marks which of them were held
(:class:`SampleChunk`, :func:`held_mask`).  Per tag, :class:`TagHistory` counts held and
changed samples and estimates the export's deadband (see "Compressed exports" in the
package docstring).
"""

from __future__ import annotations

import collections
import heapq
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from ...metrics import Metrics
from ...records import Quality, Sample

# One logger for the whole package, named as the module was before the split, so log filters and
# ``caplog`` keep working.
log = logging.getLogger(__name__.rpartition(".")[0])

MAX_LOGGED_PROBLEMS: Final = 20
"""Malformed rows logged one by one per read; the rest are counted and summarised, so a
systematically broken file cannot flood the journal."""

MAX_KEPT_PROBLEMS: Final = 100
"""Malformed rows kept, with their location, in a :class:`HistoryReport`."""

DEFAULT_CHUNK_SAMPLES: Final = 10_000

DEADBAND_QUANTILE: Final = 0.05
"""The deadband estimate is this quantile of a tag's non-zero steps between consecutive read
values: a compressed export writes a value only once it moved past the deadband, so most
steps are just above it; a low quantile, not the minimum, so that a few tiny steps (an
export's heartbeat rewrite, a rounding artefact) do not decide it."""

DEADBAND_MIN_STEPS: Final = 5
"""Fewer non-zero steps than this: no estimate (``None``), too little to say."""

DEADBAND_KEPT_STEPS: Final = 10_000
"""The smallest steps kept per tag (memory bound).  The quantile is exact up to
``DEADBAND_KEPT_STEPS / DEADBAND_QUANTILE`` steps; beyond that the estimate is the
``DEADBAND_KEPT_STEPS``-th smallest step, a lower quantile, still robust."""

MAX_LOGGED_TAGS: Final = 20
"""Tags given their own held/deadband line in the summary (most held first); the rest are summarised."""

Deadband = float | Mapping[str, float] | None
"""A source's ``deadband`` setting: one value for every tag, one per tag, or none (estimate)."""


@dataclass(slots=True)
class TagHistory:
    """One tag's samples in one read: how many were read (changed) and how many held, and its steps.

    >>> t = TagHistory()
    >>> for value, held in [(5.0, False), (5.0, True), (5.2, False), (5.2, True), (5.2, True), (5.1, False)]:
    ...     t.add(value, held)
    >>> t.changed, t.held, round(t.held_share, 2), t.steps
    (3, 3, 0.5, 2)
    """

    changed: int = 0
    """Samples read at their own time: a filled wide cell, an event row, a long-format row."""
    held: int = 0
    """Samples that repeat an earlier read value: forward-filled wide rows, the value carried to the read's start."""
    steps: int = 0
    """Non-zero steps between consecutive read values."""
    _last: float | None = field(default=None, repr=False)
    _smallest: list[float] = field(default_factory=list, repr=False)
    """Max-heap (negated) of the smallest |steps|."""

    @property
    def held_share(self) -> float:
        total = self.changed + self.held
        return self.held / total if total else 0.0

    def add(self, value: float, held: bool) -> None:
        if held:
            self.held += 1
            if self._last is None:
                self._last = value
            return
        self.changed += 1
        last, self._last = self._last, value if math.isfinite(value) else None
        if last is None or not math.isfinite(value) or value == last:
            return
        self.steps += 1
        step = abs(value - last)
        if len(self._smallest) < DEADBAND_KEPT_STEPS:
            heapq.heappush(self._smallest, -step)
        elif step < -self._smallest[0]:
            heapq.heapreplace(self._smallest, -step)

    def lost(self) -> None:
        """The value became unknown (an unreadable cell): the next read value starts no step."""
        self._last = None

    def deadband_estimate(self) -> float | None:
        """:data:`DEADBAND_QUANTILE` of the non-zero steps (``None`` below :data:`DEADBAND_MIN_STEPS`)."""
        if self.steps < DEADBAND_MIN_STEPS:
            return None
        k = min(max(1, math.ceil(DEADBAND_QUANTILE * self.steps)), len(self._smallest))
        return sorted(-s for s in self._smallest)[k - 1]


@dataclass(frozen=True, slots=True)
class Problem:
    """One skipped row (or wide cell): where, why, and what it said."""

    where: str
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}: {self.detail}"


@dataclass(slots=True)
class HistoryReport:
    """What one read of one source did: rows read, samples emitted, skips by reason.

    Skips go to ``metrics`` (``samples_dropped_total{reason}``) as they happen when
    the report has the daemon's metrics, so a backfill's skips are visible where the
    live path's are.
    """

    source: str
    metrics: Metrics | None = field(default=None, repr=False)
    rows: int = 0
    """Data rows (PostgreSQL, Parquet: records) read, malformed ones included."""
    samples: int = 0
    skipped: collections.Counter[str] = field(default_factory=collections.Counter)
    problems: list[Problem] = field(default_factory=list)
    """The first :data:`MAX_KEPT_PROBLEMS` skips, with their location."""
    other_tags: int = 0
    """Rows (wide files: columns) of tags the read did not ask for."""
    deadband: Deadband = None
    """The source's ``deadband`` setting; overrides the estimate (per tag when a map)."""
    units: Mapping[str, str] = field(default_factory=dict)
    """Tag → unit, only to write the summary's deadbands with their unit."""
    tags: dict[str, TagHistory] = field(default_factory=dict)
    """Per tag: held and changed samples, steps (see :class:`TagHistory`)."""

    def tag(self, name: str) -> TagHistory:
        t = self.tags.get(name)
        if t is None:
            t = self.tags[name] = TagHistory()
        return t

    def held_shares(self) -> dict[str, float]:
        """Tag → share of its emitted samples that were held (0 for an event log or a long table)."""
        return {name: t.held_share for name, t in self.tags.items()}

    def deadbands(self) -> dict[str, float]:
        """Tag → deadband (tag units): the setting where it gives one, else the estimate; tags with neither are absent.

        This is what the learning side widens spreads by (see the package docstring).
        """
        out: dict[str, float] = {}
        for name, t in self.tags.items():
            value = self._configured_deadband(name)
            if value is None:
                value = t.deadband_estimate()
            if value is not None:
                out[name] = value
        return out

    def _configured_deadband(self, name: str) -> float | None:
        if self.deadband is None or isinstance(self.deadband, (int, float)):
            return self.deadband
        return self.deadband.get(name)

    @property
    def malformed(self) -> int:
        return sum(self.skipped.values())

    def skip(self, reason: str, where: str, detail: str) -> None:
        """Count, keep and (the first few) log one malformed row."""
        self.skipped[reason] += 1
        n = self.malformed
        problem = Problem(where, reason, detail)
        if len(self.problems) < MAX_KEPT_PROBLEMS:
            self.problems.append(problem)
        if n <= MAX_LOGGED_PROBLEMS:
            log.warning("history %s: skipped %s", self.source, problem)
            if n == MAX_LOGGED_PROBLEMS:
                log.warning("history %s: further malformed rows are counted, not logged one by one", self.source)
        if self.metrics is not None:
            self.metrics.drop(reason)

    def log_summary(self) -> None:
        skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(self.skipped.items()))
        log.log(
            logging.WARNING if self.skipped else logging.INFO,
            "history %s: %d rows, %d samples%s%s",
            self.source,
            self.rows,
            self.samples,
            f", skipped {skipped} (first: {self.problems[0]})" if self.skipped else "",
            f", {self.other_tags} rows of tags not asked for" if self.other_tags else "",
        )
        for line in self.tag_lines():
            log.info("history %s: %s", self.source, line)

    def tag_lines(self) -> list[str]:
        """One line per tag, most held first: held share and deadband; the tags past :data:`MAX_LOGGED_TAGS` in one."""
        shown = sorted(self.tags.items(), key=lambda kv: (-kv[1].held_share, kv[0]))
        deadbands = self.deadbands()
        lines: list[str] = []
        for name, t in shown[:MAX_LOGGED_TAGS]:
            d = deadbands.get(name)
            unit = self.units.get(name, "")
            how = "set" if self._configured_deadband(name) is not None else "estimated"
            band = f"deadband ≈ {d:.3g}{' ' + unit if unit else ''}, {how}" if d is not None else "deadband unknown"
            lines.append(
                f"{name}: {_percent(t.held_share)} % of {t.changed + t.held} samples held ({band}, {t.steps} changes)"
            )
        rest: Sequence[tuple[str, TagHistory]] = shown[MAX_LOGGED_TAGS:]
        if rest:
            lines.append(
                f"{len(rest)} more tags, {_percent(rest[0][1].held_share)} % held at most"
                " (HistoryReport.held_shares() and .deadbands() hold them all)"
            )
        return lines


def _percent(share: float) -> str:
    return f"{100 * share:.0f}"


class SampleChunk(list[Sample]):
    """A chunk of samples, as every reader yields it, with ``held[i]`` = 1 where sample ``i`` was held.

    A plain list to every caller that only wants samples; the mask rides along for the
    ones that learn from history (see the package docstring), so :class:`Sample` keeps
    its four fields.
    """

    __slots__ = ("held",)

    def __init__(self, samples: list[Sample] | None = None, held: bytearray | None = None) -> None:
        super().__init__(samples or ())
        self.held = held if held is not None else bytearray(len(self))


def held_mask(chunk: Sequence[Sample]) -> bytearray:
    """Which samples of a chunk were held (1) — all 0 for a chunk that carries no mask.

    >>> held_mask(SampleChunk([Sample("a", 0.0, 1.0), Sample("a", 1.0, 1.0)], bytearray([0, 1])))
    bytearray(b'\\x00\\x01')
    >>> held_mask([Sample("a", 0.0, 1.0)])
    bytearray(b'\\x00')
    """
    if isinstance(chunk, SampleChunk):
        return chunk.held
    return bytearray(len(chunk))


class Chunks:
    """Collects samples, counts them per tag as held or changed, and hands them out ``size`` at a time."""

    __slots__ = ("buf", "report", "size")

    def __init__(self, size: int, report: HistoryReport) -> None:
        self.size = size
        self.report = report
        self.buf = SampleChunk()

    def add(self, sample: Sample, held: bool = False) -> None:
        """Add a sample and count it in its tag's :class:`TagHistory`."""
        self.buf.append(sample)
        self.buf.held.append(held)
        value = sample.value
        tag = self.report.tag(sample.tag)
        if sample.quality is Quality.GOOD and isinstance(value, float):
            tag.add(value, held)
        else:
            tag.add(math.nan, held)  # counted; a Bad or odd value starts no step

    def full(self) -> bool:
        return len(self.buf) >= self.size

    def take(self) -> SampleChunk:
        out, self.buf = self.buf, SampleChunk()
        self.report.samples += len(out)
        return out
