"""Engineering ranges and units from the server: the ``EURange`` and ``EngineeringUnits`` properties.

OPC-UA's AnalogItemType variables carry their engineering range as an ``EURange``
property (a ``Range{Low, High}``) and their unit as ``EngineeringUnits`` (an
``EUInformation``).  The contextual novelty detector divides a tag's range into its
cells; a range the plant's engineers gave the instrument is better than one learned
online from the values seen so far (which moves with every new extreme).

Where each tag's range comes from, in order:

1. **configuration**: the tag's ``eu_low`` / ``eu_high`` — never overridden;
2. **server**: the variable's ``EURange``, read at every subscription (``read_eu_range``),
   used when both ends are finite and ``low < high``; a bad one is a counted, logged skip;
3. **online**: no usable range — the detector learns one (``detect.novelty_range``).

A server's ``EngineeringUnits`` whose name differs from the tag's configured ``unit``
is warned about; the configured unit stays (it is what alerts show).

The properties are found by one TranslateBrowsePathsToNodeIds and read by one Read
per :data:`PROPERTY_CHUNK` tags, like the subscription's chunks.  The verdict itself
(:func:`judge`) needs no server::

    >>> from types import SimpleNamespace as NS
    >>> tags = [NS(name="v.pct", eu_low=None, unit="%"), NS(name="v.t", eu_low=None, unit="")]
    >>> report = judge(tags, {"v.pct": NS(Low=0.0, High=100.0), "v.t": NS(Low=5.0, High=5.0)}, {})
    >>> report.ranges
    (EngineeringRange(tag='v.pct', low=0.0, high=100.0),)
    >>> report.origins, report.bad
    ({'v.pct': 'server', 'v.t': 'online'}, {'v.t': 'low (5.0) not below high (5.0)'})
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.uaerrors import UaError

from ..records import EngineeringRange

__all__ = [
    "PROPERTY_CHUNK",
    "EngineeringReader",
    "RangeReport",
    "check_range",
    "judge",
    "read_engineering",
    "same_unit",
    "unit_name",
]

_log = logging.getLogger(__name__)

PROPERTY_CHUNK: Final = 1_000
"""Tags per TranslateBrowsePaths and Read request (a request of 10,000 nears a server's MaxMessageSize)."""

EU_RANGE: Final = "EURange"
ENGINEERING_UNITS: Final = "EngineeringUnits"

Origin = Literal["configuration", "server", "online"]

_UNIT_ALIASES: Final = {
    "degc": "°c", "deg c": "°c", "celsius": "°c", "degf": "°f", "percent": "%", "pct": "%",
    "m³/h": "m3/h", "m³": "m3",  # UNECE display names (MQH, MTQ) against the ASCII spelling
}  # fmt: skip


class TagLike(Protocol):
    """The fields of :class:`~sentinelle.settings.TagSettings` read here."""

    @property
    def name(self) -> str: ...

    @property
    def eu_low(self) -> float | None: ...

    @property
    def unit(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RangeReport:
    """What the server's properties gave, per tag."""

    ranges: tuple[EngineeringRange, ...] = ()
    """The server's usable ranges, of tags with none configured."""
    origins: dict[str, Origin] = field(default_factory=dict)
    """Where each tag's range comes from."""
    bad: dict[str, str] = field(default_factory=dict)
    """Tags whose EURange was present but unusable, and why (their range is learned online)."""
    unit_mismatch: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Tags whose server unit differs from the configured one: (configured, server)."""

    def summary(self) -> str:
        """One line: how many ranges come from where.

        >>> RangeReport(origins={"a": "server", "b": "online", "c": "server"}, bad={"b": "NaN"}).summary()
        '0 configured, 2 from the server (EURange), 1 learned online (1 with a bad EURange)'
        """
        n = {o: sum(1 for v in self.origins.values() if v == o) for o in ("configuration", "server", "online")}
        bad = f" ({len(self.bad)} with a bad EURange)" if self.bad else ""
        configured, server, online = n["configuration"], n["server"], n["online"]
        return f"{configured} configured, {server} from the server (EURange), {online} learned online{bad}"


def check_range(value: Any) -> tuple[float, float] | str:
    """``(low, high)`` of a ``Range`` value when usable, else why not.

    >>> from types import SimpleNamespace as NS
    >>> check_range(NS(Low=-10, High=40.5)), check_range(NS(Low=1.0, High=float("nan"))), check_range("0..100")
    ((-10.0, 40.5), 'not finite: low 1.0, high nan', "not a Range: 'str'")
    """
    low, high = getattr(value, "Low", None), getattr(value, "High", None)
    if not isinstance(low, int | float) or not isinstance(high, int | float) or isinstance(low, bool):
        return f"not a Range: {type(value).__name__!r}"
    lo, hi = float(low), float(high)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"not finite: low {lo}, high {hi}"
    if not lo < hi:
        return f"low ({lo}) not below high ({hi})"
    return lo, hi


def unit_name(value: Any) -> str | None:
    """The display name of an ``EUInformation`` value (None: none given).

    >>> from types import SimpleNamespace as NS
    >>> unit_name(NS(DisplayName=NS(Text="°C"))), unit_name(NS(DisplayName=NS(Text=None))), unit_name(None)
    ('°C', None, None)
    """
    text = getattr(getattr(value, "DisplayName", None), "Text", None)
    return text.strip() or None if isinstance(text, str) else None


def same_unit(configured: str, server: str) -> bool:
    """Whether two unit names mean the same unit, up to case, blanks and a few common spellings.

    >>> same_unit("degC", "°C"), same_unit("m3/h", "m³/h "), same_unit("kW", "MW")
    (True, True, False)
    """

    def norm(u: str) -> str:
        u = " ".join(u.split()).casefold()
        return _UNIT_ALIASES.get(u, u)

    return norm(configured) == norm(server)


def judge(tags: Sequence[TagLike], eu_ranges: Mapping[str, Any], units: Mapping[str, Any]) -> RangeReport:
    """Each tag's range origin from what was read (tag → property value; absent: none); see the module doc."""
    ranges: list[EngineeringRange] = []
    origins: dict[str, Origin] = {}
    bad: dict[str, str] = {}
    mismatch: dict[str, tuple[str, str]] = {}
    for t in tags:
        if t.eu_low is not None:
            origins[t.name] = "configuration"
        elif t.name in eu_ranges:
            checked = check_range(eu_ranges[t.name])
            if isinstance(checked, str):
                bad[t.name] = checked
                origins[t.name] = "online"
            else:
                ranges.append(EngineeringRange(t.name, *checked))
                origins[t.name] = "server"
        else:
            origins[t.name] = "online"
        server_unit = unit_name(units.get(t.name))
        if t.unit and server_unit is not None and not same_unit(t.unit, server_unit):
            mismatch[t.name] = (t.unit, server_unit)
    return RangeReport(tuple(ranges), origins, bad, mismatch)


async def read_properties(client: Client, nodes: Sequence[ua.NodeId], name: str) -> list[Any]:
    """The value of each node's property ``name`` (namespace 0), None where it has none or it cannot be read.

    Raises what asyncua raises when a whole request fails (the caller's boundary catches it).
    """
    # ".": the Aggregates references (HasProperty among them), the relative path syntax of OPC-UA Part 4 A.2.
    path = ua.RelativePath.from_string(f".0:{name}")
    out: list[Any] = [None] * len(nodes)
    for start in range(0, len(nodes), PROPERTY_CHUNK):
        chunk = nodes[start : start + PROPERTY_CHUNK]
        found = await client.uaclient.translate_browsepaths_to_nodeids(
            [ua.BrowsePath(StartingNode=n, RelativePath=path) for n in chunk]
        )
        at: list[int] = []
        targets: list[ua.NodeId] = []
        for i, result in enumerate(found):
            if result.StatusCode.is_good() and result.Targets:
                target = result.Targets[0].TargetId
                at.append(start + i)
                targets.append(ua.NodeId(target.Identifier, target.NamespaceIndex, target.NodeIdType))
        if not targets:
            continue
        values = await client.uaclient.read_attributes(targets, ua.AttributeIds.Value)
        for i, dv in zip(at, values, strict=True):
            good = dv.StatusCode is None or dv.StatusCode.is_good()
            out[i] = dv.Value.Value if good and dv.Value is not None else None
    return out


async def read_engineering(client: Client, tags: Sequence[TagLike], nodes: Mapping[str, ua.NodeId]) -> RangeReport:
    """Read EURange of the tags with no configured range and EngineeringUnits of those with a unit; judge them."""
    # A tag without a node here (another tag with the same node id took it) has nothing of its own to read.
    want_range = [t.name for t in tags if t.eu_low is None and t.name in nodes]
    want_unit = [t.name for t in tags if t.unit and t.name in nodes]
    ranges = await read_properties(client, [nodes[n] for n in want_range], EU_RANGE) if want_range else []
    units = await read_properties(client, [nodes[n] for n in want_unit], ENGINEERING_UNITS) if want_unit else []
    return judge(
        tags,
        {n: v for n, v in zip(want_range, ranges, strict=True) if v is not None},
        {n: v for n, v in zip(want_unit, units, strict=True) if v is not None},
    )


class EngineeringReader:
    """One source's reading of its tags' ranges and units at each subscription: logged, counted, handed on.

    ``on_ranges`` gets the server's usable ranges (the window stage carries them to the detectors);
    ``count_bad`` is told of each bad EURange, ``count_failed`` of a read that failed as a whole
    (the subscription goes on; the ranges are then the last ones read, or learned online).
    Each tag's bad range and unit mismatch is warned about once; the summary of where the ranges
    come from is logged at the first subscription and whenever it changes, each tag's origin at DEBUG.
    """

    def __init__(
        self,
        source: str,
        tags: Sequence[TagLike],
        nodes: Mapping[str, ua.NodeId],
        on_ranges: Callable[[Sequence[EngineeringRange]], None] | None,
        count_bad: Callable[[], None],
        count_failed: Callable[[], None],
    ) -> None:
        self._source = source
        self._tags = list(tags)
        self._nodes = dict(nodes)
        self._on_ranges = on_ranges
        self._count_bad = count_bad
        self._count_failed = count_failed
        self._warned: set[tuple[str, str]] = set()
        self._last: RangeReport | None = None
        self.report: RangeReport | None = None
        """The latest reading (None: none succeeded yet)."""

    async def refresh(self, client: Client) -> None:
        """Read, judge, log and hand on; never raises what the server or asyncua raise."""
        try:
            report = await read_engineering(client, self._tags, self._nodes)
        except Exception as e:  # optional information: whatever goes wrong, the subscription goes on
            self._count_failed()
            _log.warning(
                "source %s: could not read the tags' EURange/EngineeringUnits (%s: %s); ranges stay as they were "
                "(learned online where none was read)",
                self._source,
                type(e).__name__,
                e,
                exc_info=not isinstance(e, OSError | TimeoutError | UaError),  # a bug here: its traceback
            )
            return
        self.report = report
        for tag, why in report.bad.items():
            self._count_bad()
            self._warn_once(tag, "range", "source %s: tag %s: EURange skipped, %s; its range is learned online", why)
        for tag, (configured, server) in report.unit_mismatch.items():
            said = f"configured unit {configured!r}, the server's EngineeringUnits {server!r}"
            said += f"; alerts show {configured!r}"
            self._warn_once(tag, "unit", "source %s: tag %s: %s", said)
        if self._last is None or report.origins != self._last.origins or report.ranges != self._last.ranges:
            _log.info("source %s: engineering ranges: %s", self._source, report.summary())
            for r in report.ranges:
                _log.debug("source %s: tag %s: range %g … %g from its EURange", self._source, r.tag, r.low, r.high)
            for tag, origin in report.origins.items():
                if origin != "server":
                    _log.debug("source %s: tag %s: range %s", self._source, tag, _ORIGIN_WORDS[origin])
        self._last = report
        if self._on_ranges is not None and report.ranges:
            self._on_ranges(report.ranges)

    def _warn_once(self, tag: str, what: str, message: str, detail: str) -> None:
        if (tag, what) not in self._warned:
            self._warned.add((tag, what))
            _log.warning(message, self._source, tag, detail)


_ORIGIN_WORDS: Final = {"configuration": "from the configuration (eu_low, eu_high)", "online": "learned online"}
