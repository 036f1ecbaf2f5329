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

EXTRA_TAGS_PER_ASSET = 50
EXTRA_TAG_RESOLUTION = 0.01


def extra_tag_names(count: int) -> tuple[str, ...]:
    """Full names of the synthetic benchmark tags: ``bench.t00000`` …"""
    return tuple(f"bench.t{i:05d}" for i in range(count))


def extra_tag_asset(index: int) -> str:
    """Asset of extra tag ``index``: 50 tags per asset, like a plant's equipment groups."""
    return f"bench.g{index // EXTRA_TAGS_PER_ASSET:03d}"
