"""Frozen records passed between the stages of the pipeline.

Stages never share mutable state: each one receives records, keeps its own state,
and emits new records.  Per-sample records are small dataclasses; everything that
travels per tick for many tags at once is a *batch* record holding numpy arrays
aligned by row (one row per tag), because a plant has thousands of tags and
Python objects per tag per tick would dominate the cost.

    Sample ──windows──▶ WindowBatch ──forecast──▶ ForecastBatch ──detect──▶ AlertEvent
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]

SCHEMA_VERSION = 1
"""Version of the alert event JSON schema (``docs/alert-event.schema.json``)."""


class Quality(enum.IntEnum):
    """OPC-UA status class of a sample (the top two bits of the StatusCode)."""

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one tag, as the source delivered it.

    ``value`` is kept as delivered (it may be a string, None or non-finite);
    the window stage decides what is usable and counts what is not.

    >>> Sample("chiller1.chw_temp_c", 1_700_000_000.0, 5.02, Quality.GOOD)
    Sample(tag='chiller1.chw_temp_c', source_ts=1700000000.0, value=5.02, quality=<Quality.GOOD: 0>)
    """

    tag: str
    source_ts: float
    """Source timestamp, seconds since the Unix epoch (UTC)."""
    value: float | int | bool | str | None
    quality: Quality = Quality.GOOD


@dataclass(frozen=True, slots=True)
class WindowBatch:
    """The windows of a group of tags sharing one sampling period, at one closed slot.

    Row ``i`` belongs to ``tags[i]``.  ``values[i]`` is the tag's resampled value
    for the slot ending at ``ts`` (NaN when the tag has no usable value: a gap),
    ``contexts[i]`` the last ``context`` slots ending with that value, oldest first.
    """

    ts: float
    """End of the closed slot, seconds since the epoch."""
    period_s: float
    tags: tuple[str, ...]
    assets: tuple[str, ...]
    values: FloatArray
    contexts: FloatArray
    closed_at: float = 0.0
    """Monotonic wall-clock time at which the slot was closed (for latency metrics)."""
    arrived_at: float = 0.0
    """Monotonic time at which the daemon received the sample that closed this slot."""

    def __len__(self) -> int:
        return len(self.tags)


@dataclass(frozen=True, slots=True)
class ForecastBatch:
    """Forecasts for the rows of one :class:`WindowBatch`.

    ``quantiles[i, q, h]`` is the forecast of ``window.tags[i]`` (or of
    ``window.tags[rows[i]]``) for step ``h + 1`` after ``window.ts`` at quantile
    level ``levels[q]``.
    """

    window: WindowBatch
    levels: tuple[float, ...]
    quantiles: FloatArray
    forecaster: str
    rows: IntArray | None = None
    """Rows of ``window`` these forecasts are for (None: all).  A forecaster too slow
    to refresh every tag every tick refreshes a share of the rows each tick; the
    others keep their earlier multi-step forecast."""

    @property
    def horizon(self) -> int:
        return int(self.quantiles.shape[2])

    def level_index(self, level: float) -> int:
        for i, lv in enumerate(self.levels):
            if math.isclose(lv, level):
                return i
        raise KeyError(level)


@dataclass(frozen=True, slots=True)
class Contributor:
    """A tag of the alert's asset, with how anomalous it was when the event was made."""

    tag: str
    score: float
    residual_z: float


AlertKind = Literal[
    "forecast_residual",
    "limit_high",
    "limit_low",
    "asset_state",
    "rate_of_change",
    "energy_balance",
    "data_quality",
]
AlertEventType = Literal["opened", "updated", "cleared"]
Severity = Literal["warning", "critical"]
AlertCategory = Literal["process", "data_quality"]
"""Who an alert is for: ``process`` for operators, ``data_quality`` for instrument technicians."""
DataQualityReason = Literal["stuck", "spike", "missing"]
"""Why a ``data_quality`` alert was raised: a flat-lined tag, a single-sample jump, no usable value."""


def category_of(kind: AlertKind) -> AlertCategory:
    """``data_quality`` for the data-quality kind, ``process`` for every other.

    >>> category_of("data_quality"), category_of("limit_high")
    ('data_quality', 'process')
    """
    return "data_quality" if kind == "data_quality" else "process"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One change of an alert's life: opened, updated or cleared.

    Serialised to JSON by :meth:`to_dict`; the schema is in
    ``docs/alert-event.schema.json`` and described in ``docs/alerts.md``.
    """

    event: AlertEventType
    alert_id: str
    kind: AlertKind
    asset: str
    tag: str
    severity: Severity
    start_ts: float
    event_ts: float
    end_ts: float | None
    score: float
    actual: float
    forecast: float
    lower: float
    upper: float
    unit: str
    message: str
    contributors: tuple[Contributor, ...] = field(default_factory=tuple)
    reason: DataQualityReason | None = None
    """Set on ``data_quality`` alerts only."""
    schema_version: int = SCHEMA_VERSION

    @property
    def category(self) -> AlertCategory:
        return category_of(self.kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "event": self.event,
            "alert_id": self.alert_id,
            "kind": self.kind,
            "category": self.category,
            "reason": self.reason,
            "asset": self.asset,
            "tag": self.tag,
            "severity": self.severity,
            "start_ts": _iso(self.start_ts),
            "event_ts": _iso(self.event_ts),
            "end_ts": _iso(self.end_ts) if self.end_ts is not None else None,
            "score": _finite_or_none(self.score),
            "actual": _finite_or_none(self.actual),
            "forecast": _finite_or_none(self.forecast),
            "lower": _finite_or_none(self.lower),
            "upper": _finite_or_none(self.upper),
            "unit": self.unit,
            "message": self.message,
            "contributors": [
                {
                    "tag": c.tag,
                    "score": _finite_or_none(c.score),
                    "residual_z": _finite_or_none(c.residual_z),
                }
                for c in self.contributors
            ],
        }


def _finite_or_none(x: float) -> float | None:
    """JSON has no NaN: missing numbers are ``null``."""
    return float(x) if math.isfinite(x) else None


def _iso(ts: float) -> str:
    """RFC 3339 UTC with milliseconds, which every Kafka consumer can parse."""
    import datetime as _dt

    return (
        _dt.datetime.fromtimestamp(ts, tz=_dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
