"""One OPC-UA DataValue to one :class:`~sentinelle.records.Sample`: timestamp, status class, value.

Apart from :mod:`.opcua` (the connection, subscription and reconnection loop) because this part
judges nothing and needs no server: it is the whole contract between asyncua's notification
and the pipeline, and the tests exercise it with small fakes of asyncua's objects.

The conversion of one notification, with the shape of the data::

    >>> import datetime as dt
    >>> from types import SimpleNamespace as NS
    >>> value = NS(Value=NS(Value=5.02), StatusCode=NS(value=0x40000000),
    ...            SourceTimestamp=dt.datetime(2023, 11, 14, 22, 13, 20), ServerTimestamp=None)
    >>> sample_from_datavalue("chiller1.chw_temp_c", value)
    Sample(tag='chiller1.chw_temp_c', source_ts=1700000000.0, value=5.02, quality=<Quality.UNCERTAIN: 1>)
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..records import Quality, Sample

__all__ = ["DataValueLike", "epoch_seconds", "quality_of", "sample_from_datavalue"]

_UTC = dt.UTC
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_OPCUA_NULL_DATETIME = dt.datetime(1601, 1, 1, tzinfo=_UTC)
"""asyncua decodes the OPC-UA null DateTime (0) as this; it means "no timestamp"."""


class _VariantLike(Protocol):
    @property
    def Value(self) -> Any: ...


class _StatusCodeLike(Protocol):
    @property
    def value(self) -> int: ...


class DataValueLike(Protocol):
    """The fields of ``asyncua.ua.DataValue`` that become a :class:`Sample`."""

    @property
    def Value(self) -> _VariantLike | None: ...

    @property
    def StatusCode(self) -> _StatusCodeLike | None: ...

    @property
    def SourceTimestamp(self) -> dt.datetime | None: ...

    @property
    def ServerTimestamp(self) -> dt.datetime | None: ...


def quality_of(status_code: int) -> Quality:
    """The status class: the top two bits of the 32-bit StatusCode (0b11 is reserved and read as bad).

    >>> quality_of(0), quality_of(0x40920000), quality_of(0x80340000), quality_of(0xC0000000)
    (<Quality.GOOD: 0>, <Quality.UNCERTAIN: 1>, <Quality.BAD: 2>, <Quality.BAD: 2>)
    """
    severity = (status_code >> 30) & 0b11
    if severity == 0:
        return Quality.GOOD
    if severity == 1:
        return Quality.UNCERTAIN
    return Quality.BAD


def epoch_seconds(timestamp: dt.datetime | None) -> float | None:
    """Seconds since the Unix epoch, or None for a missing or null OPC-UA timestamp.

    OPC-UA timestamps are UTC.  asyncua returns aware datetimes, but other code
    paths (and older versions) give naive ones, which are UTC as well — never local time.

    >>> epoch_seconds(dt.datetime(1970, 1, 1, 0, 0, 1, 500000))
    1.5
    >>> epoch_seconds(dt.datetime(1970, 1, 1, 1, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))))
    1.0
    >>> epoch_seconds(dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)) is None
    True
    """
    if timestamp is None:
        return None
    if timestamp.tzinfo is None:
        if timestamp.year <= 1601:
            return None
        return (timestamp - _EPOCH_NAIVE).total_seconds()
    if timestamp <= _OPCUA_NULL_DATETIME:
        return None
    return timestamp.timestamp()


def sample_from_datavalue(
    tag: str, value: DataValueLike, on_missing_timestamp: Callable[[], None] | None = None
) -> Sample:
    """Turn one notified DataValue into a :class:`Sample`, judging nothing.

    The timestamp is the source's; without one the server's; without both the
    time of arrival, which ``on_missing_timestamp`` is told about so it can be counted.
    The value is the Variant's Python value as delivered (a Bad status carries None).
    """
    ts = epoch_seconds(value.SourceTimestamp)
    if ts is None:
        ts = epoch_seconds(value.ServerTimestamp)
        if ts is None:
            ts = time.time()
            if on_missing_timestamp is not None:
                on_missing_timestamp()
    status = value.StatusCode
    quality = Quality.GOOD if status is None else quality_of(int(status.value))
    variant = value.Value
    return Sample(tag, ts, None if variant is None else variant.Value, quality)
