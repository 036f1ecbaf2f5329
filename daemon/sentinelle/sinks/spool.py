"""A bounded on-disk queue of records, oldest first: where alert events wait for Kafka.

What a PI buffer does for a historian, this does for the Kafka sink
(``sinks/kafka.py``): events Kafka has not acknowledged outlive an outage and a
restart.  The sink writes them here on stop and during a long outage, and sends
them again — in order, before newer events — when delivery resumes.

Layout of ``directory``::

    0000000000000001.seg   append-only segment files, one record after another
    0000000000000002.seg   (a new segment once the current one reaches ``segment_bytes``)
    cursor                 "<segment> <offset>": the first record not yet delivered

A record is ``<u32 length><u32 crc32(payload)><payload>`` (little-endian).
Appends go to the newest segment only; delivered records are forgotten by moving
the cursor (written to a temporary file, then renamed: atomic) and deleting a
segment once all its records are delivered.

Guarantees and their limits:

* **Order**: records come out in the order they went in, across restarts.
* **Crash safety**: a crash can tear only the last record of the last segment
  written; :meth:`Spool.open` detects it (short header, short payload or CRC
  mismatch), counts it through ``on_torn``, logs it, and truncates the segment
  there, so the records before it survive.  With ``fsync="always"`` every
  :meth:`append` reaches the disk before it returns; with ``"never"`` the
  operating system decides (a power cut may lose the last seconds).
* **Bound**: the segment files never exceed ``max_bytes`` together.  When an
  append would, the oldest segment is deleted with its undelivered records
  (counted through ``on_drop`` and logged at ERROR): during a long outage the
  newest alerts matter more than the oldest.  A record larger than the bound
  itself is dropped the same way.
* **At least once**: records handed out by :meth:`head` stay until
  :meth:`commit`; a crash between delivery and commit re-sends them (the
  consumer de-duplicates on the event id inside).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     spool = Spool(Path(d), max_bytes=1 << 20)
...     spool.open()
...     serials = spool.append([b"first", b"second"])
...     [payload for _, payload in spool.head(10)], spool.events
...     spool.commit(spool.head(1)[-1][0])
...     spool.close()
...     again = Spool(Path(d), max_bytes=1 << 20)
...     again.open()
...     [payload for _, payload in again.head(10)]
...     again.close()
([b'first', b'second'], 2)
[b'second']
"""

from __future__ import annotations

import collections
import logging
import os
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from ..errors import SinkUnavailable

log = logging.getLogger(__name__)

FsyncPolicy = Literal["always", "never"]

_HEADER = struct.Struct("<II")
_SUFFIX = ".seg"
_CURSOR = "cursor"


@dataclass(slots=True)
class _Segment:
    number: int
    path: Path
    size: int
    """Bytes in the file, delivered records included (what counts against the bound)."""


@dataclass(frozen=True, slots=True)
class _Ref:
    serial: int
    """Position in the spool since :meth:`Spool.open`: what :meth:`Spool.commit` is given back."""
    segment: int
    offset: int
    length: int


class Spool:
    """The on-disk queue; see the module docstring.  Not thread-safe: one event loop owns it.

    ``on_drop(n)`` is called for undelivered records given up to the bound,
    ``on_torn(n)`` for records found torn at :meth:`open`; the Kafka sink counts
    both as dropped alert events.  ``segment_bytes`` defaults to an eighth of
    the bound, so an overflow gives up about an eighth of the spool at a time.
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_bytes: int | None = None,
        fsync: FsyncPolicy = "always",
        on_drop: Callable[[int], None] = lambda n: None,
        on_torn: Callable[[int], None] = lambda n: None,
    ) -> None:
        if max_bytes < 2 * _HEADER.size:
            raise ValueError(f"max_bytes must be at least {2 * _HEADER.size}, got {max_bytes}")
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or max(4096, max_bytes // 8)
        self.fsync = fsync
        self._on_drop = on_drop
        self._on_torn = on_torn
        self._segments: collections.deque[_Segment] = collections.deque()
        self._records: collections.deque[_Ref] = collections.deque()
        self._next_serial = 0
        self._writer: BinaryIO | None = None
        self._readers: dict[int, BinaryIO] = {}

    # --- what the sink reads -------------------------------------------------------------------

    @property
    def events(self) -> int:
        """Records not yet committed."""
        return len(self._records)

    @property
    def size_bytes(self) -> int:
        """Bytes of the segment files (what the bound is on)."""
        return sum(s.size for s in self._segments)

    # --- life cycle ----------------------------------------------------------------------------

    def open(self) -> None:
        """Create the directory if needed and index what an earlier run left; raises :class:`SinkUnavailable`."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            cursor = self._read_cursor()
            numbers = sorted(int(p.stem) for p in self.directory.glob(f"*{_SUFFIX}") if p.stem.isdigit())
            for number in numbers:
                path = self._path(number)
                if cursor is not None and number < cursor[0]:
                    path.unlink()  # delivered before the last stop; its deletion was interrupted
                    continue
                start = cursor[1] if cursor is not None and number == cursor[0] else 0
                self._index(number, path, start)
            self._drop_finished_segments()
        except OSError as e:
            raise SinkUnavailable(f"cannot use the alert spool {self.directory}: {e.strerror or e}") from None
        if self._records:
            log.info(
                "alert spool %s holds %d undelivered events (%d bytes) from an earlier run",
                self.directory,
                self.events,
                self.size_bytes,
            )

    def close(self) -> None:
        """Flush and close the files; the spool can be opened again (by a later run)."""
        if self._writer is not None:
            self._writer.flush()
            os.fsync(self._writer.fileno())
            self._writer.close()
            self._writer = None
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    # --- queue operations ----------------------------------------------------------------------

    def append(self, payloads: Sequence[bytes]) -> list[int | None]:
        """Write ``payloads`` after the newest record; their serials (for :meth:`commit`), in order.

        Raises ``OSError`` when the disk refuses (the caller counts and logs it).
        A payload given up to the bound at once has the serial None.
        """
        serials: list[int | None] = []
        for payload in payloads:
            size = _HEADER.size + len(payload)
            if size > self.max_bytes:
                self._on_drop(1)
                log.error("alert event of %d bytes is larger than the whole spool (%d); dropped", size, self.max_bytes)
                serials.append(None)
                continue
            self._make_room(size)
            segment = self._writable(size)
            writer = self._writer
            assert writer is not None
            writer.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
            self._records.append(_Ref(self._next_serial, segment.number, segment.size, len(payload)))
            serials.append(self._next_serial)
            self._next_serial += 1
            segment.size += size
        if self._writer is not None:
            self._writer.flush()
            if self.fsync == "always":
                os.fsync(self._writer.fileno())
        return serials

    def head(self, n: int) -> list[tuple[int, bytes]]:
        """The ``n`` oldest uncommitted records as (serial, payload); they stay until committed."""
        out: list[tuple[int, bytes]] = []
        for i in range(min(n, len(self._records))):
            ref = self._records[i]
            reader = self._reader(ref.segment)
            reader.seek(ref.offset + _HEADER.size)
            out.append((ref.serial, reader.read(ref.length)))
        return out

    def commit(self, serial: int) -> None:
        """Forget every record up to ``serial`` (delivered); persist the cursor."""
        moved = False
        while self._records and self._records[0].serial <= serial:
            self._records.popleft()
            moved = True
        if not moved:
            return
        self._drop_finished_segments()
        self._write_cursor()

    # --- internals -----------------------------------------------------------------------------

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:016d}{_SUFFIX}"

    def _index(self, number: int, path: Path, start: int) -> None:
        """Add the records of one segment from ``start``; a torn tail is counted and cut off."""
        data = path.read_bytes()
        offset = start
        while offset < len(data):
            torn = len(data) - offset < _HEADER.size
            if not torn:
                length, crc = _HEADER.unpack_from(data, offset)
                end = offset + _HEADER.size + length
                torn = end > len(data) or zlib.crc32(data[offset + _HEADER.size : end]) != crc
            if torn:
                self._on_torn(1)
                log.error(
                    "alert spool segment %s: torn record at byte %d of %d (a crash while writing); "
                    "it and the %d bytes after it are skipped, counted as one dropped event",
                    path,
                    offset,
                    len(data),
                    len(data) - offset,
                )
                os.truncate(path, offset)
                data = data[:offset]
                break
            self._records.append(_Ref(self._next_serial, number, offset, length))
            self._next_serial += 1
            offset = end
        self._segments.append(_Segment(number, path, len(data)))

    def _writable(self, size: int) -> _Segment:
        """The segment to append ``size`` bytes to: the newest, or a new one when it is full or old."""
        newest = self._segments[-1] if self._segments else None
        if newest is not None and self._writer is not None and newest.size + size <= self.segment_bytes:
            return newest
        if newest is not None and self._writer is not None and newest.size == 0:
            return newest  # one record larger than a segment still gets one
        self._close_writer()
        number = newest.number + 1 if newest is not None else 1
        path = self._path(number)
        self._writer = open(path, "ab")  # noqa: SIM115 - held open across appends
        segment = _Segment(number, path, 0)
        self._segments.append(segment)
        self._sync_directory()
        return segment

    def _make_room(self, size: int) -> None:
        """Delete the oldest segments (with their undelivered records) until ``size`` more bytes fit."""
        removed = False
        while self._segments and self.size_bytes + size > self.max_bytes:
            removed = True
            oldest = self._segments[0]
            if oldest is self._segments[-1] and self._writer is not None:
                self._close_writer()  # the only segment: the next append starts a new one
            lost = 0
            while self._records and self._records[0].segment == oldest.number:
                self._records.popleft()
                lost += 1
            self._remove(oldest)
            if lost:
                self._on_drop(lost)
                log.error(
                    "alert spool %s full (%d bytes): dropped the %d oldest undelivered alert events",
                    self.directory,
                    self.max_bytes,
                    lost,
                )
        if removed:
            self._write_cursor()

    def _drop_finished_segments(self) -> None:
        """Delete segments all of whose records are delivered, except the one being written."""
        first = self._records[0].segment if self._records else None
        while self._segments:
            oldest = self._segments[0]
            if first is not None and oldest.number >= first:
                break
            if first is None and oldest is self._segments[-1] and self._writer is not None:
                break
            self._remove(oldest)

    def _remove(self, segment: _Segment) -> None:
        self._segments.popleft()
        reader = self._readers.pop(segment.number, None)
        if reader is not None:
            reader.close()
        segment.path.unlink(missing_ok=True)

    def _reader(self, number: int) -> BinaryIO:
        reader = self._readers.get(number)
        if reader is None:
            if self._writer is not None:
                self._writer.flush()
            reader = self._readers[number] = open(self._path(number), "rb")  # noqa: SIM115
        return reader

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            os.fsync(self._writer.fileno())
            self._writer.close()
            self._writer = None

    def _read_cursor(self) -> tuple[int, int] | None:
        try:
            text = (self.directory / _CURSOR).read_text(encoding="ascii")
        except FileNotFoundError:
            return None
        parts = text.split()
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            log.error("alert spool cursor %s unreadable (%r); re-sending from the oldest segment", self.directory, text)
            return None
        return int(parts[0]), int(parts[1])

    def _write_cursor(self) -> None:
        """Where the first undelivered record is; written atomically (temporary file, rename)."""
        if self._records:
            ref = self._records[0]
            text = f"{ref.segment} {ref.offset}\n"
        elif self._segments:
            newest = self._segments[-1]
            text = f"{newest.number} {newest.size}\n"
        else:
            text = "0 0\n"
        tmp = self.directory / f"{_CURSOR}.tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(text)
            if self.fsync == "always":
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.directory / _CURSOR)

    def _sync_directory(self) -> None:
        """A new file's name reaches the disk only with its directory (``fsync="always"``)."""
        if self.fsync != "always":
            return
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
