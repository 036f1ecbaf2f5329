"""The wide sparse CSV export (``csv_wide``) and the forward-fill rule it shares with wide Parquet."""

from __future__ import annotations

import math
from collections.abc import Collection, Generator, Mapping, Sequence

from ...errors import SourceUnavailable
from ...records import Sample
from ...settings import CsvWideSource
from .parsing import CsvFile, DateReader, mapped_name, parse_number, timezone_of
from .report import DEFAULT_CHUNK_SAMPLES, Chunks, HistoryReport, SampleChunk, TagHistory, log


class Unreadable:
    """A wide cell that could not be read: ends the tag's held value."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


Cell = float | None | Unreadable
"""A parsed wide cell: a value, None (empty: unchanged), or unreadable."""


class ForwardFill:
    """The wide formats' rule: every row emits each known tag's held value; empty cells hold."""

    def __init__(
        self,
        tags: Sequence[str],
        start: float | None,
        end: float | None,
        out: Chunks,
        report: HistoryReport,
    ) -> None:
        self.tags = tags
        self.start = start
        self.end = end
        self.out = out
        self.report = report
        self.held: list[float | None] = [None] * len(tags)
        # The row each tag's held value was last read from a cell: an emitted sample is
        # marked held unless its cell was filled in this very row (deadband compression).
        self.read_in: list[int] = [-1] * len(tags)
        # Counted here rather than through Chunks.add: most wide samples are held, and this is the hot loop.
        self.stats = [TagHistory() for _ in tags]
        self.rows = 0
        self.start_pending = start is not None

    def row(self, where: str, ts: float, cells: Sequence[Cell]) -> None:
        if self.end is not None and ts >= self.end:
            return
        in_range = self.start is None or ts >= self.start
        if in_range and self.start_pending:
            self.flush_start()
        add, held, tags, read_in, stats = self.out.add, self.held, self.tags, self.read_in, self.stats
        self.rows += 1
        row = self.rows
        for j, cell in enumerate(cells):
            if cell is None:
                continue
            if isinstance(cell, Unreadable):
                self.report.skip("malformed_value", where, f"column {tags[j]!r}: {cell.text!r}")
                held[j] = None
                stats[j].lost()
            elif math.isfinite(cell):
                held[j] = cell
                if read_in[j] < 0:
                    stats[j] = self.report.tags.setdefault(tags[j], stats[j])
                read_in[j] = row
            else:
                held[j] = None
                if in_range:
                    add(Sample(tags[j], ts, cell))  # once, for the windows to count as non-finite
        if in_range:
            buf = self.out.buf  # the chunk is taken between rows only
            samples, mask = buf.append, buf.held.append
            for j, value in enumerate(held):
                if value is not None:
                    samples(Sample(tags[j], ts, value))
                    if read_in[j] == row:
                        mask(0)
                        stats[j].add(value, False)
                    else:
                        mask(1)
                        stats[j].held += 1

    def flush_start(self) -> None:
        """Emit each known tag's value at the read's start (once)."""
        start = self.start
        if not self.start_pending or start is None:
            return
        self.start_pending = False
        for j, value in enumerate(self.held):
            if value is not None:
                self.out.add(Sample(self.tags[j], start, value), held=True)


def wide_columns(
    names: Sequence[str],
    skip: int,
    tag_map: Mapping[str, str],
    tags: Collection[str] | None,
    label: str,
    report: HistoryReport,
) -> tuple[list[int], list[str]]:
    """Indexes and tag names of the columns to read (all but the date column ``skip``)."""
    indexes: list[int] = []
    names_out: list[str] = []
    ignored: list[str] = []
    for i, raw in enumerate(names):
        if i == skip:
            continue
        tag = mapped_name(raw, tag_map)
        if not tag:
            ignored.append(f"#{i + 1} (no name)")
            continue
        if tags is not None and tag not in tags:
            ignored.append(raw.strip())
            report.other_tags += 1
            continue
        if tag in names_out:
            raise SourceUnavailable(f"history {label}: two columns are tag {tag!r}")
        indexes.append(i)
        names_out.append(tag)
    if ignored:
        shown = ", ".join(ignored[:10]) + (f" and {len(ignored) - 10} more" if len(ignored) > 10 else "")
        log.info("history %s: not reading %d columns: %s", label, len(ignored), shown)
    return indexes, names_out


def read_csv_wide(
    source: CsvWideSource,
    *,
    start: float | None = None,
    end: float | None = None,
    tags: Collection[str] | None = None,
    report: HistoryReport | None = None,
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
) -> Generator[SampleChunk, None, None]:
    """Samples of a wide sparse export (empty cell = unchanged), in chunks; see the package docstring."""
    report = report if report is not None else HistoryReport(source.label, deadband=source.deadband)
    f = CsvFile(source.path, source.delimiter, source.encoding, source.label)
    try:
        i_date = 0 if source.date_column is None else f.column(source.date_column)
        indexes, names = wide_columns(f.header, i_date, source.tag_map, tags, source.label, report)
        date_of = DateReader(timezone_of(source.timezone))
        out = Chunks(chunk_samples, report)
        fill = ForwardFill(names, start, end, out, report)
        for where, row in f.rows(report):
            try:
                ts = date_of(row[i_date])
            except ValueError:
                report.skip("malformed_date", where, repr(row[i_date]))
                continue
            cells: list[Cell] = []
            for i in indexes:
                text = row[i].strip()
                if not text:
                    cells.append(None)
                    continue
                try:
                    cells.append(parse_number(text))
                except ValueError:
                    cells.append(Unreadable(text))
            fill.row(where, ts, cells)
            if out.full():
                yield out.take()
        fill.flush_start()
        if out.buf:
            yield out.take()
    finally:
        f.close()
