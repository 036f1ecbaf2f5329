"""The settings root (:class:`Settings`), its cross-section checks, and loading it
from TOML, environment and secret files (:func:`load_settings`)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from .. import settings_sources
from ..errors import ConfigError
from .assets import AssetDetectSettings
from .daemon import DaemonSettings, MaintenanceSettings
from .detect import DetectSettings
from .forecast import FinetuneSettings, ForecastSettings
from .history import HistorySettings
from .scaleout import ScaleoutSettings
from .simulator import SimulatorSettings
from .sinks import CommandSettings, ConsoleSettings, KafkaSettings, PrometheusSettings
from .sources import OpcUaSourceSettings, TagSettings
from .windows import WindowSettings


class EnvOverTomlSettings(BaseSettings):
    """A settings root whose TOML file arrives as init arguments and whose environment wins over it."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives through init arguments (see load_settings), so the
        # environment must win over it: env first, then init.
        return (env_settings, init_settings)


class Settings(BaseSettings):
    """Root of the settings tree: the TOML file (init arguments), the environment, secret files."""

    model_config = SettingsConfigDict(
        env_prefix="SENTINELLE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    sources: tuple[OpcUaSourceSettings, ...] = (OpcUaSourceSettings(),)
    tags: tuple[TagSettings, ...] = ()
    windows: WindowSettings = WindowSettings()
    forecast: ForecastSettings = ForecastSettings()
    detect: DetectSettings = DetectSettings()
    kafka: KafkaSettings = KafkaSettings()
    scaleout: ScaleoutSettings = ScaleoutSettings()
    prometheus: PrometheusSettings = PrometheusSettings()
    console: ConsoleSettings = ConsoleSettings()
    daemon: DaemonSettings = DaemonSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    history: HistorySettings = HistorySettings()
    commands: CommandSettings = CommandSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    finetune: FinetuneSettings = FinetuneSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # One source that merges file, environment and secret files itself: pydantic-settings'
        # own merge replaces a list from the environment whole (settings_sources explains).
        file_data = init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
        return (settings_sources.LayeredSource(settings_cls, file_data, env_settings),)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        source_names = [s.name for s in self.sources]
        if self.daemon.mode != "all":
            if self.commands.enabled:
                raise ValueError(f"commands.enabled: operator commands need daemon.mode all, not {self.daemon.mode}")
            if self.history.sources:
                raise ValueError(f"history.sources: the history backfill needs daemon.mode all, not {self.daemon.mode}")
        dup = _first_duplicate(source_names)
        if dup:
            raise ValueError(f"sources: duplicate source name {dup!r}")
        dup = _first_duplicate([t.name for t in self.tags])
        if dup:
            raise ValueError(f"tags: duplicate tag name {dup!r}")
        for t in self.tags:
            if t.source not in source_names:
                raise ValueError(f"tags[{t.name}].source: unknown source {t.source!r} (known: {source_names})")
        seen: dict[tuple[str, str], str] = {}
        for t in self.tags:
            key = (t.source, t.node_id)
            if key in seen:
                raise ValueError(f"tags: {t.name!r} and {seen[key]!r} read the same node {t.node_id!r}")
            seen[key] = t.name
        _check_asset_rules(self.tags, self.detect.assets)
        if self.commands.enabled and not self.kafka.enabled:
            raise ValueError("commands.enabled: operator commands are read from Kafka; kafka.enabled is false")
        known_assets = {t.asset for t in self.tags}
        for i, w in enumerate(self.maintenance.windows):
            if self.tags and w.asset not in known_assets:
                raise ValueError(f"maintenance.windows[{i}].asset: no tag belongs to asset {w.asset!r}")
        return self


def _check_asset_rules(tags: tuple[TagSettings, ...], assets: tuple[AssetDetectSettings, ...]) -> None:
    """Asset rules name configured assets and tags; an energy balance's tags share one period."""
    by_name = {t.name: t for t in tags}
    known_assets = {t.asset for t in tags}
    dup = _first_duplicate([a.name for a in assets])
    if dup:
        raise ValueError(f"detect.assets: asset {dup!r} configured twice")
    for a in assets:
        where = f"detect.assets[{a.name}]"
        if tags and a.name not in known_assets:
            raise ValueError(f"{where}.name: no tag belongs to asset {a.name!r}")
        for rule in a.modes:
            if tags and rule.tag not in by_name:
                raise ValueError(f"{where}.modes[{rule.mode}].tag: unknown tag {rule.tag!r}")
        if tags:
            _check_relations(by_name, a, where)
        if a.afdd is not None and tags:
            for role, name in a.afdd.roles().items():
                if name not in by_name:
                    raise ValueError(f"{where}.afdd.{role}: unknown tag {name!r}")
            if len({by_name[name].period_s for name in a.afdd.roles().values()}) > 1:
                raise ValueError(f"{where}.afdd: its tags must share one period_s")
        e = a.energy_balance
        if e is None or not tags:
            continue
        roles = {
            "flow_tag": e.flow_tag,
            "hot_temp_tag": e.hot_temp_tag,
            "cold_temp_tag": e.cold_temp_tag,
            "power_tag": e.power_tag,
        }
        for role, name in roles.items():
            if name not in by_name:
                raise ValueError(f"{where}.energy_balance.{role}: unknown tag {name!r}")
        periods = {by_name[name].period_s for name in roles.values()}
        if len(periods) > 1:
            raise ValueError(f"{where}.energy_balance: its tags must share one period_s (got {sorted(periods)})")


def _check_relations(by_name: dict[str, TagSettings], asset: AssetDetectSettings, where: str) -> None:
    """A relation's tags are tags of its asset sharing one period; one relation per target."""
    dup = _first_duplicate([r.target for r in asset.relations])
    if dup:
        raise ValueError(f"{where}.relations: two relations predict {dup!r}")
    for r in asset.relations:
        here = f"{where}.relations[{r.target}]"
        for name in (r.target, *r.inputs):
            t = by_name.get(name)
            if t is None:
                raise ValueError(f"{here}: unknown tag {name!r}")
            if t.asset != asset.name:
                raise ValueError(f"{here}: tag {name!r} belongs to {t.asset!r}, not {asset.name!r}")
        periods = {by_name[name].period_s for name in (r.target, *r.inputs)}
        if len(periods) > 1:
            raise ValueError(f"{here}: its tags must share one period_s (got {sorted(periods)})")


def _first_duplicate(names: list[str]) -> str | None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            return n
        seen.add(n)
    return None


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML settings file as a dict; every failure is a :class:`ConfigError` naming the file."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError("file not found", field=str(path)) from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", field=str(path)) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"invalid TOML: {e}", field=str(path)) from None
    except UnicodeDecodeError as e:  # e.g. saved as Windows-1252 with a "°C" in a comment
        raise ConfigError(
            f"not UTF-8 text (TOML must be): byte {e.start} is {e.object[e.start]:#04x}", field=str(path)
        ) from None


def config_error(e: ValidationError, *, prefix: str = "", data: Any = None) -> ConfigError:
    """Pydantic's problems as one :class:`ConfigError` naming each field (``prefix`` + location), items by name."""
    return settings_sources.config_error(e, prefix=prefix, data=data)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (if any), apply environment overrides, validate.

    Raises :class:`ConfigError` naming the offending field for every kind of problem:
    unreadable file, TOML syntax, unknown key, wrong type, contradiction.
    """
    data: dict[str, Any] = read_toml(path) if path is not None else {}
    unknown = [k for k in data if k not in Settings.model_fields]
    if unknown:  # a typo in a section's name: say which file, and what it may hold
        known = ", ".join(sorted(Settings.model_fields))
        raise ConfigError(f"unknown top-level key {unknown[0]!r} (known: {known})", field=str(path))
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as e:
        # The same merge again, to name the list items the error's location points into.
        merged = settings_sources.resolve(Settings, data, EnvSettingsSource(Settings))
        raise config_error(e, data=merged) from None
