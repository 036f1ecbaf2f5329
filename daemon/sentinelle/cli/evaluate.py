"""The evaluation commands: ``evaluate chiller | lbnl | nab | skab`` and ``backtest``."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..settings import load_settings
from .common import EXIT_CONFIG, EXIT_OK, _setup_logging, log
from .inputs import _base_checkpoint, _check_period, _history_for


def _evaluate(args: argparse.Namespace) -> int:
    _check_arguments(args)
    if args.dataset == "chiller":
        return _evaluate_chiller(args)
    if args.dataset == "lbnl":
        return _evaluate_lbnl(args)
    if args.dataset == "nab":
        return _evaluate_nab(args)
    return _evaluate_skab(args)


# flag → (least value, or None for "> 0" on floats); flags left at None (not given) are not checked.
_AT_LEAST = {
    "runs_per_kind": 0,
    "fault_free_runs": 0,
    "first_seed": 0,
    "model_threads": 1,
    "model_refresh_steps": 1,
    "workers": 1,
    "asset_mask_recent_steps": 0,
    "asset_estimate_every_steps": 1,
}
_POSITIVE = ("fault_free_s", "model_budget_s", "asset_ewma_alpha")


def _check_arguments(args: argparse.Namespace) -> None:
    """Counts, threads and durations that cannot be meant, refused before an hour of replay fails on them.

    A zero or negative one otherwise surfaced deep in the replay (an IndexError, a pydantic
    traceback) or, worse, ran and reported nothing; each is named by its flag.
    """
    for attr, least in _AT_LEAST.items():
        value = getattr(args, attr)
        if value is not None and value < least:
            raise ConfigError(f"must be at least {least}, not {value}", field="--" + attr.replace("_", "-"))
    for attr in _POSITIVE:
        value = getattr(args, attr)
        if value is not None and not value > 0:  # NaN too
            raise ConfigError(f"must be above 0, not {value}", field="--" + attr.replace("_", "-"))
    if args.dataset == "chiller" and args.runs_per_kind + args.fault_free_runs == 0:
        raise ConfigError(
            "no run to replay: give --runs-per-kind or --fault-free-runs above 0", field="--runs-per-kind"
        )
    if args.asset_adapter is not None:  # read at the end of the replay, so checked here
        manifest = args.asset_adapter / "manifest.json"
        try:
            json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"not an adapter folder: {manifest} unreadable ({e})", field="--asset-adapter") from None
    _key_values(args.asset_blind_set)
    previous = (args.out or Path("evaluations") / args.dataset) / "report.json"
    if args.dataset == "skab" and previous.is_file():  # rows are carried over from it after the replay
        try:
            doc = json.loads(previous.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or not isinstance(doc.get("runs", []), list):
                raise ValueError("not a report (no list of runs)")
        except (OSError, ValueError) as e:
            message = f"{previous} (rows are carried over from it) does not read: {e}; move it away or fix it"
            raise ConfigError(message, field="--out") from None


def _evaluation_meta() -> dict[str, Any]:
    import platform

    return {
        "generated": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs",
    }


def _key_values(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` options as a dict, each VALUE read as JSON (a number, true/false, null or a quoted string).

    >>> _key_values(["asset_estimate_open_k=16", "asset_estimate_ewma_alpha=0.1"])
    {'asset_estimate_open_k': 16, 'asset_estimate_ewma_alpha': 0.1}
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected KEY=VALUE, got {item!r}", field="--asset-blind-set")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{item!r}: VALUE is not JSON ({e})", field="--asset-blind-set") from None
    return out


def _evaluate_chiller(args: argparse.Namespace) -> int:
    from ..evaluation.chiller_report import report_configs, run_evaluation

    _setup_logging("INFO")
    out = args.out or Path("evaluations") / "chiller"
    extra = None if args.asset_ewma_alpha is None else {"asset_estimate_ewma_alpha": args.asset_ewma_alpha}
    configs = report_configs(
        extra,
        model_rows=not args.without_model_rows,
        asset_forecaster=args.asset_forecaster,
        asset_mask_recent_steps=args.asset_mask_recent_steps,
        asset_estimate_every_steps=args.asset_estimate_every_steps,
        blind_detect=_key_values(args.asset_blind_set),
    )
    head = run_evaluation(
        out,
        runs_per_kind=args.runs_per_kind,
        fault_free_runs=args.fault_free_runs,
        fault_free_s=args.fault_free_s,
        first_seed=args.first_seed,
        configs=configs[:1] if args.no_ablation else configs,
        cache_dir=args.cache_dir,
        model_threads=args.model_threads,
        costly_budget_s=args.model_budget_s,
        meta={**_evaluation_meta(), "command": "sentinelle " + " ".join(sys.argv[1:])},
        log=log.info,
    )
    print(
        f"{head.label}: {head.kinds_detected}/{len(head.kinds)} fault kinds detected, "
        f"{head.false_alarms_per_day:.1f} false alarms/day, {head.rate.mean_per_10_min:.2f} alerts/10 min "
        f"-> {out}/report.md"
    )
    return EXIT_OK


def _evaluate_lbnl(args: argparse.Namespace) -> int:
    from ..evaluation.lbnl import run_evaluation

    _setup_logging("INFO")
    data = args.data.parent if args.data is not None and args.data.name == "lbnl_ahu_fdd" else args.data
    out = args.out or Path("evaluations") / "lbnl"
    head = run_evaluation(
        out, data, forecaster=args.forecaster, ablation=not args.no_ablation, meta=_evaluation_meta(), log=log.info
    )
    print(f"{head.label}: {head.summary()['days']} -> {out}/report.md")
    return EXIT_OK


def _git_commit() -> str:
    """The checkout's commit, with "+changes" when its tracked files differ from it ("?" outside git)."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True)
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "."], cwd=here, check=False)
    except OSError:
        return "?"
    if rev.returncode != 0:
        return "?"
    return rev.stdout.strip() + ("+changes" if dirty.returncode else "")


def _evaluate_nab(args: argparse.Namespace) -> int:
    import time

    from ..evaluation.nab_corpus import load_corpus
    from ..evaluation.nab_report import write_report
    from ..evaluation.nab_stream import evaluate_nab

    _setup_logging("INFO")
    data = args.data
    if data is not None and (data / "data").is_dir():
        data = data / "data"  # the NAB checkout itself
    out = args.out or Path("evaluations") / "nab"
    files = load_corpus(data, args.labels)
    forecasters = args.forecasters or list(dict.fromkeys([args.forecaster, "holt"]))
    started = time.perf_counter()
    result = evaluate_nab(
        files,
        forecasters,
        args.results_dir or out / "results",
        # NAB's configuration: the shipped defaults, nothing turned on or off (each score term also alone).
        detect=None,
        log=log.info,
        forecast_cache=args.forecast_cache,
        only={"model": args.model_files},
        refresh={"model": args.model_refresh_steps},
        model_threads=args.model_threads,
        workers=args.workers,
    )
    meta = {
        **_evaluation_meta(),
        "dataset": "nab",
        "commit": _git_commit(),
        "seconds": round(time.perf_counter() - started, 1),
        "command": "sentinelle " + " ".join(sys.argv[1:]),
    }
    write_report(out, result, meta)
    for fr in result["forecasters"].values():
        for det, sc in fr["detectors"].items():
            parts = [
                f"{split} {sc[split]['standard']['score']} / {sc[split]['reward_low_fp']['score']} / "
                f"{sc[split]['reward_low_fn']['score']}"
                for split in ("held_out", "tuning", "all")
                if sc[split] is not None
            ]
            print(f"{det}: " + ", ".join(parts))
    print(f"-> {out}/report.md")
    return EXIT_OK


def _evaluate_skab(args: argparse.Namespace) -> int:
    import platform
    import time

    from ..evaluation.prefill import PrefilledAssetForecaster
    from ..evaluation.replay import SharedForecasters, replay_settings
    from ..evaluation.skab import ASSET_ON, PLOT_FILES, ablation_runs, evaluate_skab, plot_file, skab_recordings
    from ..evaluation.skab_models import AssetModelUse, adapted_runs, prefilled_estimator
    from ..evaluation.skab_report import kept_adapter, kept_runs, write_report
    from ..settings import DetectSettings

    _setup_logging("INFO")
    data = args.data.parent if args.data is not None and args.data.name == "skab" else args.data
    out = args.out or Path("evaluations") / args.dataset
    recordings = skab_recordings(data)
    runs = ablation_runs(args.forecaster, variants=not args.keep_variants)[: 1 if args.no_ablation else None]
    skipped = [r.label for r in ablation_runs(args.forecaster) if r not in runs] if args.keep_variants else []
    if args.asset_adapter is not None:
        # The adapted rows beside the headline; the rest (the shipped asset model's rows included) carried over.
        masks = args.asset_adapter_masks
        adapted = [
            r
            for r in adapted_runs(ASSET_ON, args.asset_adapter)
            if masks is None or (r.asset_model is not None and r.asset_model.mask_recent_steps in masks)
        ]
        runs = [*runs[:1], *adapted]
        skipped = [r.label for r in ablation_runs(args.forecaster) if r not in runs]
    else:  # rows of an earlier adapted run are carried over (kept_runs skips labels the report lacks)
        skipped += [r.label for r in adapted_runs(ASSET_ON, Path("asset-adapter"))]
    started = time.perf_counter()
    results = []
    # Each forecaster's forecasts computed once, for every row (kept in --forecast-cache when given).
    shared = SharedForecasters(cache_dir=args.forecast_cache)
    estimators: dict[AssetModelUse, PrefilledAssetForecaster] = {}
    for run in runs:
        log.info("evaluate: %s", run.label)
        estimator = None
        if run.asset_model is not None:
            if run.asset_model not in estimators:
                estimators[run.asset_model] = prefilled_estimator(
                    recordings, run.asset_model, shared, args.forecast_cache, progress=log.info
                )
            estimator = estimators[run.asset_model].estimate_window
        settings = replay_settings(
            run.forecaster, DetectSettings(**run.detect), refresh_every_steps=run.refresh_every_steps
        )
        results.append(
            evaluate_skab(recordings, settings, run.label, forecaster=shared[run.forecaster], estimator=estimator)
        )
        shared.save()
    meta = {
        "dataset": "skab",
        "generated": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.asset_adapter is not None:
        import json

        manifest = json.loads((args.asset_adapter / "manifest.json").read_text(encoding="utf-8"))
        meta["asset_adapter"] = {k: manifest[k] for k in ("data", "training", "validation")} | {
            "path": str(args.asset_adapter)
        }
    kept = kept_runs(out / "report.json", skipped)
    if args.asset_adapter is None:  # the adapted rows carried over keep their adapter's record
        adapter = kept_adapter(
            out / "report.json", kept, [r.label for r in adapted_runs(ASSET_ON, Path("asset-adapter"))]
        )
        if adapter is not None:
            meta["asset_adapter"] = adapter
    write_report(results, out, meta, kept)
    by_name = {r.name: r for r in recordings}
    for fr in results[0].files:
        if fr.name in PLOT_FILES:
            plot_file(by_name[fr.name], fr, out)
    head = results[0]
    print(f"{head.label}: F1 {head.outlier.rounded()['f1']}, NAB standard {head.nab['standard']} -> {out}/report.md")
    return EXIT_OK


def _backtest(args: argparse.Namespace) -> int:
    import json
    import time

    from ..evaluation.history_data import parse_date

    settings = load_settings(args.config)
    _setup_logging("INFO")
    start = parse_date(args.start) if args.start is not None else None
    end = parse_date(args.until) if args.until is not None else None
    _check_period(start, end)
    if args.season is not None and args.season < 1:  # 0 fell back to the default, a negative one was used as is
        raise ConfigError(f"must be at least 1 step, not {args.season}", field="--season")
    adapter_asset = last = None
    if args.adapter is not None:
        try:
            manifest = json.loads((args.adapter / "manifest.json").read_text(encoding="utf-8"))
            adapter_asset, last = manifest.get("asset"), manifest.get("data", {}).get("last")
        except (OSError, ValueError) as e:
            print(f"sentinelle: model error: {args.adapter / 'manifest.json'}: unreadable ({e})", file=sys.stderr)
            return EXIT_CONFIG
    series = _history_for(args, settings, args.asset or adapter_asset, end=end)
    if args.adapter is not None and start is None and last:
        # Scoring the adapter on the data it was trained on would flatter it: origins start one
        # period after its last training sample.
        start = parse_date(last.replace("Z", "+00:00")) + min(s.period_s for s in series)
        log.info("backtest: origins after the adapter's training data (%s)", last)
    season = args.season or (7 if args.dataset == "electricity" else settings.forecast.season_steps or 1)
    horizons = tuple(args.horizons or sorted({1, settings.forecast.horizon_steps}))
    from ..errors import ModelError
    from ..evaluation.backtest import BacktestPlan, baseline_forecasters, model_forecasters, run_backtest
    from ..evaluation.backtest_report import write_report

    plan = BacktestPlan(
        horizons=horizons, origins=args.origins, start=start, end=end, context_steps=args.context, season=season
    )
    forecasters: dict[str, Any] = {}
    base = _base_checkpoint(args, settings)
    try:
        if "base" not in args.skip:
            forecasters.update(model_forecasters(base, plan.horizon, adapter=args.adapter, device=args.device))
    except ModelError as e:
        print(f"sentinelle: model error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    forecasters.update(baseline_forecasters(plan.horizon, season, skip=args.skip))
    result = run_backtest(series, forecasters, plan)
    out = args.out or Path("backtests") / time.strftime("%Y%m%dT%H%M%S")
    meta = {
        "data": str(args.data or args.dataset or "the configured history sources"),
        "base model": str(base),
        "adapter": str(args.adapter) if args.adapter else "none",
    }
    write_report(
        result,
        out,
        title=f"Backtest of {args.asset or adapter_asset or args.data or args.dataset or 'the history'}",
        meta=meta,
    )
    for key, per in result.overall.items():
        cells = ", ".join(f"{n} {m['mase']:.3f}" for n, m in per.items())
        print(f"{key}: MASE {cells}")
    print(f"report written to {out / 'report.md'}")
    return EXIT_OK
