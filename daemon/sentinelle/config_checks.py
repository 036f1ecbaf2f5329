"""Checks of the settings that go beyond their types, made before a daemon starts.

``check-config`` and ``run`` call :func:`check_runnable`; what is cheap and needs no
library (a Kafka bootstrap list) is checked while the settings load, everywhere.
What a library parses (an OPC-UA node id: asyncua's own parser, which the source uses
too) is checked here, so a malformed id fails ``check-config`` rather than ``run``.

>>> parse_bootstrap_servers("kafka1:9092, [fd00::2]:9093")
[('kafka1', 9092), ('fd00::2', 9093)]
>>> parse_bootstrap_servers("kafka1")
Traceback (most recent call last):
...
ValueError: 'kafka1': expected host:port (an IPv6 address in brackets: [::1]:9092)
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator

from .errors import ConfigError

if TYPE_CHECKING:
    from .settings import Settings

_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$"
)
_MAX_LISTED = 10


def parse_bootstrap_servers(text: str) -> list[tuple[str, int]]:
    """``host:port[,host:port...]`` as (host, port) pairs, or ValueError naming the bad entry."""
    servers = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            raise ValueError(f"{text!r}: an empty entry in the list")
        if entry.startswith("["):
            host, sep, port = entry[1:].partition("]:")
            if not sep:
                raise ValueError(f"{entry!r}: expected [IPv6 address]:port")
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise ValueError(f"{entry!r}: {host!r} is not an IPv6 address") from None
        else:
            host, sep, port = entry.rpartition(":")
            if not sep or not host:
                raise ValueError(f"{entry!r}: expected host:port (an IPv6 address in brackets: [::1]:9092)")
            if ":" in host:
                raise ValueError(f"{entry!r}: write an IPv6 address in brackets, e.g. [{host}]:{port}")
            if "://" in entry or not _HOST_NAME.match(host):
                raise ValueError(f"{entry!r}: {host!r} is not a host name or address")
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
        servers.append((host, int(port)))
    return servers


def _valid_bootstrap(text: str) -> str:
    parse_bootstrap_servers(text)
    return text


BootstrapServers = Annotated[str, AfterValidator(_valid_bootstrap)]
"""A Kafka bootstrap list, checked as it loads; kept as the text aiokafka takes."""


def node_id_problem(text: str) -> str | None:
    """Why asyncua cannot use ``text`` as a node id, or None.

    >>> node_id_problem("ns=2;s=chiller1.chw_temp_c") is None
    True
    >>> node_id_problem("ns=two;s=x")
    "cannot parse 'ns=two;s=x' as an OPC-UA node id (invalid literal for int() with base 10: 'two')"
    """
    from asyncua import ua
    from asyncua.ua.uaerrors import UaError

    try:
        node = ua.NodeId.from_string(text)
    except (UaError, ValueError) as e:
        cause = e.__cause__ or (e.args[1] if len(e.args) > 1 else None)
        detail = f" ({cause})" if cause else ""
        return f"cannot parse {text!r} as an OPC-UA node id{detail}"
    if node.Identifier in ("", b""):
        return f"{text!r} has an empty identifier"
    return None


def check_runnable(settings: Settings) -> None:
    """What a daemon needs beyond valid settings: tags, and node ids asyncua parses; else :class:`ConfigError`."""
    if not settings.tags:
        raise ConfigError(
            "no tags are configured: the daemon would monitor nothing; add [[tags]] entries (name, asset, node_id)",
            field="tags",
        )
    problems = [(t.name, p) for t in settings.tags if (p := node_id_problem(t.node_id)) is not None]
    if problems:
        lines = [f"tags[{name}].node_id: {p}" for name, p in problems[1:_MAX_LISTED]]
        if len(problems) > _MAX_LISTED:
            lines.append(f"(and {len(problems) - _MAX_LISTED} more)")
        raise ConfigError("\n  ".join([problems[0][1], *lines]), field=f"tags[{problems[0][0]}].node_id")
