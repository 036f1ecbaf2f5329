"""The one settings tree of sentinelle.

Loaded from a TOML file (``config/sentinelle.toml`` documents every field) and
overridden by environment variables with the prefix ``SENTINELLE_`` and ``__``
between levels, e.g. ``SENTINELLE_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:9092`` or
``SENTINELLE_SOURCES__0__URL=...`` (one field of the file's first source), and by
secret files (systemd's ``LoadCredential=``, ``daemon.secrets_dir``): how these
layers merge is :mod:`sentinelle.settings_sources`.  Units are part of field names
(``period_s``, ``max_wait_ms``).  Everything is validated before anything starts;
:func:`load_settings` turns every problem into a :class:`~sentinelle.errors.ConfigError`
naming the field, list items by their name (``tags[chiller1.chw_temp_c].period_s``).

One module per section (:mod:`.sources`, :mod:`.windows`, :mod:`.forecast`, :mod:`.detect`,
:mod:`.sinks`, :mod:`.daemon`, :mod:`.scaleout`, :mod:`.simulator`, :mod:`.history`); the root and its loading in
:mod:`.root`. Every public name is re-exported here: import from ``sentinelle.settings``.
"""

from .afdd import AfddSettings
from .assets import AssetDetectSettings, EnergyBalanceSettings, ModeRuleSettings, RelationSettings
from .daemon import DaemonSettings, MaintenanceSettings, MaintenanceWindowSettings
from .detect import DetectSettings
from .forecast import FinetuneSettings, ForecastSettings
from .history import (
    CsvEventsSource,
    CsvWideSource,
    HistoryKind,
    HistorySettings,
    HistorySource,
    ParquetSource,
    PostgresSource,
)
from .root import EnvOverTomlSettings, Settings, config_error, load_settings, read_toml
from .scaleout import ScaleoutSettings
from .simulator import FaultKind, FaultSettings, SimulatorSettings
from .sinks import CommandSettings, ConsoleSettings, KafkaSettings, PrometheusSettings
from .sources import OpcUaSecurityPolicy, OpcUaSourceSettings, TagSettings
from .windows import WindowSettings

__all__ = [
    "AfddSettings",
    "AssetDetectSettings",
    "CommandSettings",
    "ConsoleSettings",
    "CsvEventsSource",
    "CsvWideSource",
    "DaemonSettings",
    "DetectSettings",
    "EnergyBalanceSettings",
    "EnvOverTomlSettings",
    "FaultKind",
    "FaultSettings",
    "FinetuneSettings",
    "ForecastSettings",
    "HistoryKind",
    "HistorySettings",
    "HistorySource",
    "KafkaSettings",
    "MaintenanceSettings",
    "MaintenanceWindowSettings",
    "ModeRuleSettings",
    "OpcUaSecurityPolicy",
    "OpcUaSourceSettings",
    "ParquetSource",
    "PostgresSource",
    "PrometheusSettings",
    "RelationSettings",
    "ScaleoutSettings",
    "Settings",
    "SimulatorSettings",
    "TagSettings",
    "WindowSettings",
    "config_error",
    "load_settings",
    "read_toml",
]
