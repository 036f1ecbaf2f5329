"""Dump the asset model's estimates of now (and the values they estimate) for the LBNL days of one half.

A diagnostic for issue 14's LBNL bar (``docs/results/lbnl/estimate_evidence/``): the replay is exactly the
``asset model (estimates every 16) + holt`` one of ``model_residuals.py --asset-with-holt`` (Holt every slot,
tail calibration, horizon residual, no mode rules); a wrapper around the estimator records, per tick, the
slot's time, the tags' values and the estimate's quantiles, into ``<out>/<split>-estimates.npz``.  The
estimator's answers are also kept (``SharedForecasters`` cache) so that later replays of the same days with
other detection settings cost Holt's time only.

    PYTHONPATH=daemon nice -n 10 python bench/lbnl/residual_dump.py --split tuning --out /tmp/lbnl17
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
from model_residuals import _DETECT, _kinds, _row

from sentinelle.evaluation import lbnl
from sentinelle.evaluation.chiller_report import asset_checkpoint
from sentinelle.evaluation.replay import SharedForecasters, replay_settings
from sentinelle.records import FloatArray, WindowBatch
from sentinelle.settings import DetectSettings

EVERY = 16


class Recorder:
    """The estimator, with every answer recorded: (ts, values, estimate quantiles), filed per day by :meth:`done`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.rows: dict[str, tuple[FloatArray, FloatArray, FloatArray]] = {}
        self.current: list[tuple[float, FloatArray, FloatArray]] = []

    def __call__(self, window: WindowBatch) -> FloatArray:
        est: FloatArray = self.inner(window)
        self.current.append((window.ts, window.values.copy(), est.copy()))
        return est

    def done(self, name: str) -> None:
        v = self.current
        self.rows[name] = (
            np.array([t for t, _, _ in v]),
            np.stack([x for _, x, _ in v]),
            np.stack([e for _, _, e in v]),
        )
        self.current = []


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", choices=("tuning", "heldout"), default="tuning")
    ap.add_argument("--out", type=Path, default=Path("/tmp/lbnl17"))
    args = ap.parse_args()
    started = time.perf_counter()
    days = lbnl.lbnl_days()
    shared = SharedForecasters(cache_dir=args.out / "cache", model_threads=1)
    rec = Recorder(shared.estimator(asset_checkpoint(), every_steps=EVERY))

    def progress(name: str) -> None:
        rec.done(name)
        print(name, f"{time.perf_counter() - started:.0f} s", flush=True)
        shared.save()
        with (args.out / f"{args.split}-estimates.pkl").open("wb") as f:
            pickle.dump(rec.rows, f)

    results = lbnl.evaluate_lbnl_views(
        days,
        replay_settings("holt", DetectSettings(**_DETECT)),
        [("relation", _kinds("relation")), ("forecast_residual", _kinds("forecast_residual"))],
        forecaster=shared["holt"],
        estimator=rec,
        only_split=args.split,
        progress=progress,
    )
    rows = [_row(r) | {"alerts_per_day": {f"{d.file}/{d.date}": d.alerts_opened for d in r.days}} for r in results]
    (args.out / f"{args.split}-alerts.json").write_text(json.dumps(rows, indent=1))
    print(json.dumps({"seconds": round(time.perf_counter() - started)}), flush=True)


if __name__ == "__main__":
    main()
