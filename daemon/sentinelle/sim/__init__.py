"""The simulated plant: a chiller / heat exchanger with injectable faults, served over OPC-UA.

``chiller`` is the pure model (numpy only); ``server`` puts it on an asyncua
server.  The server's names are imported lazily so that using the model, or
importing this package from the CLI, does not pay for importing asyncua.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .chiller import CHILLER_TAGS, ChillerModel, InjectedFault, resolve_faults

if TYPE_CHECKING:
    from .server import NAMESPACE_INDEX, NAMESPACE_URI, ChillerServer, chiller_tags, serve

__all__ = [
    "CHILLER_TAGS",
    "NAMESPACE_INDEX",
    "NAMESPACE_URI",
    "ChillerModel",
    "ChillerServer",
    "InjectedFault",
    "chiller_tags",
    "resolve_faults",
    "serve",
]

_SERVER_NAMES = frozenset({"NAMESPACE_INDEX", "NAMESPACE_URI", "ChillerServer", "chiller_tags", "serve"})


def __getattr__(name: str) -> Any:
    if name in _SERVER_NAMES:
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
