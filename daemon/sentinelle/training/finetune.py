"""Fine-tuning: a LoRA adapter of the base model, trained on one asset's own history.

:func:`finetune` is what ``sentinelle finetune`` runs.  Each series (one tag of
the asset, on its regular grid) is split **in time**: the newest
``validation_fraction`` is validation, the rest training, and no training target
ever reaches into the validation part — shuffling the future into training
would make the validation scores, and the early stopping that relies on them,
optimistic.  Training windows are drawn at random origins of the training part
(context: up to the model's ``context_length`` steps before the origin; target:
the model's ``horizon`` steps after it, NaN beyond the split); validation
windows are a fixed, evenly spaced set of origins in the validation part whose
contexts may reach back into the training part (that is only the past).

A compressed export's held points (``Series.held``: no sample read in that slot,
only a value forward-filled within the export's deadband; issue 17) stay in the
contexts — the model sees the series as the export gives it — and are targets
known only to within ``±Series.deadband`` (the source's ``deadband`` setting, else
the history readers' estimate from the export's steps): an interval, scored by
:func:`~.censored.interval_pinball_loss` in training **and** validation
(``finetune.held_targets``, default ``"nearest"``: the pinball loss of the value in
the band nearest the forecast; chosen over ``"uniform"`` and ``"skip"`` by the live
one-step pinball loss on a selection seed of the deadband report's plant).  Taking
them for measurements would teach the adapter
that the tag stays flat; dropping them (``"skip"``, the behaviour before) trains
on the moves past the deadband only, a biased sample of large steps, and the
adapter learned live intervals up to 67 % wider than the base model's
(docs/results/deadband/report.md).  A held point of a tag whose deadband is not
known is no target.  Read points are ordinary pinball targets in every mode.
The validation MASE / WQL / coverage / MAE (in the tags' units) are computed on
read points only.

The loop is pretraining's (:mod:`.train`) in small: AdamW on the LoRA weights
only, gradient clipping, the model's pinball loss on labels scaled by each
context's loc/scale and clipped to ±``label_clip`` (interval bounds alike).  Validation runs before the
first step — the LoRA update starts at zero, so that is the base model's score —
and every ``eval_every_steps``; the best weights (lowest validation pinball) are
kept and training stops after ``patience_evals`` validations without
improvement, at ``max_steps``, at the time budget, or on Ctrl-C.  Everything
random is seeded by ``settings.seed``.

With ``finetune.acceptance_gate`` the kept adapter must also beat the base model on
the held-back slice on both point error and calibration (:mod:`.acceptance`), else it
is saved as a no-op; the manifest's ``validation.acceptance`` records the verdict and
the trained adapter's scores either way.

The adapter is written by :func:`~sentinelle.forecast.adapters.save_adapter`
(``adapter_config.json``, ``adapter_model.safetensors``, ``manifest.json`` with
the base model's hash, the tags, the data span, the steps and the validation
MASE / WQL before and after).  :func:`load_adapter` reads one back onto its base.

Importing this module imports torch and peft: the CLI imports it inside the command.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from peft import PeftModel
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..errors import ConfigError
from ..evaluation.datasets import Series
from ..evaluation.scores import ScoreAccumulator, mase_scale
from ..forecast.adapters import (
    base_fingerprint,
    load_adapter,
    lora_config,
    save_adapter,
    wrap_for_training,
)
from ..forecast.engine import load_model
from ..forecast.tokenizer import TSTokenizer
from ..records import FloatArray
from ..settings import FinetuneSettings
from . import finetune_data as ftdata
from .acceptance import judge
from .censored import interval_pinball_loss
from .keep_best import KeepBest
from .threads import torch_threads_restored

__all__ = ["FinetuneResult", "finetune", "load_adapter"]

log = logging.getLogger(__name__)

StopReason = Literal["steps", "early_stopping", "time_budget", "interrupted"]
ADAPTER_NAME = "default"


@dataclass(frozen=True, slots=True)
class FinetuneResult:
    """What a fine-tuning run produced; the same facts are in ``out_dir/manifest.json``."""

    out_dir: Path
    asset: str
    steps: int
    best_step: int
    stopped_by: StopReason
    before: dict[str, float]
    """Validation scores of the base model (step 0): pinball, mase, wql, coverage_80, mae."""
    after: dict[str, float]
    """Validation scores of the saved adapter."""
    train_origins: int
    validation_windows: int
    trainable_parameters: int
    wall_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def improved(self) -> bool:
        """Whether the adapter beats the base model on validation (else it is saved as a no-op)."""
        return self.best_step > 0


def finetune(
    base: Path,
    series: Sequence[Series | FloatArray],
    settings: FinetuneSettings,
    *,
    asset: str,
    out_dir: Path,
    progress: bool = True,
    device: str = "auto",
) -> FinetuneResult:
    """Train a LoRA adapter of the checkpoint in ``base`` on ``series``; save it in ``out_dir``.

    ``series`` are the asset's tags on regular grids (:class:`Series` carry their
    names and timestamps into the manifest; bare arrays are named ``series0`` …).
    Raises :class:`ConfigError` when the history is too short to cut a training
    and a validation window from, :class:`~sentinelle.errors.ModelError` when the
    base cannot be loaded.  Torch's thread count is restored afterwards.
    """
    with torch_threads_restored():
        return _finetune(Path(base), series, settings, asset, Path(out_dir), progress, device)


def _finetune(
    base_dir: Path,
    series: Sequence[Series | FloatArray],
    settings: FinetuneSettings,
    asset: str,
    out_dir: Path,
    progress: bool,
    device_name: str,
) -> FinetuneResult:
    started = time.monotonic()
    budget_s = settings.max_minutes * 60.0 if settings.max_minutes is not None else math.inf
    device = torch.device(
        "cuda" if device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available()) else "cpu"
    )
    if device.type == "cpu":
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)

    fingerprint = base_fingerprint(base_dir)
    base_model = load_model(base_dir, device, torch.float32)
    config = base_model.config
    context_length, horizon = config.context_length, config.horizon
    tokenizer = TSTokenizer(config.vocab_size, config.token_limit)
    tracks = ftdata.tracks(series, settings.validation_fraction, settings.held_targets)
    train_index = ftdata.train_origins(tracks, settings.min_context_steps)
    if len(train_index) == 0:
        raise ConfigError(
            f"too little history to fine-tune: every series needs more than {settings.min_context_steps} steps "
            f"before its validation part (the newest {settings.validation_fraction:.0%})",
            field="data",
        )
    validation = ftdata.validation_set(tracks, settings, tokenizer, context_length, horizon)

    lora = lora_config(settings)
    try:
        model = wrap_for_training(base_model, lora, ADAPTER_NAME)
    except ValueError as e:  # peft: a target module that does not exist
        raise ConfigError(str(e), field="finetune.target_modules") from None
    trainable = [p for p in model.parameters() if p.requires_grad]
    trainable_count = int(sum(p.numel() for p in trainable))
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    levels = tuple(config.quantile_levels)
    log.info(
        "finetune %s: %d series, %d training origins, %d validation windows, held points as %s targets; "
        "LoRA r=%d on %s (%d parameters); %s",
        asset,
        len(tracks),
        len(train_index),
        len(validation.targets),
        settings.held_targets,
        settings.rank,
        ",".join(settings.target_modules),
        trainable_count,
        _describe(device, settings.threads),
    )

    history: list[dict[str, float]] = []
    keep = KeepBest(model, "pinball", settings.patience_evals)
    step = 0
    stopped_by: StopReason = "steps"

    def evaluate() -> bool:
        """Score the current weights; keep them if best.  True when patience has run out."""
        metrics = _evaluate(model, validation, tokenizer, levels, settings, device)
        history.append({"step": float(step), "wall_seconds": round(time.monotonic() - started, 2), **metrics})
        done = keep.offer(step, metrics)
        log.info(
            "finetune %s step %d: validation pinball %.4f, MASE %.3f, WQL %.4f, coverage80 %.2f%s",
            asset,
            step,
            metrics["pinball"],
            metrics["mase"],
            metrics["wql"],
            metrics["coverage_80"],
            " (best)" if keep.step == step else "",
        )
        return done

    bar = tqdm(
        total=settings.max_steps, disable=not progress, unit="step", dynamic_ncols=True, desc=f"finetune {asset}"
    )
    eval_seconds = 0.0
    before: dict[str, float] = {}
    try:
        with logging_redirect_tqdm():
            t = time.monotonic()
            evaluate()
            eval_seconds = time.monotonic() - t
            before = dict(keep.best)
            model.train()
            running: list[float] = []
            while step < settings.max_steps:
                if time.monotonic() - started + eval_seconds >= budget_s:
                    stopped_by = "time_budget"
                    break
                ids, lower, upper = ftdata.batch(tracks, train_index, settings, tokenizer, context_length, horizon, rng)
                quantiles = model(input_ids=ids.to(device)).quantiles
                if quantiles is None:  # pragma: no cover - the model always returns its quantiles
                    raise RuntimeError("the model returned no quantiles")
                loss = interval_pinball_loss(quantiles, lower, upper, levels, settings.held_targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                step += 1
                running.append(float(loss.detach()))
                bar.update(1)
                if step % settings.eval_every_steps == 0 or step == settings.max_steps:
                    model.eval()
                    t = time.monotonic()
                    done = evaluate()
                    eval_seconds = time.monotonic() - t
                    model.train()
                    bar.set_postfix(loss=f"{np.mean(running):.4f}", val=f"{history[-1]['pinball']:.4f}", best=keep.step)
                    running.clear()
                    if done:
                        stopped_by = "early_stopping"
                        break
    except KeyboardInterrupt:
        if not keep.best:  # interrupted before the base was even scored: nothing worth saving
            raise
        stopped_by = "interrupted"
        log.warning("finetune %s: interrupted at step %d; keeping the best adapter (step %d)", asset, step, keep.step)
    finally:
        bar.close()
    model.eval()
    keep.restore()
    trained_step, trained = keep.step, dict(keep.best)
    verdict = judge(before, trained) if settings.acceptance_gate and trained_step > 0 else None
    if verdict is not None and not verdict.accepted:
        keep.revert_to_first()
        log.warning(
            "finetune %s: the adapter (step %d) does not beat the base model on the held-back slice on %s "
            "(MASE %.3f → %.3f, coverage80 %.3f → %.3f against 0.80); finetune.acceptance_gate saves it as a no-op",
            asset,
            trained_step,
            " and ".join(verdict.failed),
            before["mase"],
            trained["mase"],
            before["coverage_80"],
            trained["coverage_80"],
        )
    best, best_step = keep.best, keep.step
    if trained_step == 0:
        log.warning("finetune %s: no step beat the base model on validation; the adapter is saved as a no-op", asset)

    manifest = {
        "asset": asset,
        "created": _iso(time.time()),
        "base_model": fingerprint,
        "tags": [t.name for t in tracks],
        "data": ftdata.span(tracks) | {"held_targets": settings.held_targets, "deadbands": ftdata.deadbands(tracks)},
        "adapter": {
            "rank": settings.rank,
            "alpha": settings.alpha,
            "target_modules": list(settings.target_modules),
            "trainable_parameters": trainable_count,
        },
        "training": {
            "steps": step,
            "best_step": best_step,
            "stopped_by": stopped_by,
            "seed": settings.seed,
            "train_origins": len(train_index),
            "wall_seconds": round(time.monotonic() - started, 2),
            "device": _describe(device, settings.threads),
            "torch": torch.__version__,
            "settings": settings.model_dump(mode="json"),
        },
        "validation": {
            "windows": len(validation.targets),
            "horizon_steps": horizon,
            "season_steps": settings.season_steps,
            "before": before,
            "after": best,
            "improved": best_step > 0,
            "acceptance": {
                "gate": settings.acceptance_gate,
                "accepted": verdict is None or verdict.accepted,
                "failed": [] if verdict is None else list(verdict.failed),
                "trained_best_step": trained_step,
                "trained": trained,
            },
        },
        "history": history,
    }
    written = save_adapter(model, ADAPTER_NAME, out_dir, manifest)
    wall = time.monotonic() - started
    log.info(
        "finetune %s: %d steps in %.0f s (%s); best step %d; validation MASE %.3f → %.3f, WQL %.4f → %.4f; saved in %s",
        asset,
        step,
        wall,
        stopped_by,
        best_step,
        before["mase"],
        best["mase"],
        before["wql"],
        best["wql"],
        out_dir,
    )
    return FinetuneResult(
        out_dir=out_dir,
        asset=asset,
        steps=step,
        best_step=best_step,
        stopped_by=stopped_by,
        before=before,
        after=best,
        train_origins=len(train_index),
        validation_windows=len(validation.targets),
        trainable_parameters=trainable_count,
        wall_seconds=wall,
        history=history,
        manifest=written,
    )


def _evaluate(
    model: PeftModel,
    data: ftdata.Validation,
    tokenizer: TSTokenizer,
    levels: tuple[float, ...],
    settings: FinetuneSettings,
    device: torch.device,
) -> dict[str, float]:
    """Validation pinball (scaled, the training loss) and MASE / WQL / coverage / MAE in the tags' units."""
    parts = []
    with torch.no_grad():
        for start in range(0, len(data.ids), 256):
            q = model(input_ids=data.ids[start : start + 256].to(device)).quantiles
            assert q is not None
            parts.append(q.float().cpu())
    scaled = torch.cat(parts)
    pinball = float(interval_pinball_loss(scaled, data.lower, data.upper, levels, settings.held_targets))
    quantiles = tokenizer.unscale(scaled.numpy().astype(np.float64), data.loc, data.scale)
    acc = ScoreAccumulator(levels)
    horizon = data.targets.shape[1]
    for i in range(len(data.targets)):
        acc.add(data.targets[i], quantiles[i, :, :horizon], mase_scale(data.contexts[i], settings.season_steps))
    s = acc.summary()
    return {"pinball": round(pinball, 6), **{k: round(s[k], 6) for k in ("mase", "wql", "coverage_80", "mae")}}


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _describe(device: torch.device, threads: int) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)}, fp32)"
    return f"cpu ({platform.processor() or platform.machine()}, {threads} threads, fp32)"
