"""The on-disk alert spool (sinks/spool.py): order, restart, bound, torn records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinelle.errors import SinkUnavailable
from sentinelle.sinks.spool import Spool


class Counts:
    def __init__(self) -> None:
        self.dropped = 0
        self.torn = 0

    def drop(self, n: int) -> None:
        self.dropped += n

    def tear(self, n: int) -> None:
        self.torn += n


@pytest.fixture
def counts() -> Counts:
    return Counts()


@pytest.fixture
def opened(tmp_path: Path, counts: Counts) -> Iterator[Spool]:
    spool = _spool(tmp_path, counts)
    spool.open()
    yield spool
    spool.close()


def _spool(directory: Path, counts: Counts, max_bytes: int = 1 << 20, segment_bytes: int | None = None) -> Spool:
    return Spool(directory, max_bytes=max_bytes, segment_bytes=segment_bytes, on_drop=counts.drop, on_torn=counts.tear)


def _payloads(spool: Spool) -> list[bytes]:
    return [p for _, p in spool.head(spool.events)]


def _reopen(directory: Path, counts: Counts, spool: Spool, **kw: int) -> Spool:
    spool.close()
    again = _spool(directory, counts, **kw)
    again.open()
    return again


def test_records_come_out_in_order_across_segments_and_a_restart(tmp_path: Path, counts: Counts) -> None:
    spool = _spool(tmp_path, counts, segment_bytes=100)
    spool.open()
    records = [f"event-{i:03d}".encode() for i in range(50)]
    for i in range(0, 50, 7):
        spool.append(records[i : i + 7])
    assert len(list(tmp_path.glob("*.seg"))) > 3  # several segments were written
    assert _payloads(spool) == records
    spool = _reopen(tmp_path, counts, spool, segment_bytes=100)
    assert _payloads(spool) == records
    assert spool.events == 50
    spool.append([b"after restart"])
    assert _payloads(spool)[-1] == b"after restart"
    spool.close()
    assert counts.dropped == counts.torn == 0


def test_commit_forgets_delivered_records_durably_and_deletes_finished_segments(tmp_path: Path, counts: Counts) -> None:
    spool = _spool(tmp_path, counts, segment_bytes=100)
    spool.open()
    records = [f"event-{i:03d}".encode() for i in range(30)]
    serials = spool.append(records)
    segments_before = len(list(tmp_path.glob("*.seg")))
    last = serials[19]
    assert last is not None
    spool.commit(last)
    assert _payloads(spool) == records[20:]
    assert len(list(tmp_path.glob("*.seg"))) < segments_before
    spool = _reopen(tmp_path, counts, spool, segment_bytes=100)
    assert _payloads(spool) == records[20:]
    head = spool.head(100)
    spool.commit(head[-1][0])
    assert spool.events == 0
    spool = _reopen(tmp_path, counts, spool, segment_bytes=100)
    assert spool.events == 0
    assert spool.size_bytes == 0
    spool.close()


def test_commit_of_an_unknown_or_old_serial_changes_nothing(opened: Spool) -> None:
    opened.append([b"a", b"b"])
    opened.commit(opened.head(1)[0][0] - 1)
    assert _payloads(opened) == [b"a", b"b"]


def test_the_size_bound_drops_the_oldest_records_and_counts_them(tmp_path: Path, counts: Counts) -> None:
    record = b"x" * 92  # 100 bytes on disk with its header
    spool = _spool(tmp_path, counts, max_bytes=1000, segment_bytes=200)
    spool.open()
    for i in range(25):
        spool.append([record[:-3] + f"{i:03d}".encode()])
        assert spool.size_bytes <= 1000
        assert sum(p.stat().st_size for p in tmp_path.glob("*.seg")) <= 1000
    kept = _payloads(spool)
    assert counts.dropped == 25 - len(kept)
    assert counts.dropped > 0
    assert [int(p[-3:]) for p in kept] == list(range(25 - len(kept), 25))  # the newest, in order
    spool = _reopen(tmp_path, counts, spool, max_bytes=1000, segment_bytes=200)
    assert _payloads(spool) == kept
    spool.close()


def test_a_record_larger_than_the_bound_is_dropped_and_counted(tmp_path: Path, counts: Counts) -> None:
    spool = _spool(tmp_path, counts, max_bytes=100)
    spool.open()
    assert spool.append([b"small", b"y" * 200, b"after"]) == [0, None, 1]
    assert _payloads(spool) == [b"small", b"after"]
    assert counts.dropped == 1
    spool.close()


@pytest.mark.parametrize("cut", [3, 8, 12], ids=["in the header", "after the header", "in the payload"])
def test_a_torn_last_record_is_skipped_counted_and_cut_off(tmp_path: Path, counts: Counts, cut: int) -> None:
    spool = _spool(tmp_path, counts)
    spool.open()
    spool.append([b"one", b"two"])
    spool.close()
    (segment,) = tmp_path.glob("*.seg")
    with open(segment, "ab") as f:  # a crash in the middle of the third record
        f.write((b"\x14\x00\x00\x00" + b"\x00" * 4 + b"three-is-twenty-byte")[:cut])
    spool = _reopen(tmp_path, counts, spool)
    assert _payloads(spool) == [b"one", b"two"]
    assert counts.torn == 1
    spool.append([b"four"])
    spool = _reopen(tmp_path, counts, spool)
    assert _payloads(spool) == [b"one", b"two", b"four"]
    assert counts.torn == 1  # cut off once, not counted again
    spool.close()


def test_a_corrupt_record_is_detected_by_its_checksum(tmp_path: Path, counts: Counts) -> None:
    spool = _spool(tmp_path, counts)
    spool.open()
    spool.append([b"one", b"two"])
    spool.close()
    (segment,) = tmp_path.glob("*.seg")
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF
    segment.write_bytes(bytes(data))
    spool = _reopen(tmp_path, counts, spool)
    assert _payloads(spool) == [b"one"]
    assert counts.torn == 1
    spool.close()


def test_an_unreadable_cursor_re_sends_rather_than_loses(tmp_path: Path, counts: Counts) -> None:
    spool = _spool(tmp_path, counts)
    spool.open()
    spool.append([b"one", b"two"])
    spool.commit(spool.head(1)[0][0])
    spool.close()
    (tmp_path / "cursor").write_text("garbage")
    spool = _reopen(tmp_path, counts, spool)
    assert _payloads(spool) == [b"one", b"two"]
    spool.close()


def test_a_directory_that_cannot_be_created_is_a_clear_error(tmp_path: Path, counts: Counts) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SinkUnavailable, match="cannot use the alert spool"):
        _spool(blocker / "spool", counts).open()
