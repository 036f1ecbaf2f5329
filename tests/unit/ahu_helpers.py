"""One hand-made air-handling unit for the AFDD tests (test_afdd.py, test_apar.py): its points, rows and settings.

Points in °C, commands 0..1, one tick per second; short delays (average 1 s, mode delay 3 ticks, alarm delay
5 ticks) so that every expected tick can be counted by hand.
"""

from __future__ import annotations

import numpy as np

from sentinelle.detect.afdd import CONDITIONS
from sentinelle.settings import AfddSettings, TagSettings

ROLES = ("sat", "mat", "rat", "oat", "hc", "cc", "dm", "sp")
ROWS = {
    "supply_air_temp_tag": 0,
    "mixed_air_temp_tag": 1,
    "return_air_temp_tag": 2,
    "outdoor_air_temp_tag": 3,
    "heating_valve_tag": 4,
    "cooling_valve_tag": 5,
    "outdoor_damper_tag": 6,
    "supply_air_setpoint_tag": 7,
}
FAN = 2.0 * 5.0 / 9.0
"""Guideline 36's fan heat, 2 °F, in K."""

AHU_TAGS = tuple(TagSettings(name=f"a.{r}", asset="a", node_id=f"n{i}") for i, r in enumerate(ROLES))


def ahu_settings(**kw: object) -> AfddSettings:
    """The unit's points as ``a.<role>`` with the short delays, then ``kw``."""
    base: dict[str, object] = {role: f"a.{short}" for role, short in zip(ROWS, ROLES, strict=True)}
    base.update(average_s=1.0, mode_delay_s=3.0, alarm_delay_s=5.0)
    base.update(kw)
    return AfddSettings.model_validate(base)


def condition(per_condition: np.ndarray, name: str) -> bool:
    """Whether any of the condition ``name``'s entries (FC8 has two) is set in a per-condition array."""
    return bool(any(per_condition[i] for i, c in enumerate(CONDITIONS) if c.name == name))
