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

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..forecast.base import Forecaster
from ..forecast.batcher import Estimator
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
    "HEADLINE",
    "LBNL_FILES",
    "LEAK_FRACTION",
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
    "evaluate_lbnl_views",
    "lbnl_days",
    "mode_rules",
    "monitored",
    "per_fault_type",
    "run_evaluation",
    "split_of",
    "tag_name",
    "warm_up_day",
    "warm_up_days",
    "with_the_rest",
    "write_report",
]


View = Callable[[AlertEvent], bool]
"""Which alerts of a replay predict a faulted day (one replay, several views: the detectors run independently)."""

VIEWS: dict[str, View] = {
    "all": lambda e: True,
    "ahu_fault": lambda e: e.kind == "ahu_fault",
    "guideline36": lambda e: e.kind == "ahu_fault" and "#APAR" not in e.subject and "#OAL" not in e.subject,
    "guideline36_leak": lambda e: e.kind == "ahu_fault" and "#APAR" not in e.subject,
    "residual": lambda e: e.kind == "forecast_residual",
    "asset": lambda e: e.kind in ("asset_state", "relation"),
    "statistical": lambda e: e.kind != "ahu_fault",
}
"""``guideline36``: the Guideline 36 conditions' alerts of a replay that also runs APAR's and the damper leak
condition's (their own subjects); ``guideline36_leak``: with the damper leak condition's (OAL);
``asset``: the asset model's (PCA T²/Q and EWMA charts, its estimate); ``statistical``: every alert but the rules'."""


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
    view: View = (lambda e: True) if kinds is None else (lambda e: e.kind in kinds)
    return evaluate_lbnl_views(days, settings, [(label, view)], progress, forecaster, only_split, warmup_days)[0]


def evaluate_lbnl_views(
    days: Sequence[Day],
    settings: Settings,
    views: Sequence[tuple[str, View]],
    progress: Callable[[str], None] | None = None,
    forecaster: Forecaster | None = None,
    only_split: str | None = None,
    warmup_days: int = WARMUP_DAYS,
    estimator: Estimator | None = None,
) -> list[LbnlResult]:
    """:func:`evaluate_lbnl` with one replay per day scored once per ``(label, view)``: the alerts the view keeps
    predict the day (each result's ``seconds`` is the shared replay's; ``estimator``: the asset model's
    estimates of now, scored by ``detectors/asset_estimate.py``)."""
    started = time.perf_counter()
    results: list[list[DayResult]] = [[] for _ in views]
    skipped: list[str] = []
    rates: list[list[tuple[list[float], float, bool]]] = [[] for _ in views]
    scored_events: list[list[tuple[list[AlertEvent], float, float]]] = [[] for _ in views]
    for day in days:
        if only_split is not None and split_of(day, days) != only_split:
            continue
        warm = warm_up_days(day, days, warmup_days)
        if not warm:
            skipped.append(f"{day.file}/{day.date} (no other fault-free day to warm up on)")
            continue
        rec = day_recording(day, warm)
        trace = replay(rec, settings, forecaster, estimator)
        start = float(rec.timestamps[rec.test_start])
        end = float(day.timestamps[-1]) + PERIOD_S
        midnight = float(day.timestamps[0])
        for v, (_, keep) in enumerate(views):
            kept = [e for e in trace.events if keep(e)]
            opened = sorted((e for e in kept if e.event == "opened" and e.event_ts >= start), key=lambda e: e.event_ts)
            openings = [e.event_ts for e in opened]
            first = int((openings[0] - midnight) // 60) if openings else -1
            by_kind = Counter(e.kind for e in opened)
            results[v].append(
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
            rates[v].append((openings, end - start, day.faulted))
            scored_events[v].append((kept, start, end))
        if progress is not None:
            progress(rec.name)
    seconds = time.perf_counter() - started
    return [
        LbnlResult(
            label=label,
            days=results[v],
            skipped=skipped,
            rate=alert_rate([(t, s) for t, s, _ in rates[v]]),
            rate_fault_free=alert_rate([(t, s) for t, s, f in rates[v] if not f]),
            seconds=seconds,
            kpis=alarm_kpis(scored_events[v]),
        )
        for v, (label, _) in enumerate(views)
    ]


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
    """One replay of every day, scored once per view: ``views`` = (label, :data:`VIEWS` key)."""

    views: tuple[tuple[str, str], ...]
    detect: dict[str, Any]
    modes: bool = False
    forecaster: str = "model"
    afdd: float | None = None
    """Guideline 36 conditions with this calibration_s (None: not configured)."""
    apar: float | None = None
    """With :attr:`afdd`: NIST's APAR rules too, at this εf (``outdoor_air_fraction_tolerance``; None: without)."""
    leak: float | None = None
    """With :attr:`afdd`: the damper leak condition OAL too, at this ``damper_leak_fraction`` (None: without)."""

    @property
    def label(self) -> str:
        return self.views[0][0]

    def afdd_settings(self, file: str) -> AfddSettings | None:
        """The AHU's ``[detect.assets.afdd]`` for this configuration (None: no rule-based conditions)."""
        if self.afdd is None:
            return None
        over: dict[str, Any] = {}
        if self.apar is not None:
            over |= {"apar_rules": True, "outdoor_air_fraction_tolerance": self.apar}
        # Explicit either way: the rule ships on, and the rows without it must stay without it.
        over["damper_leak_rule"] = self.leak is not None
        if self.leak is not None:
            over["damper_leak_fraction"] = self.leak
        return afdd_rules(file, self.afdd, **over)


TAIL = {"score_tail_calibration": True}
"""The per-tag surprise bounded by the tag's own excursion record (detect/tail.py): chosen on the tuning days."""
APAR_TOLERANCES = (0.3, 0.1)
"""APAR's published εf and the one alternative (``bench/lbnl/tune_apar.py``): neither joined the headline."""
LEAK_FRACTION = 0.05
"""The damper leak condition's (OAL) ``damper_leak_fraction``, chosen on the tuning days (``bench/lbnl/tune_leak.py``,
``docs/results/lbnl/tuning_leak.json``: 17/19 faulted, 3/16 fault-free against 0.1's 16/19, 3/16)."""
HEADLINE = "Guideline 36 + damper leak (OAL 0.05, chosen on the tuning days) + modes (ahu_fault alerts)"
RULES = "Guideline 36 conditions + modes (ahu_fault alerts)"
WITH_APAR = "Guideline 36 + OAL + APAR rules, εf 0.3 (published) + modes (ahu_fault alerts)"
REJECTED = "Guideline 36 + APAR, εf 0.1 (rejected on the tuning days) + modes (ahu_fault alerts)"
STATISTICAL = "per-tag (tail) + asset + modes"


def configs(forecaster: str = "model") -> list[LbnlConfig]:
    """The replays compared; the first view of the first is the headline.  Holt's rows follow when the
    headline forecaster is another, to show what the forecaster changes."""
    asset = {"asset_enabled": True}
    f = forecaster
    out = [
        LbnlConfig(
            (
                (f"{f}: {HEADLINE}", "guideline36_leak"),
                (f"{f}: {RULES}", "guideline36"),
                (f"{f}: {WITH_APAR}", "ahu_fault"),
            ),
            {},
            True,
            f,
            0.0,
            0.3,
            LEAK_FRACTION,
        ),
        LbnlConfig(
            ((f"{f}: {REJECTED}", "ahu_fault"),),
            {},
            True,
            f,
            0.0,
            0.1,
        ),
        LbnlConfig(
            (
                (f"{f}: {STATISTICAL}", "all"),
                (f"{f}: per-tag residuals alone (tail) + modes (forecast_residual alerts)", "residual"),
                (f"{f}: asset model alone + modes (asset_state, relation alerts)", "asset"),
            ),
            asset | TAIL,
            True,
            f,
        ),
        LbnlConfig(
            (
                (f"{f}: per-tag (tail) + asset", "all"),
                (f"{f}: per-tag residuals alone (tail) (forecast_residual alerts)", "residual"),
                (f"{f}: asset model alone (asset_state, relation alerts)", "asset"),
            ),
            asset | TAIL,
            False,
            f,
        ),
    ]
    if forecaster != "holt":
        out += [LbnlConfig(((f"holt: {HEADLINE}", "guideline36_leak"),), {}, True, "holt", 0.0, 0.3, LEAK_FRACTION)]
        out += [dataclasses.replace(out[2], forecaster="holt", views=((f"holt: {STATISTICAL}", "all"),))]
    return out


def with_the_rest(rules: Sequence[DayResult], rest: Sequence[DayResult]) -> DayScores:
    """Day-level counts when a day is flagged by either replay's alerts (the same days, in the same order): the
    rule-based conditions with the statistical detectors, which run independently of each other."""
    pairs = list(zip(rules, rest, strict=True))
    if any((a.file, a.date) != (b.file, b.date) for a, b in pairs):
        raise ValueError("the two replays scored different days")
    return day_scores([dataclasses.replace(a, alerts_opened=a.alerts_opened + b.alerts_opened) for a, b in pairs])


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
        assets = tuple(mode_rules(f, c.afdd_settings(f)) for f in LBNL_FILES)
        detect = DetectSettings(**overrides, assets=assets if c.modes else ())
        scored = lbnl_days(data_dir, mode_tags=True, setpoints=c.afdd is not None) if c.modes else days
        settings = replay_settings(c.forecaster, detect)
        views = [(label, VIEWS[key]) for label, key in c.views]
        results += evaluate_lbnl_views(scored, settings, views, forecaster=shared[c.forecaster])
    from .lbnl_notes import notes, summary

    meta = {**(meta or {}), "dataset": "lbnl", "seconds": round(time.perf_counter() - started, 1), "notes": notes()}
    write_report(results, out, meta | {"summary": summary(results, forecaster)})
    return results[0]
