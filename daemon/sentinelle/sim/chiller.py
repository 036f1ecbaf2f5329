"""The simulated chiller / heat-exchanger plant: physics, control and faults, no I/O.

Kept apart from the OPC-UA server so that tests, evaluations and benchmarks can
step it millions of times without a socket, and so that the same seed always
gives the same plant.

The plant, per time step (sub-stepped at one second at most, so any
``sample_period_s`` gives the same physics)::

    supply_temp_c ──▶ [ exchanger: first-order, tau 40 s ] ──▶ chw_temp_c
                            ▲ cooling capacity Q (kW), 10 s dead time
    pump speeds ◀── PI(chw - setpoint) ◀── control sensor (not a monitored tag)

* Water: ``Q = 1.163 · flow · (supply - chw)`` (kWh per m³ per K), so the outlet
  settles at ``supply - Q / (1.163 · flow)``.
* Capacity: three pumps, ``Q = Σ efficiency_i · speed_i / 100 · pump_capacity``;
  pump 1 leads, pumps 2 and 3 share the rest of the demand.  The pump capacity
  is sized from the settings so that the design load needs half the demand.
* The PI controller regulates the outlet to ``chw_setpoint_c`` from its *own*
  sensor: a fault of a monitored transmitter (drift, stuck value, spikes) does not
  feed back into the process, so it stays visible on the tag it affects.
* ``power_kw`` is a heat meter on the true temperatures and flow, with 0.5 % noise.

Faults are resolved and described in :mod:`.faults`, the tag names in :mod:`.tags`.

>>> from sentinelle.settings import SimulatorSettings
>>> model = ChillerModel(SimulatorSettings(seed=1))
>>> sample = model.step(1_700_000_000.0)
>>> sorted(sample)[:3]
['chw_temp_c', 'flow_m3h', 'power_kw']
>>> 4.8 < sample["chw_temp_c"] < 5.2
True
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from ..errors import ConfigError
from ..records import FloatArray
from ..settings import SimulatorSettings
from .faults import InjectedFault, resolve_faults
from .tags import (
    CHILLER_TAGS,
    EXTRA_TAG_RESOLUTION,
    EXTRA_TAGS_PER_ASSET,
    PUMP_TAGS,
    TAG_RESOLUTION,
    TAG_UNITS,
    WATER_KWH_PER_M3_K,
    extra_tag_asset,
    extra_tag_names,
)

# The tag names and the fault definitions live in .tags and .faults; imported from here as well.
__all__ = [
    "CHILLER_TAGS",
    "EXTRA_TAGS_PER_ASSET",
    "EXTRA_TAG_RESOLUTION",
    "PUMP_TAGS",
    "TAG_RESOLUTION",
    "TAG_UNITS",
    "ChillerModel",
    "InjectedFault",
    "extra_tag_asset",
    "extra_tag_names",
    "resolve_faults",
]

_WATER_KWH_PER_M3_K = WATER_KWH_PER_M3_K
_MAX_SUBSTEP_S = 1.0
_OUTLET_TAU_S = 40.0
_DEAD_TIME_S = 10.0
_DAY_S = 86_400.0
_PEAK_LOAD_SECOND_OF_DAY = 15 * 3600.0  # mid-afternoon (UTC)
# Speed commands from the PI output u (0..100 % demand): pump 1 leads, 2 and 3 share.
_LEAD_BASE, _LEAD_SLOPE = 30.0, 0.7
_LAG_BASE, _LAG_SLOPE = 20.0, 0.6
_DESIGN_DEMAND_PCT = 50.0
# Process disturbances (not sensor noise, so noise_scale leaves them alone).
_SUPPLY_WANDER_C, _SUPPLY_WANDER_TAU_S = 0.2, 900.0
_FLOW_WANDER_FRACTION, _FLOW_WANDER_TAU_S = 0.005, 600.0
# Sensor noise sigmas at noise_scale 1.
_NOISE_CHW_C = 0.025
_NOISE_CONTROL_C = 0.02
_NOISE_SUPPLY_C = 0.03
_NOISE_FLOW_M3H = 0.15
_NOISE_POWER_FRACTION = 0.005
_NOISE_BLOCK_STEPS = 4096


def _generator(seed: int, stream: int) -> np.random.Generator:
    """An independent random stream per purpose, so that adding a fault or extra
    tags never changes the noise the rest of the plant sees."""
    return np.random.default_rng(np.random.SeedSequence(seed % 2**64, spawn_key=(stream,)))


class ChillerModel:
    """The plant: call :meth:`step` once per ``sample_period_s`` of simulated time.

    Deterministic: the same settings (seed included) and the same timestamps give
    the same values.  The first call returns the values at the start (elapsed 0);
    fault onsets count from there.
    """

    def __init__(self, settings: SimulatorSettings) -> None:
        design_delta_c = settings.supply_temp_mean_c - settings.chw_setpoint_c
        if design_delta_c < 1.0:
            raise ConfigError(
                "must exceed chw_setpoint_c by 1 °C at least: the chiller cools the supply water",
                field="simulator.supply_temp_mean_c",
            )
        if settings.daily_load_amplitude_c > 0.5 * design_delta_c:
            raise ConfigError(
                f"at most half of supply_temp_mean_c - chw_setpoint_c ({0.5 * design_delta_c:g} °C), "
                "or the pumps cannot follow the load",
                field="simulator.daily_load_amplitude_c",
            )
        self._settings = settings
        self._faults = resolve_faults(settings)
        self._dt = settings.sample_period_s
        self._substeps = max(1, math.ceil(self._dt / _MAX_SUBSTEP_S - 1e-9))
        self._h = self._dt / self._substeps
        self._noise_scale = settings.noise_scale
        self._setpoint = settings.chw_setpoint_c
        self._flow_nominal = settings.flow_m3h

        # Size the pumps so that the design load needs _DESIGN_DEMAND_PCT of demand.
        design_load_kw = _WATER_KWH_PER_M3_K * settings.flow_m3h * design_delta_c
        self._pump_capacity_kw = design_load_kw / self._capacity_fraction(_DESIGN_DEMAND_PCT, (1.0, 1.0, 1.0))
        self._full_capacity_kw = self._pump_capacity_kw * self._capacity_fraction(100.0, (1.0, 1.0, 1.0))
        # SIMC tuning of the PI on the first-order-plus-dead-time model (closed-loop tau = dead time).
        water_kw_per_c = _WATER_KWH_PER_M3_K * settings.flow_m3h
        gain_c_per_pct = self._pump_capacity_kw * (_LEAD_SLOPE + 2 * _LAG_SLOPE) / 100.0 / water_kw_per_c
        self._kc = _OUTLET_TAU_S / (gain_c_per_pct * 2 * _DEAD_TIME_S)
        self._ti_s = _OUTLET_TAU_S

        self._outlet_decay = 1.0 - math.exp(-self._h / _OUTLET_TAU_S)
        self._supply_ar = math.exp(-self._h / _SUPPLY_WANDER_TAU_S)
        self._supply_sd = _SUPPLY_WANDER_C * math.sqrt(1 - self._supply_ar**2)
        self._flow_ar = math.exp(-self._h / _FLOW_WANDER_TAU_S)
        self._flow_sd = _FLOW_WANDER_FRACTION * math.sqrt(1 - self._flow_ar**2)

        # Random streams: process + sensor noise of the chiller, one per fault, extra tags.
        self._rng = _generator(settings.seed, 0)
        self._noise_width = 3 * self._substeps + 4
        self._noise = np.empty((0, self._noise_width))
        self._noise_row = 0
        self._spikes = self._plan_spikes()

        # State at elapsed 0: steady at the setpoint for the load of the first step.
        self._k = 0
        self._supply_wander = 0.0
        self._flow_wander = 0.0
        self._outlet_c = self._setpoint
        self._demand_pct: float | None = None  # set on the first step, from its supply temperature
        self._integral_pct = 0.0
        dead_steps = max(0, round(_DEAD_TIME_S / self._h))
        self._delayed_speeds: deque[tuple[float, float, float]] = deque(maxlen=dead_steps + 1)
        self._last: dict[str, float] = {}
        self._capacity_lost: set[int] = set()  # setpoint_violation faults holding the chiller back

        self._extra_count = settings.extra_tags
        self._extra_names = extra_tag_names(settings.extra_tags)
        self._tag_names = CHILLER_TAGS + self._extra_names
        extra_rng = _generator(settings.seed, 1)
        n = settings.extra_tags
        self._extra_rng = extra_rng
        self._extra_base = extra_rng.uniform(10.0, 100.0, n)
        self._extra_amplitude = extra_rng.uniform(0.5, 5.0, n)
        self._extra_omega = 2 * math.pi / extra_rng.uniform(600.0, 7200.0, n)
        self._extra_phase = extra_rng.uniform(0.0, 2 * math.pi, n)
        self._extra_walk = np.zeros(n)
        self._extra_walk_ar = math.exp(-self._dt / 3600.0)
        self._extra_walk_sd = 0.3 * self._extra_amplitude * math.sqrt(1 - self._extra_walk_ar**2)
        self._extra_noise_sd = 0.02 * self._extra_amplitude * settings.noise_scale

    # -- public -------------------------------------------------------------------

    @property
    def faults(self) -> tuple[InjectedFault, ...]:
        return self._faults

    @property
    def tag_names(self) -> tuple[str, ...]:
        """Short chiller tag names, then the extra tags' full names: the order of :meth:`step_array`."""
        return self._tag_names

    @property
    def elapsed_s(self) -> float:
        """Simulated seconds since the start of the sample the next step returns."""
        return self._k * self._dt

    def step(self, ts: float) -> dict[str, float]:
        """The measured values at simulated time ``ts``, then advance one sample period.

        Chiller tags are keyed by short name (``chw_temp_c``), extra tags by their
        full name (``bench.t00042``).
        """
        return dict(zip(self._tag_names, self.step_array(ts).tolist(), strict=True))

    def step_array(self, ts: float) -> FloatArray:
        """Like :meth:`step`, as one array in :attr:`tag_names` order (no dict per tag)."""
        elapsed = self._k * self._dt
        noise = self._next_noise()
        if self._demand_pct is None:
            self._start_steady(ts)
        chiller = self._measure(ts, elapsed, noise)
        self._advance(ts, elapsed, noise)
        self._k += 1
        if not self._extra_count:
            return chiller
        return np.concatenate((chiller, self._extra_step(elapsed)))

    # -- physics ------------------------------------------------------------------

    @staticmethod
    def _speeds(demand_pct: float) -> tuple[float, float, float]:
        lead = min(100.0, _LEAD_BASE + _LEAD_SLOPE * demand_pct)
        lag = min(100.0, _LAG_BASE + _LAG_SLOPE * demand_pct)
        return lead, lag, lag

    @classmethod
    def _capacity_fraction(cls, demand_pct: float, efficiency: tuple[float, float, float]) -> float:
        s1, s2, s3 = cls._speeds(demand_pct)
        return (efficiency[0] * s1 + efficiency[1] * s2 + efficiency[2] * s3) / 100.0

    def _supply_c(self, ts: float) -> float:
        day_phase = 2 * math.pi * ((ts % _DAY_S) - _PEAK_LOAD_SECOND_OF_DAY) / _DAY_S
        return (
            self._settings.supply_temp_mean_c
            + self._settings.daily_load_amplitude_c * math.cos(day_phase)
            + self._supply_wander
        )

    def _flow_true(self) -> float:
        return self._flow_nominal * (1.0 + self._flow_wander)

    def _start_steady(self, ts: float) -> None:
        self._restart(self._supply_c(ts), (1.0, 1.0, 1.0))

    def _restart(self, supply_c: float, efficiency: tuple[float, float, float]) -> None:
        """(Re)start the chiller bumplessly: demand set to what the current load needs at setpoint.

        Used at the start and when a chiller that lost capacity is repaired and restarted;
        otherwise the controller, wound up at full demand, would slam the outlet far below setpoint.
        """
        load_kw = _WATER_KWH_PER_M3_K * self._flow_true() * (supply_c - self._setpoint)
        # Capacity is affine in demand below pump 1's saturation: solve capacity(u) = load.
        base = self._capacity_fraction(0.0, efficiency) * self._pump_capacity_kw
        slope = self._capacity_fraction(1.0, efficiency) * self._pump_capacity_kw - base
        demand = min(100.0, max(0.0, (load_kw - base) / slope))
        self._demand_pct = demand
        self._integral_pct = demand
        speeds = self._speeds(demand)
        self._delayed_speeds.extend([speeds] * (self._delayed_speeds.maxlen or 1))

    def _efficiency(self, elapsed: float) -> tuple[float, float, float]:
        eff = [1.0, 1.0, 1.0]
        for f in self._faults:
            if f.kind == "pump_degradation" and f.tag is not None and f.active(elapsed):
                eff[PUMP_TAGS.index(f.tag)] *= 1.0 - f.magnitude * f.level(elapsed)
        return eff[0], eff[1], eff[2]

    def _advance(self, ts: float, elapsed: float, noise: FloatArray) -> None:
        h = self._h
        row = noise.tolist()
        for j in range(self._substeps):
            t = ts + j * h
            e = elapsed + j * h
            supply = self._supply_c(t)
            water_kw_per_c = _WATER_KWH_PER_M3_K * self._flow_true()
            kc = self._kc
            limit_kw = math.inf
            for index, f in enumerate(self._faults):
                level = f.level(e)
                if level <= 0.0:
                    continue
                if f.kind == "control_oscillation":
                    kc *= 1.0 + (f.magnitude - 1.0) * level
                elif f.kind == "setpoint_violation":
                    # Capacity that just holds the outlet at setpoint + magnitude, relaxed by
                    # (1 - level) of full capacity so that it comes in smoothly.
                    held_kw = water_kw_per_c * (supply - self._setpoint - f.magnitude)
                    limit_kw = min(limit_kw, held_kw + (1.0 - level) * self._full_capacity_kw)
                    self._capacity_lost.add(index)
            for index in list(self._capacity_lost):
                if self._faults[index].level(e) <= 0.0:
                    # Repaired (the settle phase or after): restart, then let the loop settle.
                    self._capacity_lost.discard(index)
                    self._restart(supply, self._efficiency(e))

            # PI with conditional integration (anti-windup), from the control sensor.
            measured = self._outlet_c + _NOISE_CONTROL_C * self._noise_scale * row[3 * j + 2]
            error = measured - self._setpoint
            integral = self._integral_pct + kc * h / self._ti_s * error
            demand = kc * error + integral
            if not ((demand > 100.0 and error > 0) or (demand < 0.0 and error < 0)):
                self._integral_pct = min(100.0, max(0.0, integral))
            demand = min(100.0, max(0.0, kc * error + self._integral_pct))
            self._demand_pct = demand
            self._delayed_speeds.append(self._speeds(demand))

            s1, s2, s3 = self._delayed_speeds[0]
            e1, e2, e3 = self._efficiency(e)
            capacity_kw = (e1 * s1 + e2 * s2 + e3 * s3) / 100.0 * self._pump_capacity_kw
            capacity_kw = max(0.0, min(capacity_kw, limit_kw))
            target = supply - capacity_kw / water_kw_per_c
            self._outlet_c += (target - self._outlet_c) * self._outlet_decay

            self._supply_wander = self._supply_wander * self._supply_ar + self._supply_sd * row[3 * j]
            self._flow_wander = self._flow_wander * self._flow_ar + self._flow_sd * row[3 * j + 1]

    def _measure(self, ts: float, elapsed: float, noise: FloatArray) -> FloatArray:
        scale = self._noise_scale
        base = 3 * self._substeps
        flow = self._flow_true()
        supply = self._supply_c(ts)
        power = _WATER_KWH_PER_M3_K * flow * (supply - self._outlet_c)
        demand = self._demand_pct if self._demand_pct is not None else 0.0
        s1, s2, s3 = self._speeds(demand)
        values = {
            "flow_m3h": flow + _NOISE_FLOW_M3H * scale * float(noise[base]),
            "pump1_speed_pct": s1,
            "pump2_speed_pct": s2,
            "pump3_speed_pct": s3,
            "supply_temp_c": supply + _NOISE_SUPPLY_C * scale * float(noise[base + 1]),
            "chw_temp_c": self._outlet_c + _NOISE_CHW_C * scale * float(noise[base + 2]),
            "power_kw": power * (1.0 + _NOISE_POWER_FRACTION * scale * float(noise[base + 3])),
        }
        for index, f in enumerate(self._faults):
            if not f.active(elapsed):
                continue
            if f.kind == "fouling":
                values["power_kw"] *= 1.0 - f.magnitude * f.level(elapsed)
            elif f.kind == "sensor_drift" and f.tag is not None:
                values[f.tag] += f.magnitude * (elapsed - f.onset_s) / f.duration_s
            elif f.kind == "spike" and f.tag is not None:
                values[f.tag] += self._spikes.get((index, self._k), 0.0)
        # Stuck last: a frozen transmitter repeats what it last sent, whatever else happens.
        for f in self._faults:
            if f.kind == "stuck_sensor" and f.tag is not None and f.active(elapsed) and f.tag in self._last:
                values[f.tag] = self._last[f.tag]
        self._last = values
        return np.fromiter((values[name] for name in CHILLER_TAGS), dtype=np.float64, count=len(CHILLER_TAGS))

    def _plan_spikes(self) -> dict[tuple[int, int], float]:
        """(fault, step) → spike height: a few spikes of 1 or 2 samples spread over each spike fault."""
        plan: dict[tuple[int, int], float] = {}
        for index, f in enumerate(self._faults):
            if f.kind != "spike":
                continue
            rng = _generator(self._settings.seed, 100 + index)
            first = math.ceil(f.onset_s / self._dt - 1e-9)
            last = math.ceil(f.end_s / self._dt - 1e-9) - 1  # last step inside [onset, end)
            steps = last - first + 1
            if steps <= 0:
                continue
            count = max(1, min(5, steps // 30))
            segment = steps / count
            for s in range(count):
                at = first + int(s * segment + rng.uniform(0.1, 0.9) * segment)
                sign = 1.0 if rng.uniform() < 0.7 else -1.0
                height = sign * f.magnitude * rng.uniform(0.8, 1.2)
                for k in range(at, min(last, at + int(rng.integers(1, 3)) - 1) + 1):
                    plan[(index, k)] = height
        return plan

    def _next_noise(self) -> FloatArray:
        if self._noise_row >= len(self._noise):
            # Blocks of draws amortise numpy's per-call cost; the stream is the same either way.
            self._noise = self._rng.standard_normal((_NOISE_BLOCK_STEPS, self._noise_width))
            self._noise_row = 0
        row: FloatArray = self._noise[self._noise_row]
        self._noise_row += 1
        return row

    def _extra_step(self, elapsed: float) -> FloatArray:
        """All extra tags in a few vectorised operations: mean-reverting walk + sine + noise."""
        n = self._extra_count
        rng = self._extra_rng
        self._extra_walk *= self._extra_walk_ar
        self._extra_walk += self._extra_walk_sd * rng.standard_normal(n)
        values: FloatArray = self._extra_base + self._extra_walk
        values += self._extra_amplitude * np.sin(self._extra_omega * elapsed + self._extra_phase)
        values += self._extra_noise_sd * rng.standard_normal(n)
        return values
