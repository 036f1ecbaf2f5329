"""LBNL air-handling units, one day at a time, through the daemon's stages: day-level fault detection.

The LBNL files (``shared/data/lbnl_ahu_fdd``, Granderson et al., Sci Data 7:65,
2020) glue separate test days together and label each *whole day* faulted or
not, so the score is day-level: a day is predicted faulty when an alert of the
AHU opened during that day.

Protocol:

* every labelled day of every file is one scored day; it is replayed after a
  *warm-up day* — the file's fault-free day nearest in date (another day than
  the scored one) — run in the daemon's backfill mode (the detectors learn from
  it, its alerts are dropped), so the asset's normal state is learned on normal
  operation, never on the fault being scored.  The warm-up day is moved in time
  to end where the scored day starts (the windows see one continuous stream);
* a file's only fault-free day (SZCAV's 2017-04-01) has no other fault-free day
  to warm up on and is not scored;
* tags: the measured temperatures, the control signals (fan speed, dampers, coil
  valves) and the duct static pressure.  Set points, fan status and the
  occupancy indicator are schedules, not measurements: left out;
* a *tuning / held-out split* of the days (:func:`split_of`, fixed before any
  score of this split was looked at): within each file and label, days in date
  order alternate tuning, held-out, tuning, …  Detection settings are chosen on
  the tuning days only and the held-out days are the headline.  Not by file: the
  four AHUs differ (two single-zone units of 2017, two multi-zone units of
  2007-09) and one file has a single fault-free day, another two faulted days, so
  a split by file would tune on one kind of unit and one class; alternating days
  keeps every AHU and both labels on both sides.  A day's warm-up day may belong
  to the other half (it is fault-free by its label, as an operator's "known good
  day" would be);
* ``evaluation/heldout.py`` reserves the faulted days for evaluation; fault-free
  days may be in a model's pretraining corpus, so their false-positive rate is
  only out-of-sample for forecasters that learn nothing offline (Holt).

The fault type of each day comes from LBNL's inventory shipped with the data
(``LBNLDataSynthesisInventory.pdf``, tables 2-2, 3-3 and 3-4), grouped by
component and failure mode (the intensities are in :data:`FAULT_DAYS`).  Where the
inventory and the CSV's label disagree (MZVAV-2-1 on 2007-08-30: a heating-coil
leak in the inventory, fault-free in the CSV) the CSV's label is used.

The days, their split and recordings are :mod:`.lbnl_days`; the day-level scores and the
report :mod:`.lbnl_report`; this module replays the days through the daemon's stages
(:func:`evaluate_lbnl`) for every configuration compared (:func:`run_evaluation`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..forecast.base import Forecaster
from ..records import AlertEvent
from ..settings import AfddSettings, AssetDetectSettings, ModeRuleSettings, Settings
from .datasets import LBNL_FILES
from .detection import alarm_kpis, alert_rate
from .lbnl_days import (
    ASSET_WARMUP_ROWS,
    DAY_S,
    EXCLUDED_COLUMN_WORDS,
    FAULT_DAYS,
    MODE_HOLDOFF_S,
    MODE_WORDS,
    PERIOD_S,
    SETTLE_ROWS,
    SPLITS,
    WARMUP_DAYS,
    Day,
    day_recording,
    lbnl_days,
    monitored,
    split_of,
    tag_name,
    warm_up_day,
    warm_up_days,
)
from .lbnl_report import (
    PROTOCOL,
    DayResult,
    DayScores,
    LbnlResult,
    alerts_per_day,
    day_scores,
    per_fault_type,
    write_report,
)
from .replay import replay

__all__ = [
    "ASSET_WARMUP_ROWS",
    "DAY_S",
    "EXCLUDED_COLUMN_WORDS",
    "FAULT_DAYS",
    "LBNL_FILES",
    "MODE_HOLDOFF_S",
    "MODE_WORDS",
    "PERIOD_S",
    "PROTOCOL",
    "SETTLE_ROWS",
    "SPLITS",
    "TAIL",
    "WARMUP_DAYS",
    "Day",
    "DayResult",
    "DayScores",
    "LbnlConfig",
    "LbnlResult",
    "alerts_per_day",
    "asset_warmup",
    "configs",
    "day_recording",
    "day_scores",
    "evaluate_lbnl",
    "lbnl_days",
    "mode_rules",
    "monitored",
    "per_fault_type",
    "run_evaluation",
    "split_of",
    "tag_name",
    "warm_up_day",
    "warm_up_days",
    "write_report",
]


def evaluate_lbnl(
    days: Sequence[Day],
    settings: Settings,
    label: str,
    progress: Callable[[str], None] | None = None,
    forecaster: Forecaster | None = None,
    only_split: str | None = None,
    warmup_days: int = WARMUP_DAYS,
    kinds: frozenset[str] | None = None,
) -> LbnlResult:
    """Replay every day after its warm-up day and score it at day level (``forecaster``: an
    instance to share, e.g. a cached one; None: the one ``settings`` names; ``only_split``: score only
    that half's days, e.g. ``"tuning"`` while choosing settings; ``kinds``: only alerts of these kinds predict a
    faulted day)."""
    started = time.perf_counter()
    results: list[DayResult] = []
    skipped: list[str] = []
    rates: list[tuple[list[float], float, bool]] = []
    scored_events: list[tuple[list[AlertEvent], float, float]] = []
    for day in days:
        if only_split is not None and split_of(day, days) != only_split:
            continue
        warm = warm_up_days(day, days, warmup_days)
        if not warm:
            skipped.append(f"{day.file}/{day.date} (no other fault-free day to warm up on)")
            continue
        rec = day_recording(day, warm)
        trace = replay(rec, settings, forecaster)
        start = float(rec.timestamps[rec.test_start])
        opened = sorted(
            (
                e
                for e in trace.events
                if e.event == "opened" and e.event_ts >= start and (kinds is None or e.kind in kinds)
            ),
            key=lambda e: e.event_ts,
        )
        openings = [e.event_ts for e in opened]
        midnight = float(day.timestamps[0])
        first = int((openings[0] - midnight) // 60) if openings else -1
        by_kind = Counter(e.kind for e in opened)
        results.append(
            DayResult(
                day.file,
                day.date,
                day.faulted,
                day.fault_type,
                len(openings),
                first,
                f"{opened[0].kind} on {opened[0].tag.split('.', 1)[-1]}" if opened else "",
                tuple(sorted(by_kind.items())),
                split_of(day, days),
            )
        )
        rates.append((openings, float(day.timestamps[-1]) - start + PERIOD_S, day.faulted))
        scored_events.append((trace.events, start, float(day.timestamps[-1]) + PERIOD_S))
        if progress is not None:
            progress(rec.name)
    return LbnlResult(
        label=label,
        days=results,
        skipped=skipped,
        rate=alert_rate([(t, s) for t, s, _ in rates]),
        rate_fault_free=alert_rate([(t, s) for t, s, f in rates if not f]),
        seconds=time.perf_counter() - started,
        kpis=alarm_kpis(scored_events),
    )


def mode_rules(file: str, afdd: AfddSettings | None = None) -> AssetDetectSettings:
    """The AHU's operating modes: ``off`` (supply fan status 0: detection paused), ``unoccupied`` (occupancy
    indicator 0: detected, but a change holds detection off for :data:`MODE_HOLDOFF_S`), else running."""
    return AssetDetectSettings(
        name=file,
        modes=(
            ModeRuleSettings(mode="off", tag=tag_name(file, "AHU: Supply Air Fan Status"), equals=0.0),
            ModeRuleSettings(
                mode="unoccupied", tag=tag_name(file, "Occupancy Mode Indicator"), equals=0.0, detect=True
            ),
        ),
        mode_holdoff_s=MODE_HOLDOFF_S,
        afdd=afdd,
    )


def asset_warmup(warmup_days: int = WARMUP_DAYS) -> dict[str, Any]:
    """The asset model learns the whole warm-up (every tick it is not paused or gated in) and freezes when it
    ends: a count of ticks would run on into the scored day, since the mode rules pause it at night."""
    return {"asset_warmup_steps": ASSET_WARMUP_ROWS * warmup_days, "asset_warmup_ends_with_history": True}


def afdd_rules(file: str, calibration_s: float = 0.0, **overrides: Any) -> AfddSettings:
    """The AHU's points for the Guideline 36 conditions (°F, 0..1 commands), at the guideline's defaults
    (``overrides``: more ``[detect.assets.afdd]`` settings, e.g. ``apar_rules=True``)."""
    single_zone = file.startswith("SZ")
    return AfddSettings(
        **overrides,
        supply_air_temp_tag=tag_name(file, "AHU: Supply Air Temperature"),
        mixed_air_temp_tag=tag_name(file, "AHU: Mixed Air Temperature"),
        return_air_temp_tag=tag_name(file, "AHU: Return Air Temperature"),
        outdoor_air_temp_tag=tag_name(file, "AHU: Outdoor Air Temperature"),
        heating_valve_tag=tag_name(file, "AHU: Heating Coil Valve Control Signal"),
        cooling_valve_tag=tag_name(file, "AHU: Cooling Coil Valve Control Signal"),
        outdoor_damper_tag=tag_name(file, "AHU: Outdoor Air Damper Control Signal"),
        temperature_unit="F",
        calibration_s=calibration_s,
        supply_air_setpoint_tag=None if single_zone else tag_name(file, "AHU: Supply Air Temperature Set Point"),
        heating_setpoint_tag=tag_name(file, "AHU: Supply Air Temperature Heating Set Point") if single_zone else None,
        cooling_setpoint_tag=tag_name(file, "AHU: Supply Air Temperature Cooling Set Point") if single_zone else None,
    )


@dataclass(frozen=True, slots=True)
class LbnlConfig:
    label: str
    detect: dict[str, Any]
    modes: bool = False
    forecaster: str = "model"
    afdd: float | None = None
    """Guideline 36 conditions with this calibration_s (None: not configured); only ahu_fault alerts count."""


TAIL = {"score_tail_calibration": True}
"""The per-tag surprise bounded by the tag's own excursion record (detect/tail.py): chosen on the tuning days."""


def configs(forecaster: str = "model") -> list[LbnlConfig]:
    """The configurations compared; the first is the headline.  Holt's headline and per-tag rows
    follow when the headline forecaster is another, to show what the forecaster changes."""
    asset = {"asset_enabled": True}
    out = [
        LbnlConfig(f"{forecaster}: Guideline 36 conditions + modes (ahu_fault alerts)", {}, True, forecaster, 0.0),
        LbnlConfig(f"{forecaster}: per-tag (tail) + asset + modes", asset | TAIL, True, forecaster),
        LbnlConfig(f"{forecaster}: per-tag + asset + modes (no tail)", asset, True, forecaster),
        LbnlConfig(f"{forecaster}: per-tag (tail) + asset", asset | TAIL, False, forecaster),
        LbnlConfig(f"{forecaster}: per-tag (tail) only", TAIL, False, forecaster),
        LbnlConfig(f"{forecaster}: per-tag only (no tail)", {}, False, forecaster),
    ]
    if forecaster != "holt":
        out += [
            LbnlConfig("holt: per-tag (tail) + asset + modes", asset | TAIL, True, "holt"),
            LbnlConfig("holt: per-tag (tail) only", TAIL, False, "holt"),
        ]
    return out


def run_evaluation(
    out: Path,
    data_dir: Path | None = None,
    *,
    forecaster: str = "model",
    ablation: bool = True,
    meta: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> LbnlResult:
    """Every configuration over every day; ``report.md`` and ``report.json`` in ``out``.

    Each forecaster's forecasts are computed once (:class:`~.replay.SharedForecasters`) and
    shared by its configurations.
    """
    from ..settings import DetectSettings
    from .replay import SharedForecasters, replay_settings

    started = time.perf_counter()
    days = lbnl_days(data_dir)
    log(f"lbnl: {len(days)} days ({sum(d.faulted for d in days)} faulted)")
    results = []
    shared = SharedForecasters()
    for c in configs(forecaster)[: None if ablation else 1]:
        log(f"lbnl: {c.label}")
        overrides = dict(c.detect)
        if c.detect.get("asset_enabled"):
            overrides |= asset_warmup()
        afdd = c.afdd
        assets = tuple(mode_rules(f, None if afdd is None else afdd_rules(f, afdd)) for f in LBNL_FILES)
        detect = DetectSettings(**overrides, assets=assets if c.modes else ())
        scored = lbnl_days(data_dir, mode_tags=True, setpoints=afdd is not None) if c.modes else days
        settings = replay_settings(c.forecaster, detect)
        kinds = None if afdd is None else frozenset({"ahu_fault"})
        results.append(evaluate_lbnl(scored, settings, c.label, forecaster=shared[c.forecaster], kinds=kinds))
    notes = [
        "**Headline: ASHRAE Guideline 36's fault conditions** (`detect/afdd.py`, `[detect.assets.afdd]`): the "
        "guideline's AHU conditions FC2-FC13 (mixed air outside return/outdoor air, supply air against mixed air "
        "plus fan heat in each operating state, set point not met with a valve fully open, hunting, outdoor air "
        "unfit for the state) with the guideline's published tolerances and delays (2 °F sensor errors, 5 °F for "
        "the mixed air, 2 °F fan heat, 5-minute averages, ModeDelay 15 min, AlarmDelay 30 min), mapped to each "
        "AHU's points (the supply-air set points are read for it). Nothing in them was fitted to these files. The "
        "one choice, whether each condition first learns the healthy unit's offset on the warm-up day "
        "(`calibration_s`), was made on the tuning days only by a rule fixed beforehand "
        "(`bench/lbnl/tune_afdd.py`, `docs/results/lbnl/tuning_afdd.json`: detection minus false-positive rate "
        "0.601 without, 0.612 with — within the 0.05 margin, so no calibration). A feasibility look at the "
        "tuning days, computed from the CSVs outside the daemon, came before that rule. The headline counts only "
        "`ahu_fault` alerts (the other detectors still run in the same replay); the rows below it count every "
        "alert, as before. The held-out days were replayed with these conditions once, after the choice.",
        "",
        "Configurations: *per-tag only* = forecast-residual scores per tag (the calibrated surprise of "
        "detect/surprise.py, k of n or a severe tick); *(tail)* = with `detect.score_tail_calibration` "
        "(detect/tail.py); "
        "*+ asset* = `detect.asset_enabled` (the asset-level detector at its defaults: PCA T² and Q of the AHU's "
        "tag vector and an EWMA chart per steady tag, learned on the whole warm-up day and frozen when it ends); "
        "*+ modes* = operating-mode rules (detect.assets.modes) on two more "
        "tags, the supply-fan status and the occupancy indicator: mode `off` (fan status 0) pauses detection, "
        "mode `unoccupied` (occupancy 0) is detected, and any change holds detection off for "
        f"{MODE_HOLDOFF_S / 60:.0f} minutes (an AHU's start-up). No static limits or rate limits: the dataset "
        "comes with none, and limits read off the scored days would be tuning on the test set.",
        "",
        "Labels: the CSV's `Fault Detection Ground Truth`. Where LBNL's inventory disagrees (MZVAV-2-1 on "
        "2007-08-30: a heating-coil leak, stage 3, in the inventory; fault-free in the CSV) the CSV's label is used.",
        "",
        "A day-level score with 'any alert that day' is strict for a streaming detector: one alert in 1,440 "
        "minutes flags a fault-free day. The alert rate and the alert count per day (with its AUC) show how "
        "far from that the detector is.",
        "",
        "**Why fault-free days were flagged** (issue 13; `bench/lbnl/why_flagged.py` on the 16 fault-free days "
        "of the tuning half, Holt, the previous headline: 53 openings, 16/16 days): (1) about half were single "
        "severe ticks of *held control signals* that step when commanded — a damper or valve holds for hours "
        "(its forecast sure to one quantum), then steps by 0.4-0.6 at a schedule or economizer change: 10-30 "
        "forecast spreads; (2) the other half were k-of-n openings on *ramps the one-step forecast lags* "
        "(Holt's fixed α = 0.3 trails a supply- or return-air temperature ramping at a start-up, 8:00 occupancy "
        "or a cooling stage by 4-6 spreads for ten minutes); both recur every day. The calibrated scale cannot "
        "learn them (it is winsorised so one spike cannot inflate it, and diluted by hours of exact zeros). "
        "`detect.score_tail_calibration` (detect/tail.py) bounds each tick's surprise by the tag's own record: "
        "−log10 of the rate of its excursions of that size (counted when they end, so a lasting fault keeps its "
        "surprise); an excursion a tag made once in the warm-up day scores about 3.2 decades, under the 3.5 "
        "threshold, one a level (√2) larger than any it made keeps its full surprise. On the tuning half it took "
        "the fault-free days from 16/16 to 12/16 (openings 53 → 23) with the faulted days still 19/19. What stays "
        "is mostly *first-time* behaviour that one warm-up day cannot show: an economizer switch (dampers 1.0 → "
        "0.4) the warm-up day never made, a weekday's 8:00 return-air rise after a Sunday warm-up.",
        "",
        "**The asset detector was not scoring MZVAV with the mode rules** (found here): its warm-up counted "
        f"{ASSET_WARMUP_ROWS} learned ticks, but the `off` mode pauses it at night, so a warm-up day gave about "
        "700 and the model went on learning through the scored day (MZVAV's never froze inside it; SZVAV's froze "
        "part-way, after learning the start of the scored day). `detect.asset_warmup_ends_with_history` now "
        "freezes the model when the history replay ends. Scoring for real, the asset detector (learned on one "
        "day) flags fault-free days too: on the tuning half 15/16 with tail calibration (25 asset openings, led "
        "by the outdoor-air temperature — weather, not the unit's state — and temperatures and dampers whose "
        "day differs from the warm-up day). Tried on the tuning half, not adopted: warming up on the 2 nearest "
        "fault-free days (13/16 fault-free, 19/19 faulted; twice the replay time), `asset_learn_rate` 0.01 "
        "(16/16), no severe-at-once opening (8/16 fault-free but 15/19 faulted).",
    ]
    write_report(
        results,
        out,
        {**(meta or {}), "dataset": "lbnl", "seconds": round(time.perf_counter() - started, 1), "notes": notes},
    )
    return results[0]
