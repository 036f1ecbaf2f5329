"""Every alert event the detect stage emits on a fixed corpus, dumped to JSON: a refactor of ``detect/`` must not
change it.

Replays, with the Holt forecaster (deterministic, no model download), through the daemon's own
Windows → ForecastBatcher → DetectStage (:func:`sentinelle.evaluation.replay.replay`):

* a few SKAB files under four detect configurations (per-tag only; + asset T²/Q and charts;
  + the asset likelihood layer; per-tag alerts instead of merged asset incidents);
* the chiller simulator, one run per fault kind and one fault-free run (benchmark seeds), with
  the simulator's tags, rules, energy balance, learned relation and modes, with and without the
  asset detector.  One fault run also gets a stop of the chiller (pump 1 below 5 %: mode
  ``stopped``), a maintenance window and a source outage (rows missing from the file), so the
  pause, maintenance and missing-data paths run too.

Every event of every tick is recorded, the warm-up's included (the replay drops those from its
trace; here the stage is wrapped), with the per-tick residual numbers (z and score, hashed) and
the final Prometheus samples of the detect metrics.  Within one tick, events are written in a
canonical order (kind, subject, event) — the set of events per tick and every field are compared,
not the order in which the stage lists the events of different detectors within one tick.  The
raw order is hashed separately (``raw_order_sha256``) so a change of order shows.

    python bench/detect_equivalence.py --out /tmp/before.json
    ... change detect/ ...
    python bench/detect_equivalence.py --out /tmp/after.json && cmp /tmp/before.json /tmp/after.json
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

import sentinelle.evaluation.replay as replay_module
from sentinelle.detect.maintenance import MaintenanceCalendar, MaintenanceWindow
from sentinelle.detect.stage import DetectStage
from sentinelle.evaluation.chiller_eval import ASSET, Config, chiller_plan, simulate
from sentinelle.evaluation.replay import Recording, replay, replay_settings
from sentinelle.evaluation.skab import skab_recordings
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent, ForecastBatch
from sentinelle.settings import DetectSettings, TagSettings

SKAB_FILES = ("valve1/1", "valve2/2", "other/9", "other/14")
SKAB_CONFIGS: dict[str, dict[str, Any]] = {
    "per-tag only": {},
    "+ asset": {"asset_enabled": True},
    "+ asset likelihood": {"asset_enabled": True, "asset_likelihood_enabled": True},
    "per-tag alerts, + asset": {"asset_enabled": True, "merge_by_asset": False},
    "sensitive, per-tag alerts": {"score_threshold": 0.99, "open_k": 2, "merge_by_asset": False},
    "sensitive, + asset": {"score_threshold": 0.99, "open_k": 2, "asset_enabled": True},
}
CHILLER_CONFIGS = (
    Config("holt: per-tag + rules", "holt", asset=False, rules=True),
    Config(
        "holt: per-tag + asset + rules, per-tag alerts",
        "holt",
        asset=True,
        rules=True,
        detect={"merge_by_asset": False},
    ),
    Config(
        "holt: sensitive, + asset + rules",
        "holt",
        asset=True,
        rules=True,
        detect={"score_threshold": 0.99, "open_k": 2},
    ),
)
DISTURBED_RUN = "stuck_sensor-0"
"""The run that also gets a stop, a maintenance window and an outage (see the module docstring)."""


class _Recorder:
    def __init__(self) -> None:
        self.ticks: list[dict[str, Any]] = []
        self.raw = hashlib.sha256()
        self.numbers = hashlib.sha256()
        self.metrics: Metrics | None = None
        self.calendar = MaintenanceCalendar()


RECORDER = _Recorder()


class RecordingStage(DetectStage):
    """The daemon's stage, recording every event and the residual numbers of every tick."""

    def __init__(
        self,
        tags: list[TagSettings],
        settings: DetectSettings,
        metrics: Metrics,
        calendar: MaintenanceCalendar | None = None,
    ) -> None:
        super().__init__(tags, settings, metrics, RECORDER.calendar)
        RECORDER.metrics = metrics

    def process(self, fb: ForecastBatch) -> list[AlertEvent]:
        events = super().process(fb)
        for ev in events:
            RECORDER.raw.update(json.dumps(_event(ev)).encode())
        if events:
            canonical = sorted(
                (_event(ev) for ev in events), key=lambda d: (d["kind"], d["alert_id"], d["event"], d["reason"] or "")
            )
            RECORDER.ticks.append({"ts": fb.window.ts, "events": canonical})
        tick = self.last_tick
        if tick is not None:
            RECORDER.numbers.update(np.ascontiguousarray(tick.z).tobytes())
            RECORDER.numbers.update(np.ascontiguousarray(tick.score).tobytes())
            RECORDER.numbers.update(np.ascontiguousarray(tick.expected).tobytes())
        return events


def _event(ev: AlertEvent) -> dict[str, Any]:
    d = dataclasses.asdict(ev)
    return {k: (repr(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


DETECT_METRICS = (
    "sentinelle_ticks_scored",
    "sentinelle_ticks_anomalous",
    "sentinelle_ticks_gated",
    "sentinelle_alert_events",
    "sentinelle_alerts_active",
    "sentinelle_alerts_suppressed",
    "sentinelle_data_quality_alerts",
    "sentinelle_asset_mode",
    "sentinelle_asset_maintenance",
    "sentinelle_asset_detection_gated",
)
"""The detect stage's metrics (the forecast batcher's batch sizes and every timing depend on the event loop)."""


def _detect_metrics(metrics: Metrics | None) -> dict[str, float]:
    if metrics is None:
        return {}
    out: dict[str, float] = {}
    for family in metrics.registry.collect():
        if not family.name.startswith(DETECT_METRICS):
            continue
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return dict(sorted(out.items()))


def _run(name: str, rec: Recording, detect: DetectSettings) -> dict[str, Any]:
    global RECORDER
    calendar = RECORDER.calendar
    RECORDER = _Recorder()
    RECORDER.calendar = calendar
    started = time.perf_counter()
    replay(rec, replay_settings("holt", detect=detect))
    print(f"  {name}: {sum(len(t['events']) for t in RECORDER.ticks)} events, {time.perf_counter() - started:.1f} s")
    return {
        "name": name,
        "ticks_with_events": RECORDER.ticks,
        "raw_order_sha256": RECORDER.raw.hexdigest(),
        "residual_numbers_sha256": RECORDER.numbers.hexdigest(),
        "metrics": _detect_metrics(RECORDER.metrics),
    }


def _disturbed(rec: Recording) -> tuple[Recording, MaintenanceWindow]:
    """A stop of 120 s, then (later) a maintenance window of 200 s and a 90 s outage, all after the warm-up."""
    values = rec.values.copy()
    present = rec.present.copy()
    start = rec.test_start
    pump = rec.tags.index(f"{ASSET}.pump1_speed_pct")
    values[start + 600 : start + 720, pump] = 0.0
    t0 = float(rec.timestamps[start + 900])
    window = MaintenanceWindow(ASSET, t0, t0 + 200.0, origin="command", window_id="bench-1", by="bench")
    present[start + 1400 : start + 1490] = False
    values[start + 1400 : start + 1490] = np.nan
    return dataclasses.replace(rec, values=values, present=present), window


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--quick", action="store_true", help="two SKAB files, three chiller runs: a smoke test")
    args = ap.parse_args()
    replay_module.DetectStage = RecordingStage  # type: ignore[attr-defined, assignment]  # every replay records its ticks
    runs: list[dict[str, Any]] = []
    started = time.perf_counter()

    skab_files = SKAB_FILES[:2] if args.quick else SKAB_FILES
    recordings = [r for r in skab_recordings() if r.name in skab_files]
    for label, overrides in SKAB_CONFIGS.items():
        print(f"SKAB, {label}")
        for rec in recordings:
            runs.append(_run(f"skab {rec.name} [{label}]", rec, DetectSettings(**overrides)))

    plan = chiller_plan(runs_per_kind=1, fault_free_runs=1, fault_free_s=1800.0)
    if args.quick:
        plan = [r for r in plan if r.name in (DISTURBED_RUN, "spike-0", "fault-free-0")]
    sim = [simulate(run) for run in plan]
    for config in CHILLER_CONFIGS:
        print(f"chiller, {config.label}")
        for rec, _truth in sim:
            if not config.rules:
                continue
            window = None
            if rec.name == DISTURBED_RUN:
                rec, window = _disturbed(rec)
            RECORDER.calendar = MaintenanceCalendar([window] if window else [])
            runs.append(_run(f"chiller {rec.name} [{config.label}]", rec, config.detect_settings()))
            RECORDER.calendar = MaintenanceCalendar()

    total = sum(len(t["events"]) for r in runs for t in r["ticks_with_events"])
    kinds: dict[str, int] = {}
    for r in runs:
        for t in r["ticks_with_events"]:
            for ev in t["events"]:
                key = f"{ev['kind']}/{ev['event']}" + (f"/{ev['clear_reason']}" if ev["clear_reason"] else "")
                kinds[key] = kinds.get(key, 0) + 1
    doc = {"events": total, "by_kind": dict(sorted(kinds.items())), "runs": runs}
    args.out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"{total} events in {len(runs)} runs, {time.perf_counter() - started:.0f} s; sha256 {digest}")
    for key, n in sorted(kinds.items()):
        print(f"  {key:<40} {n}")


if __name__ == "__main__":
    main()
