"""The chiller report's files: ``report.json`` (every row's numbers, the protocol, the targets) and ``report.md``.

Apart from :mod:`.chiller_report`, which chooses and runs the configurations, because the text and
tables change with every report and the running does not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .chiller_eval import AFTER_S, LEAD_S, ONSET_JITTER_S, TOLERANCE_S, WARMUP_S, ChillerResult
from .chiller_targets import SLOW_KINDS, target_lines

PROTOCOL = {
    "runs": "ChillerModel stepped without OPC-UA (1 s samples), one fault per run, seeds >= 1000 "
    "(evaluation/heldout.py: never seen in pretraining); runs start at hour (seed mod 24) of 2026-01-01 UTC",
    "warm_up": f"first {WARMUP_S:.0f} s of every run: detectors learn, alerts dropped (the daemon's backfill mode); "
    "not scored",
    "onset": f"{WARMUP_S + LEAD_S:.0f} s + U(0, {ONSET_JITTER_S:.0f}) s after the start; "
    f"{AFTER_S:.0f} s of recovery after the fault's end",
    "detected": "an alert of the asset opened while the fault is present, in [onset, end)",
    "delay": "first such opening minus the onset (s)",
    "false_alarm": f"an alert opened in the scored time outside every [onset, end + {TOLERANCE_S:.0f} s); "
    "per day of scored time outside those intervals",
    "alert_rate": "alerts opened per 10 minutes of scored time: mean, and peak in any 10-minute window",
    "ground_truth": "the simulator's fault intervals (sim/chiller.py InjectedFault; the records of ground_truth.jsonl)",
}


def row_summary(r: ChillerResult) -> dict[str, Any]:
    """One configuration's numbers for the ablation table (and the targets)."""
    s = r.summary()
    slow = {k: r.kinds[k].summary() for k in SLOW_KINDS if k in r.kinds}
    k = r.kpis
    return {
        "label": r.label,
        "kinds_detected": s["kinds_detected"],
        "kinds": s["kinds"],
        "faults_detected": s["faults_detected"],
        "faults": s["faults"],
        "delay_s_median": s["delay_s_median"],
        "slow_faults": slow,
        "false_alarms": r.false_alarms,
        "false_alarms_per_day": round(r.false_alarms_per_day, 2),
        "openings_per_10_min_mean": round(r.rate.mean_per_10_min, 3),
        "openings_per_10_min_peak": r.rate.peak_per_10_min,
        "openings_per_10_min_mean_fault_runs": None
        if r.rate_fault_runs is None
        else round(r.rate_fault_runs.mean_per_10_min, 3),
        "max_subject_openings_per_10_min": None if k is None else k.max_subject_openings_per_10_min,
        "chattering_subjects": None if k is None else len(k.chattering),
        "wall_s": round(r.seconds, 1),
    }


def write_report(
    headline: ChillerResult,
    ablation: Sequence[tuple[str, ChillerResult]],
    out: Path,
    meta: dict[str, Any],
    plots: Sequence[str] = (),
) -> None:
    """``report.json`` and ``report.md`` in ``out``; ``ablation`` is (run set, result) per row."""
    out.mkdir(parents=True, exist_ok=True)
    results = [r for _, r in ablation]
    doc = {
        **meta,
        "protocol": PROTOCOL,
        "headline": headline.summary(),
        "ablation": [
            {"run_set": s, "row": row_summary(r), **{k: v for k, v in r.summary().items() if k != "per_run"}}
            for s, r in ablation
        ],
        "per_run": {r.label: r.summary()["per_run"] for r in results},
        "targets": target_lines(results),
    }
    (out / "report.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "report.md").write_text(_markdown(headline, ablation, meta, plots))


def _fmt(x: float | None, digits: int = 0) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _slow(row: dict[str, Any], kind: str) -> str:
    k = row["slow_faults"].get(kind)
    if k is None:
        return "–"
    return f"{k['detected']}/{k['faults']}: {_fmt(k['delay_s_median'])} / {_fmt(k['delay_s_max'])}"


def _markdown(
    head: ChillerResult, ablation: Sequence[tuple[str, ChillerResult]], meta: dict[str, Any], plots: Sequence[str]
) -> str:
    s = head.summary()
    sets = {r.label: run_set for run_set, r in ablation}
    lines = [
        "# Simulated chiller — injected faults through the daemon's stages",
        "",
        f"Generated {meta.get('generated', '')} by `sentinelle evaluate --dataset chiller` "
        f"on {meta.get('machine', '')}; "
        f"{meta.get('seconds', 0):.0f} s for all runs. Plan: {meta.get('plan', '')}."
        + (f" Model: {meta['model_checkpoint']}." if "model_checkpoint" in meta else "")
        + (f" Asset model: {meta['asset_checkpoint']}." if "asset_checkpoint" in meta else "")
        + (f" Command: `{meta['command']}`." if "command" in meta else ""),
        "",
        *meta.get("seed_note", []),
        "Every run steps the simulated plant (no OPC-UA, faster than real time) and replays its samples slot by "
        "slot through the daemon's own Windows → ForecastBatcher → DetectStage (no look-ahead). The first "
        f"{WARMUP_S:.0f} s warm the detectors up in the daemon's backfill mode and are not scored. Alerts are "
        "scored against the simulator's ground truth (`ground_truth.jsonl` records).",
        "",
        "## Targets",
        "",
        *[f"- {t['text']} Runs: {sets[t['row']]}." for t in target_lines([r for _, r in ablation])],
        "",
        f"## Per fault kind — {head.label}",
        "",
        "| fault kind | runs | detected | delay s (median / mean / max) | first alert of each run |",
        "|---|---|---|---|---|",
    ]
    first_alerts: dict[str, list[str]] = {}
    for run in head.runs:
        for f in run.score.faults:
            first_alerts.setdefault(f.fault.kind, []).append(
                "missed" if f.first_alert is None else f"{f.first_alert.kind} on {f.first_alert.tag.split('.', 1)[-1]}"
            )
    for k in head.kinds.values():
        ks = k.summary()
        lines.append(
            f"| {k.kind} | {k.faults} | {k.detected}/{k.faults} | {_fmt(ks['delay_s_median'])} / "
            f"{_fmt(ks['delay_s_mean'])} / {_fmt(ks['delay_s_max'])} | {'; '.join(first_alerts.get(k.kind, []))} |"
        )
    lines += [
        "",
        f"**False alarms**: {head.false_alarms} in {head.exposure_h:.1f} h of scored normal operation "
        f"→ **{head.false_alarms_per_day:.1f} per day**"
        + (": " + ", ".join(f"{k} {n}" for k, n in head.false_alarms_by()) if head.false_alarms else "")
        + f" (one false alarm in this exposure is {24.0 / max(head.exposure_h, 1e-9):.1f} per day).",
        "",
        f"Every fault of all {len(head.kinds)} kinds was detected ({s['faults_detected']}/{s['faults']})."
        if all(k.all_detected for k in head.kinds.values())
        else "**Not every fault detected**: "
        + "; ".join(f"{k.kind} {k.detected}/{k.faults}" for k in head.kinds.values() if not k.all_detected)
        + ".",
        "",
    ]
    if head.kpis is not None:
        lines += head.kpis.markdown()
    lines += [
        "## Ablation",
        "",
        "Slow faults: detected / runs: median / max delay s. Openings: alerts opened per 10 minutes of scored "
        "time (mean over all runs, over the fault runs only, and the peak in any 10-minute window); *max / subject*: "
        "most openings of one subject (alert kind and tag) in 10 minutes; *chatter*: subjects with 3 openings in "
        "a minute.",
        "",
        "| configuration | runs | kinds | faults | median delay s | sensor_drift | fouling | pump_degradation | "
        "false alarms / day | openings / 10 min (mean, fault runs, peak) | max / subject | chatter | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run_set, r in ablation:
        row = row_summary(r)
        lines.append(
            f"| {r.label} | {run_set} | {row['kinds_detected']}/{row['kinds']} | "
            f"{row['faults_detected']}/{row['faults']} | "
            f"{_fmt(row['delay_s_median'])} | {_slow(row, 'sensor_drift')} | {_slow(row, 'fouling')} | "
            f"{_slow(row, 'pump_degradation')} | {r.false_alarms_per_day:.1f} ({r.false_alarms}) | "
            f"{r.rate.mean_per_10_min:.2f}, {_fmt(row['openings_per_10_min_mean_fault_runs'], 2)}, "
            f"{r.rate.peak_per_10_min} | {_fmt(row['max_subject_openings_per_10_min'])} | "
            f"{_fmt(row['chattering_subjects'])} | {r.seconds:.0f} |"
        )
    lines += ["", "False alarms by alert, per configuration:", ""]
    for _, r in ablation:
        fa = ", ".join(f"{k} {n}" for k, n in r.false_alarms_by()) or "none"
        lines.append(f"- {r.label}: {fa}")
    lines += ["", *meta.get("notes", []), ""]
    if plots:
        lines += ["## Plots", "", *[f"![{p}]({p})" for p in plots], ""]
    return "\n".join(lines)


CONFIG_NOTE = (
    "Configurations: *per-tag + rules (shipped)* = the daemon as `config/sentinelle.toml` configures the chiller: "
    "forecast-residual scores per tag (the calibrated surprise of detect/surprise.py, k of n or a severe tick), the "
    "chiller's rules and data-quality checks (sim/server.py `chiller_tags`, `chiller_asset_rules`: chilled-water "
    "limits 5 ± 0.2 °C, spike and stuck checks, rate limits on the temperatures, the energy balance, the learned "
    "relation `power_kw` from the three pump speeds, the 'stopped' mode) and the alarm-management defaults "
    "(severe-tick opening, re-arm, chattering latch, flood alerts); the asset-level T² detector and the asset "
    "model are off, as shipped. *Residuals alone* = the same daemon with no limits, rules, data-quality "
    "checks, relations, modes or T²: only forecast residuals — of Holt, of the univariate model, or (*asset model*) "
    "the univariate model's plus each tag's value against the asset model's estimate of it from the other tags now "
    "(`forecast.asset_model_path` = the package's forecast/checkpoints/asset, detect/detectors/asset_estimate.py) "
    "and against the forecast made `detect.horizon_steps` = 16 ticks ago (detect/detectors/horizon.py, "
    "`horizon_enabled`), all scored by the calibrated per-tag scorer; *asset model + holt* = the same with Holt as "
    'the daemon\'s forecaster (`forecast.forecaster = "holt"`, its residuals and its horizon forecasts) instead '
    "of the univariate model; *estimate blind to the newest M slots, made every R* = that row with the asset "
    "model's estimate reading the tags' contexts only up to M slots before now and the other tags now "
    "(`forecast.asset_mask_recent_steps` M, chosen on development seeds 2110..2113 by "
    "bench/chiller/asset_masked.py), made on one slot in R and standing between "
    "(`forecast.asset_estimate_every_steps`, R fixed a priori for CPU); *asset_estimate_open_k 16, "
    "asset_estimate_open_n 24* = that row with the estimate residual opening its alert on 16 anomalous ticks of "
    "the last 24 instead of the shared 3 of 5 (`detect.asset_estimate_open_k` / `_n`: an estimate made every 8 "
    "slots stands for 8 ticks, so one poor estimate met 3 of 5), chosen among 4 candidates (with or without the "
    "sustained-bias chart at 0.1, 3 of 5 or 16 of 24) on development seeds 2140..2149 by "
    "bench/chiller/asset_blind_dev.py (asset_blind_dev.json), by a rule written before its runs. Each "
    "forecaster's forecasts and the asset "
    "model's estimates are computed once per run and shared by the rows (they do not depend on detection)."
)

RELATION_NOTE = (
    "How the relation's settings were chosen: its form from the physics (the pumps' cooling capacity is "
    "proportional to their speeds, so no intercept); `z_threshold` 6, `learn_below_z` 4, `warmup_steps` 300 and "
    "`memory_s` a week a priori. `z_threshold` was then checked, not searched, on development seeds 500..516 "
    "(2 runs per fault kind + 3 fault-free runs of 3 h, never the report's seeds): the rule keeps the default if "
    "it detects every development pump_degradation run with no false alarm (bench/chiller/tune_relation.py; "
    "tuning_relation.json in this folder, which also holds the sweep 4..10 as a sensitivity table). The "
    "alarm-management defaults (re-arm, chattering latch, flood) were set a priori from ISA-18.2 / EEMUA 191 and "
    "measured on development seeds 200..208 (bench/alarm_load.py); the asset model's checkpoint was trained on "
    "simulator seeds below 1000 (forecast/checkpoints/asset/training.json)."
)
