"""Air-handling-unit fault detection after ASHRAE Guideline 36 (``[detect.assets.afdd]``).

Guideline 36 (section 5.16, "Automated fault detection and diagnostics") publishes the
fault conditions of an AHU and their default tolerances: sensor errors of 2 °F (5 °F for
the mixed air, whose sensor sees stratified air), 2 °F of heat from the supply fan, a
state must have held 15 minutes before its conditions are tested and a condition must
hold 30 minutes before it alarms.  They are defaults fixed by the guideline's committee,
not fitted to any data set, which is why they are ours (in kelvin here: a tolerance is a
temperature *difference*; ``temperature_unit`` says what the tags are in).  NIST's APAR rules
(``apar_rules``, detect/apar.py) bring their own published thresholds: εt = 2 °C, εf = 0.3 on the
outdoor-air fraction, judged only where outdoor and return air differ by ΔTmin = 5.6 °C.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import _Section

_F = 5.0 / 9.0
"""Kelvin per °F of difference."""


class AfddSettings(_Section):
    """The AHU's points by role, and the guideline's tolerances (defaults: Guideline 36, in kelvin)."""

    supply_air_temp_tag: str = Field(min_length=1, description="Supply (discharge) air temperature.")
    mixed_air_temp_tag: str = Field(min_length=1, description="Mixed air temperature (before the coils).")
    return_air_temp_tag: str = Field(min_length=1, description="Return air temperature.")
    outdoor_air_temp_tag: str = Field(min_length=1, description="Outdoor air temperature.")
    heating_valve_tag: str = Field(min_length=1, description="Heating-coil valve command.")
    cooling_valve_tag: str = Field(min_length=1, description="Cooling-coil valve command.")
    outdoor_damper_tag: str | None = Field(
        default=None,
        description="Outdoor-air damper command; without it the 100 %-outdoor-air cooling state (and its "
        "conditions FC10, FC11) is never recognised.",
    )
    supply_air_setpoint_tag: str | None = Field(
        default=None, description="Supply-air temperature set point (FC7, FC9, FC11, FC13 need one)."
    )
    heating_setpoint_tag: str | None = Field(
        default=None, description="A separate heating set point (single-zone units); default: the set point."
    )
    cooling_setpoint_tag: str | None = Field(
        default=None, description="A separate cooling set point (single-zone units); default: the set point."
    )
    temperature_unit: Literal["C", "F", "K"] = Field(
        default="C", description="Unit of the temperature tags: the tolerances (kelvin) are converted to it."
    )
    signal_full_scale: float = Field(
        default=1.0, gt=0, description="A valve or damper command at 100 %: 1.0 for 0..1 signals, 100 for percent."
    )
    signal_tolerance_fraction: float = Field(
        default=0.01,
        gt=0,
        lt=0.5,
        description="A command within this fraction of full scale of 0 is closed, of full scale is fully open.",
    )
    supply_air_tolerance_k: float = Field(default=2 * _F, ge=0, description="εSAT: 2 °F.")
    mixed_air_tolerance_k: float = Field(default=5 * _F, ge=0, description="εMAT: 5 °F (stratified mixed air).")
    return_air_tolerance_k: float = Field(default=2 * _F, ge=0, description="εRAT: 2 °F.")
    outdoor_air_tolerance_k: float = Field(default=2 * _F, ge=0, description="εOAT: 2 °F.")
    supply_fan_heat_k: float = Field(default=2 * _F, ge=0, description="ΔTSF: the supply fan's temperature rise.")
    average_s: float = Field(
        default=300.0, gt=0, description="Temperatures and set points are averaged over this rolling span."
    )
    mode_delay_s: float = Field(
        default=900.0, ge=0, description="ModeDelay: a state is tested only after it (and the fan) held this long."
    )
    alarm_delay_s: float = Field(
        default=1800.0, gt=0, description="AlarmDelay: a condition alarms once it held this long without a break."
    )
    max_state_changes_per_hour: int = Field(
        default=7, ge=1, description="FC4: more operating-state changes than this within an hour (hunting)."
    )
    calibration_s: float = Field(
        default=0.0,
        ge=0,
        description="Offsets learned on known-good operation: each condition's quantity is collected over the "
        "first this much evaluable time (the start-up history replay, else live operation) and the condition "
        "then trips at its tolerance beyond the collected median when that median already lies past zero (a "
        "sensor offset of the healthy unit), never closer than the guideline's tolerance. 0 (default, chosen on "
        "LBNL's tuning days: docs/results/lbnl/tuning_afdd.json): the guideline's thresholds as they are.",
    )

    apar_rules: bool = Field(
        default=False,
        description="Also test NIST's APAR rules that Guideline 36 lacks (detect/apar.py): the outdoor-air fraction "
        "against its minimum (APAR 2/16) and with the damper commanded closed, the supply air against the mixed "
        "air plus fan heat with no coil active (APAR 7) and against the return air while cooling (APAR 6/12/17).",
    )
    apar_temperature_tolerance_k: float = Field(
        default=2.0, ge=0, description="APAR's εt: 2 °C, NIST's recommended temperature threshold."
    )
    outdoor_air_fraction_tolerance: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="APAR's εf (Guideline 36 FC6's ΔF_OA): the outdoor-air fraction's allowed error, 0.3.",
    )
    outdoor_air_fraction_min_delta_k: float = Field(
        default=5.6,
        ge=0,
        description="APAR's ΔTmin (Guideline 36 FC6: 10 °F): the fraction is evaluated only where outdoor and "
        "return air differ by at least this much.",
    )
    minimum_outdoor_air_fraction: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The design minimum outdoor-air fraction (APAR 2/16); unset: the median fraction at minimum "
        "outdoor air over the start-up history replay (known-good operation), else over the first "
        "minimum_outdoor_air_fraction_learn_s of it.",
    )
    minimum_outdoor_air_fraction_learn_s: float = Field(
        default=86400.0,
        gt=0,
        description="Most operation at minimum outdoor air that the minimum fraction is learned from.",
    )

    damper_leak_rule: bool = Field(
        default=True,
        description="Also test OAL (detect/afdd.py): with the outdoor-air damper commanded closed, the outdoor-air "
        "fraction Q = (MAT - RAT)/(OAT - RAT) above damper_leak_fraction, where |OAT - RAT| is at least "
        "outdoor_air_fraction_min_delta_k. One-sided (a leak or a stuck-open damper lets outdoor air in); APAR2C "
        "tests |Q|, which a mixed-air sensor reading below the return air also trips.",
    )
    damper_leak_fraction: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="OAL's threshold on the outdoor-air fraction with the damper commanded closed. 0.05 was "
        "chosen on LBNL's tuning days (bench/lbnl/tune_leak.py) over 0.1, the 10 % fraction threshold of APAR "
        "2/16 implementations.",
    )

    @model_validator(mode="after")
    def _setpoints(self) -> AfddSettings:
        split = (self.heating_setpoint_tag is None) != (self.cooling_setpoint_tag is None)
        if split and self.supply_air_setpoint_tag is None:
            raise ValueError("give heating_setpoint_tag and cooling_setpoint_tag together, or supply_air_setpoint_tag")
        return self

    def roles(self) -> dict[str, str]:
        """Role → tag of every configured point."""
        roles = {
            "supply_air_temp_tag": self.supply_air_temp_tag,
            "mixed_air_temp_tag": self.mixed_air_temp_tag,
            "return_air_temp_tag": self.return_air_temp_tag,
            "outdoor_air_temp_tag": self.outdoor_air_temp_tag,
            "heating_valve_tag": self.heating_valve_tag,
            "cooling_valve_tag": self.cooling_valve_tag,
            "outdoor_damper_tag": self.outdoor_damper_tag,
            "supply_air_setpoint_tag": self.supply_air_setpoint_tag,
            "heating_setpoint_tag": self.heating_setpoint_tag,
            "cooling_setpoint_tag": self.cooling_setpoint_tag,
        }
        return {k: v for k, v in roles.items() if v is not None}

    def kelvin_to_tag_units(self) -> float:
        """Tag temperature units per kelvin of difference.

        >>> AfddSettings(**{r: "t" for r in ("supply_air_temp_tag", "mixed_air_temp_tag", "return_air_temp_tag",
        ...     "outdoor_air_temp_tag", "heating_valve_tag", "cooling_valve_tag")}, temperature_unit="F"
        ... ).kelvin_to_tag_units()
        1.8
        """
        return 1.8 if self.temperature_unit == "F" else 1.0
