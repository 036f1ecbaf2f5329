"""Issue 14 on LBNL, round 2 of ``estimate_rate``: a day-long window, exact or EWMA, judged the way the daemon does.

Follows ``docs/results/lbnl/estimate_rate_day/RULE.md`` (committed before any run of this script) mechanically:
``rule`` runs the tuning scan of the three candidates, chooses one, confirms its alerts on the tuning days and,
only if both of the rule's tuning bars pass, replays the held-out days once with it.  Every replay is
``estimate_rate.py``'s (the ``asset model (estimates every 16) + holt`` replay of ``model_residuals.py
--asset-with-holt``, units ``("degF",)``, 3 sigmas), and each is scored also as two comparison views of the same
replay: Holt's per-tag residuals (``forecast_residual``) and the estimate-now alerts (``<tag>#estimate``).

Day score: the peak of the detector's share (max over the watched tags) over the ticks it judges (live, and at
least ``judge_after`` live ticks in), read from the daemon's detector during the replay (instrumented here, not
changed).  The asset model's estimates come from ``--cache`` (``residual_dump.py`` fills it, per split).

    PYTHONPATH=daemon:bench/lbnl:bench nice -n 10 python bench/lbnl/estimate_rate_day.py rule --cache /tmp/lbnl19/cache
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from estimate_rate import PEAKS, UNITS, auc, instrument, rate_view
from model_residuals import _DETECT, OUT, _row

from _machine import write_result
from sentinelle.evaluation import lbnl
from sentinelle.evaluation.chiller_report import asset_checkpoint
from sentinelle.evaluation.lbnl_report import LbnlResult, day_scores
from sentinelle.evaluation.replay import SharedForecasters, replay_settings
from sentinelle.records import AlertEvent
from sentinelle.settings import DetectSettings

EVERY = 16
CANDIDATES: dict[str, dict[str, Any]] = {
    "B": {"window_kind": "sliding", "window_steps": 1440, "judge_after_steps": 720},
    "A": {"window_kind": "ewma", "window_steps": 1440, "judge_after_steps": 0},
    "C": {"window_kind": "sliding", "window_steps": 720, "judge_after_steps": 720},
}
"""In the rule's tie order (B, then A, then C)."""
GRID = tuple(round(0.01 * i, 2) for i in range(1, 61))
MAX_FREE = 3
"""Tuning fault-free days the threshold may flag (of 16: issue 14's 6 of 30 ≈ 20 %)."""
MIN_AUC = 0.85
RESULTS = OUT.parent / "estimate_rate_day"


def _estimate_now(e: AlertEvent) -> bool:
    return e.kind == "relation" and e.subject.endswith("#estimate")


def _holt(e: AlertEvent) -> bool:
    return e.kind == "forecast_residual"


def _replay(
    days: list[lbnl.Day], split: str, cand: dict[str, Any], max_share: float, shared: SharedForecasters
) -> tuple[list[LbnlResult], dict[str, float]]:
    """One replay of the split's days: the rate alerts' result, the two comparison views', each day's score."""
    detect = DetectSettings(
        **_DETECT,
        asset_estimate_rate_enabled=True,
        asset_estimate_rate_units=UNITS,
        asset_estimate_rate_window_steps=cand["window_steps"],
        asset_estimate_rate_window_kind=cand["window_kind"],
        asset_estimate_rate_judge_after_steps=cand["judge_after_steps"],
        asset_estimate_rate_max_share=max_share,
    )
    peaks: dict[str, float] = {}
    started = time.perf_counter()

    def progress(name: str) -> None:
        peaks[name] = max(PEAKS) if PEAKS else 0.0  # no judged tick: never flagged
        PEAKS.clear()
        print(f"  {name} {time.perf_counter() - started:.0f} s", flush=True)

    PEAKS.clear()
    tag = f"{cand['window_kind']} T={cand['window_steps']} judge after {cand['judge_after_steps']}"
    results = lbnl.evaluate_lbnl_views(
        days,
        replay_settings("holt", detect),
        [
            (f"estimate_rate {tag} max_share={max_share}: #rate alerts", rate_view),
            ("same replay: Holt per-tag residuals alone (forecast_residual, every slot)", _holt),
            ("same replay: estimate-now alerts (relation #estimate, every 16)", _estimate_now),
        ],
        forecaster=shared["holt"],
        estimator=shared.estimator(asset_checkpoint(), every_steps=EVERY),
        only_split=split,
        progress=progress,
    )
    return results, peaks


def _names(result: LbnlResult, faulted: bool) -> list[str]:
    return [f"{d.file}/{d.date}" for d in result.days if d.faulted == faulted]


def _auc(result: LbnlResult, peaks: dict[str, float]) -> float:
    return auc([peaks[n] for n in _names(result, True)], [peaks[n] for n in _names(result, False)])


def _threshold(result: LbnlResult, peaks: dict[str, float]) -> float | None:
    """The smallest grid share at which at most MAX_FREE fault-free day scores reach it."""
    neg = [peaks[n] for n in _names(result, False)]
    return next((g for g in GRID if sum(v >= g for v in neg) <= MAX_FREE), None)


def _summary(results: list[LbnlResult], peaks: dict[str, float], threshold: float | None) -> dict[str, Any]:
    rate = results[0]
    out: dict[str, Any] = {
        "label": rate.label,
        "day_score_auc": round(_auc(rate, peaks), 3),
        "rate_alerts": day_scores(rate.days).summary(),
        "seconds": round(rate.seconds),
        "peaks": {k: round(v, 4) for k, v in peaks.items()},
        "faulted": {f"{d.file}/{d.date}": d.faulted for d in rate.days},
        "fault_type": {f"{d.file}/{d.date}": d.fault_type for d in rate.days},
        "rate_alerts_per_day": {f"{d.file}/{d.date}": d.alerts_opened for d in rate.days},
        "same_replay": [_row(r) for r in results[1:]],
    }
    if threshold is not None:
        pos = [peaks[n] for n in _names(rate, True)]
        neg = [peaks[n] for n in _names(rate, False)]
        out["by_threshold"] = {
            "max_share": threshold,
            "faulted_flagged": f"{sum(v >= threshold for v in pos)}/{len(pos)}",
            "fault_free_flagged": f"{sum(v >= threshold for v in neg)}/{len(neg)}",
        }
    return out


def _show(row: dict[str, Any]) -> None:
    keys = ("label", "day_score_auc", "by_threshold", "rate_alerts")
    print(json.dumps({k: row[k] for k in keys if k in row}), flush=True)


def _write(name: str, settings: dict[str, Any], rows: Any, **extra: Any) -> None:
    write_result(RESULTS / name, f"lbnl_estimate_rate_day_{name.removesuffix('.json')}", "cpu", settings, rows, **extra)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("rule",))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/lbnl19/cache"))
    ap.add_argument("--resume", action="store_true", help="take step 1 from the written tuning_scan.json")
    args = ap.parse_args()
    instrument()
    days = lbnl.lbnl_days()
    shared = SharedForecasters(cache_dir=args.cache, model_threads=1)
    started = time.perf_counter()
    fixed = {"units": UNITS, "every": EVERY, "sigmas": 3.0}
    # 1. The tuning scan: one replay per candidate, max_share 1 (the day score does not depend on it).
    rows: dict[str, dict[str, Any]] = {}
    if args.resume:
        rows = {r["candidate"]: r for r in json.loads((RESULTS / "tuning_scan.json").read_text())["results"]}
    for name, cand in CANDIDATES.items():
        if name in rows:
            continue
        results, peaks = _replay(days, "tuning", cand, 1.0, shared)
        rows[name] = {"candidate": name, **cand} | _summary(results, peaks, _threshold(results[0], peaks))
        _show(rows[name])
    best = max(CANDIDATES, key=lambda n: (rows[n]["day_score_auc"], -list(CANDIDATES).index(n)))
    chosen = {"candidate": best, **CANDIDATES[best], "max_share": rows[best].get("by_threshold", {}).get("max_share")}
    passed_auc = rows[best]["day_score_auc"] >= MIN_AUC and chosen["max_share"] is not None
    print("chosen", json.dumps(chosen), "tuning AUC bar", passed_auc, flush=True)
    _write("tuning_scan.json", fixed, list(rows.values()), chosen=chosen, passed_auc=passed_auc)
    if not passed_auc:
        print("rule: tuning AUC below the bar; no confirm, no held-out replay", flush=True)
        return
    # 2. The confirming replay on the tuning days at the chosen setting: the alerts themselves.
    cand = CANDIDATES[best]
    results, peaks = _replay(days, "tuning", cand, chosen["max_share"], shared)
    confirm = _summary(results, peaks, chosen["max_share"])
    free = confirm["rate_alerts"]
    passed = int(free["fp"]) <= MAX_FREE
    _show(confirm)
    print("confirm: fault-free tuning days flagged by the alerts", free["fp"], "pass", passed, flush=True)
    _write("tuning_confirm.json", fixed | chosen, [confirm], passed=passed)
    if not passed:
        print("rule: the alerts flag too many tuning fault-free days; no held-out replay", flush=True)
        return
    # 3. The held-out days, once.
    results, hpeaks = _replay(days, "heldout", cand, chosen["max_share"], shared)
    held = _summary(results, hpeaks, chosen["max_share"])
    _show(held)
    allp = peaks | hpeaks
    faulted = confirm["faulted"] | held["faulted"]
    pos = [allp[n] for n, f in faulted.items() if f]
    neg = [allp[n] for n, f in faulted.items() if not f]
    ta, ha = confirm["rate_alerts"], held["rate_alerts"]
    all_days = {
        "day_score_auc": round(auc(pos, neg), 3),
        "faulted_flagged_by_alerts": f"{int(ta['tp']) + int(ha['tp'])}/{len(pos)}",
        "fault_free_flagged_by_alerts": f"{int(ta['fp']) + int(ha['fp'])}/{len(neg)}",
    }
    print("all days", json.dumps(all_days), flush=True)
    _write("heldout.json", fixed | chosen, [held], all_days=all_days, seconds=round(time.perf_counter() - started))


if __name__ == "__main__":
    main()
