"""The electricity experiment of issue 5, redone with a per-asset LoRA adapter.

French national electricity consumption, daily (``shared/data/electricity_fr``).
The original LLM study forecast 2014-10-31 .. 2014-12-31 (61 days) from data up
to 2014-10-30 and reported its errors in the daily sum of the 48 half-hourly MW
values (``48 × load_mw_mean``).  Here:

1. fine-tune a LoRA adapter of the base model on the load up to 2014-10-30 — the
   only data the held-out rules allow (``sentinelle.evaluation.heldout``) — with
   the default ``[finetune]`` settings (season 7 for the validation MASE) and
   ``--seeds`` seeds; nothing was tuned on the 61 test days;
2. forecast the 61 days from one origin (context: the 512 days up to 2014-10-30)
   with the base model, the adapters and the baselines (seasonal naive with a
   week and with 364 days, i.e. the same weekday a year before, AutoETS, Holt);
3. write the backtest report (``report.json``, ``report.md``, ``plots/``) and the
   study's own metrics in its unit beside its published figures (``study.md``,
   ``study.json``).

What a forecaster may legitimately use: the load up to 2014-10-30 (including
the same season of 2012 and 2013, which a 512-day context shows) and the
calendar.  Not the temperature of the test days (``temp_c`` is only known up to
2014-10-30, and a weather *forecast* is not in the data), and not the test days.

    .venv/bin/python bench/electricity_experiment.py --base runs/starter --out docs/results/electricity
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from sentinelle.evaluation.backtest import (
    LEVELS,
    BacktestPlan,
    ForecastFn,
    baseline_forecasters,
    run_backtest,
)
from sentinelle.evaluation.backtest_report import write_report
from sentinelle.evaluation.datasets import to_study_units
from sentinelle.evaluation.heldout import ELECTRICITY_HELDOUT_FROM_TS
from sentinelle.evaluation.history_data import cut, load_dataset
from sentinelle.evaluation.scores import study_metrics
from sentinelle.forecast.baselines import NaiveForecaster
from sentinelle.settings import FinetuneSettings

ROOT = Path(__file__).resolve().parents[1]
HORIZON = 61
PUBLISHED = {
    "exponential smoothing (study)": {"mae": 2.907e5, "max_error": 1.097e6},
    "Claude (study)": {"mae": 2.919e5},
    "Mistral-7B (study)": {"mae": 4.294e5},
    "LoRA-tuned Mistral-7B (study)": {"mae": 4.594e5},
    "GPT (study)": {"mae": 1.156e6},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="base checkpoint")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "electricity")
    ap.add_argument("--work", type=Path, default=None, help="adapters go here (default: <out>/adapters)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None, help="most fine-tuning steps (default: [finetune]'s)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    from sentinelle.forecast.engine import ModelForecaster
    from sentinelle.training.finetune import finetune

    series = load_dataset("electricity")
    train = cut(series, end=ELECTRICITY_HELDOUT_FROM_TS)
    assert train[0].timestamps[-1] < ELECTRICITY_HELDOUT_FROM_TS
    work = args.work or args.out / "adapters"
    settings = FinetuneSettings(season_steps=7, threads=args.threads)
    if args.steps is not None:
        settings = settings.model_copy(update={"max_steps": args.steps})
    runs: dict[int, dict[str, Any]] = {}
    for seed in args.seeds:
        t = time.time()
        tuned = finetune(
            args.base,
            train,
            settings.model_copy(update={"seed": seed}),
            asset="electricity",
            out_dir=work / f"seed{seed}",
            progress=False,
            device="cpu",
        )
        runs[seed] = {
            "steps": tuned.steps,
            "best_step": tuned.best_step,
            "stopped_by": tuned.stopped_by,
            "validation_before": tuned.before,
            "validation_after": tuned.after,
            "seconds": round(time.time() - t, 1),
        }

    model = ModelForecaster(args.base, LEVELS, HORIZON, device="cpu", threads=args.threads)
    forecasters: dict[str, ForecastFn] = {"base": model.forecast}
    for seed in args.seeds:
        name = "adapted" if seed == args.seeds[0] else f"adapted (seed {seed})"
        model.add_adapter(name, work / f"seed{seed}")
        forecasters[name] = _with_asset(model, name)
    forecasters.update(baseline_forecasters(HORIZON, 7))
    forecasters["seasonal_naive_364"] = NaiveForecaster(LEVELS, HORIZON, 364).forecast
    plan = BacktestPlan(
        horizons=(1, 7, HORIZON), origins=1, start=ELECTRICITY_HELDOUT_FROM_TS, context_steps=512, season=7
    )
    result = run_backtest(series, forecasters, plan)
    assert result.windows.origin_ts.tolist() == [ELECTRICITY_HELDOUT_FROM_TS]
    write_report(
        result,
        args.out,
        title="Electricity 2014-10-31 .. 2014-12-31: base vs adapted vs baselines",
        meta={
            "data": "shared/data/electricity_fr/daily.csv, load_mw_mean (MW, daily mean)",
            "base model": str(args.base),
            "fine-tuned on": "2012-01-01 .. 2014-10-30",
            "adapter seeds": args.seeds,
        },
    )

    actual = to_study_units(result.windows.targets[0])
    median = LEVELS.index(0.5)
    ours = {name: study_metrics(actual, to_study_units(q[0, median])) for name, q in result.forecasts.items()}
    adapted_maes = [ours[n]["mae"] for n in ours if n.startswith("adapted")]
    doc = {
        "window": "2014-10-31 .. 2014-12-31 (61 days), one origin, context ending 2014-10-30",
        "unit": "48 x load_mw_mean (daily sum of the 48 half-hourly MW values)",
        "error": "forecast - actual",
        "base_model": str(args.base),
        "actual": {"mean": float(actual.mean()), "median": float(np.median(actual)), "std": float(actual.std())},
        "ours_and_baselines": ours,
        "adapted_mae_over_seeds": {
            "seeds": args.seeds,
            "mean": float(np.mean(adapted_maes)),
            "min": float(np.min(adapted_maes)),
            "max": float(np.max(adapted_maes)),
        },
        "published": PUBLISHED,
        "finetune_runs": runs,
        "timings_s": result.timings_s,
    }
    (args.out / "study.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / "study.md").write_text(_markdown(doc, args.base))
    print((args.out / "study.md").read_text())


def _with_asset(model: Any, asset: str) -> ForecastFn:
    return lambda contexts: model.forecast(contexts, [asset] * len(contexts))


def _markdown(doc: dict[str, Any], base: Path) -> str:
    def f(x: float | None) -> str:
        return "" if x is None else f"{x:.4g}"

    a = doc["actual"]
    lines = [
        "# Electricity 2014-10-31 .. 2014-12-31, the study's metrics",
        "",
        f"Unit: {doc['unit']}; error = forecast − actual; one origin, context ending 2014-10-30. "
        f"Base model: `{base}`. Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by "
        "`bench/electricity_experiment.py`; the backtest report with every score and the plot is "
        "[report.md](report.md).",
        "",
        f"Actual: mean {a['mean']:.4g}, median {a['median']:.4g}, std {a['std']:.4g}.",
        "",
        "| forecaster | MAE | max error | min error | error mean | error median | error std | pred mean | "
        "pred median | pred std | normalised MAE | normalised error mean |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in doc["ours_and_baselines"].items():
        lines.append(
            f"| {name} | {f(m['mae'])} | {f(m['max_error'])} | {f(m['min_error'])} | {f(m['error_mean'])} | "
            f"{f(m['error_median'])} | {f(m['error_std'])} | {f(m['pred_mean'])} | {f(m['pred_median'])} | "
            f"{f(m['pred_std'])} | {m['normalised_mae']:.4f} | {m['normalised_error_mean']:+.4f} |"
        )
    for name, m in doc["published"].items():
        lines.append(f"| {name} | {f(m['mae'])} | {f(m.get('max_error'))} | | | | | | | | | |")
    s = doc["adapted_mae_over_seeds"]
    lines += [
        "",
        f"Adapted model over fine-tuning seeds {s['seeds']}: MAE mean {s['mean']:.4g} "
        f"(min {s['min']:.4g}, max {s['max']:.4g}).",
        "",
        "![forecasts](plots/electricity_load_mw_mean.png)",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
