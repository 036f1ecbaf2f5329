"""The simulated chiller with injected faults, through the daemon's stages: detected, how late, how noisy.

Each run is one :class:`~sentinelle.sim.chiller.ChillerModel` with one seed
(benchmark seeds only, ≥ 1000: :func:`~.heldout.benchmark_seeds`) and at most one
fault, stepped without OPC-UA as fast as numpy allows, then replayed slot by slot
through Windows → ForecastBatcher → DetectStage exactly as :mod:`.replay` does
for SKAB.  The first :data:`WARMUP_S` seconds warm the detectors up as the
daemon's start-up backfill does (they learn, their alerts are dropped); the rest
is scored by :mod:`.detection` against the simulator's own ground truth (the
records ``ground_truth.jsonl`` holds).

The plan (:func:`chiller_plan`): every fault kind ``runs_per_kind`` times, each on
a fresh seed, its onset drawn in a 5-minute span after 5 minutes of scored
normal operation, the sensor faults rotating over tags; then fault-free runs.
Runs start at different hours of the day (``seed mod 24``), so the load cycle
differs between runs.

The tags are the simulator's (:func:`~sentinelle.sim.server.chiller_tags`):
min spreads at the transmitters' resolution and, when a configuration includes
rules, the chilled-water limits 5 ± 0.2 °C the demo uses.

>>> plan = chiller_plan(runs_per_kind=1, fault_free_runs=1, fault_free_s=600.0, kinds=("spike",))
>>> [(r.name, r.seed, r.faults[0].kind if r.faults else None) for r in plan]
[('spike-0', 1000, 'spike'), ('fault-free-0', 1001, None)]
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

import numpy as np

from ..forecast.base import Forecaster
from ..forecast.batcher import Estimator
from ..records import AlertEvent
from ..settings import (
    AssetDetectSettings,
    DetectSettings,
    FaultKind,
    FaultSettings,
    Settings,
    SimulatorSettings,
    TagSettings,
)
from ..sim.chiller import PUMP_TAGS, ChillerModel
from ..sim.server import chiller_asset_rules, chiller_tags
from .detection import (
    AlarmKpis,
    AlertRate,
    FaultInterval,
    KindSummary,
    RunScore,
    alarm_kpis,
    alert_rate,
    alert_spans,
    by_kind,
    false_alarms_per_day,
    peak_per_window,
    score_run,
)
from .heldout import benchmark_seeds
from .replay import Recording, Trace, replay

FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
ASSET = "chiller1"
START_TS = 1_767_225_600.0
"""2026-01-01T00:00Z; run ``seed`` starts ``seed mod 24`` hours later."""
WARMUP_S = 900.0
"""Warm-up (not scored): past the residual detectors' and the asset model's warm-up, and 512 s of context."""
LEAD_S = 300.0
"""Scored normal operation before the earliest onset."""
ONSET_JITTER_S = 300.0
AFTER_S = 900.0
"""Scored time after a fault ends: the plant's recovery, and false alarms after it."""
TOLERANCE_S = 300.0
"""An alert opened up to this long after a fault's end is not a false alarm (recovery transients), nor a detection."""

FAULT_DURATION_S: dict[str, float] = {
    "pump_degradation": 1200.0,  # 5 min ramp in, 5 min ramp out
    "sensor_drift": 900.0,
    "stuck_sensor": 600.0,
    "spike": 600.0,
    "setpoint_violation": 900.0,  # 2 min ramp in, 5 min settle
    "fouling": 1200.0,  # 10 min ramp in
    "control_oscillation": 900.0,
}
FAULT_TAGS: dict[str, tuple[str, ...]] = {
    "pump_degradation": PUMP_TAGS,
    "sensor_drift": ("chw_temp_c", "supply_temp_c", "flow_m3h"),
    "stuck_sensor": ("supply_temp_c", "chw_temp_c", "power_kw"),
    "spike": ("power_kw", "flow_m3h", "chw_temp_c"),
}
"""Tags the sensor and pump faults rotate over (run ``r`` takes the ``r``-th); magnitudes: the simulator's typical."""
RULE_FIELDS = (
    "low_limit",
    "high_limit",
    "rate_limit_per_s",
    "rate_window_s",
    "stuck_check",
    "stuck_after_s",
    "spike_factor",
)
"""Tag settings that are rules or data-quality checks: dropped from configurations without rules."""


@dataclass(frozen=True, slots=True)
class ChillerRun:
    name: str
    seed: int
    faults: tuple[FaultSettings, ...]
    duration_s: float


def chiller_plan(
    runs_per_kind: int = 3,
    fault_free_runs: int = 3,
    fault_free_s: float = 3600.0,
    kinds: Sequence[str] = FAULT_KINDS,
    first_seed: int | None = None,
) -> list[ChillerRun]:
    """Fault runs (each kind ``runs_per_kind`` times, round-robin over kinds), then fault-free runs.

    Seeds are the benchmark's (:func:`~.heldout.benchmark_seeds`) unless ``first_seed`` is given:
    settings are chosen on runs from seeds below 1000 (``bench/chiller/tune_relation.py``),
    never on the benchmark's.
    """
    count = runs_per_kind * len(kinds) + fault_free_runs
    seeds = iter(benchmark_seeds(count) if first_seed is None else range(first_seed, first_seed + count))
    runs = []
    for r in range(runs_per_kind):
        for kind in kinds:
            seed = next(seeds)
            jitter = float(np.random.default_rng(seed).uniform(0.0, ONSET_JITTER_S))
            onset = WARMUP_S + LEAD_S + round(jitter)
            duration = FAULT_DURATION_S[kind]
            tags = FAULT_TAGS.get(kind)
            fault = FaultSettings.model_validate(
                {"kind": kind, "onset_s": onset, "duration_s": duration, "tag": tags[r % len(tags)] if tags else None}
            )
            runs.append(ChillerRun(f"{kind}-{r}", seed, (fault,), onset + duration + AFTER_S))
    for r in range(fault_free_runs):
        runs.append(ChillerRun(f"fault-free-{r}", next(seeds), (), WARMUP_S + fault_free_s))
    return runs


def asset_rules(sample_period_s: float = 1.0) -> tuple[AssetDetectSettings, ...]:
    """The simulated chiller's asset rules (energy balance, operating modes), as the daemon's config sets them."""
    return (chiller_asset_rules(SimulatorSettings(asset=ASSET, sample_period_s=sample_period_s)),)


def simulate(run: ChillerRun, sample_period_s: float = 1.0) -> tuple[Recording, list[FaultInterval]]:
    """Step the plant for the run's duration; its recording (tags with limits) and its ground truth."""
    start = START_TS + 3600.0 * (run.seed % 24)
    sim = SimulatorSettings(
        seed=run.seed, faults=run.faults, start_ts=start, asset=ASSET, sample_period_s=sample_period_s
    )
    model = ChillerModel(sim)
    n = int(run.duration_s / sample_period_s)
    timestamps = start + sample_period_s * np.arange(n, dtype=np.float64)
    values = np.stack([model.step_array(float(t)) for t in timestamps])
    tags = chiller_tags(sim)
    rec = Recording(
        name=run.name,
        asset=ASSET,
        tags=tuple(t.name for t in tags),
        units=tuple(t.unit for t in tags),
        timestamps=timestamps,
        values=values,
        present=np.ones(n, dtype=bool),
        train_rows=int(WARMUP_S / sample_period_s),
        period_s=sample_period_s,
        tag_config=tags,
    )
    return rec, ground_truth(model, start)


def ground_truth(model: ChillerModel, sim_start: float, asset: str = ASSET) -> list[FaultInterval]:
    """The faults as the simulator's ``ground_truth.jsonl`` states them (full tag names, epoch seconds)."""
    return [
        FaultInterval(
            f.kind, asset, tuple(f"{asset}.{s}" for s in f.affected), sim_start + f.onset_s, sim_start + f.end_s
        )
        for f in model.faults
    ]


def without_rules(tags: Sequence[TagSettings]) -> tuple[TagSettings, ...]:
    """The tags with their rules and data-quality checks (limits, rate, stuck, spike) removed."""
    return tuple(t.model_copy(update=dict.fromkeys(RULE_FIELDS)) for t in tags)


# -- configurations -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    """One detection configuration of the ablation."""

    label: str
    forecaster: str
    asset: bool
    rules: bool
    detect: dict[str, Any] = field(default_factory=dict)
    """Further DetectSettings overrides."""
    relations: bool = True
    """With rules: the asset's learned relations too (False: the rules without them, for the ablation)."""
    asset_model: bool = False
    """Each tag also estimated from the other tags now by the asset model (``forecast.asset_model_path``,
    scored by ``detectors/asset_estimate.py``)."""
    asset_mask_recent_steps: int = 0
    """The asset model's estimate blind to each tag's newest slots (``forecast.asset_mask_recent_steps``)."""
    asset_estimate_every_steps: int = 1
    """The asset model run on one slot in this many, its estimates standing between
    (``forecast.asset_estimate_every_steps``)."""
    asset_context_stride_steps: int = 1
    """The masked estimate's coarse reference: means of this many slots (``forecast.asset_context_stride_steps``)."""
    asset_mask_groups: tuple[tuple[str, ...], ...] = ()
    """Tags whose current values the estimate hides together (``forecast.asset_mask_groups``; needs the mask)."""
    refresh_every_steps: int = 1
    """The forecaster's forecasts made on one slot in this many (``forecast.refresh_every_steps``; a model row's
    cost divided by it)."""

    def detect_settings(self) -> DetectSettings:
        """The daemon's detect defaults with this configuration's switches (and the asset rules with rules)."""
        assets = asset_rules() if self.rules else ()
        if not self.relations:
            assets = tuple(a.model_copy(update={"relations": ()}) for a in assets)
        return DetectSettings(asset_enabled=self.asset, assets=assets, **self.detect)


def ablation_configs(forecasters: Sequence[str] = ("holt",)) -> list[Config]:
    """Per forecaster: per-tag + rules (the daemon as configured: the asset-level detector is off by default),
    the same without the learned relation, + asset-level too, per-tag + asset-level without rules, per-tag only."""
    out = []
    for f in forecasters:
        out += [
            Config(f"{f}: per-tag + rules", f, asset=False, rules=True),
            Config(f"{f}: per-tag + rules, no relation", f, asset=False, rules=True, relations=False),
            Config(f"{f}: per-tag + asset + rules", f, asset=True, rules=True),
            Config(f"{f}: per-tag + asset", f, asset=True, rules=False),
            Config(f"{f}: per-tag only", f, asset=False, rules=False),
        ]
    return out


# -- evaluation -----------------------------------------------------------------------


@dataclass(slots=True)
class RunResult:
    run: str
    score: RunScore
    fault_free: bool


@dataclass(slots=True)
class ChillerResult:
    label: str
    forecaster: str
    runs: list[RunResult]
    kinds: dict[str, KindSummary]
    false_alarms_per_day: float
    false_alarms: int
    exposure_h: float
    rate: AlertRate
    rate_fault_free: AlertRate
    seconds: float
    traces: dict[str, Trace] = field(default_factory=dict)
    kpis: AlarmKpis | None = None
    """Alarm-system KPIs (ISA-18.2 / EEMUA 191) over every run's scored events."""
    rate_fault_runs: AlertRate | None = None
    """Openings per 10 minutes over the fault runs only (issue 13's "over fault runs")."""

    @property
    def kinds_detected(self) -> int:
        return sum(1 for k in self.kinds.values() if k.detected > 0)

    def delays(self) -> list[float]:
        return [d for k in self.kinds.values() for d in k.delays_s]

    def peak_run(self) -> str:
        """The run with the most alerts opened in a 10-minute window."""
        best = max(self.runs, key=lambda r: peak_per_window(r.score.openings), default=None)
        return best.run if best is not None else ""

    def opened_by_kind(self, run: str) -> str:
        """The alerts a run opened, counted per kind (most first)."""
        for r in self.runs:
            if r.run == run:
                return ", ".join(f"{k} {n}" for k, n in Counter(r.score.opened_kinds).most_common())
        return ""

    def false_alarms_by(self) -> list[tuple[str, int]]:
        """False alarms counted per (alert kind, tag), most frequent first."""
        counts: dict[str, int] = {}
        for r in self.runs:
            for span in r.score.false_alarm_spans:
                key = f"{span.kind} on {span.tag.split('.', 1)[-1]}"
                counts[key] = counts.get(key, 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def summary(self) -> dict[str, Any]:
        d = np.asarray(self.delays(), dtype=np.float64)
        faults = sum(k.faults for k in self.kinds.values())
        detected = sum(k.detected for k in self.kinds.values())
        return {
            "label": self.label,
            "forecaster": self.forecaster,
            "runs": len(self.runs),
            "faults": faults,
            "faults_detected": detected,
            "kinds_detected": self.kinds_detected,
            "kinds": len(self.kinds),
            "delay_s_median": round(float(np.median(d)), 1) if d.size else None,
            "per_kind": [k.summary() for k in self.kinds.values()],
            "false_alarms_per_day": round(self.false_alarms_per_day, 2),
            "false_alarms": self.false_alarms,
            "false_alarm_exposure_h": round(self.exposure_h, 2),
            "false_alarms_by_alert": dict(self.false_alarms_by()),
            "alert_rate": {**self.rate.summary(), "peak_run": self.peak_run()},
            "alert_rate_fault_free_runs": self.rate_fault_free.summary(),
            "alert_rate_fault_runs": self.rate_fault_runs.summary() if self.rate_fault_runs is not None else None,
            "alarm_kpis": self.kpis.summary() if self.kpis is not None else None,
            "wall_seconds": round(self.seconds, 1),
            "per_run": [
                {
                    "run": r.run,
                    "faults": [
                        {
                            "kind": f.fault.kind,
                            "tags": list(f.fault.tags),
                            "detected": f.detected,
                            "delay_s": None if math.isnan(f.delay_s) else round(f.delay_s, 1),
                            "first_alert": None
                            if f.first_alert is None
                            else f"{f.first_alert.kind} on {f.first_alert.tag}",
                        }
                        for f in r.score.faults
                    ],
                    "false_alarms": r.score.false_alarms,
                    "false_alarm_alerts": [f"{s.kind} on {s.tag}" for s in r.score.false_alarm_spans],
                    "alerts_opened": len(r.score.openings),
                    "alerts_opened_by_kind": dict(Counter(r.score.opened_kinds).most_common()),
                }
                for r in self.runs
            ],
        }


@dataclass(slots=True)
class RunOutcome:
    """One run replayed under one configuration: its score, its scored events and, on request, its trace."""

    result: RunResult
    events: list[AlertEvent]
    scored_from: float
    scored_to: float
    seconds: float
    forecaster: str
    trace: Trace | None = None


def evaluate_run(
    rec: Recording,
    truth: list[FaultInterval],
    settings: Settings,
    config: Config,
    forecaster: Forecaster | None = None,
    estimator: Estimator | None = None,
    keep_trace: bool = False,
) -> RunOutcome:
    """Replay one run under ``config`` and score its alerts (``estimator`` used when ``config.asset_model``)."""
    started = time.perf_counter()
    if not config.rules:
        rec = _with_tags(rec, without_rules(rec.tag_settings()))
    # The windows keep the coarse contexts; the estimate's detectors know the masked groups' tags.
    if config.asset_model and (config.asset_context_stride_steps > 1 or config.asset_mask_groups):
        fc = settings.forecast.model_copy(
            update={
                "asset_context_stride_steps": config.asset_context_stride_steps,
                "asset_mask_recent_steps": config.asset_mask_recent_steps,
                "asset_mask_groups": [list(g) for g in config.asset_mask_groups],
            }
        )
        settings = settings.model_copy(update={"forecast": fc})
    trace = replay(rec, settings, forecaster, estimator if config.asset_model else None)
    scored_from = float(rec.timestamps[rec.test_start])
    scored_to = float(rec.timestamps[-1]) + rec.period_s
    score = score_run(truth, alert_spans(trace.events), scored_from, scored_to, TOLERANCE_S)
    return RunOutcome(
        RunResult(rec.name, score, not truth),
        trace.events,
        scored_from,
        scored_to,
        time.perf_counter() - started,
        trace.forecaster,
        trace if keep_trace else None,
    )


def summarise(config: Config, outcomes: Sequence[RunOutcome]) -> ChillerResult:
    """The configuration's result over the runs of ``outcomes`` (detection, false alarms, alert rates, KPIs)."""
    results = [o.result for o in outcomes]
    fa, count, exposure_h = false_alarms_per_day(r.score for r in results)
    return ChillerResult(
        label=config.label,
        forecaster=outcomes[-1].forecaster if outcomes else config.forecaster,
        runs=results,
        kinds=by_kind(r.score for r in results),
        false_alarms_per_day=fa,
        false_alarms=count,
        exposure_h=exposure_h,
        rate=alert_rate([(r.score.openings, r.score.scored_s) for r in results]),
        rate_fault_free=alert_rate([(r.score.openings, r.score.scored_s) for r in results if r.fault_free]),
        rate_fault_runs=alert_rate([(r.score.openings, r.score.scored_s) for r in results if not r.fault_free]),
        seconds=sum(o.seconds for o in outcomes),
        traces={o.result.run: o.trace for o in outcomes if o.trace is not None},
        kpis=alarm_kpis([(o.events, o.scored_from, o.scored_to) for o in outcomes]),
    )


def evaluate_chiller(
    runs: Sequence[tuple[Recording, list[FaultInterval]]],
    settings: Settings,
    config: Config,
    forecaster: Forecaster | None = None,
    keep_traces: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
    estimator: Estimator | None = None,
) -> ChillerResult:
    """Replay every run under ``config`` and score its alerts; traces of ``keep_traces`` runs are kept for plots.

    ``estimator``: the asset model's estimates of now (used when ``config.asset_model``).
    """
    outcomes = []
    for rec, truth in runs:
        outcomes.append(evaluate_run(rec, truth, settings, config, forecaster, estimator, rec.name in keep_traces))
        if progress is not None:
            progress(rec.name)
    return summarise(config, outcomes)


def _with_tags(rec: Recording, tags: tuple[TagSettings, ...]) -> Recording:
    import dataclasses

    return dataclasses.replace(rec, tag_config=tags)
