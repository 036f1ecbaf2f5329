"""Deadband-compressed history (issue 17): do backfill and an adapter from a historian's export raise false alerts?

The plant is the simulator (``sim/chiller.py``) with benchmark seeds (≥ 1000, never seen
in pretraining; this report uses its own range, ``--seed``, default 1500) and the
daemon's tag configuration for it (``sim/server.chiller_tags``: limits, rate, spike and
stuck checks; the asset's energy balance and modes), one sample per ``PERIOD_S`` (60 s:
the minute exports of the issue; the shipped model then costs minutes, not hours, on
2 cores).

1. **History, days 1–7**, no fault, exported **the way a historian compresses**: each tag
   gets a deadband of ``DEADBAND_SIGMAS`` times its sensor noise (estimated from the 7
   days themselves: the median absolute step / (0.6745 √2)), and a value is written only
   once it moved more than that from the last value written.  Two exports of the same
   data: a French Excel-style wide CSV (BOM, ``;``, decimal commas, ``dd/mm/yyyy``
   Europe/Paris local time, an empty cell where the value did not move past the
   deadband) and the event log (``Date;Nom Paramètre;Valeurs;Nouvelle valeur``).  The
   daemon's config names them in ``[[history.sources]]`` with a tag map from the French
   names; nothing tells it the deadbands (it estimates them).
2. **Live, days 8–11**, uncompressed (an OPC-UA subscription's samples), fed through the
   daemon's own stages (``Windows`` → forecaster → ``DetectStage``) after its own
   start-up backfill (:func:`sentinelle.backfill.run_backfill`, ``history.backfill_from``
   / ``backfill_until`` = days 1–7).  Days 8 and 10 are fault-free; day 9 has four
   injected faults and day 11 three (every kind of the simulator, each at a fixed hour).
3. **Configurations**: (a) no backfill (cold start at day 8); (b) backfill, held slots
   taken for measurements (``detect.history_held = "off"``: the behaviour before this
   change); (c) backfill with ``"widen"`` (the default) and (c') ``"skip"``; the same (c)
   from the event log; the same with the asset-state detector on (``+asset``); and with the
   shipped model: (a), (b), (c), (d) backfill + an adapter fine-tuned on the exported days
   1–7 by ``sentinelle finetune --asset`` on the configured source (held points as interval
   targets, ``finetune.held_targets``, ``--held-targets``; ``--max-minutes`` of CPU), and (e)
   the adapter without backfill.  ``--band`` measures the base model's and adapters' one-step
   80 % band on the fault-free live days (width, coverage, pinball loss).  On 2 shared
   cores the model forecasts a rotating 1/R of the tags per tick (``--refresh``, the
   daemon's ``forecast.refresh_every_steps``).
4. **Scores** (``evaluation/detection.py``, as the chiller report): alerts opened on the
   fault-free days per day, alerts opened outside every fault (+ 300 s) over days 8–11,
   and per fault whether and how late an alert opened.  Nothing is tuned here: the
   settings are the daemon's defaults; the deadband rule is the export's, not ours.

    nice -n 10 .venv/bin/python bench/deadband_experiment.py --out docs/results/deadband/holt.json
    nice -n 10 .venv/bin/python bench/deadband_experiment.py --forecaster model --out docs/results/deadband/model.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import math
import sys
import tempfile
import time
import zoneinfo
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info
from sentinelle.backfill import run_backfill
from sentinelle.cli import main as sentinelle
from sentinelle.detect.detectors.relations import RelationDetector
from sentinelle.detect.stage import DetectStage
from sentinelle.evaluation.chiller_eval import FAULT_DURATION_S, TOLERANCE_S, asset_rules
from sentinelle.evaluation.detection import FaultInterval, alert_spans, score_run
from sentinelle.evaluation.heldout import is_benchmark_seed
from sentinelle.forecast import make_forecaster
from sentinelle.forecast.base import Forecaster
from sentinelle.forecast.batcher import ForecastPass, forecast_in_chunks
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent, FloatArray, ForecastBatch, Sample, WindowBatch
from sentinelle.settings import (
    CsvEventsSource,
    CsvWideSource,
    DetectSettings,
    FaultSettings,
    ForecastSettings,
    HistorySource,
    Settings,
    SimulatorSettings,
    TagSettings,
    load_settings,
)
from sentinelle.sim.chiller import CHILLER_TAGS, ChillerModel
from sentinelle.sim.server import chiller_tags
from sentinelle.windows import Windows

ROOT = Path(__file__).resolve().parents[1]
ASSET = "chiller1"
START = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
PERIOD_S = 60.0
HISTORY_DAYS = 7
LIVE_DAYS = 4
DAY_S = 86_400.0
DEADBAND_SIGMAS = 2.5
"""The export's deadband in sensor-noise sigmas: most minutes of a steady tag are held, as in the issue's export."""
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
FRENCH: dict[str, str] = {
    "flow_m3h": "Débit eau glacée (m3/h)",
    "pump1_speed_pct": "Vitesse pompe 1 (%)",
    "pump2_speed_pct": "Vitesse pompe 2 (%)",
    "pump3_speed_pct": "Vitesse pompe 3 (%)",
    "supply_temp_c": "Température retour (°C)",
    "chw_temp_c": "Température départ eau glacée (°C)",
    "power_kw": "Puissance frigorifique (kW)",
}
FAULTS: tuple[tuple[int, int, str, str | None], ...] = (
    (1, 3, "sensor_drift", "chw_temp_c"),
    (1, 9, "pump_degradation", None),
    (1, 15, "setpoint_violation", None),
    (1, 21, "spike", "power_kw"),
    (3, 3, "fouling", None),
    (3, 9, "stuck_sensor", "supply_temp_c"),
    (3, 15, "control_oscillation", None),
)
"""(live day, hour, kind, tag): live days 0 and 2 are fault-free."""
FAULT_FREE_DAYS = (0, 2)


@dataclasses.dataclass(frozen=True, slots=True)
class Plant:
    timestamps: FloatArray
    values: FloatArray
    """(steps, tags) in CHILLER_TAGS order."""
    truth: list[FaultInterval]
    deadbands: dict[str, float]
    """Short tag name → the export's deadband."""
    held_share: dict[str, float]
    """Short tag name → share of the exported rows whose cell is empty (wide CSV)."""


@dataclasses.dataclass(frozen=True, slots=True)
class RunConfig:
    label: str
    forecaster: str
    backfill: str | None
    """None: no backfill; else the source file's kind: wide or events."""
    held: str = "widen"
    adapter: bool = False
    asset: bool = False
    """The asset-state detector (T²/Q, off in the daemon's defaults) on too."""


@dataclasses.dataclass(frozen=True, slots=True)
class HandOver:
    """One end of a replay's hand-over (``detect.history_held_drop_after_steps`` / ``_drop_keeps_location``;
    ``relation_drop_after_steps``: ``detect.history_held_relation_drop_after_steps``; ``screen_reset``:
    ``detect.history_held_screen_reset``; None: the settings')."""

    drop_after_steps: float
    keeps_location: bool = False
    relation_drop_after_steps: float | None = None
    screen_reset: bool | None = None
    spike_skip: bool | None = None

    @property
    def label(self) -> str:
        relation = (
            "" if self.relation_drop_after_steps is None else f", relation drop {self.relation_drop_after_steps:g}"
        )
        screen = "" if self.screen_reset is None else f", screen reset {'on' if self.screen_reset else 'off'}"
        spike = "" if self.spike_skip is None else f", spike skip {'on' if self.spike_skip else 'off'}"
        return (
            f"drop {self.drop_after_steps:g}"
            + (", keep location" if self.keeps_location else "")
            + relation
            + screen
            + spike
        )

    @classmethod
    def parse(cls, text: str) -> HandOver:
        """``60``: drop after 60, all of it the live ticks'; ``60k``: keep the blended location; ``inf``;
        a suffix ``r60`` / ``rinf``: the relations' spread dropped after 60 / never (``60r60``, ``60kr60``);
        then ``s1`` / ``s0``: the data-quality screen reset at the replay's end on / off (``60r60s1``);
        then ``p1`` / ``p0``: ``detect.history_held_spike_skip`` on / off (``60r60p1``, ``60r60s0p1``)."""
        text, _, spike = text.partition("p")
        text, _, screen = text.partition("s")
        scale, _, relation = text.partition("r")
        keep = scale.endswith("k")
        return cls(
            float(scale.removesuffix("k")),
            keep,
            float(relation) if relation else None,
            bool(int(screen)) if screen else None,
            bool(int(spike)) if spike else None,
        )


class _Tee:
    """Several detect stages (hand-over variants) fed the same forecasts: one forecaster pass for all.

    Forecasts do not depend on what a detector learned, so each stage sees exactly what it would alone.
    The first stage's events are returned (the backfill counts them); live, each stage's events are kept,
    with its residual ticks at or above the threshold on the fault-free days (a finer count than alerts).
    """

    def __init__(self, stages: Sequence[DetectStage], free: Sequence[tuple[float, float]]) -> None:
        self.stages = list(stages)
        self.free = list(free)
        self.live = False
        self.events: list[list[AlertEvent]] = [[] for _ in stages]
        self.flagged_free = [0] * len(stages)
        self.relation_spreads: list[list[dict[str, float]]] = [[] for _ in stages]
        """Per stage, each relation's spread at each fault's onset (filled by ``_live``)."""

    @contextlib.contextmanager
    def replaying_history(self, deadbands: Mapping[str, float] | None = None) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for st in self.stages:
                stack.enter_context(st.replaying_history(deadbands))
            yield

    def process(self, fb: ForecastBatch) -> list[AlertEvent]:
        out: list[AlertEvent] = []
        on_free = any(a <= fb.window.ts < b for a, b in self.free)
        for i, st in enumerate(self.stages):
            events = st.process(fb)
            out = out if i else events
            if not self.live:
                continue
            self.events[i].extend(events)
            if on_free:
                sc = st._groups[fb.window.tags].scorer
                self.flagged_free[i] += int(np.count_nonzero(np.nan_to_num(sc.surprise) >= sc.threshold))
        return out


def simulate(seed: int, deadband_sigmas: float = DEADBAND_SIGMAS) -> Plant:
    """Days 1–11 of the plant, faults on live days 1 and 3 (see :data:`FAULTS`)."""
    live0 = HISTORY_DAYS * DAY_S
    faults = tuple(
        FaultSettings.model_validate(
            {"kind": kind, "onset_s": live0 + day * DAY_S + hour * 3600.0, "duration_s": FAULT_DURATION_S[kind]}
            | {"tag": tag}
        )
        for day, hour, kind, tag in FAULTS
    )
    sim = SimulatorSettings(seed=seed, asset=ASSET, sample_period_s=PERIOD_S, start_ts=START.timestamp(), faults=faults)
    model = ChillerModel(sim)
    n = int((HISTORY_DAYS + LIVE_DAYS) * DAY_S / PERIOD_S)
    ts = START.timestamp() + PERIOD_S * np.arange(n, dtype=np.float64)
    values = np.stack([model.step_array(float(t)) for t in ts.tolist()])
    truth = [
        FaultInterval(f.kind, ASSET, tuple(f"{ASSET}.{s}" for s in f.affected), START.timestamp() + f.onset_s,
                      START.timestamp() + f.end_s)
        for f in model.faults
    ]  # fmt: skip
    hist = values[: int(live0 / PERIOD_S)]
    deadbands = {}
    for j, tag in enumerate(CHILLER_TAGS):
        sigma = float(np.median(np.abs(np.diff(hist[:, j])))) / (0.6745 * math.sqrt(2.0))
        deadbands[tag] = float(f"{deadband_sigmas * sigma:.2g}")
    return Plant(ts, values, truth, deadbands, {})


def _fr(x: float) -> str:
    return f"{x:.6g}".replace(".", ",")


def _fr_date(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, PARIS).strftime("%d/%m/%Y %H:%M:%S")


def export(plant: Plant, folder: Path) -> tuple[Path, Path, dict[str, float]]:
    """Days 1–7 as the historian writes them: the wide French CSV and the event log, deadband-compressed."""
    n = int(HISTORY_DAYS * DAY_S / PERIOD_S)
    wide, events = folder / "export_wide.csv", folder / "export_events.csv"
    last = np.full(len(CHILLER_TAGS), np.nan)
    empty = np.zeros(len(CHILLER_TAGS), dtype=np.int64)
    db = np.array([plant.deadbands[t] for t in CHILLER_TAGS])
    with (
        open(wide, "w", encoding="utf-8-sig", newline="") as w,
        open(events, "w", encoding="utf-8-sig", newline="") as e,
    ):
        w.write("Date;" + ";".join(FRENCH[t] for t in CHILLER_TAGS) + "\r\n")
        e.write("Date;Nom Paramètre;Valeurs;Nouvelle valeur\r\n")
        for k in range(n):
            ts = float(plant.timestamps[k])
            when = _fr_date(ts)
            cells = []
            for j, tag in enumerate(CHILLER_TAGS):
                v = float(plant.values[k, j])
                if math.isfinite(last[j]) and abs(v - last[j]) <= db[j]:
                    cells.append("")
                    empty[j] += 1
                    continue
                cells.append(_fr(v))
                old = _fr(last[j]) if math.isfinite(last[j]) else ""
                e.write(f"{when};{FRENCH[tag]};{old};{_fr(v)}\r\n")
                last[j] = float(_fr(v).replace(",", "."))
            w.write(when + ";" + ";".join(cells) + "\r\n")
    return wide, events, {t: float(empty[j] / n) for j, t in enumerate(CHILLER_TAGS)}


def write_config(folder: Path, wide: Path, threads: int, held_targets: str | None = None) -> Path:
    """The daemon config a plant engineer writes: tags, the wide export as the history source, adapters."""
    tag_map = "{ " + ", ".join(f'"{FRENCH[t]}" = "{ASSET}.{t}"' for t in CHILLER_TAGS) + " }"
    held = "" if held_targets is None else f'held_targets = "{held_targets}"\n'
    lines = [
        f'[forecast]\nforecaster = "model"\nhorizon_steps = 16\nadapters_dir = "{folder / "adapters"}"\n',
        f"[finetune]\nthreads = {threads}\n{held}",
        f'[[history.sources]]\nkind = "csv_wide"\nname = "export"\npath = "{wide}"\ntimezone = "Europe/Paris"\n'
        f'date_column = "Date"\ntag_map = {tag_map}\n',
    ]
    for tag in chiller_tags(SimulatorSettings(asset=ASSET, sample_period_s=PERIOD_S)):
        lines.append(
            f'[[tags]]\nname = "{tag.name}"\nasset = "{ASSET}"\nnode_id = "{tag.node_id}"\nunit = "{tag.unit}"\n'
            f"period_s = {PERIOD_S}\n"
        )
    path = folder / "sentinelle.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def finetune_adapter(config: Path, base: Path | None, max_minutes: float) -> float:
    """``sentinelle finetune --asset`` on the configured source, days 1–7 only; its wall seconds."""
    until = (START + dt.timedelta(days=HISTORY_DAYS)).isoformat().replace("+00:00", "Z")
    args = ["finetune", "--config", str(config), "--asset", ASSET, "--until", until, "--no-progress",
            "--max-minutes", str(max_minutes)]  # fmt: skip
    if base is not None:
        args += ["--base", str(base)]
    t = time.time()
    if sentinelle(args) != 0:
        sys.exit("finetune failed")
    return time.time() - t


def run_settings(
    base: Settings,
    cfg: RunConfig,
    source: HistorySource,
    tags: Sequence[TagSettings],
    refresh: int = 1,
    held_weight_steps: float | None = None,
    adapter_min_context_steps: int | None = None,
    held_drop_after_steps: float | None = None,
    held_drop_keeps_location: bool | None = None,
) -> Settings:
    live0 = START + dt.timedelta(days=HISTORY_DAYS)
    history = base.history.model_copy(update={"sources": (source,), "backfill_from": START, "backfill_until": live0})
    forecast = base.forecast.model_copy(
        update={
            "forecaster": cfg.forecaster,
            "adapters_dir": base.forecast.adapters_dir if cfg.adapter else None,
            "refresh_every_steps": refresh,
        }
        | ({} if adapter_min_context_steps is None else {"adapter_min_context_steps": adapter_min_context_steps})
    )
    update: dict[str, Any] = {"assets": asset_rules(PERIOD_S), "history_held": cfg.held, "asset_enabled": cfg.asset}
    if held_weight_steps is not None:
        update["history_held_weight_steps"] = held_weight_steps
    if held_drop_after_steps is not None:
        update["history_held_drop_after_steps"] = held_drop_after_steps
    if held_drop_keeps_location is not None:
        update["history_held_drop_keeps_location"] = held_drop_keeps_location
    detect = base.detect.model_copy(update=update)
    return base.model_copy(update={"tags": tuple(tags), "history": history, "forecast": forecast, "detect": detect})


async def run_one(
    plant: Plant, settings: Settings, cfg: RunConfig, variants: Sequence[HandOver] = ()
) -> list[dict[str, Any]]:
    """Backfill (or not), then the live days through windows → forecaster → detect; the scores.

    ``variants``: hand-over ends, each its own detect stage on the same forecasts (one result each;
    none: the settings' own, one result).
    """
    metrics = Metrics(CollectorRegistry())
    tags = settings.tags
    windows = Windows(tags, settings.windows, metrics)
    refresh = settings.forecast.refresh_every_steps
    detects = [
        DetectStage(tags, settings.detect, metrics, refresh_every_steps=refresh)
        if v is None
        else DetectStage(
            tags,
            settings.detect.model_copy(
                update={
                    "history_held_drop_after_steps": v.drop_after_steps,
                    "history_held_drop_keeps_location": v.keeps_location,
                }
                | (
                    {}
                    if v.relation_drop_after_steps is None
                    else {"history_held_relation_drop_after_steps": v.relation_drop_after_steps}
                )
                | ({} if v.screen_reset is None else {"history_held_screen_reset": v.screen_reset})
                | ({} if v.spike_skip is None else {"history_held_spike_skip": v.spike_skip})
            ),
            Metrics(CollectorRegistry()) if i else metrics,
            refresh_every_steps=refresh,
        )
        for i, v in enumerate(variants or [None])
    ]
    detect = detects[0]
    asset_tags = {ASSET: [t.name for t in tags]}
    fc = make_forecaster(settings.forecast, metrics, asset_tags)
    live0 = START.timestamp() + HISTORY_DAYS * DAY_S
    tee = _Tee(detects, [(live0 + d * DAY_S, live0 + (d + 1) * DAY_S) for d in FAULT_FREE_DAYS])
    t0 = time.time()
    backfill: dict[str, Any] = {}
    if cfg.backfill is not None:
        result = await run_backfill(settings, metrics, windows, fc, cast(DetectStage, tee), now=live0)
        report = result.reports[0]
        backfill = {
            "samples": result.samples,
            "slots_scored": result.ticks,
            "events_suppressed": result.events_suppressed,
            "held_share": {k: round(v, 3) for k, v in report.held_shares().items()},
            "deadband_estimated": {k: float(f"{v:.3g}") for k, v in report.deadbands().items()},
            "seconds": round(result.seconds, 1),
            "residual_scale_after_backfill": _scales(detect),
            "residual_scale_unfloored": _raw_scales(detect),
        }
    at_onsets: list[dict[str, float]] = []
    tee.live = True
    await asyncio.to_thread(_live, plant, windows, fc, tee, settings, live0, at_onsets)
    seconds = time.time() - t0
    out = []
    for i, v in enumerate(variants or [None]):
        extra = {} if v is None else {"hand_over": dataclasses.asdict(v) | {"label": v.label}}
        if v is not None and not math.isfinite(v.drop_after_steps):
            extra["hand_over"]["drop_after_steps"] = "inf"  # strict JSON has no Infinity
        rel = None if v is None else v.relation_drop_after_steps
        if rel is not None and not math.isfinite(rel):
            extra["hand_over"]["relation_drop_after_steps"] = "inf"
        out.append({"config": dataclasses.asdict(cfg), **extra, "backfill": backfill, "seconds": round(seconds, 1),
                    "residual_scale_at_fault_onsets": at_onsets if i == 0 else None,
                    "residual_flagged_ticks_fault_free_days": tee.flagged_free[i],
                    "relation_spread_at_fault_onsets": tee.relation_spreads[i],
                    **score(plant, tee.events[i], live0)})  # fmt: skip
    return out


def _scales(detect: DetectStage) -> dict[str, float]:
    """Each tag's learned usual residual scale (in forecast spreads): what a compressed history may shrink."""
    out: dict[str, float] = {}
    for g in detect._groups.values():
        out |= {t: round(float(s), 3) for t, s in zip(g.tags, g.scorer.scale.sigma().tolist(), strict=True)}
    return out


def _raw_scales(detect: DetectStage) -> dict[str, float]:
    """The same before the ``residual_min_sigma`` floor: how small the history made it."""
    out: dict[str, float] = {}
    for g in detect._groups.values():
        sc = g.scorer.scale
        raw = np.sqrt(sc.square) / sc.consistency
        out |= {t: round(float(s), 3) for t, s in zip(g.tags, raw.tolist(), strict=True)}
    return out


def _relation_spreads(detect: DetectStage) -> dict[str, float]:
    """Each learned relation's residual spread (its target's units), by target tag: what its z divides by."""
    out: dict[str, float] = {}
    for g in detect._groups.values():
        for d in g.detectors:
            if isinstance(d, RelationDetector):
                out |= {g.tags[r.target]: round(r.check.spread, 5) for r in d.relations}
    return out


def _live(
    plant: Plant,
    windows: Windows,
    fc: Forecaster,
    tee: _Tee,
    settings: Settings,
    live0: float,
    at_onsets: list[dict[str, float]],
) -> None:
    """The live days through the stages (events: ``tee.events``); ``at_onsets`` gets each tag's residual scale
    (the first stage's) at each fault's onset."""
    names = [f"{ASSET}.{t}" for t in CHILLER_TAGS]
    first = int(np.searchsorted(plant.timestamps, live0))
    detect = tee.stages[0]
    pending: list[WindowBatch] = []
    onsets = [f.start_ts for f in plant.truth]

    def flush() -> None:
        if not pending:
            return
        batch = ForecastPass.of(pending, settings.forecast.refresh_every_steps)
        q = forecast_in_chunks(fc, batch.contexts, batch.assets, settings.forecast.max_batch)
        for fb in batch.split(fc.levels, q, fc.name):
            if len(at_onsets) < len(onsets) and fb.window.ts >= onsets[len(at_onsets)]:
                at_onsets.append(_scales(detect))
                for i, st in enumerate(tee.stages):
                    tee.relation_spreads[i].append(_relation_spreads(st))
            tee.process(fb)
        pending.clear()

    for k in range(first, len(plant.timestamps)):
        ts = float(plant.timestamps[k])
        samples = [Sample(n, ts, v) for n, v in zip(names, plant.values[k].tolist(), strict=True)]
        pending.extend(windows.ingest(samples))
        if len(pending) >= 256:
            flush()
    flush()


def score(plant: Plant, events: list[AlertEvent], live0: float) -> dict[str, Any]:
    end = float(plant.timestamps[-1])
    spans = alert_spans(events)
    run = score_run(plant.truth, spans, live0, end, TOLERANCE_S)
    free = [(live0 + d * DAY_S, live0 + (d + 1) * DAY_S) for d in FAULT_FREE_DAYS]
    on_free = [s for s in spans if any(a <= s.start_ts < b for a, b in free)]
    return {
        "false_alerts_per_fault_free_day": len(on_free) / len(free),
        "false_alerts_fault_free_days": len(on_free),
        "false_alerts_fault_free_by_kind": dict(Counter(s.kind for s in on_free)),
        "false_alerts_days_8_11": run.false_alarms,
        "false_alerts_per_day_days_8_11": round(run.false_alarms / (run.exposure_s / DAY_S), 2),
        "false_alerts_by_kind": dict(Counter(s.kind for s in run.false_alarm_spans)),
        "false_alerts_hours_after_live_start": [round((s.start_ts - live0) / 3600.0, 2) for s in run.false_alarm_spans],
        "faults": [
            {
                "kind": f.fault.kind,
                "detected": f.detected,
                "delay_s": None if math.isnan(f.delay_s) else round(f.delay_s),
                "by": f.first_alert.kind if f.first_alert is not None else None,
            }
            for f in run.faults
        ],
        "faults_detected": sum(f.detected for f in run.faults),
    }


BAND_EVERY_STEPS = 10
"""One-step band measurement: an origin every this many minutes of the fault-free live days."""


def one_step_band(
    plant: Plant,
    settings: Settings,
    adapters: Sequence[Path],
    lead_steps: int = 1,
    context_steps: int | None = None,
    every_steps: int = BAND_EVERY_STEPS,
) -> dict[str, Any]:
    """The base model's and each adapter's one-step forecasts on the fault-free live days, per tag.

    ``lead_steps`` > 1: the forecasts of the next ``lead_steps`` values, all leads pooled (what the
    residual scorer sees with ``refresh_every_steps = lead_steps``).

    ``context_steps``: only the newest this many values of each context, NaN before them (a cold
    start's context; the adapter is then used whatever ``forecast.adapter_min_context_steps`` says).

    Contexts are the plant's true (uncompressed) values, as live; per tag: the median width of the
    80 % band (q0.1..q0.9), its coverage, the mean pinball loss over the levels, and the MAE of the
    median.  ``relative_pinball``: the adapter's pinball over the base model's, geometric mean over the
    tags (below 1: the adapter forecasts the live data better).
    """
    live0 = START.timestamp() + HISTORY_DAYS * DAY_S
    n_ctx = settings.windows.context_steps
    origins = [
        k
        for day in FAULT_FREE_DAYS
        for k in range(
            int(np.searchsorted(plant.timestamps, live0 + day * DAY_S)),
            int(np.searchsorted(plant.timestamps, live0 + (day + 1) * DAY_S)),
            every_steps,
        )
    ]
    rows = [(k, j) for k in origins for j in range(len(CHILLER_TAGS))]
    contexts = np.stack([plant.values[k - n_ctx : k, j] for k, j in rows])
    if context_steps is not None:
        contexts[:, : n_ctx - context_steps] = np.nan
    truth = np.stack([plant.values[k : k + lead_steps, j] for k, j in rows])
    out: dict[str, Any] = {
        "origins": len(origins),
        "every_steps": every_steps,
        "context_steps": n_ctx if context_steps is None else context_steps,
        "lead_steps": lead_steps,
    }
    base_pinball: FloatArray | None = None
    for name, folder in [("base", None), *((str(a), a) for a in adapters)]:
        fs = settings.forecast.model_copy(
            update={
                "forecaster": "model",
                "adapters_dir": None if folder is None else folder.parent,
                "adapter_min_context_steps": 0,
            }
        )
        metrics = Metrics(CollectorRegistry())
        fc = make_forecaster(fs, metrics, {ASSET: [f"{ASSET}.{t}" for t in CHILLER_TAGS]} if folder else None)
        t = time.time()
        q = forecast_in_chunks(fc, contexts, [ASSET] * len(rows), fs.max_batch)[:, :, :lead_steps]
        levels = np.asarray(fc.levels)
        lo, hi = q[:, int(np.argmin(np.abs(levels - 0.1)))], q[:, int(np.argmin(np.abs(levels - 0.9)))]
        med = q[:, int(np.argmin(np.abs(levels - 0.5)))]
        diff = truth[:, None, :] - q
        pin = np.maximum(levels[:, None] * diff, (levels[:, None] - 1.0) * diff).mean(axis=(1, 2))
        tags: dict[str, dict[str, float]] = {}
        pinball = np.zeros(len(CHILLER_TAGS))
        for j, tag in enumerate(CHILLER_TAGS):
            m = np.array([r[1] == j for r in rows])
            pinball[j] = float(pin[m].mean())
            tags[tag] = {
                "width80": float(f"{np.median(hi[m] - lo[m]):.4g}"),
                "coverage80": round(float(np.mean((truth[m] >= lo[m]) & (truth[m] <= hi[m]))), 3),
                "pinball": float(f"{pinball[j]:.4g}"),
                "mae": float(f"{np.mean(np.abs(truth[m] - med[m])):.4g}"),
            }
        entry: dict[str, Any] = {"tags": tags, "seconds": round(time.time() - t, 1)}
        if base_pinball is None:
            base_pinball = pinball
        else:
            entry["relative_pinball"] = round(float(np.exp(np.mean(np.log(pinball / base_pinball)))), 4)
            base_tags = out["base"]["tags"]
            entry["width80_vs_base"] = {
                tag: round(tags[tag]["width80"] / base_tags[tag]["width80"] - 1.0, 3) for tag in CHILLER_TAGS
            }
        out[name] = entry
        print(f"band {name}: " + ", ".join(f"{k} {v['width80']} ({v['coverage80']})" for k, v in tags.items())
              + (f"; relative pinball {entry['relative_pinball']}" if "relative_pinball" in entry else ""),
              flush=True)  # fmt: skip
    return out


def configs(forecaster: str) -> list[RunConfig]:
    """The configurations of one forecaster: Holt's with the asset detector and the event log too."""
    if forecaster == "model":
        return [
            RunConfig("a: no backfill", "model", None),
            RunConfig("b: backfill, held taken as measured (off)", "model", "wide", "off"),
            RunConfig("c: backfill, held widened (default)", "model", "wide", "widen"),
            RunConfig("d: backfill (widen) + adapter", "model", "wide", "widen", adapter=True),
            RunConfig("e: adapter, no backfill", "model", None, adapter=True),
        ]
    return [
        RunConfig("a: no backfill", "holt", None),
        RunConfig("b: backfill, held taken as measured (off)", "holt", "wide", "off"),
        RunConfig("c: backfill, held widened (default)", "holt", "wide", "widen"),
        RunConfig("c': backfill, held skipped", "holt", "wide", "skip"),
        RunConfig("c (event log): backfill, widen", "holt", "events", "widen"),
        RunConfig("a+asset: no backfill", "holt", None, asset=True),
        RunConfig("b+asset: backfill, off", "holt", "wide", "off", asset=True),
        RunConfig("c+asset: backfill, widen", "holt", "wide", "widen", asset=True),
        RunConfig("c'+asset: backfill, skip", "holt", "wide", "skip", asset=True),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None, help="write the results (JSON) to this file")
    ap.add_argument("--seed", type=int, default=1500, help="simulator seed (benchmark: >= 1000)")
    ap.add_argument("--work", type=Path, default=None, help="keep the exports, config and adapter here")
    ap.add_argument("--forecaster", choices=("holt", "model"), default="holt", help="model: the shipped model, + (d)")
    ap.add_argument("--base", type=Path, default=None, help="base checkpoint (default: the shipped one)")
    ap.add_argument("--max-minutes", type=float, default=8.0, help="fine-tuning budget")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default=None, help="only labels containing one of these (a,b,...)")
    ap.add_argument("--refresh", type=int, default=1, help="forecast.refresh_every_steps (the model on 2 cores: 4)")
    ap.add_argument("--deadband-sigmas", type=float, default=DEADBAND_SIGMAS, help="the export's deadband")
    ap.add_argument("--finetune-only", action="store_true", help="fine-tune the adapter into --work, then stop")
    ap.add_argument(
        "--held-weight-steps",
        type=float,
        default=None,
        help="detect.history_held_weight_steps (default: the daemon's; inf: the behaviour before it)",
    )
    ap.add_argument(
        "--held-drop-after-steps",
        type=float,
        default=None,
        help="detect.history_held_drop_after_steps (default: the daemon's; inf: the replay's scale never dropped)",
    )
    ap.add_argument(
        "--hand-over",
        default=None,
        help="hand-over ends to compare on the same forecasts, comma-separated: 60 (drop after 60 steps), "
        "60k (the same, keeping the blended location: detect.history_held_drop_keeps_location), inf, each with an "
        "optional rN: the relations' spread dropped after N (detect.history_held_relation_drop_after_steps; rinf: "
        "never), e.g. 60r60, then an optional s1/s0: detect.history_held_screen_reset on/off (60r60s1), then p1/p0: "
        "detect.history_held_spike_skip on/off (60r60p1); "
        "each a result of its own (overrides --held-drop-after-steps)",
    )
    ap.add_argument(
        "--held-targets",
        choices=("uniform", "nearest", "skip"),
        default=None,
        help="finetune.held_targets of the adapter fine-tuned here (default: the daemon's)",
    )
    ap.add_argument(
        "--band",
        type=Path,
        nargs="*",
        default=None,
        help="measure the one-step 80%% band of the base model and of these adapter folders (none given: the "
        "adapter in --work) on the fault-free live days, into the JSON",
    )
    ap.add_argument(
        "--band-lead-steps", type=int, default=1, help="--band over the next N values (all leads pooled), not one"
    )
    ap.add_argument(
        "--band-context-steps", type=int, default=None, help="--band from contexts of only this many values"
    )
    ap.add_argument("--band-every-steps", type=int, default=BAND_EVERY_STEPS, help="--band: an origin every N")
    ap.add_argument(
        "--adapter-min-context",
        type=int,
        default=None,
        help="forecast.adapter_min_context_steps (default: the daemon's; 0: the adapter from the first forecast)",
    )
    ap.add_argument("--dev", action="store_true", help="a development seed (< 1000): for debugging, never reported")
    args = ap.parse_args()
    if not args.dev and not is_benchmark_seed(args.seed):
        sys.exit(f"seed {args.seed} may have been seen in pretraining; use one >= 1000")
    work = args.work or Path(tempfile.mkdtemp(prefix="deadband-"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.time()
    plant = simulate(args.seed, args.deadband_sigmas)
    wide, events, empty = export(plant, work)
    plant = dataclasses.replace(plant, held_share=empty)
    config = write_config(work, wide, args.threads, args.held_targets)
    print(f"simulated and exported in {time.time() - t:.0f} s; deadbands {plant.deadbands}; "
          f"empty cells {({k: round(v, 2) for k, v in empty.items()})}", flush=True)  # fmt: skip
    base = load_settings(config)
    tags = chiller_tags(SimulatorSettings(asset=ASSET, sample_period_s=PERIOD_S))
    source_wide = base.history.sources[0]
    source_events = CsvEventsSource(
        path=events, name="export", timezone="Europe/Paris", tag_map=source_wide.tag_map, date_column="Date",
        tag_column="Nom Paramètre", value_column="Valeurs", new_value_column="Nouvelle valeur",
    )  # fmt: skip
    assert isinstance(source_wide, CsvWideSource)
    finetune_s: float | None = None
    manifest = work / "adapters" / ASSET / "manifest.json"
    chosen = [c for c in configs(args.forecaster) if not args.only or any(p in c.label for p in args.only.split(","))]
    if args.finetune_only or (any(c.adapter for c in chosen) and not manifest.exists()):
        finetune_s = finetune_adapter(config, args.base, args.max_minutes)
        if args.finetune_only:
            return
    results: list[dict[str, Any]] = []
    band: dict[str, Any] | None = None
    if args.band is not None:
        band = one_step_band(
            plant,
            base,
            args.band or [manifest.parent],
            args.band_lead_steps,
            args.band_context_steps,
            args.band_every_steps,
        )
        if args.out is not None:
            write(args.out, args, plant, empty, finetune_s, manifest, results, band)
    hand_overs = [HandOver.parse(v) for v in (args.hand_over or "").split(",") if v]
    for cfg in chosen:
        source = source_events if cfg.backfill == "events" else source_wide
        settings = run_settings(
            base,
            cfg,
            source,
            tags,
            args.refresh,
            args.held_weight_steps,
            args.adapter_min_context,
            args.held_drop_after_steps,
        )
        variants = [] if args.hand_over is None or cfg.backfill is None else hand_overs
        for r in asyncio.run(run_one(plant, settings, cfg, variants)):
            results.append(r)
            delays = [f["delay_s"] for f in r["faults"]]
            label = cfg.label + (f" [{r['hand_over']['label']}]" if "hand_over" in r else "")
            print(f"{cfg.forecaster:5} {label:45} FA/fault-free day {r['false_alerts_per_fault_free_day']:.1f} "
                  f"FA days 8-11 {r['false_alerts_days_8_11']} ({r['false_alerts_hours_after_live_start']} h) "
                  f"faults {r['faults_detected']}/{len(r['faults'])} delays {delays} "
                  f"flagged fault-free {r['residual_flagged_ticks_fault_free_days']} ({r['seconds']:.0f} s) "
                  f"{r['false_alerts_by_kind']}", flush=True)  # fmt: skip
        if args.out is not None:
            write(args.out, args, plant, empty, finetune_s, manifest, results, band)


def _finite_or_inf(x: float) -> float | str:
    return x if math.isfinite(x) else "inf"  # strict JSON has no Infinity


def write(
    path: Path,
    args: argparse.Namespace,
    plant: Plant,
    empty: dict[str, float],
    finetune_s: float | None,
    manifest: Path,
    results: list[dict[str, Any]],
    band: dict[str, Any] | None = None,
) -> None:
    """The results so far (written after every configuration: a run cut short keeps what it measured)."""
    adapter = json.loads(manifest.read_text(encoding="utf-8")) if manifest.exists() else None
    weight = args.held_weight_steps
    if weight is None:
        weight = DetectSettings().history_held_weight_steps
    drop = args.held_drop_after_steps
    if drop is None:
        drop = DetectSettings().history_held_drop_after_steps
    out = {
        "experiment": "deadband-compressed history, issue 17",
        "machine": machine_info(),
        "seed": args.seed,
        "period_s": PERIOD_S,
        "refresh_every_steps": args.refresh,
        "history_days": HISTORY_DAYS,
        "live_days": LIVE_DAYS,
        "deadband_sigmas": args.deadband_sigmas,
        "history_held_weight_steps": weight if math.isfinite(weight) else "inf",  # strict JSON has no Infinity
        "history_held_drop_after_steps": drop if math.isfinite(drop) else "inf",
        "history_held_drop_keeps_location": DetectSettings().history_held_drop_keeps_location,
        "history_held_screen_reset": DetectSettings().history_held_screen_reset,
        "history_held_spike_skip": DetectSettings().history_held_spike_skip,
        "history_held_relation_drop_after_steps": _finite_or_inf(
            DetectSettings().history_held_relation_drop_after_steps
        ),
        "hand_over_variants": args.hand_over,
        "adapter_min_context_steps": ForecastSettings().adapter_min_context_steps
        if args.adapter_min_context is None
        else args.adapter_min_context,
        "deadbands": plant.deadbands,
        "wide_export_empty_cells": {k: round(v, 3) for k, v in empty.items()},
        "faults": [dataclasses.asdict(f) for f in plant.truth],
        "finetune_seconds": None if finetune_s is None else round(finetune_s),
        "adapter_manifest": adapter,
        "one_step_band": band,
        "results": results,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
