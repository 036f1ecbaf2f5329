"""Issue 14's LBNL rows: the univariate model's and the asset model's residuals beside Holt's, day level.

One replay per forecaster over the same days (no mode rules, tail calibration on, as the
``per-tag residuals alone (tail)`` rows of ``docs/results/lbnl/report.md``), scored once per view:

* ``holt`` (every slot, as the report's row) and ``holt@R`` (the same cadence as the model, so
  that the comparison with the model is at one cadence): ``forecast_residual`` alerts;
* ``model@R``: the univariate model's forecasts, refreshed for each tag on one slot in ``R``
  (``forecast.refresh_every_steps``: the daemon's documented cadence for a forecaster that
  cannot forecast every tag every slot on the CPU), with the asset model's estimate of each tag
  from the others now made on one slot in ``R`` (``forecast.asset_estimate_every_steps``) and
  the horizon residual (``detect.horizon_enabled``, ``detect/detectors/horizon.py``).  Views: the
  univariate model's residuals alone (``forecast_residual``), the estimate-now alone
  (``relation``: ``<tag>#estimate``), the horizon residual alone (``forecast_drift``), and the
  asset model's residuals alone as the chiller report defines them (all three).

Found on the first run: with ``refresh_every_steps`` R > 1 the forecast batch carries only the rows due
that tick, and so does its estimate (``ForecastBatcher._with_estimate``: ``estimate[fb.rows]``), so the
estimate-now detector sees each tag on one tick in R and its k-of-n (3 of 5) can never open; the
horizon residual likewise exists only on the ticks H after a refresh.  Those views of the ``model@R``
replay are empty by construction, not by the model.  ``--asset-with-holt`` runs the asset model's rows
with Holt forecasting every slot instead (the estimate made on one slot in R and held, per
``forecast.asset_estimate_every_steps``, reaches the detector every tick).

Why a cadence: on this 2-core VM the univariate model took 2153 s for one row over the LBNL
days at every slot (the report's note); with ``R`` = 16 (the forecast horizon, the largest
refresh the settings allow) the forecasts cost a sixteenth.  Nothing here is tuned: detection
settings are the report's; issue 14's bar (AUC ≥ 0.85 with ≤ 6/30 fault-free days flagged) is
read off all days, the held-out half beside it.

    PYTHONPATH=daemon SENTINELLE_DATA_DIR=../shared/data nice -n 10 python bench/lbnl/model_residuals.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from _tries import day_try

from _machine import write_result
from sentinelle.evaluation import lbnl
from sentinelle.evaluation.chiller_report import asset_checkpoint
from sentinelle.evaluation.lbnl_report import LbnlResult, alerts_per_day, day_scores
from sentinelle.evaluation.replay import SharedForecasters, replay_settings
from sentinelle.records import AlertEvent
from sentinelle.settings import DetectSettings

_DETECT: dict[str, Any] = {**lbnl.TAIL, "horizon_enabled": True}
"""The rows' detection settings: the report's tail calibration, and the horizon residual."""
OUT = Path(__file__).resolve().parents[2] / "docs" / "results" / "lbnl" / "model_residuals.json"


def _kinds(*kinds: str) -> lbnl.View:
    keep = frozenset(kinds)

    def view(e: AlertEvent) -> bool:
        return e.kind in keep

    return view


def _row(r: LbnlResult) -> dict[str, Any]:
    held = [d for d in r.days if d.split == "heldout"]
    return {
        "label": r.label,
        **alerts_per_day(r.days),
        "all": day_scores(r.days).summary(),
        "heldout": day_scores(held).summary(),
        "seconds": round(r.seconds),
        **{k: v for k, v in day_try(r.days).items() if k in ("fault_free_flagged", "faulted_missed")},
    }


def _asset_with_holt(
    days: list[lbnl.Day],
    detect: DetectSettings,
    shared: SharedForecasters,
    r_every: int,
    only_split: str | None,
    write: bool,
    started: float,
) -> None:
    """The asset model's rows with Holt forecasting every slot: the estimate (made on one slot in R, held for
    the next R − 1 by ``forecast.asset_estimate_every_steps``) reaches the detector on every tick, which it does
    not when the univariate model's rows are refreshed every R (the batch then carries only the due rows')."""
    est = shared.estimator(asset_checkpoint(), every_steps=r_every)
    tag = f"asset model (estimates every {r_every}) + holt"
    rows = lbnl.evaluate_lbnl_views(
        days,
        replay_settings("holt", detect),
        [
            (f"{tag}: estimate-now alone (relation #estimate)", _kinds("relation")),
            (
                f"{tag}: residuals alone (estimate-now + horizon + per-tag)",
                _kinds("forecast_residual", "forecast_drift", "relation"),
            ),
            (f"{tag}: per-tag residuals alone (forecast_residual)", _kinds("forecast_residual")),
        ],
        forecaster=shared["holt"],
        estimator=est,
        only_split=only_split,
        progress=lambda name: print(f"  {name} {time.perf_counter() - started:.0f} s", flush=True),
    )
    out = [_row(r) for r in rows]
    for o in out:
        print(json.dumps({k: o[k] for k in ("label", "auc", "all", "heldout", "seconds")}), flush=True)
    if write:
        write_result(
            OUT.with_name("model_residuals_asset.json"),
            "lbnl_asset_model_residuals",
            "cpu",
            {"asset_estimate_every_steps": r_every, "forecaster": "holt", "detect": _DETECT},
            out,
            only_split=only_split,
            seconds=round(time.perf_counter() - started),
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=16, help="model refresh and asset estimate cadence (slots)")
    ap.add_argument("--only-split", default=None, help="score only this half (a smoke run)")
    ap.add_argument(
        "--asset-with-holt",
        action="store_true",
        help="only the asset model's replay with Holt as the forecaster (every slot), estimates made every R",
    )
    ap.add_argument("--file", default=None, help="only this file's days, e.g. SZVAV (a smoke run; not written)")
    args = ap.parse_args()
    r_every = args.every
    days = lbnl.lbnl_days()
    if args.file is not None:
        days = [d for d in days if d.file == args.file]
    shared = SharedForecasters(model_threads=1)
    detect = DetectSettings(**_DETECT)
    rows: list[LbnlResult] = []
    started = time.perf_counter()
    if args.asset_with_holt:
        _asset_with_holt(days, detect, shared, r_every, args.only_split, args.file is None, started)
        return
    for name, every in (("holt", 1), ("holt", r_every)):
        s = replay_settings(name, detect)
        s = s.model_copy(update={"forecast": s.forecast.model_copy(update={"refresh_every_steps": every})})
        tag = name if every == 1 else f"{name}@{every}"
        rows += lbnl.evaluate_lbnl_views(
            days,
            s,
            [
                (f"{tag}: per-tag residuals alone (forecast_residual)", _kinds("forecast_residual")),
                (f"{tag}: horizon residual alone (forecast_drift)", _kinds("forecast_drift")),
            ],
            forecaster=shared[name],
            only_split=args.only_split,
        )
        print(json.dumps(_row(rows[-2])), flush=True)
    s = replay_settings("model", detect)
    s = s.model_copy(update={"forecast": s.forecast.model_copy(update={"refresh_every_steps": r_every})})
    est = shared.estimator(asset_checkpoint(), every_steps=r_every)
    tag = f"model@{r_every}"
    rows += lbnl.evaluate_lbnl_views(
        days,
        s,
        [
            (f"{tag}: univariate model's per-tag residuals alone (forecast_residual)", _kinds("forecast_residual")),
            (f"{tag}: asset model's estimate-now alone (relation #estimate)", _kinds("relation")),
            (f"{tag}: horizon residual alone (forecast_drift)", _kinds("forecast_drift")),
            (
                f"{tag}: asset model's residuals alone (estimate-now + horizon + per-tag)",
                _kinds("forecast_residual", "forecast_drift", "relation"),
            ),
        ],
        forecaster=shared["model"],
        estimator=est,
        only_split=args.only_split,
        progress=lambda name: print(f"  {name} {time.perf_counter() - started:.0f} s", flush=True),
    )
    out = [_row(r) for r in rows]
    for o in out:
        print(json.dumps({k: o[k] for k in ("label", "auc", "all", "heldout", "seconds")}), flush=True)
    if args.file is None:
        write_result(
            OUT,
            "lbnl_model_residuals",
            "cpu",
            {"every_steps": r_every, "detect": _DETECT, "modes": False},
            out,
            only_split=args.only_split,
            seconds=round(time.perf_counter() - started),
        )


if __name__ == "__main__":
    main()
