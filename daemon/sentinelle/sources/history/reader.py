"""One configured history source, whatever its format, read as async chunks of samples."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection, Generator, Iterable, Iterator
from typing import Final

from ...errors import SentinelleError, SourceError
from ...metrics import Metrics
from ...records import Sample
from ...settings import HistorySource, PostgresSource
from .event_log import read_csv_events
from .parquet import read_parquet
from .postgres import read_postgres
from .report import DEFAULT_CHUNK_SAMPLES, HistoryReport, SampleChunk
from .wide import read_csv_wide

FileReader = Callable[..., Generator[SampleChunk, None, None]]

_FILE_READERS: Final[dict[str, FileReader]] = {
    "csv_events": read_csv_events,
    "csv_wide": read_csv_wide,
    "parquet": read_parquet,
}


class HistoryReader:
    """One configured history source, read as async chunks of samples.

    Files are parsed on a worker thread, one chunk per hop, so the event loop stays
    free (signals, metrics) while a large export is read; PostgreSQL is natively
    async.  Errors are sentinelle's own: :class:`SourceUnavailable` when the source
    cannot be opened, :class:`SourceError` when it fails midway.

    >>> import asyncio, tempfile, pathlib
    >>> from sentinelle.settings import CsvWideSource
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "wide.csv"
    >>> _ = path.write_text("date,flow,power\\n2024-01-01T00:00:00Z,60.1,\\n2024-01-01T00:00:01Z,,410\\n")
    >>> async def read():
    ...     reader = HistoryReader(CsvWideSource(path=path))
    ...     return [s async for chunk in reader.chunks() for s in chunk], reader.report
    >>> samples, report = asyncio.run(read())
    >>> [(s.tag, s.source_ts, s.value) for s in samples]
    [('flow', 1704067200.0, 60.1), ('flow', 1704067201.0, 60.1), ('power', 1704067201.0, 410.0)]
    >>> report.rows, report.samples, report.malformed
    (2, 3, 0)
    """

    def __init__(self, source: HistorySource, metrics: Metrics | None = None) -> None:
        self.source = source
        self.report = HistoryReport(source.label, metrics=metrics, deadband=source.deadband)

    @property
    def label(self) -> str:
        return self.source.label

    async def chunks(
        self,
        start: float | None = None,
        end: float | None = None,
        tags: Collection[str] | None = None,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    ) -> AsyncIterator[SampleChunk]:
        src = self.source
        try:
            if isinstance(src, PostgresSource):
                async for chunk in read_postgres(
                    src, start=start, end=end, tags=tags, report=self.report, chunk_samples=None
                ):
                    yield chunk
                return
            it = _FILE_READERS[src.kind](
                src, start=start, end=end, tags=tags, report=self.report, chunk_samples=chunk_samples
            )
            try:
                while True:
                    parsed = await asyncio.to_thread(_next_chunk, it)
                    if parsed is None:
                        break
                    yield parsed
            finally:
                # Still running on its thread if we were cancelled mid-chunk: it then closes when collected.
                with contextlib.suppress(ValueError):
                    it.close()
        except SentinelleError:
            raise
        except OSError as e:
            raise SourceError(f"history {self.label}: {e}") from None
        finally:
            self.report.log_summary()


def _next_chunk(it: Iterator[SampleChunk]) -> SampleChunk | None:
    return next(it, None)


def all_samples(chunks: Iterable[list[Sample]]) -> list[Sample]:
    """Every sample of a chunked read, in order (tests, small files)."""
    return [s for chunk in chunks for s in chunk]
