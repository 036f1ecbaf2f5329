"""Engineering ranges and units from OPC-UA properties (sources/opcua_ranges.py), with a fake of asyncua's client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from asyncua import ua

from sentinelle.records import EngineeringRange
from sentinelle.settings import TagSettings
from sentinelle.sources.opcua_ranges import EngineeringReader, check_range, judge, read_properties, same_unit


def _tag(name: str, **kw: Any) -> TagSettings:
    return TagSettings(name=name, asset="a", node_id=f"ns=2;s={name}", **kw)


def _range(low: float, high: float) -> ua.Range:
    return ua.Range(ua.Double(low), ua.Double(high))


def _unit(name: str) -> ua.EUInformation:
    return ua.EUInformation(DisplayName=ua.LocalizedText(name))


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (_range(0.0, float("nan")), "not finite"),
        (_range(float("-inf"), 1.0), "not finite"),
        (_range(5.0, 5.0), "not below"),
        (_range(10.0, 0.0), "not below"),
        ("0 … 100", "not a Range"),
        (_unit("degC"), "not a Range"),
    ],
)
def test_a_bad_eu_range_is_refused_with_why(value: Any, why: str) -> None:
    checked = check_range(value)
    assert isinstance(checked, str) and why in checked


def test_each_tag_s_range_comes_from_the_configuration_the_server_or_is_learned_online() -> None:
    tags = [
        _tag("a.conf", eu_low=0.0, eu_high=10.0, unit="kW"),
        _tag("a.read", unit="degC"),
        _tag("a.none"),
        _tag("a.bad"),
    ]
    eu = {"a.conf": _range(-1.0, 1.0), "a.read": _range(-20.0, 120.0), "a.bad": _range(3.0, 1.0)}
    report = judge(tags, eu, {"a.conf": _unit("MW"), "a.read": _unit("°C")})
    assert report.ranges == (EngineeringRange("a.read", -20.0, 120.0),)  # the configured one is never replaced
    assert report.origins == {"a.conf": "configuration", "a.read": "server", "a.none": "online", "a.bad": "online"}
    assert list(report.bad) == ["a.bad"]
    assert report.unit_mismatch == {"a.conf": ("kW", "MW")}  # degC and °C are one unit
    assert same_unit("m³/h", "M³/H") and not same_unit("degC", "degF")


class _FakeSession:
    """asyncua's ``client.uaclient``: TranslateBrowsePaths and Read over a dict of properties."""

    def __init__(self, properties: dict[tuple[str, str], Any], fail: BaseException | None = None) -> None:
        self.properties = properties
        self.fail = fail
        self.requests: list[int] = []

    async def translate_browsepaths_to_nodeids(self, paths: Sequence[ua.BrowsePath]) -> list[ua.BrowsePathResult]:
        if self.fail is not None:
            raise self.fail
        self.requests.append(len(paths))
        out = []
        for p in paths:
            key = (str(p.StartingNode.Identifier), p.RelativePath.Elements[0].TargetName.Name)
            if key in self.properties:
                target = ua.BrowsePathTarget(TargetId=ua.NodeId(ua.String("/".join(key)), ua.Int16(2)))
                out.append(ua.BrowsePathResult(StatusCode=ua.StatusCode(), Targets=[target]))
            else:
                out.append(
                    ua.BrowsePathResult(StatusCode=ua.StatusCode(ua.UInt32(ua.StatusCodes.BadNoMatch)), Targets=[])
                )
        return out

    async def read_attributes(self, nodes: Sequence[ua.NodeId], attr: ua.AttributeIds) -> list[ua.DataValue]:
        out = []
        for n in nodes:
            value = self.properties[tuple(str(n.Identifier).split("/"))]  # type: ignore[index]
            if value is None:  # unreadable
                out.append(ua.DataValue(StatusCode=ua.StatusCode(ua.UInt32(ua.StatusCodes.BadNotReadable))))
            else:
                out.append(ua.DataValue(ua.Variant(value)))
        return out


class _FakeClient:
    def __init__(self, session: _FakeSession) -> None:
        self.uaclient = session


def _nodes(tags: Sequence[TagSettings]) -> dict[str, ua.NodeId]:
    return {t.name: ua.NodeId(ua.String(t.name), ua.Int16(2)) for t in tags}


def test_properties_are_read_in_chunks_and_missing_or_unreadable_ones_are_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sentinelle.sources.opcua_ranges.PROPERTY_CHUNK", 2)
    session = _FakeSession({("t0", "EURange"): _range(0.0, 1.0), ("t2", "EURange"): None, ("t4", "EURange"): 7})
    nodes = [ua.NodeId(ua.String(f"t{i}"), ua.Int16(2)) for i in range(5)]
    got = asyncio.run(read_properties(_FakeClient(session), nodes, "EURange"))  # type: ignore[arg-type]
    assert got == [_range(0.0, 1.0), None, None, None, 7]
    assert session.requests == [2, 2, 1]


def test_the_reader_hands_on_good_ranges_counts_bad_ones_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    tags = [_tag("v.pct", unit="%"), _tag("v.bad", unit="kW"), _tag("v.none")]
    session = _FakeSession(
        {
            ("v.pct", "EURange"): _range(0.0, 100.0),
            ("v.bad", "EURange"): _range(1.0, float("nan")),
            ("v.bad", "EngineeringUnits"): _unit("MW"),
        }
    )
    handed: list[Sequence[EngineeringRange]] = []
    counts = {"bad": 0, "failed": 0}

    def count(kind: str) -> Any:
        return lambda: counts.__setitem__(kind, counts[kind] + 1)

    reader = EngineeringReader("plant", tags, _nodes(tags), handed.append, count("bad"), count("failed"))
    with caplog.at_level(logging.INFO, logger="sentinelle.sources.opcua_ranges"):
        for _ in range(2):  # a reconnect reads again
            asyncio.run(reader.refresh(_FakeClient(session)))  # type: ignore[arg-type]
    assert handed == [(EngineeringRange("v.pct", 0.0, 100.0),)] * 2
    assert counts == {"bad": 2, "failed": 0}  # counted at every reading, warned about once
    text = [r.getMessage() for r in caplog.records]
    assert sum("v.bad: EURange skipped, not finite" in t for t in text) == 1
    assert sum("configured unit 'kW', the server's EngineeringUnits 'MW'" in t for t in text) == 1
    summaries = [t for t in text if "engineering ranges:" in t]
    assert summaries == [
        "source plant: engineering ranges: 0 configured, 1 from the server (EURange), "
        "2 learned online (1 with a bad EURange)"
    ]

    session.fail = TimeoutError("the server did not answer")
    asyncio.run(reader.refresh(_FakeClient(session)))  # type: ignore[arg-type]
    assert counts["failed"] == 1 and len(handed) == 2  # nothing raised, nothing handed on
    assert reader.report is not None and reader.report.origins["v.pct"] == "server"  # the last reading stands


def test_an_unexpected_error_while_reading_is_counted_and_the_subscription_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tags = [_tag("v.pct")]
    failed: list[int] = []
    reader = EngineeringReader("plant", tags, _nodes(tags), None, lambda: None, lambda: failed.append(1))
    session = _FakeSession({}, fail=AttributeError("a server's odd answer"))
    with caplog.at_level(logging.WARNING, logger="sentinelle.sources.opcua_ranges"):
        asyncio.run(reader.refresh(_FakeClient(session)))  # type: ignore[arg-type]
    assert failed == [1] and reader.report is None
    assert caplog.records[-1].exc_info is not None  # not one of asyncua's expected errors: its traceback
