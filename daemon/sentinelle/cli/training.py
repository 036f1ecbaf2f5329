"""The training commands: ``pretrain`` and ``finetune`` (torch is imported inside them)."""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..settings import load_settings

if TYPE_CHECKING:
    from ..settings import FinetuneSettings, Settings
    from ..training.finetune import FinetuneResult
from .common import EXIT_CONFIG, EXIT_OK, _setup_logging, check_writable_folder, log
from .inputs import _base_checkpoint, _check_period, _history_for


def _pretrain(args: argparse.Namespace) -> int:
    from ..training.pretrain_settings import load_pretrain_settings

    train = _given(args, out="out_dir", max_minutes="max_minutes", steps="steps")
    # Validated before torch is imported: a typo costs a second, not a slow start.
    settings = load_pretrain_settings(args.config, train=train)
    check_writable_folder(settings.train.out_dir, "train.out_dir")
    _setup_logging("INFO")
    from ..training.train import pretrain

    result = pretrain(settings, progress=not args.no_progress)
    best = result.best_validation
    print(
        f"pretrained {result.parameters / 1e6:.2f} M parameters for {result.steps} steps in "
        f"{result.wall_seconds / 60:.1f} min on {result.device} ({result.stopped_by}); "
        f"best step {result.best_step}: pinball {best['pinball']:.4f}, MASE {best['mase']:.3f} "
        f"(naive {best['naive_mase']:.3f}); saved in {result.out_dir}"
    )
    return EXIT_OK


def _given(args: argparse.Namespace, **keys: str) -> dict[str, Any]:
    """Settings overrides from the flags given on the command line: flag attribute → settings key.

    A flag left out (None) is not an override, so the file's value (or the default) stands; one rule
    for both training commands, whose flags name their settings differently (``--steps`` is
    ``train.steps`` in pretraining, ``finetune.max_steps`` in fine-tuning).
    """
    return {key: getattr(args, flag) for flag, key in keys.items() if getattr(args, flag) is not None}


def _finetune(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from ..evaluation.history_data import dataset_training_cutoff, parse_date
    from ..settings import FinetuneSettings

    settings = load_settings(args.config)
    _setup_logging("INFO")
    asset: str = args.asset
    if not asset or asset.startswith(".") or "/" in asset or "\\" in asset:
        raise ConfigError(f"{asset!r} cannot name an adapter folder", field="--asset")
    out = args.out
    if args.asset_model and out is None:  # <adapters_dir>/<asset>/ is the univariate model's adapter
        if settings.forecast.asset_model_adapters_dir is None:
            raise ConfigError(
                "set forecast.asset_model_adapters_dir in the config or give --out for an adapter of the asset model",
                field="forecast.asset_model_adapters_dir",
            )
        out = settings.forecast.asset_model_adapters_dir / asset
    if out is None:
        if settings.forecast.adapters_dir is None:
            raise ConfigError("set forecast.adapters_dir in the config or give --out", field="forecast.adapters_dir")
        out = settings.forecast.adapters_dir / asset
    # Where the adapter goes must be writable, checked before an hour of training rather than at its end.
    check_writable_folder(Path(out).parent, "--out" if args.out is not None else "forecast.adapters_dir")
    overrides = _given(args, max_minutes="max_minutes", steps="max_steps", season="season_steps")
    if args.season is None and args.dataset == "electricity":
        overrides["season_steps"] = 7
    try:
        ft = FinetuneSettings.model_validate({**settings.finetune.model_dump(), **overrides})
    except ValidationError as e:
        err = e.errors()[0]
        raise ConfigError(str(err["msg"]), field="finetune." + ".".join(map(str, err["loc"]))) from None
    start = parse_date(args.start) if args.start is not None else None
    until = parse_date(args.until) if args.until is not None else None
    _check_period(start, until)
    held_out = dataset_training_cutoff(args.dataset) if args.dataset else None
    if held_out is not None and (until is None or until > held_out):
        # The public datasets' held-out parts are for evaluation only (evaluation/heldout.py).
        log.info(
            "dataset %s: training data ends before %s (held out)",
            args.dataset,
            _dt.datetime.fromtimestamp(held_out, _dt.UTC).date(),
        )
        until = held_out
    # Data and settings are checked before torch is imported: a typo costs a second, not a slow start.
    series = _history_for(args, settings, asset, start=start, end=until)
    if not series:
        raise ConfigError("no data between --from and --until", field="data")
    from ..errors import ModelError
    from ..forecast.adapters import replace_problem

    # Saving replaces the whole folder: a file or a folder of other things is refused before training, not deleted.
    problem = replace_problem(Path(out))
    if problem:
        raise ConfigError(f"{out}: {problem}", field="--out")
    # Either model's ModelError (a checkpoint that does not load, data it cannot take) ends the command the
    # same way: one line and the configuration exit code.
    try:
        if args.asset_model:
            return _finetune_asset_model(args, settings, asset, series, ft, out)
        from ..training.finetune import finetune

        result = finetune(
            _base_checkpoint(args, settings),
            series,
            ft,
            asset=asset,
            out_dir=out,
            progress=not args.no_progress,
            device=args.device,
        )
    except ModelError as e:
        print(f"sentinelle: model error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    b, a = result.before, result.after
    print(
        f"adapter for {asset} saved in {result.out_dir}: {result.steps} steps ({result.stopped_by}), best step "
        f"{result.best_step}, {result.trainable_parameters} LoRA parameters, {result.wall_seconds:.0f} s; "
        f"validation ({result.validation_windows} windows) MASE {b['mase']:.3f} -> {a['mase']:.3f}, "
        f"WQL {b['wql']:.4f} -> {a['wql']:.4f} (base -> adapted)" + _no_op_reason(result)
    )
    return EXIT_OK


def _finetune_asset_model(
    args: argparse.Namespace, settings: Settings, asset: str, series: list[Any], ft: FinetuneSettings, out: Path
) -> int:
    """``finetune --asset-model``: a LoRA adapter of the asset model (:mod:`~sentinelle.training.asset_finetune`).

    Its :class:`ModelError` is reported by :func:`_finetune`, as the univariate model's is.
    """
    from ..forecast import SHIPPED_CHECKPOINT
    from ..training.asset_finetune import finetune_asset

    base = Path(args.base or settings.forecast.asset_model_path or SHIPPED_CHECKPOINT.parent / "asset")
    result = finetune_asset(base, series, ft, asset=asset, out_dir=out, data_note=str(args.data or "history"))
    b, a = result.before, result.after
    print(
        f"asset-model adapter for {asset} saved in {result.out_dir}: {result.steps} steps, best step "
        f"{result.best_step}, {result.wall_seconds:.0f} s; validation estimate pinball {b['estimate']:.4f} -> "
        f"{a['estimate']:.4f}, blind {b['blind_estimate']:.4f} -> {a['blind_estimate']:.4f}, forecast "
        f"{b['forecast']:.4f} -> {a['forecast']:.4f} (base -> adapted)"
        + ("" if result.best_step else "; no improvement: the adapter is a no-op")
    )
    return EXIT_OK


def _no_op_reason(result: FinetuneResult) -> str:
    """Why the saved adapter is a no-op (nothing when it is not): no better step, or the acceptance gate."""
    if result.improved:
        return ""
    gate = result.manifest.get("validation", {}).get("acceptance", {})
    if gate.get("accepted") is False:
        failed = " and ".join(gate.get("failed", ()))
        return f"; rejected by finetune.acceptance_gate (not better on {failed}): the adapter is a no-op"
    return "; no improvement: the adapter is a no-op"
