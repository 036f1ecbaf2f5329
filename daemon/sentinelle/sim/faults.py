"""Faults injected into the simulated chiller: their defaults, checks, ramps and ground truth.

Faults (:class:`~sentinelle.settings.FaultSettings`; ``magnitude`` ``None`` takes
the typical size below; ``tag`` is a short name such as ``chw_temp_c``):

==================== ============================== =========================================
kind                 tag (default)                  magnitude (default)
==================== ============================== =========================================
pump_degradation     a pump's speed tag (pump 1)    efficiency lost, fraction (0.4)
sensor_drift         any chiller tag (chw_temp_c)   drift reached at the end, tag units (+0.6 °C)
stuck_sensor         any chiller tag (supply_temp)  not used: the tag keeps its last value
spike                any chiller tag (power_kw)     spike height, tag units (120 kW)
setpoint_violation   none                           °C above setpoint the plant cannot beat (0.8)
fouling              none                           fraction of measured power lost (0.15)
control_oscillation  none                           PI gain multiplier (4)
==================== ============================== =========================================

Apart from :mod:`.chiller` (the physics, which applies them) because this is the contract with
the settings and with the evaluations: what a fault's defaults are, which settings are refused,
and which tags an evaluation should see it on (:attr:`InjectedFault.affected`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ConfigError
from ..settings import FaultKind, SimulatorSettings
from .tags import CHILLER_TAGS, PUMP_TAGS

__all__ = ["InjectedFault", "resolve_faults"]

# Typical fault sizes per tag: (sensor_drift, spike), each tens of noise sigmas.
_TYPICAL_SIZE: Mapping[str, tuple[float, float]] = {
    "flow_m3h": (3.0, 15.0),
    "pump1_speed_pct": (8.0, 30.0),
    "pump2_speed_pct": (8.0, 30.0),
    "pump3_speed_pct": (8.0, 30.0),
    "supply_temp_c": (1.0, 3.0),
    "chw_temp_c": (0.6, 1.5),
    "power_kw": (40.0, 120.0),
}
_DEFAULT_TAG: Mapping[FaultKind, str] = {
    "pump_degradation": "pump1_speed_pct",
    "sensor_drift": "chw_temp_c",
    "stuck_sensor": "supply_temp_c",
    "spike": "power_kw",
}
_DEFAULT_MAGNITUDE: Mapping[FaultKind, float] = {
    "pump_degradation": 0.4,
    "setpoint_violation": 0.8,
    "fouling": 0.15,
    "control_oscillation": 4.0,
}
# How process faults come and go: (ramp in, ramp out, settle) in seconds, each at most a
# quarter of the fault's duration.  Ramping out and leaving time to settle before the end
# keeps the loop's recovery transient inside the ground-truth interval.
_PROFILE_S: Mapping[FaultKind, tuple[float, float, float]] = {
    "pump_degradation": (300.0, 300.0, 0.0),
    "setpoint_violation": (120.0, 0.0, 300.0),
    "fouling": (600.0, 0.0, 0.0),
    "control_oscillation": (60.0, 120.0, 180.0),
}


@dataclass(frozen=True, slots=True)
class InjectedFault:
    """A fault of the settings, resolved: default tag and magnitude filled in.

    ``affected`` lists the short names of the tags on which the fault is clearly
    visible while it is active: the ground truth an evaluation scores against.
    """

    kind: FaultKind
    onset_s: float
    duration_s: float
    tag: str | None
    magnitude: float
    affected: tuple[str, ...]

    @property
    def end_s(self) -> float:
        return self.onset_s + self.duration_s

    def active(self, elapsed_s: float) -> bool:
        return self.onset_s <= elapsed_s < self.end_s

    def level(self, elapsed_s: float) -> float:
        """How fully the fault is present, 0..1: it ramps in, holds, ramps out, and lets the plant settle.

        Faults without a profile (sensor faults) are 1 for the whole interval.
        """
        if not self.active(elapsed_s):
            return 0.0
        profile = _PROFILE_S.get(self.kind, (0.0, 0.0, 0.0))
        ramp_in, ramp_out, settle = (min(p, self.duration_s / 4) for p in profile)
        level = 1.0
        if ramp_in > 0:
            level = min(level, (elapsed_s - self.onset_s) / ramp_in)
        if ramp_out > 0:
            level = min(level, (self.end_s - settle - elapsed_s) / ramp_out)
        elif settle > 0 and elapsed_s >= self.end_s - settle:
            level = 0.0
        return max(0.0, min(1.0, level))


def resolve_faults(settings: SimulatorSettings) -> tuple[InjectedFault, ...]:
    """Fill in default tags and magnitudes and reject faults that cannot apply.

    Raises :class:`ConfigError` naming the field (``simulator.faults.<i>.tag`` …),
    because a fault silently applied to the wrong tag would make an evaluation lie.
    """
    resolved: list[InjectedFault] = []
    for i, fault in enumerate(settings.faults):
        field = f"simulator.faults.{i}"
        kind = fault.kind
        tag = fault.tag
        if kind in _DEFAULT_TAG:
            tag = tag if tag is not None else _DEFAULT_TAG[kind]
            allowed = PUMP_TAGS if kind == "pump_degradation" else CHILLER_TAGS
            if tag not in allowed:
                message = f"{kind} applies to one of {list(allowed)}, not {tag!r}"
                raise ConfigError(message, field=f"{field}.tag")
        elif tag is not None:
            raise ConfigError(f"{kind} affects the whole plant and takes no tag", field=f"{field}.tag")

        magnitude = fault.magnitude
        if magnitude is None:
            if kind == "sensor_drift" and tag is not None:
                magnitude = _TYPICAL_SIZE[tag][0]
            elif kind == "spike" and tag is not None:
                magnitude = _TYPICAL_SIZE[tag][1]
            else:
                magnitude = _DEFAULT_MAGNITUDE.get(kind, 0.0)
        _check_magnitude(kind, magnitude, f"{field}.magnitude")

        if kind == "pump_degradation":
            affected: tuple[str, ...] = PUMP_TAGS
        elif kind in ("sensor_drift", "stuck_sensor", "spike"):
            affected = (tag,) if tag is not None else ()
        elif kind == "fouling":
            affected = ("power_kw",)
        else:  # setpoint_violation, control_oscillation: the whole loop moves
            affected = ("chw_temp_c", "power_kw", *PUMP_TAGS)
        resolved.append(
            InjectedFault(
                kind=kind,
                onset_s=fault.onset_s,
                duration_s=fault.duration_s,
                tag=tag,
                magnitude=magnitude,
                affected=affected,
            )
        )
    return tuple(resolved)


def _check_magnitude(kind: FaultKind, magnitude: float, field: str) -> None:
    if not math.isfinite(magnitude):
        raise ConfigError("must be finite", field=field)
    if kind in ("pump_degradation", "fouling") and not 0 < magnitude < 1:
        raise ConfigError(f"{kind} magnitude is a fraction lost, in (0, 1)", field=field)
    if kind == "setpoint_violation" and magnitude <= 0:
        raise ConfigError("setpoint_violation magnitude is °C above the setpoint, > 0", field=field)
    if kind == "control_oscillation" and magnitude <= 1:
        raise ConfigError("control_oscillation magnitude is a PI gain multiplier, > 1", field=field)
