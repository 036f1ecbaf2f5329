"""The samples topic's record format: one asset's samples of a short interval, packed.

One Kafka record per asset per flush (``scaleout.collector_flush_interval_ms``), key =
the asset (UTF-8), value = this encoding — never JSON per sample: a 10,000-tag plant at
1 Hz would spend more on JSON than on detection.  Layout (little-endian)::

    magic  b"SS"      2 bytes
    version           u8   (VERSION; a reader refuses any other)
    n_tags            u16  names used in this record, then each: u16 length + UTF-8
    n                 u32  samples, then column arrays of n entries each:
        tag           u16  index into the names
        kind          u8   0 number, 1 boolean, 2 not a number (string, None: the window stage counts it)
        quality       u8   Quality
        source_ts     f64
        value         f64  (NaN for kind 2)

Decoding checks every length and index: a malformed record raises :class:`CodecError`
(the worker counts and logs it and goes on), never an IndexError deep in numpy.

>>> s = [Sample("c1.t", 10.0, 5.5), Sample("c1.p", 10.0, True), Sample("c1.t", 11.0, "err", Quality.BAD)]
>>> decode_samples(encode_samples(s)) == s[:2] + [Sample("c1.t", 11.0, None, Quality.BAD)]
True
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Final

import numpy as np

from ..errors import SentinelleError
from ..records import EngineeringRange, Quality, Sample

MAGIC: Final = b"SS"
VERSION: Final = 1
SOURCE_HEADER: Final = "sentinelle-source"
"""Header of a record telling a source's state (``down`` / ``up``) for the tags its samples name."""
RANGE_HEADER: Final = "sentinelle-eu-range"
"""Header of a record of engineering ranges a source read (OPC-UA EURange): one sample per tag, its
``source_ts`` the range's low end and its value the high end."""
_HEAD = struct.Struct("<2sBH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_NUMBER, _BOOL, _OTHER = 0, 1, 2
_QUALITIES = frozenset(int(q) for q in Quality)


def ranges_of(samples: Sequence[Sample]) -> list[EngineeringRange]:
    """The ranges of a :data:`RANGE_HEADER` record (a sample that is not a finite low < high is left out).

    >>> ranges_of([Sample("c1.v", 0.0, 100.0), Sample("c1.w", 5.0, None), Sample("c1.x", 2.0, 1.0)])
    [EngineeringRange(tag='c1.v', low=0.0, high=100.0)]
    """
    out = []
    for s in samples:
        high = s.value
        if isinstance(high, bool) or not isinstance(high, int | float):
            continue
        if math.isfinite(s.source_ts) and math.isfinite(high) and s.source_ts < high:
            out.append(EngineeringRange(s.tag, s.source_ts, float(high)))
    return out


class CodecError(SentinelleError):
    """A samples or state record that cannot be read: truncated, another version, inconsistent."""


def encode_samples(samples: Sequence[Sample]) -> bytes:
    """Pack ``samples`` (any tags, in order) into one record value."""
    names: dict[str, int] = {}
    n = len(samples)
    if n >= 2**32:
        raise ValueError("too many samples for one record")
    idx = np.empty(n, dtype="<u2")
    kind = np.empty(n, dtype=np.uint8)
    quality = np.empty(n, dtype=np.uint8)
    ts = np.empty(n, dtype="<f8")
    value = np.empty(n, dtype="<f8")
    for i, s in enumerate(samples):
        j = names.setdefault(s.tag, len(names))
        if j >= 2**16:
            raise ValueError("more than 65,535 tags in one record")
        idx[i] = j
        quality[i] = int(s.quality)
        ts[i] = s.source_ts
        v = s.value
        if isinstance(v, bool):
            kind[i], value[i] = _BOOL, 1.0 if v else 0.0
        elif isinstance(v, (int, float)):
            kind[i], value[i] = _NUMBER, float(v)
        else:
            kind[i], value[i] = _OTHER, np.nan
    parts = [_HEAD.pack(MAGIC, VERSION, len(names))]
    for name in names:
        raw = name.encode()
        parts += [_U16.pack(len(raw)), raw]
    parts += [_U32.pack(n), idx.tobytes(), kind.tobytes(), quality.tobytes(), ts.tobytes(), value.tobytes()]
    return b"".join(parts)


def decode_samples(blob: bytes) -> list[Sample]:
    """The samples of one record value; :class:`CodecError` when it is not one this version wrote."""
    view = memoryview(blob)
    if len(view) < _HEAD.size:
        raise CodecError(f"record of {len(view)} bytes is shorter than its header")
    magic, version, n_tags = _HEAD.unpack_from(view, 0)
    if magic != MAGIC:
        raise CodecError("not a samples record (bad magic)")
    if version != VERSION:
        raise CodecError(f"samples record version {version}; this sentinelle reads version {VERSION}")
    pos = _HEAD.size
    names: list[str] = []
    try:
        for _ in range(n_tags):
            (length,) = _U16.unpack_from(view, pos)
            pos += _U16.size
            raw = bytes(view[pos : pos + length])
            if len(raw) != length:
                raise CodecError("truncated tag name")
            names.append(raw.decode())
            pos += length
        (n,) = _U32.unpack_from(view, pos)
    except (struct.error, UnicodeDecodeError) as e:
        raise CodecError(f"malformed samples record header: {e}") from None
    pos += _U32.size
    if len(view) - pos != n * (2 + 1 + 1 + 8 + 8):
        raise CodecError(f"samples record holds {len(view) - pos} bytes for {n} samples")
    idx = np.frombuffer(view, dtype="<u2", count=n, offset=pos)
    kind = np.frombuffer(view, dtype=np.uint8, count=n, offset=pos + 2 * n)
    quality = np.frombuffer(view, dtype=np.uint8, count=n, offset=pos + 3 * n)
    ts = np.frombuffer(view, dtype="<f8", count=n, offset=pos + 4 * n)
    value = np.frombuffer(view, dtype="<f8", count=n, offset=pos + 12 * n)
    if n and (int(idx.max()) >= len(names) or int(kind.max()) > _OTHER or not set(np.unique(quality)) <= _QUALITIES):
        raise CodecError("samples record refers to an unknown tag, value kind or quality")
    out: list[Sample] = []
    for t, k, q, s, v in zip(idx.tolist(), kind.tolist(), quality.tolist(), ts.tolist(), value.tolist(), strict=True):
        val: float | bool | None = v if k == _NUMBER else (v != 0.0) if k == _BOOL else None
        out.append(Sample(names[t], s, val, Quality(q)))
    return out
