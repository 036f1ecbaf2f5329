"""History sources read by the backfill (``[history]``, ``[[history.sources]]``)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator

from .base import _Section

_SQL_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
_SQL_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"
"""Table and column names are quoted into SQL, so only plain identifiers are accepted."""
HistoryKind = Literal["csv_events", "csv_wide", "parquet", "postgres"]


class _HistorySource(_Section):
    """What every history source shares: a name, the zone of naive dates, the tag-name map."""

    kind: HistoryKind
    name: str | None = Field(default=None, min_length=1, description="Label in metrics and logs; default: the kind.")
    timezone: str = Field(
        default="UTC", description="IANA zone of dates written without an offset (e.g. Europe/Paris)."
    )
    tag_map: dict[str, str] = Field(
        default_factory=dict,
        description="Name in the export (column or parameter name) → configured tag name; "
        "names not listed are used as they are.",
    )
    deadband: float | dict[str, float] | None = Field(
        default=None,
        description="The export's deadband (tag units): one value for every tag or a map configured tag → value; "
        "overrides the estimate from the export's own steps (tags not in the map keep the estimate).",
    )

    @property
    def label(self) -> str:
        return self.name or self.kind

    @model_validator(mode="after")
    def _deadband_valid(self) -> _HistorySource:
        values = self.deadband.values() if isinstance(self.deadband, dict) else [self.deadband]
        for value in values:
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"deadband: {value} is not a finite number >= 0")
        return self

    @model_validator(mode="after")
    def _zone_known(self) -> _HistorySource:
        import zoneinfo

        if self.timezone != "UTC":
            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None
        return self


class _CsvSource(_HistorySource):
    path: Path = Field(description="The CSV export.")
    delimiter: Literal["auto", ",", ";", "\t"] = Field(
        default="auto", description="auto: ';' if the header line has one, else a tab if it has one, else ','."
    )
    encoding: str = Field(default="utf-8", description="Text encoding; a UTF-8 byte-order mark is always skipped.")


class CsvEventsSource(_CsvSource):
    """The event-log export: one row per change — date, parameter name, value (before), new value (after)."""

    kind: Literal["csv_events"] = "csv_events"
    date_column: str = "date"
    tag_column: str = "parameter name"
    value_column: str = Field(default="value", description="The value before the change.")
    new_value_column: str = Field(default="new value", description="The value after the change: the sample.")


class CsvWideSource(_CsvSource):
    """The wide sparse export: a date column, then one column per tag; an empty cell means unchanged."""

    kind: Literal["csv_wide"] = "csv_wide"
    date_column: str | None = Field(default=None, description="None: the first column.")


class ParquetSource(_HistorySource):
    """A Parquet file, long (tag, ts, value[, quality]) or wide (ts, then one column per tag)."""

    kind: Literal["parquet"] = "parquet"
    path: Path
    layout: Literal["long", "wide"] = "long"
    tag_column: str = "tag"
    ts_column: str = "ts"
    value_column: str = "value"
    quality_column: str | None = Field(default="quality", description="Used when the file has it.")


class PostgresSource(_HistorySource):
    """A PostgreSQL historian table (tag, ts, value, quality), read in chunks through a server-side cursor."""

    kind: Literal["postgres"] = "postgres"
    dsn: SecretStr = Field(description="postgresql://user@host:port/database, best without the password.")
    password: SecretStr | None = Field(
        default=None,
        description="The database password; best a secret file history.sources.<name>.password "
        "(LoadCredential=, daemon.secrets_dir) rather than the file or the DSN.",
    )
    table: str = Field(default="history", pattern=_SQL_NAME, description="Table or view, optionally schema.table.")
    tag_column: str = Field(default="tag", pattern=_SQL_IDENTIFIER)
    ts_column: str = Field(default="ts", pattern=_SQL_IDENTIFIER)
    value_column: str = Field(default="value", pattern=_SQL_IDENTIFIER)
    quality_column: str | None = Field(default="quality", pattern=_SQL_IDENTIFIER, description="None: all Good.")
    chunk_rows: int = Field(default=10_000, ge=1, description="Rows fetched per round trip.")
    connect_timeout_s: float = Field(default=5.0, gt=0)


HistorySource = Annotated[CsvEventsSource | CsvWideSource | ParquetSource | PostgresSource, Field(discriminator="kind")]


def _epoch(when: dt.datetime) -> float:
    """Epoch seconds of a settings date-time; one without an offset is UTC."""
    return (when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)).timestamp()


class HistorySettings(_Section):
    """Plant history read at start so windows and detectors are warm at the first live tick."""

    sources: tuple[HistorySource, ...] = ()
    backfill_lookback_s: float | None = Field(
        default=None,
        gt=0,
        description="How far back the backfill reads; None: (context_steps + grace_period_steps) "
        "periods of the slowest tag.",
    )
    backfill_from: dt.datetime | None = Field(
        default=None,
        description="Read the history from this date (the data's time; ISO 8601 or a TOML date-time; "
        "without an offset: UTC) instead of the look-back before now: an export of a past period.",
    )
    backfill_until: dt.datetime | None = Field(
        default=None, description="With backfill_from: read the history before this date (default: now)."
    )
    required_at_start: bool = Field(
        default=False, description="Exit 69 when a history source cannot be read at start instead of starting cold."
    )
    chunk_samples: int = Field(default=10_000, ge=1, description="Samples per chunk a reader yields.")

    def backfill_range(self, now: float) -> tuple[float, float] | None:
        """``(start, end)`` epoch seconds of ``backfill_from``/``backfill_until`` (None: the look-back applies)."""
        if self.backfill_from is None:
            return None
        end = _epoch(self.backfill_until) if self.backfill_until is not None else now
        return _epoch(self.backfill_from), end

    @model_validator(mode="after")
    def _range_ordered(self) -> HistorySettings:
        if self.backfill_until is not None:
            if self.backfill_from is None:
                raise ValueError("backfill_until: set backfill_from too (the range's start)")
            if _epoch(self.backfill_until) <= _epoch(self.backfill_from):
                raise ValueError("backfill_until: must come after backfill_from")
        return self

    @model_validator(mode="after")
    def _names_unique(self) -> HistorySettings:
        labels = [s.label for s in self.sources]
        for label in labels:
            if labels.count(label) > 1:
                raise ValueError(f"sources: two history sources are labelled {label!r}; give them distinct names")
        return self
