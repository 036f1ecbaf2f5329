"""The simulated plant's tags: short names, units, resolutions, and the synthetic benchmark tags.

Apart from :mod:`.chiller` (the physics) so that the fault definitions (:mod:`.faults`), the OPC-UA
server and the evaluations can name the tags without the model.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "CHILLER_TAGS",
    "EXTRA_TAGS_PER_ASSET",
    "EXTRA_TAG_RESOLUTION",
    "PUMP_TAGS",
    "TAG_RESOLUTION",
    "TAG_UNITS",
    "UNECE_UNITS",
    "WATER_KWH_PER_M3_K",
    "eu_ranges",
    "extra_tag_asset",
    "extra_tag_names",
]

CHILLER_TAGS: tuple[str, ...] = (
    "flow_m3h",
    "pump1_speed_pct",
    "pump2_speed_pct",
    "pump3_speed_pct",
    "supply_temp_c",
    "chw_temp_c",
    "power_kw",
)
"""Short names of the chiller's tags, in the order of :meth:`ChillerModel.step_array`."""

TAG_UNITS: Mapping[str, str] = {
    "flow_m3h": "m3/h",
    "pump1_speed_pct": "%",
    "pump2_speed_pct": "%",
    "pump3_speed_pct": "%",
    "supply_temp_c": "degC",
    "chw_temp_c": "degC",
    "power_kw": "kW",
}

TAG_RESOLUTION: Mapping[str, float] = {
    "flow_m3h": 0.1,
    "pump1_speed_pct": 0.1,
    "pump2_speed_pct": 0.1,
    "pump3_speed_pct": 0.1,
    "supply_temp_c": 0.01,
    "chw_temp_c": 0.01,
    "power_kw": 1.0,
}
"""Roughly the smallest meaningful change of each tag (its transmitter's resolution)."""

PUMP_TAGS: tuple[str, ...] = ("pump1_speed_pct", "pump2_speed_pct", "pump3_speed_pct")

UNECE_UNITS: Mapping[str, tuple[str, str]] = {
    "m3/h": ("MQH", "m³/h"),
    "%": ("P1", "%"),
    "degC": ("CEL", "°C"),
    "kW": ("KWT", "kW"),
}
"""Unit → (UNECE common code, display name): what the server's ``EngineeringUnits`` carry, as OPC-UA
Part 8 asks (``EUInformation`` with the UN/CEFACT code as ``UnitId``)."""

WATER_KWH_PER_M3_K = 1.163
"""Heat carried by water: kWh per m³ per K (the heat meter's and the model's constant)."""


def eu_ranges(flow_m3h: float, supply_temp_mean_c: float, chw_setpoint_c: float) -> Mapping[str, tuple[float, float]]:
    """Each chiller tag's engineering range (its transmitter's span), as the server's ``EURange`` gives it.

    Spans an instrument engineer would give a plant of this design: the flow meter and heat meter
    to twice the design flow and duty, the pump speeds 0–100 %, the temperatures 0–30 °C and 0–20 °C.

    >>> r = eu_ranges(60.0, 12.0, 5.0)
    >>> r["flow_m3h"], r["pump1_speed_pct"], r["power_kw"]
    ((0.0, 120.0), (0.0, 100.0), (0.0, 977.0))
    """
    duty_kw = WATER_KWH_PER_M3_K * flow_m3h * (supply_temp_mean_c - chw_setpoint_c)
    pumps = {p: (0.0, 100.0) for p in PUMP_TAGS}
    return {
        "flow_m3h": (0.0, 2.0 * flow_m3h),
        **pumps,
        "supply_temp_c": (0.0, 30.0),
        "chw_temp_c": (0.0, 20.0),
        "power_kw": (0.0, float(round(2.0 * duty_kw))),
    }


EXTRA_TAGS_PER_ASSET = 50
EXTRA_TAG_RESOLUTION = 0.01


def extra_tag_names(count: int) -> tuple[str, ...]:
    """Full names of the synthetic benchmark tags: ``bench.t00000`` …"""
    return tuple(f"bench.t{i:05d}" for i in range(count))


def extra_tag_asset(index: int) -> str:
    """Asset of extra tag ``index``: 50 tags per asset, like a plant's equipment groups."""
    return f"bench.g{index // EXTRA_TAGS_PER_ASSET:03d}"
