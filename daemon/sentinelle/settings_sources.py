"""Where the settings come from, how they merge, and how their problems are named.

Three layers, later ones winning: the TOML file, the environment (``SENTINELLE_``, ``__``
between levels), and secret files.

- **Environment over lists.** ``SENTINELLE_SOURCES__0__PASSWORD`` changes one field of the
  file's first ``[[sources]]`` item and keeps its other fields; an index the file does not
  have is an error.  A JSON list (``SENTINELLE_SOURCES='[...]'``) replaces a whole list, so
  it is refused when the file defines that list: it would silently reset every field it
  does not repeat.
- **Secret files.** Every file of systemd's ``$CREDENTIALS_DIRECTORY`` (``LoadCredential=``)
  and of ``daemon.secrets_dir`` whose name starts with a settings section is a secret: its
  name is the field's path with list items named by their ``name``, e.g.
  ``sources.plant.password`` or ``history.sources.historian.password``, and its content
  (one trailing newline dropped) the value.  Only secret fields (``SecretStr``) can be set
  this way; a name that matches none is an error naming the file.  Credentials that
  ``LoadCredential=ID:/a/directory`` loads are named ``ID_<file>``: the prefix
  ``sentinelle_`` is dropped.  Other files (certificates) are left alone.
- **Names, not indices.** :func:`config_error` turns pydantic's errors into one
  :class:`~sentinelle.errors.ConfigError` whose locations name list items by name
  (``tags[chiller1.chw_temp_c].period_s``, not ``tags.5.period_s``).

>>> from sentinelle.settings import Settings
>>> file_data = {"sources": [{"name": "plant", "url": "opc.tcp://10.0.0.5:4840"}]}
>>> merge_environment(file_data, {"sources": {"0": {"password": "s3cret"}}}, Settings)["sources"]
[{'name': 'plant', 'url': 'opc.tcp://10.0.0.5:4840', 'password': 's3cret'}]
>>> location(("sources", 0, "url"), {"sources": [{"name": "plant"}]})
'sources[plant].url'
"""

from __future__ import annotations

import copy
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsError

from .errors import ConfigError

ENV_PREFIX = "SENTINELLE_"
CREDENTIAL_PREFIX = "sentinelle_"
"""``LoadCredential=sentinelle:/etc/sentinelle/credentials`` names each file's credential ``sentinelle_<file>``."""
MAX_LISTED_PROBLEMS = 10
_LEADING_PATH = re.compile(r"^([a-z_]+(?:\[[^\]]+\]|\.[a-z_]+)*): (.+)$", re.DOTALL)
_NAME_KEYS = ("name", "target", "mode")
"""The field that names an item of a list, first found wins: tags, sources, assets by name,
relations by their target, mode rules by their mode."""


# --- the model's shape -------------------------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    """``Annotated[X, ...]`` → ``X``; ``X | None`` → ``X``."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation


def _models_of(annotation: Any) -> list[type[BaseModel]]:
    """The model classes an annotation (a model, or a union of them) admits."""
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in _models_of(a)]
    return []


def _item_annotation(annotation: Any) -> Any | None:
    """For ``tuple[X, ...]`` (or a list), X; otherwise None."""
    annotation = _unwrap(annotation)
    if typing.get_origin(annotation) in (tuple, list):
        args = typing.get_args(annotation)
        if args:
            return args[0]
    return None


def _item_model(annotation: Any, item: Any) -> type[BaseModel] | None:
    """The model of one list item; for a union told apart by ``kind``, the member with the item's kind."""
    models = _models_of(annotation)
    if len(models) <= 1:
        return models[0] if models else None
    kind = item.get("kind") if isinstance(item, Mapping) else getattr(item, "kind", None)
    for m in models:
        field = m.model_fields.get("kind")
        if field is not None and field.default == kind:
            return m
    return None


def _is_secret(annotation: Any) -> bool:
    return _unwrap(annotation) is SecretStr


def _as_data(value: Any) -> Any:
    """A default (models, tuples) as the plain data the file would have given."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=False)
    if isinstance(value, tuple | list):
        return [_as_data(v) for v in value]
    return value


def _item_name(item: Any) -> str | None:
    for key in _NAME_KEYS:
        value = item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)
        if isinstance(value, str) and value:
            return value
    return None


def _list_items(data: dict[str, Any], key: str, model: type[BaseModel]) -> list[Any] | None:
    """The list at ``data[key]`` (the field's default copied in when the data has none), or None if not a list."""
    if key not in data:
        data[key] = _as_data(model.model_fields[key].get_default(call_default_factory=True))
    items = data[key]
    if isinstance(items, tuple):
        items = data[key] = list(items)
    return items if isinstance(items, list) else None


# --- the environment ---------------------------------------------------------------------------


def merge_environment(file_data: dict[str, Any], env_data: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """``env_data`` (as pydantic-settings parses the environment) merged into ``file_data``; see the module doc."""
    merged = copy.deepcopy(file_data)
    _merge_into(merged, env_data, model, ENV_PREFIX.rstrip("_"))
    return merged


def _merge_into(data: dict[str, Any], env: Mapping[str, Any], model: type[BaseModel], var: str) -> None:
    for key, value in env.items():
        field = model.model_fields.get(key)
        name = f"{var}_{key.upper()}" if var == ENV_PREFIX.rstrip("_") else f"{var}__{key.upper()}"
        if field is None:
            data[key] = value  # validation names the unknown key
            continue
        item_annotation = _item_annotation(field.annotation)
        if item_annotation is not None and isinstance(value, Mapping):
            _merge_list_items(data, key, value, model, item_annotation, name)
        elif item_annotation is not None and isinstance(value, list | tuple) and key in data:
            raise ConfigError(
                f"a JSON list would replace the file's whole {key} list and reset every field it does not repeat; "
                f"override single fields instead, e.g. {name}__0__<FIELD>, or put secrets in credential files",
                field=name,
            )
        elif isinstance(value, Mapping) and _models_of(field.annotation) and _is_section(data.get(key)):
            sub = data[key] = dict(_as_data(data.get(key)) or {})
            _merge_into(sub, value, _models_of(field.annotation)[0], name)
        else:
            data[key] = value


def _is_section(value: Any) -> bool:
    return value is None or isinstance(value, Mapping | BaseModel)


def _merge_list_items(
    data: dict[str, Any],
    key: str,
    value: Mapping[str, Any],
    model: type[BaseModel],
    item_annotation: Any,
    name: str,
) -> None:
    items = _list_items(data, key, model)
    if items is None:
        return  # not a list: validation names it
    known = ", ".join(f"{i}: {_item_name(item) or '?'}" for i, item in enumerate(items)) or "none"
    for index_text, item_env in value.items():
        item_var = f"{name}__{index_text.upper()}"
        if not index_text.isdigit():
            raise ConfigError(
                f"list items are chosen by their index in the file, e.g. {name}__0__<FIELD> (items: {known})",
                field=item_var,
            )
        index = int(index_text)
        if index >= len(items):
            raise ConfigError(
                f"the settings have no item {index} in {key} (items: {known}); the environment changes "
                "items, it does not add them: add the item to the file",
                field=item_var,
            )
        item = _as_data(items[index])  # a model instance when the settings were built in code
        item_model = _item_model(item_annotation, item)
        if not isinstance(item_env, Mapping) or not isinstance(item, Mapping) or item_model is None:
            items[index] = item_env
            continue
        items[index] = dict(item)
        _merge_into(items[index], item_env, item_model, item_var)


# --- secret files ------------------------------------------------------------------------------


def secret_files(data: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Secret name → file, from ``$CREDENTIALS_DIRECTORY`` and ``daemon.secrets_dir`` (credentials win)."""
    environ = os.environ if environ is None else environ
    found: dict[str, Path] = {}
    daemon = data.get("daemon")
    secrets_dir = daemon.get("secrets_dir") if isinstance(daemon, Mapping) else getattr(daemon, "secrets_dir", None)
    if secrets_dir is not None:
        found.update(_files_in(Path(secrets_dir), prefix="", where="daemon.secrets_dir"))
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    if credentials:
        found.update(_files_in(Path(credentials), prefix=CREDENTIAL_PREFIX, where="CREDENTIALS_DIRECTORY"))
    return found


def _files_in(folder: Path, *, prefix: str, where: str) -> dict[str, Path]:
    try:
        entries = sorted(p for p in folder.iterdir() if p.is_file())
    except OSError as e:
        raise ConfigError(f"cannot read the folder {str(folder)!r}: {e.strerror}", field=where) from None
    return {p.name.removeprefix(prefix): p for p in entries}


def apply_secret_files(data: dict[str, Any], model: type[BaseModel], files: Mapping[str, Path]) -> dict[str, Any]:
    """``data`` with every secret file's value at the field its name gives; other files are ignored."""
    merged = copy.deepcopy(data)
    for name, path in files.items():
        if name.partition(".")[0] not in model.model_fields:
            continue  # not ours: a certificate, another program's credential
        _assign_secret(merged, model, name, name, _read_secret(name, path))
    return merged


def _read_secret(name: str, path: Path) -> SecretStr:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read the secret file {str(path)!r}: {e.strerror}", field=name) from None
    except UnicodeDecodeError:
        raise ConfigError(f"the secret file {str(path)!r} is not UTF-8 text", field=name) from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise ConfigError(f"the secret file {str(path)!r} is empty", field=name)
    return SecretStr(text)


def _assign_secret(data: dict[str, Any], model: type[BaseModel], rest: str, name: str, value: SecretStr) -> None:
    head, _, tail = rest.partition(".")
    field = model.model_fields.get(head)
    if field is None:
        raise ConfigError(f"no setting {head!r} here (secret file names are field paths)", field=name)
    if not tail:
        if not _is_secret(field.annotation):
            raise ConfigError(f"{head!r} is not a secret setting: put it in the settings file", field=name)
        data[head] = value
        return
    item_annotation = _item_annotation(field.annotation)
    if item_annotation is not None:
        items = _list_items(data, head, model)
        if items is None:
            return  # not a list: validation names it
        named = [(n, i) for i, item in enumerate(items) if (n := _item_name(item)) and tail.startswith(n + ".")]
        if not named:
            known = ", ".join(n for item in items if (n := _item_name(item))) or "none"
            raise ConfigError(f"no item of {head} is named as the file says (known: {known})", field=name)
        item_name, index = max(named, key=lambda pair: len(pair[0]))
        item = _as_data(items[index])
        item_model = _item_model(item_annotation, item)
        if not isinstance(item, Mapping) or item_model is None:
            raise ConfigError(f"cannot set a secret in {head}[{item_name}]", field=name)
        items[index] = dict(item)
        _assign_secret(items[index], item_model, tail[len(item_name) + 1 :], name, value)
        return
    models = _models_of(field.annotation)
    if not models:
        raise ConfigError(f"{head!r} has no fields below it", field=name)
    sub = data.get(head)
    if sub is None or isinstance(sub, BaseModel):
        sub = _as_data(sub) if sub is not None else {}
    if not isinstance(sub, Mapping):
        return  # validation names it
    data[head] = dict(sub)
    _assign_secret(data[head], models[0], tail, name, value)


# --- the settings source -----------------------------------------------------------------------


class LayeredSource(PydanticBaseSettingsSource):
    """The one pydantic-settings source of :class:`~sentinelle.settings.Settings`: file, environment, secret files."""

    def __init__(
        self, settings_cls: type[BaseSettings], file_data: dict[str, Any], env: PydanticBaseSettingsSource
    ) -> None:
        super().__init__(settings_cls)
        self._file_data = file_data
        self._env = env

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        raise NotImplementedError

    def __call__(self) -> dict[str, Any]:
        return resolve(self.settings_cls, self._file_data, self._env)


def resolve(model: type[BaseSettings], file_data: dict[str, Any], env: PydanticBaseSettingsSource) -> dict[str, Any]:
    """The settings' data: the file's, the environment merged in, the secret files applied."""
    try:
        env_data = env()
    except SettingsError as e:
        # pydantic-settings says 'error parsing value for field "sources" from source ...'.
        m = re.search(r'field "(\w+)"', str(e))
        var = ENV_PREFIX + (m.group(1).upper() if m else "*")
        raise ConfigError("not valid JSON (a section or list given whole must be JSON)", field=var) from None
    merged = merge_environment(file_data, env_data, model)
    return apply_secret_files(merged, model, secret_files(merged))


def secrets_set(settings: BaseModel, where: str = "") -> list[str]:
    """The paths of the secret fields that hold a value (list items by name), never the values."""
    found: list[str] = []
    for key in type(settings).model_fields:
        value = getattr(settings, key)
        path = f"{where}.{key}" if where else key
        if isinstance(value, SecretStr):
            found.append(path)
        elif isinstance(value, BaseModel):
            found += secrets_set(value, path)
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    found += secrets_set(item, f"{path}[{_item_name(item) or i}]")
    return found


def secrets_in(data: Mapping[str, Any], model: type[BaseModel], where: str = "") -> list[str]:
    """The paths of secret fields that raw settings data (a TOML file's) sets, list items by name.

    >>> from sentinelle.settings import Settings
    >>> secrets_in({"sources": [{"name": "plant", "password": "x"}], "kafka": {"topic": "t"}}, Settings)
    ['sources[plant].password']
    """
    found: list[str] = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            continue
        path = f"{where}.{key}" if where else key
        item_annotation = _item_annotation(field.annotation)
        if _is_secret(field.annotation) and value is not None:
            found.append(path)
        elif item_annotation is not None and isinstance(value, list | tuple):
            for i, item in enumerate(value):
                item_model = _item_model(item_annotation, item)
                if isinstance(item, Mapping) and item_model is not None:
                    found += secrets_in(item, item_model, f"{path}[{_item_name(item) or i}]")
        elif isinstance(value, Mapping) and _models_of(field.annotation):
            found += secrets_in(value, _models_of(field.annotation)[0], path)
    return found


# --- naming problems ---------------------------------------------------------------------------


def location(loc: tuple[int | str, ...], data: Any, prefix: str = "") -> str:
    """A pydantic error location with list items named as in the settings (``tags[name].field``)."""
    out = prefix
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list | tuple) and 0 <= part < len(node) else None
            name = _item_name(item) if item is not None else None
            out += f"[{name}]" if name else f"[{part}]"
            node = item
            continue
        if isinstance(node, Mapping) and part not in node and node.get("kind") == part:
            continue  # the tag pydantic adds for a union told apart by kind
        out += ("." if out and not out.endswith(".") else "") + part
        node = node.get(part) if isinstance(node, Mapping) else getattr(node, part, None)
    return out


def config_error(e: ValidationError, *, prefix: str = "", data: Any = None) -> ConfigError:
    """Every problem pydantic found, as one :class:`ConfigError`: the first names the field, the others follow."""
    problems: list[tuple[str | None, str]] = []
    for err in e.errors(include_url=False, include_input=False):
        where = location(tuple(err["loc"]), data, prefix) or None
        msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if where is None and (m := _LEADING_PATH.match(msg)):
            where, msg = prefix + m.group(1), m.group(2)  # a root validator's "tags[x].source: ..."
        if (where, msg) not in problems:
            problems.append((where, msg))
    (field, first), rest = problems[0], problems[1:]
    lines = [f"{w}: {m}" if w else m for w, m in rest[: MAX_LISTED_PROBLEMS - 1]]
    if len(rest) > MAX_LISTED_PROBLEMS - 1:
        lines.append(f"(and {len(rest) - MAX_LISTED_PROBLEMS + 1} more problems)")
    return ConfigError("\n  ".join([first, *lines]), field=field)
