"""Frozen records passed between the stages of the pipeline.

Stages never share mutable state: each one receives records, keeps its own state,
and emits new records.  Per-sample records are small dataclasses; everything that
travels per tick for many tags at once is a *batch* record holding numpy arrays
aligned by row (one row per tag), because a plant has thousands of tags and
Python objects per tag per tick would dominate the cost.

    Sample ──windows──▶ WindowBatch ──forecast──▶ ForecastBatch ──detect──▶ AlertEvent
    EngineeringRange ──┘ (per row)                Command (operators, Kafka) ──┘
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

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
    source_down: BoolArray | None = None
    """Rows whose source was disconnected when the slot closed (their values are gaps); None: none."""
    held: BoolArray | None = None
    """History replay of a compressed export: rows whose slot received no read sample, only a held (forward-
    filled) value, known to within the export's deadband (``windows.py``); None: every value is a measurement."""
    eu_low: FloatArray | None = None
    """Per row: the engineering range's low end read from the source (OPC-UA EURange) for a tag whose range is
    not configured (NaN: none read); None: no row has one.  Configured ranges are in the tag's settings."""
    eu_high: FloatArray | None = None
    """Per row: the read range's high end (with ``eu_low``)."""
    coarse_contexts: FloatArray | None = None
    """With ``coarse_stride_steps`` > 1: per row the last ``context`` means of ``coarse_stride_steps`` slots,
    oldest first, the newest ending at the last slot whose index is a multiple of the stride (the asset
    model's long reference, ``forecast.asset_context_stride_steps``); None: not kept."""
    coarse_stride_steps: int = 1

    def __len__(self) -> int:
        return len(self.tags)


@dataclass(frozen=True, slots=True)
class EngineeringRange:
    """A tag's engineering range as its source reported it (OPC-UA: the variable's ``EURange`` property).

    Checked before it is made (finite, ``low < high``: ``sources/opcua_ranges.py``); the window stage
    hands it on per row (``WindowBatch.eu_low`` / ``eu_high``) to the detectors that divide a range.

    >>> EngineeringRange("chiller1.valve_pct", 0.0, 100.0)
    EngineeringRange(tag='chiller1.valve_pct', low=0.0, high=100.0)
    """

    tag: str
    low: float
    high: float


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
    estimate: FloatArray | None = None
    """Each tag's value at ``window.ts`` estimated from the other tags of its asset at that instant
    (``window``'s rows × levels, every row even when ``rows`` refreshes only some forecasts — the estimate
    of now is made for the whole window; NaN: no estimate), from the asset model
    (:mod:`sentinelle.forecast.asset_engine`); None: the forecaster gives none."""

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
    "distribution_change",
    "forecast_drift",
    "contextual_novelty",
    "limit_high",
    "limit_low",
    "asset_state",
    "rate_of_change",
    "energy_balance",
    "ahu_fault",
    "relation",
    "data_quality",
    "flood",
]
AlertEventType = Literal["opened", "updated", "acknowledged", "cleared"]
ClearReason = Literal["normal", "maintenance", "detection_paused"]
"""Why an alert cleared: its condition ended, its asset went into maintenance, or detection paused (mode)."""
Severity = Literal["warning", "critical"]
AlertCategory = Literal["process", "data_quality"]
"""Who an alert is for: ``process`` for operators, ``data_quality`` for instrument technicians."""
DataQualityReason = Literal["stuck", "spike", "missing", "source_down"]
"""Why a ``data_quality`` alert was raised: a flat-lined tag, a single-sample jump, no usable value,
or no value because the tags' source (an OPC-UA server) is disconnected."""


def category_of(kind: AlertKind) -> AlertCategory:
    """``data_quality`` for the data-quality kind, ``process`` for every other.

    >>> category_of("data_quality"), category_of("limit_high")
    ('data_quality', 'process')
    """
    return "data_quality" if kind == "data_quality" else "process"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One change of an alert's life: opened, updated, acknowledged (by an operator) or cleared.

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
    acknowledged_by: str | None = None
    """Who acknowledged the alert (an operator command), on the ``acknowledged`` event and every later one."""
    acknowledged_at: float | None = None
    """When it was acknowledged (the command's ``issued_at``), epoch seconds."""
    clear_reason: ClearReason | None = None
    """On ``cleared`` events: why (None there reads as ``normal``); None on the others."""
    sequence: int = 0
    """Position of this event in its alert's life (0: ``opened``), so each event of an alert has its own id."""
    subject: str = ""
    """What the alert is about, the unit of re-arm and chatter: a tag, an asset, ``tag#reason`` (data quality)."""
    reactivations: int = 0
    """Times the alert came back within its re-arm time after its condition had cleared (chatter)."""
    members: tuple[str, ...] = ()
    """``flood`` alerts: the alerts grouped into it, as ``kind:subject``, in joining order; empty otherwise."""
    schema_version: int = SCHEMA_VERSION

    @property
    def category(self) -> AlertCategory:
        return category_of(self.kind)

    @property
    def event_id(self) -> str:
        """What a consumer de-duplicates on: the same for every re-send of this event (Kafka, spool).

        Derived, not random, so an event re-sent after a restart (from the spool) or
        re-made from the same data carries the same id: ``{alert_id}:{sequence}:{event}``.

        >>> AlertEvent("updated", "c1/c1.t/limit_high/60000", "limit_high", "c1", "c1.t", "critical",
        ...            60.0, 90.0, None, 1.0, 5.4, 5.0, 4.9, 5.1, "degC", "", sequence=2).event_id
        'c1/c1.t/limit_high/60000:2:updated'
        """
        return f"{self.alert_id}:{self.sequence}:{self.event}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "event": self.event,
            "event_id": self.event_id,
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
            "acknowledged_by": self.acknowledged_by,
            "acknowledged_at": _iso(self.acknowledged_at) if self.acknowledged_at is not None else None,
            "clear_reason": (self.clear_reason or "normal") if self.event == "cleared" else None,
            "subject": self.subject or None,
            "reactivations": self.reactivations,
            "members": list(self.members),
        }


CommandType = Literal["maintenance.start", "maintenance.end", "ack"]
COMMAND_TYPES: tuple[CommandType, ...] = get_args(CommandType)
CommandStatus = Literal["accepted", "rejected", "duplicate"]
"""The answer to a command record: applied, not applied (with a reason), or already seen (its ``command_id``)."""
COMMAND_STATUSES: tuple[CommandStatus, ...] = get_args(CommandStatus)
RejectReason = Literal[
    "invalid_json",
    "invalid_command",
    "unsupported_version",
    "unknown_type",
    "unknown_asset",
    "unknown_alert",
    "alert_closed",
    "already_acknowledged",
    "no_open_alert",
    "not_in_maintenance",
    "expired",
    "too_long",
]
REJECT_REASONS: tuple[RejectReason, ...] = get_args(RejectReason)
"""Every reason an operator command is rejected (``docs/command-reply.schema.json``): a bounded label set."""


@dataclass(frozen=True, slots=True)
class Command:
    """One valid operator command (``sources/commands.py`` reads them from Kafka; the detect stage applies them).

    >>> Command("c-1", "ack", "chiller1", "ana", issued_at=1_700_000_000.0).alert_id is None
    True
    """

    command_id: str
    type: CommandType
    asset: str
    by: str
    issued_at: float
    """When the operator issued it, epoch seconds (the Kafka record's timestamp when the command has none)."""
    reason: str = ""
    alert_id: str | None = None
    """``ack``: the alert to acknowledge; None: every open alert of the asset."""
    until: float | None = None
    """``maintenance.start``: end of the window, epoch seconds."""


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What applying a command did: accepted or rejected (with a reason), and the alert events it caused."""

    status: Literal["accepted", "rejected"]
    message: str
    reason: RejectReason | None = None
    events: tuple[AlertEvent, ...] = ()
    alert_ids: tuple[str, ...] = ()
    """The alerts the command acted on (for an ``ack``: the ones it acknowledged)."""


def _finite_or_none(x: float) -> float | None:
    """JSON has no NaN: missing numbers are ``null``."""
    return float(x) if math.isfinite(x) else None


def _iso(ts: float) -> str:
    """RFC 3339 UTC with milliseconds, which every Kafka consumer can parse."""
    import datetime as _dt

    return _dt.datetime.fromtimestamp(ts, tz=_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
