"""The chiller simulator's AnalogItemType variables give the daemon's OPC-UA source their ranges and units.

A real :class:`~sentinelle.sim.ChillerServer` on loopback and the daemon's tag configuration for it
(:func:`~sentinelle.sim.chiller_tags`, no ``eu_low``/``eu_high``): every chiller tag's range comes from
its ``EURange`` property, the ``EngineeringUnits`` agree with the configured units, and the ranges
reach the window batches, as in the demo.  The extra benchmark tags stay plain variables.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from sentinelle.records import EngineeringRange, Sample, WindowBatch
from sentinelle.settings import SimulatorSettings
from sentinelle.sim import CHILLER_TAGS, ChillerServer, chiller_tags
from sentinelle.sim.tags import eu_ranges

from .test_opcua_eu_range import _connect, subscribe_once

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def test_the_simulators_chiller_tags_carry_their_eu_range_and_units(caplog: pytest.LogCaptureFixture) -> None:
    settings = SimulatorSettings(port=0, time_scale=20.0, seed=3, flow_m3h=80.0, extra_tags=3)
    expected = eu_ranges(settings.flow_m3h, settings.supply_temp_mean_c, settings.chw_setpoint_c)
    tags = chiller_tags(settings)
    assert all(t.eu_low is None for t in tags)  # nothing configured: the server is the only source
    async with asyncio.timeout(30), ChillerServer(settings) as server:
        source, windows, _ = await _connect(server.url, tags)
        with caplog.at_level(logging.INFO, logger="sentinelle.sources.opcua_ranges"):
            await subscribe_once(source)
    assert source.engineering is not None and source.engineering.report is not None
    report = source.engineering.report
    assert report.ranges == tuple(EngineeringRange(f"chiller1.{t}", *expected[t]) for t in CHILLER_TAGS)
    assert report.ranges[0] == EngineeringRange("chiller1.flow_m3h", 0.0, 160.0)  # twice the design flow
    extra = [t.name for t in tags if t.name.startswith("bench.")]
    assert len(extra) == 3
    assert report.origins == {**{f"chiller1.{t}": "server" for t in CHILLER_TAGS}, **dict.fromkeys(extra, "online")}
    assert report.bad == {} and report.unit_mismatch == {}  # m3/h = m³/h, degC = °C
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "0 configured, 7 from the server (EURange), 3 learned online" in text
    assert "EngineeringUnits" not in text  # no unit warned about

    batches: list[WindowBatch] = []
    for ts in (100.0, 101.0, 102.0):
        batches += windows.ingest([Sample(t.name, ts, 1.0) for t in tags])
    low, high = batches[-1].eu_low, batches[-1].eu_high
    assert low is not None and high is not None
    rows = {name: i for i, name in enumerate(batches[-1].tags)}
    for t in CHILLER_TAGS:
        assert (low[rows[f"chiller1.{t}"]], high[rows[f"chiller1.{t}"]]) == expected[t]
    assert np.isnan(low[[rows[n] for n in extra]]).all()
