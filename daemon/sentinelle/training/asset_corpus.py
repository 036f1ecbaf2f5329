"""Pretraining corpus of the asset model: coupled systems, each a group of tags that physics ties together.

numpy only.  A seeded bank of systems is generated at start (each ``(T, G)``
with a mask of rows a target may come from); :meth:`AssetCorpus.sample` crops
windows of ``context + horizon`` rows, picks and shuffles tags, hides some
(absent tags, G = 1 included, so the univariate use stays trained) and punches
gaps into contexts.  Sources:

``chilled_water``
    A chilled-water loop: a load cycle (daily-like period, steps, AR noise); a PI
    loop on the pump speed (actuator limits 20–100 %) holding the ΔT; pump
    affinity laws (flow ∝ speed, head ∝ speed², shaft power ∝ speed³); the
    return temperature through a first-order lag; the energy balance
    ``cooling_kw = 1.163 · flow_m3h · ΔT``; electrical power by a nonlinear COP map.
``pi_loop``
    A first-order process with dead time under PI control with output limits
    (saturation and wind-up guard), setpoint steps, a measured disturbance, and a
    nonlinear static map of the measurement (a second transmitter).
``mixing``
    Mass and energy balance of two streams into a tank: ``flow_out = f1 + f2``
    lagged by the level, ``T_mix = (f1·T1 + f2·T2) / (f1 + f2)``, the level
    integrating in − out.
``static_network``
    One to three latent drivers (AR(1), cycles, steps); each tag a random
    nonlinear static map (tanh, square, exp) of a lagged mix of them.
``chiller``
    The plant simulator (:mod:`sentinelle.sim.chiller`) with seeds below
    :data:`~sentinelle.evaluation.heldout.BENCHMARK_SEED_START` and, in some
    runs, an injected fault: its interval (plus the settling time) is excluded
    from targets, so the model learns the healthy couplings, not the faults.

Every source then gets sensor noise and quantisation per tag (``clean=False``).
The couplings hold exactly on ``clean`` output (``tests/unit/test_asset_corpus.py``).

>>> corpus = AssetCorpus.build(seed=0, systems_per_source=2, length=600, chiller_runs=0)
>>> batch = corpus.sample(4, context=128, horizon=16, rng=np.random.default_rng(0))
>>> batch.context.shape[0], batch.context.shape[2], batch.future.shape[2], batch.tag_mask.any(axis=1).all()
(4, 128, 16, np.True_)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..evaluation.heldout import is_benchmark_seed, pretraining_seed
from ..records import FloatArray
from ..settings import FaultKind, FaultSettings, SimulatorSettings
from ..sim.chiller import CHILLER_TAGS, ChillerModel

BoolArray = npt.NDArray[np.bool_]
WATER_KWH_PER_M3K = 1.163
"""Heat carried by water: kWh per m³ and kelvin (so m³/h × K × 1.163 = kW)."""


@dataclass(frozen=True, slots=True)
class System:
    """One generated system: rows in time order, tag names, and where targets may come from."""

    source: str
    tags: tuple[str, ...]
    values: FloatArray
    """(T, G) in the tags' units."""
    target_ok: BoolArray
    """(T,) False where a target must not come from (an injected fault and its settling)."""


@dataclass(frozen=True, slots=True)
class AssetBatch:
    """Training windows of groups of tags (absent tags padded, ``tag_mask`` False)."""

    context: FloatArray
    """(B, G, L), NaN for gaps and for absent tags."""
    future: FloatArray
    """(B, G, H), step 0 being "now"; NaN where not a target."""
    tag_mask: BoolArray
    """(B, G)."""


# -- helpers ------------------------------------------------------------------------


def _lag(x: FloatArray, tau: float) -> FloatArray:
    """First-order lag with time constant ``tau`` steps (0: none)."""
    if tau <= 0:
        return x.copy()
    a = 1.0 / (1.0 + tau)
    out = np.empty_like(x)
    out[0] = x[0]
    for t in range(1, len(x)):
        out[t] = out[t - 1] + a * (x[t] - out[t - 1])
    return out


def _ar1(rng: np.random.Generator, n: int, phi: float, sigma: float) -> FloatArray:
    e = rng.normal(0, sigma, n)
    out = np.empty(n)
    out[0] = e[0] / max(np.sqrt(1 - phi * phi), 1e-3)
    for t in range(1, n):
        out[t] = phi * out[t - 1] + e[t]
    return out


def _load_cycle(rng: np.random.Generator, n: int) -> FloatArray:
    """A load in [0.2, 1]: a daily-like cycle, a few steps, slow AR noise."""
    period = rng.uniform(150, 1500)
    t = np.arange(n)
    cycle = 0.5 + 0.3 * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    cycle += 0.08 * np.sin(4 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    steps = np.zeros(n)
    for _ in range(int(rng.integers(0, 4))):
        steps[int(rng.integers(0, n)) :] += rng.normal(0, 0.12)
    return np.asarray(np.clip(cycle + steps + _ar1(rng, n, 0.99, 0.01), 0.2, 1.0), dtype=np.float64)


def _pi(
    rng: np.random.Generator,
    setpoint: FloatArray,
    plant: Callable[[float, int], float],
    kp: float,
    ti: float,
    lo: float,
    hi: float,
    reverse: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """A PI loop with output limits and conditional integration (no wind-up): (measurement, output)."""
    n = len(setpoint)
    pv, out = np.empty(n), np.empty(n)
    integral = 0.5 * (lo + hi)
    y = plant(integral, 0)
    sign = -1.0 if reverse else 1.0
    for t in range(n):
        err = sign * (setpoint[t] - y)
        u = kp * err + integral
        clipped = min(max(u, lo), hi)
        if clipped == u:  # integrate only when not saturated
            integral += kp * err / ti
        pv[t], out[t] = y, clipped
        y = plant(clipped, t)
    return pv, out


# -- sources ------------------------------------------------------------------------


def chilled_water(rng: np.random.Generator, n: int) -> tuple[tuple[str, ...], FloatArray]:
    """A chilled-water loop (see the module docstring); clean values."""
    load = _load_cycle(rng, n)
    design_flow = rng.uniform(20, 300)  # m³/h at 100 % speed
    design_dt = rng.uniform(4, 8)  # K at full load and full flow
    supply = np.full(n, rng.uniform(5, 9))
    for _ in range(int(rng.integers(0, 2))):
        supply[int(rng.integers(0, n)) :] += rng.choice([-1.0, 1.0])
    heat_kw = load * WATER_KWH_PER_M3K * design_flow * design_dt  # the building's demand
    dt_setpoint = np.full(n, design_dt * rng.uniform(0.8, 1.0))
    tau_flow = rng.uniform(1, 10)
    flow_state = [0.6 * design_flow]

    def plant(speed_pct: float, t: int) -> float:
        target = design_flow * speed_pct / 100.0  # affinity: flow ∝ speed
        flow_state[0] += (target - flow_state[0]) / (1.0 + tau_flow)
        return float(heat_kw[t] / (WATER_KWH_PER_M3K * max(flow_state[0], 1e-3)))  # ΔT the flow gives

    _dt_measured, speed = _pi(
        rng, dt_setpoint, plant, kp=rng.uniform(2, 8), ti=rng.uniform(20, 80), lo=20, hi=100, reverse=True
    )
    flow = _lag(design_flow * speed / 100.0, tau_flow)
    # The returned water reaches the sensor through the pipe: a lag on ΔT, then the balance on that.
    delta = _lag(heat_kw / (WATER_KWH_PER_M3K * flow), rng.uniform(0, 20))
    ret = supply + delta
    cooling = WATER_KWH_PER_M3K * flow * (ret - supply)
    head = rng.uniform(15, 40) * (speed / 100.0) ** 2  # m
    pump_kw = rng.uniform(5, 40) * (speed / 100.0) ** 3
    cop = rng.uniform(4, 6) * (1 + 0.03 * (supply - 7)) / (1 + 0.4 * (load - 0.6) ** 2)
    elec = cooling / cop
    tags = ("speed_pct", "flow_m3h", "head_m", "pump_kw", "supply_c", "return_c", "cooling_kw", "elec_kw")
    return tags, np.stack([speed, flow, head, pump_kw, supply, ret, cooling, elec], axis=1)


def pi_loop(rng: np.random.Generator, n: int) -> tuple[tuple[str, ...], FloatArray]:
    """A PI-controlled first-order process with dead time and a measured disturbance; clean values."""
    gain, tau, dead = rng.uniform(0.5, 3), rng.uniform(5, 60), int(rng.integers(0, 10))
    sp = np.full(n, rng.uniform(20, 80))
    for _ in range(int(rng.integers(1, 5))):
        sp[int(rng.integers(0, n)) :] += rng.normal(0, 8)
    dist = _ar1(rng, n, 0.995, 0.3) + 5 * _load_cycle(rng, n)
    outputs = [50.0] * (dead + 1)
    state = [gain * 50.0]

    def plant(u: float, t: int) -> float:
        outputs.append(u)
        delayed = outputs[-1 - dead]
        state[0] += (gain * delayed - dist[t] - state[0]) / tau
        return state[0]

    pv, out = _pi(rng, sp, plant, kp=rng.uniform(0.3, 2) / gain, ti=rng.uniform(0.5, 2) * tau, lo=0, hi=100)
    a, b = rng.uniform(0.02, 0.06), rng.uniform(50, 150)
    second = b * np.tanh(a * (pv - sp.mean())) + rng.uniform(-20, 20)  # a nonlinear second transmitter
    return ("setpoint", "measurement", "output_pct", "disturbance", "measurement_b"), np.stack(
        [sp, pv, out, dist, second], axis=1
    )


def mixing(rng: np.random.Generator, n: int) -> tuple[tuple[str, ...], FloatArray]:
    """Two streams into a tank: mass and energy balances; clean values."""
    f1 = np.clip(rng.uniform(5, 50) * _load_cycle(rng, n), 0.5, None)
    f2 = np.clip(rng.uniform(5, 50) * (0.6 + _ar1(rng, n, 0.99, 0.02)), 0.5, None)
    t1 = rng.uniform(10, 40) + _ar1(rng, n, 0.995, 0.05)
    t2 = rng.uniform(40, 90) + _ar1(rng, n, 0.995, 0.05)
    inflow = f1 + f2
    mix = (f1 * t1 + f2 * t2) / inflow
    area = rng.uniform(2, 20)
    k = inflow.mean() / np.sqrt(rng.uniform(1, 3))
    level = np.empty(n)
    out = np.empty(n)
    h = (inflow[0] / k) ** 2
    for t in range(n):
        q = k * np.sqrt(max(h, 0.0))  # outflow through a valve: ∝ √level
        level[t], out[t] = h, q
        h += (inflow[t] - q) / (area * 60.0)
    return ("flow_1", "flow_2", "temp_1", "temp_2", "temp_mix", "level_m", "flow_out"), np.stack(
        [f1, f2, t1, t2, mix, level, out], axis=1
    )


def static_network(rng: np.random.Generator, n: int) -> tuple[tuple[str, ...], FloatArray]:
    """Tags as nonlinear static maps of lagged mixes of 1..3 latent drivers; clean values."""
    drivers = [_ar1(rng, n, rng.uniform(0.95, 0.999), 0.1)]
    drivers.append(np.sin(2 * np.pi * np.arange(n) / rng.uniform(50, 800)) + _ar1(rng, n, 0.9, 0.05))
    drivers.append(np.cumsum(rng.random(n) < 0.003) % 3 + _ar1(rng, n, 0.9, 0.02))
    d = np.stack(drivers[: int(rng.integers(1, 4))], axis=1)
    d = (d - d.mean(0)) / (d.std(0) + 1e-9)
    g = int(rng.integers(3, 8))
    cols = []
    maps = (np.tanh, np.square, lambda v: np.exp(0.5 * v), lambda v: v)
    for _ in range(g):
        mixed = d @ rng.normal(0, 1, d.shape[1])
        lag = int(rng.integers(0, 20))
        mixed = np.concatenate([np.full(lag, mixed[0]), mixed[: n - lag]])
        f = maps[int(rng.integers(0, len(maps)))]
        cols.append(rng.uniform(0.5, 20) * f(mixed) + rng.normal(0, 50))
    return tuple(f"y{i}" for i in range(g)), np.stack(cols, axis=1)


SOURCES: dict[str, Callable[[np.random.Generator, int], tuple[tuple[str, ...], FloatArray]]] = {
    "chilled_water": chilled_water,
    "pi_loop": pi_loop,
    "mixing": mixing,
    "static_network": static_network,
}


def sensors(rng: np.random.Generator, values: FloatArray) -> FloatArray:
    """Transmitters: white noise (0.1–3 % of each tag's spread), quantisation to a resolution."""
    spread = values.std(axis=0) + 1e-6 * (np.abs(values).mean(axis=0) + 1.0)
    noise = spread * 10 ** rng.uniform(-3, -1.5, values.shape[1])
    out = values + rng.normal(0, 1, values.shape) * noise
    resolution = spread * 10 ** rng.uniform(-4, -1.5, values.shape[1])
    quantised = rng.random(values.shape[1]) < 0.5
    out[:, quantised] = np.round(out[:, quantised] / resolution[quantised]) * resolution[quantised]
    return np.asarray(out, dtype=np.float64)


_FAULTS: tuple[FaultKind, ...] = ("pump_degradation", "sensor_drift", "stuck_sensor", "fouling")
_SETTLE_S = 1800.0  # the plant's return to normal after a fault ends: no targets there either


def chiller_system(rng: np.random.Generator, n: int, fault_probability: float = 0.5) -> System:
    """One simulator run with a pretraining seed, at 1–10 s; fault interval + settling excluded from targets."""
    period = float(rng.choice([1.0, 2.0, 5.0, 10.0]))
    setpoint = rng.uniform(4.0, 9.0)
    delta = rng.uniform(3.0, 10.0)
    total = n * period
    faults: tuple[FaultSettings, ...] = ()
    if rng.random() < fault_probability:
        kind = _FAULTS[int(rng.integers(0, len(_FAULTS)))]
        faults = (
            FaultSettings(kind=kind, onset_s=rng.uniform(0.3, 0.7) * total, duration_s=rng.uniform(0.1, 0.2) * total),
        )
    seed = pretraining_seed(rng)
    if is_benchmark_seed(seed):  # pretraining_seed never gives one; the rule is checked where it is used
        raise AssertionError(f"benchmark seed {seed} drawn for training")
    settings = SimulatorSettings(
        seed=seed,
        sample_period_s=period,
        flow_m3h=float(rng.uniform(20, 300)),
        chw_setpoint_c=setpoint,
        supply_temp_mean_c=setpoint + delta,
        daily_load_amplitude_c=rng.uniform(0.0, 0.5) * delta,
        noise_scale=float(rng.uniform(0.3, 3.0)),
        start_ts=float(rng.uniform(1.58e9, 1.9e9)),
        faults=faults,
    )
    model = ChillerModel(settings)
    start = settings.start_ts or 0.0
    values = np.stack([model.step_array(start + k * period) for k in range(n)])
    elapsed = np.arange(n) * period
    ok = np.ones(n, dtype=bool)
    for f in model.faults:
        ok &= ~((elapsed >= f.onset_s) & (elapsed < f.end_s + _SETTLE_S))
    # Pump 3 mirrors pump 2: one copy (as the univariate corpus).
    keep = [i for i, t in enumerate(CHILLER_TAGS) if t != "pump3_speed_pct"]
    return System("chiller", tuple(CHILLER_TAGS[i] for i in keep), values[:, keep], ok)


@dataclass
class AssetCorpus:
    """A bank of systems to crop training groups from."""

    systems: list[System]

    @classmethod
    def build(
        cls, seed: int, systems_per_source: int = 50, length: int = 3000, chiller_runs: int = 8, clean: bool = False
    ) -> AssetCorpus:
        """Generate the bank: ``systems_per_source`` of each synthetic source, ``chiller_runs`` simulator runs."""
        rng = np.random.default_rng(seed)
        systems = []
        for name, make in SOURCES.items():
            for _ in range(systems_per_source):
                tags, values = make(rng, length)
                if not clean:
                    values = sensors(rng, values)
                systems.append(System(name, tags, values, np.ones(length, dtype=bool)))
        systems += [chiller_system(rng, length) for _ in range(chiller_runs)]
        return cls(systems)

    def sample(self, batch: int, context: int, horizon: int, rng: np.random.Generator, max_tags: int = 8) -> AssetBatch:
        """``batch`` groups: a random system, crop, tag subset and order, absent tags and context gaps."""
        width = context + horizon
        chosen = [self.systems[int(rng.integers(0, len(self.systems)))] for _ in range(batch)]
        g_max = min(max_tags, max(s.values.shape[1] for s in chosen))
        ctx = np.full((batch, g_max, context), np.nan)
        fut = np.full((batch, g_max, horizon), np.nan)
        mask = np.zeros((batch, g_max), dtype=bool)
        for b, s in enumerate(chosen):
            t_count, g = s.values.shape
            start = int(rng.integers(0, t_count - width + 1))
            order = rng.permutation(g)[: min(g, g_max)]
            # Sometimes one tag alone (the univariate use), sometimes a few, mostly all picked.
            keep = 1 if rng.random() < 0.1 else int(rng.integers(2, len(order) + 1))
            order = order[:keep]
            block = s.values[start : start + width, order].T  # (k, width)
            ctx[b, : len(order)] = block[:, :context]
            future = block[:, context:].copy()
            future[:, ~s.target_ok[start + context : start + width]] = np.nan
            fut[b, : len(order)] = future
            mask[b, : len(order)] = True
            if rng.random() < 0.3:  # a gap in one tag's context
                j = int(rng.integers(0, len(order)))
                a = int(rng.integers(0, context))
                ctx[b, j, a : a + int(rng.integers(1, context // 4))] = np.nan
            if rng.random() < 0.3:  # a shorter history
                ctx[b, :, : int(rng.integers(0, context // 2))] = np.nan
        return AssetBatch(ctx, fut, mask)
