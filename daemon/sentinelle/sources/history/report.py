"""What one read of one history source did: rows, samples, skips by reason, located.

Every reader of the package counts into a :class:`HistoryReport`; :class:`Chunks` hands
samples out a chunk at a time and counts them there.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field
from typing import Final

from ...metrics import Metrics
from ...records import Sample

# One logger for the whole package, named as the module was before the split, so log filters and
# ``caplog`` keep working.
log = logging.getLogger(__name__.rpartition(".")[0])

MAX_LOGGED_PROBLEMS: Final = 20
"""Malformed rows logged one by one per read; the rest are counted and summarised, so a
systematically broken file cannot flood the journal."""

MAX_KEPT_PROBLEMS: Final = 100
"""Malformed rows kept, with their location, in a :class:`HistoryReport`."""

DEFAULT_CHUNK_SAMPLES: Final = 10_000


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


class Chunks:
    """Collects samples and hands them out ``size`` at a time."""

    __slots__ = ("buf", "report", "size")

    def __init__(self, size: int, report: HistoryReport) -> None:
        self.size = size
        self.report = report
        self.buf: list[Sample] = []

    def add(self, sample: Sample) -> None:
        self.buf.append(sample)

    def full(self) -> bool:
        return len(self.buf) >= self.size

    def take(self) -> list[Sample]:
        out, self.buf = self.buf, []
        self.report.samples += len(out)
        return out
