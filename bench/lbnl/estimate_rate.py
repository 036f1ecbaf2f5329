"""Issue 14 on LBNL: the slow exceedance-rate accumulator on the asset model's estimate residual (``estimate_rate``).

Follows ``docs/results/lbnl/estimate_rate/RULE.md`` (committed before any run of this script).  Every replay is
the ``asset model (estimates every 16) + holt`` one of ``model_residuals.py --asset-with-holt`` (Holt every
slot, tail calibration, horizon residual, no mode rules, the shipped asset checkpoint's estimates made on one
slot in 16) with ``detect.asset_estimate_rate_enabled`` on, units ``("degF",)``, 3 sigmas.  The detector is
instrumented here (not changed): each day's score is the peak, over the scored part of the day (live ticks)
and the watched tags, of its share of surprising ticks.  The asset model's estimates are cached in
``--cache`` (``residual_dump.py`` fills it for the tuning days).

    scan    --split tuning: both candidate windows (360, 720), the day-score AUC and the threshold rule
    confirm --split tuning --window T --max-share P: the alerts at the chosen setting
    heldout --window T --max-share P: the held-out days once, beside Holt's per-tag residuals at refresh 16

    PYTHONPATH=daemon:bench nice -n 10 python bench/lbnl/estimate_rate.py scan
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from model_residuals import _DETECT, OUT, _kinds, _row

from _machine import write_result
from sentinelle.detect.detectors import estimate_rate
from sentinelle.evaluation import lbnl
from sentinelle.evaluation.chiller_report import asset_checkpoint
from sentinelle.evaluation.lbnl_report import LbnlResult, day_scores
from sentinelle.evaluation.replay import SharedForecasters, replay_settings
from sentinelle.records import AlertEvent
from sentinelle.settings import DetectSettings

EVERY = 16
WINDOWS = (360, 720)
UNITS = ("degF",)
GRID = tuple(round(0.10 + 0.01 * i, 2) for i in range(51))
MAX_FREE = 3
"""Tuning fault-free days the threshold may flag (of 16: issue 14's 6 of 30 ≈ 20 %)."""
RESULTS = OUT.parent / "estimate_rate"

PEAKS: list[float] = []
"""The instrumented detector's shares over judged live ticks and watched tags, for the day being replayed."""


def instrument() -> None:
    """Record the detector's share on every tick it judges (live, ``judge_after`` live ticks in) into PEAKS."""
    cls = estimate_rate.EstimateRateDetector
    observe = cls.observe

    def observed(self: Any, tick: Any) -> Any:
        out = observe(self, tick)
        if not tick.replay and int(self.live[0]) >= self.judge_after and self.watched.any():
            PEAKS.append(float(np.max(self.share[self.watched])))
        return out

    cls.observe = observed  # type: ignore[method-assign]


def rate_view(e: AlertEvent) -> bool:
    return e.kind == "relation" and e.subject.endswith("#rate")


def auc(pos: list[float], neg: list[float]) -> float:
    p, n = np.asarray(pos), np.asarray(neg)
    return float(((p[:, None] > n[None, :]).sum() + 0.5 * (p[:, None] == n[None, :]).sum()) / (len(p) * len(n)))


def _replay(
    days: list[lbnl.Day], split: str, window: int, max_share: float, shared: SharedForecasters
) -> tuple[LbnlResult, dict[str, float]]:
    """One replay of the split's days; the rate alerts' result and each day's peak share."""
    detect = DetectSettings(
        **_DETECT,
        asset_estimate_rate_enabled=True,
        asset_estimate_rate_units=UNITS,
        asset_estimate_rate_window_steps=window,
        asset_estimate_rate_max_share=max_share,
    )
    peaks: dict[str, float] = {}
    started = time.perf_counter()

    def progress(name: str) -> None:
        peaks[name] = max(PEAKS) if PEAKS else float("nan")
        PEAKS.clear()
        print(f"  {name} peak {peaks[name]:.3f} {time.perf_counter() - started:.0f} s", flush=True)
        shared.save()

    PEAKS.clear()
    (result,) = lbnl.evaluate_lbnl_views(
        days,
        replay_settings("holt", detect),
        [(f"estimate_rate T={window} max_share={max_share}: #rate alerts", rate_view)],
        forecaster=shared["holt"],
        estimator=shared.estimator(asset_checkpoint(), every_steps=EVERY),
        only_split=split,
        progress=progress,
    )
    return result, peaks


def _scores(result: LbnlResult, peaks: dict[str, float]) -> tuple[list[float], list[float]]:
    pos = [peaks[f"{d.file}/{d.date}"] for d in result.days if d.faulted]
    neg = [peaks[f"{d.file}/{d.date}"] for d in result.days if not d.faulted]
    return pos, neg


def _threshold(neg: list[float]) -> float | None:
    """The smallest grid share at which at most MAX_FREE fault-free day scores reach it."""
    return next((g for g in GRID if sum(v >= g for v in neg) <= MAX_FREE), None)


def _summary(result: LbnlResult, peaks: dict[str, float], threshold: float | None) -> dict[str, Any]:
    pos, neg = _scores(result, peaks)
    out: dict[str, Any] = {
        "label": result.label,
        "day_score_auc": round(auc(pos, neg), 3),
        "alerts": day_scores(result.days).summary(),
        "seconds": round(result.seconds),
        "peaks": {k: round(v, 4) for k, v in peaks.items()},
        "faulted": {f"{d.file}/{d.date}": d.faulted for d in result.days},
        "rate_alerts_per_day": {f"{d.file}/{d.date}": d.alerts_opened for d in result.days},
    }
    if threshold is not None:
        out["by_threshold"] = {
            "max_share": threshold,
            "faulted_flagged": f"{sum(v >= threshold for v in pos)}/{len(pos)}",
            "fault_free_flagged": f"{sum(v >= threshold for v in neg)}/{len(neg)}",
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("scan", "confirm", "heldout"))
    ap.add_argument("--split", default="tuning", choices=("tuning",))
    ap.add_argument("--window", type=int, default=None)
    ap.add_argument("--max-share", type=float, default=None)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/lbnl17/cache"))
    args = ap.parse_args()
    instrument()
    days = lbnl.lbnl_days()
    shared = SharedForecasters(cache_dir=args.cache, model_threads=1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if args.what == "scan":
        rows = []
        for window in WINDOWS:
            result, peaks = _replay(days, "tuning", window, 1.0, shared)
            _, neg = _scores(result, peaks)
            rows.append(_summary(result, peaks, _threshold(neg)))
            print(json.dumps({k: rows[-1][k] for k in ("label", "day_score_auc", "by_threshold")}), flush=True)
        best = max(rows, key=lambda r: (r["day_score_auc"], WINDOWS[rows.index(r)]))
        chosen = {"window": WINDOWS[rows.index(best)], "max_share": best["by_threshold"]["max_share"]}
        print("chosen", json.dumps(chosen), flush=True)
        write_result(
            RESULTS / "tuning_scan.json",
            "lbnl_estimate_rate_scan",
            "cpu",
            {"units": UNITS, "every": EVERY},
            rows,
            chosen=chosen,
            seconds=round(time.perf_counter() - started),
        )
        return
    assert args.window is not None and args.max_share is not None
    if args.what == "confirm":
        result, peaks = _replay(days, "tuning", args.window, args.max_share, shared)
        row = _summary(result, peaks, args.max_share)
        print(json.dumps({k: row[k] for k in ("label", "day_score_auc", "alerts", "by_threshold")}), flush=True)
        write_result(
            RESULTS / "tuning_confirm.json",
            "lbnl_estimate_rate_confirm",
            "cpu",
            {"units": UNITS, "every": EVERY, "window": args.window, "max_share": args.max_share},
            [row],
            seconds=round(time.perf_counter() - started),
        )
        return
    result, peaks = _replay(days, "heldout", args.window, args.max_share, shared)
    rows = [_summary(result, peaks, args.max_share)]
    print(json.dumps({k: rows[0][k] for k in ("label", "day_score_auc", "alerts", "by_threshold")}), flush=True)
    s = replay_settings("holt", DetectSettings(**_DETECT))
    s = s.model_copy(update={"forecast": s.forecast.model_copy(update={"refresh_every_steps": EVERY})})
    (holt,) = lbnl.evaluate_lbnl_views(
        days,
        s,
        [(f"holt@{EVERY}: per-tag residuals alone (forecast_residual)", _kinds("forecast_residual"))],
        forecaster=shared["holt"],
        only_split="heldout",
    )
    rows.append(_row(holt))
    print(json.dumps(rows[-1]), flush=True)
    write_result(
        RESULTS / "heldout.json",
        "lbnl_estimate_rate_heldout",
        "cpu",
        {"units": UNITS, "every": EVERY, "window": args.window, "max_share": args.max_share},
        rows,
        seconds=round(time.perf_counter() - started),
    )


if __name__ == "__main__":
    main()
