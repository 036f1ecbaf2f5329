"""Pretraining from scratch: corpus windows → tokenizer → model → pinball loss, with validation.

:func:`pretrain` is what ``sentinelle pretrain`` runs.  One loop, no trainer
framework: AdamW, linear warm-up then cosine decay, gradient clipping, bf16
autocast on CUDA, fp32 on the CPU.  Everything random is seeded
(``train.seed`` for weights, dropout and window order; ``corpus.seed`` for the
bank), so the same settings on the same device give the same losses.

Validation runs before the first step and every ``eval_every_steps`` on a fixed
set of windows from the corpus's held-out split, and reports pinball, MASE, relative
MAE and 80 % coverage (:mod:`.validation`).  Batches come from :mod:`.batches`.

The best checkpoint (lowest validation pinball) is saved whenever it improves,
as ``config.json`` + ``model.safetensors``, with ``training.json`` alongside
(settings, seeds, steps, wall time, device, corpus composition, validation
history, held-out data).  A time budget or Ctrl-C ends the run cleanly; the
best checkpoint stays.

Importing this module imports torch: the CLI imports it inside the command.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm
from transformers.utils import logging as hf_logging

from ..evaluation.heldout import HELDOUT_SUMMARY
from ..forecast.model import SentinelleTSConfig, SentinelleTSModel
from ..forecast.tokenizer import TSTokenizer
from .batches import InlineBatches, PrefetchedBatches, prepared_batches
from .corpus import Corpus
from .pretrain_settings import PretrainSettings
from .threads import torch_threads_restored
from .validation import ValidationSet, validation_metrics, validation_set

log = logging.getLogger(__name__)

StopReason = Literal["steps", "time_budget", "interrupted"]


@dataclass(frozen=True, slots=True)
class PretrainResult:
    """What a pretraining run produced; the same facts are in ``out_dir/training.json``."""

    out_dir: Path
    steps: int
    best_step: int
    best_validation: dict[str, float]
    history: list[dict[str, Any]]
    wall_seconds: float
    train_seconds: float
    device: str
    stopped_by: StopReason
    parameters: int
    speed: dict[str, float] = field(default_factory=dict)


def pretrain(settings: PretrainSettings, *, progress: bool = True, corpus: Corpus | None = None) -> PretrainResult:
    """Train a model from scratch as ``settings`` say; return (and write) what happened.

    ``corpus`` lets tests and notebooks reuse a bank already built; by default it
    is built from ``settings.corpus`` (and counts against the time budget).
    Torch's CPU thread count is set for the run and restored afterwards.
    """
    with torch_threads_restored():
        return _pretrain(settings, progress, corpus)


def _pretrain(settings: PretrainSettings, progress: bool, corpus: Corpus | None) -> PretrainResult:
    started = time.monotonic()
    ts = settings.train
    ms = settings.model
    budget_s = ts.max_minutes * 60.0 if ts.max_minutes is not None else math.inf
    device = _pick_device(ts.device)
    if device.type == "cpu":
        torch.set_num_threads(ts.cpu_threads)
    torch.manual_seed(ts.seed)
    out_dir = ts.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)

    if corpus is None:
        corpus = Corpus.build(settings.corpus, context_length=ms.context_length, horizon=ms.horizon)
    elif (corpus.context_length, corpus.horizon) != (ms.context_length, ms.horizon):
        raise ValueError("the corpus was built for another context length or horizon")
    tokenizer = TSTokenizer(ms.vocab_size, ms.token_limit)
    config = SentinelleTSConfig(
        context_length=ms.context_length,
        patch_length=ms.patch_length,
        horizon=ms.horizon,
        quantile_levels=ms.quantile_levels,
        d_model=ms.d_model,
        num_layers=ms.num_layers,
        num_heads=ms.num_heads,
        d_ff=ms.d_ff,
        dropout=ms.dropout,
        vocab_size=ms.vocab_size,
        token_limit=ms.token_limit,
        analog_window=ms.analog_window,
        analog_dim=ms.analog_dim,
        smoothing_max_period=ms.smoothing_max_period,
        smoothing_window=ms.smoothing_window,
        smoothing_spread_floor=ms.smoothing_spread_floor,
    )
    model = SentinelleTSModel(config) if ts.init_from is None else _warm_start(ts.init_from, config)
    torch.nn.Module.to(model, device)  # (transformers' typed wrapper of .to() rejects a device)
    if ts.trainable == "head":
        for name, p in model.named_parameters():
            p.requires_grad_(name.split(".")[0] in ("head", "norm", "analog", "smoothing"))
    parameters = model.param_count()
    optimizer = torch.optim.AdamW(
        _parameter_groups(model, ts.weight_decay),
        lr=ts.learning_rate,
        betas=(0.9, 0.95),
        fused=device.type == "cuda",
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(step, ts.warmup_steps, ts.steps, ts.min_learning_rate_ratio)
    )
    validation = validation_set(corpus.validation(ts.validation_windows), tokenizer, ts.label_clip)
    log.info(
        "pretrain: %.2f M parameters on %s; corpus %s; %d validation windows",
        parameters / 1e6,
        _describe(device, ts.cpu_threads),
        {k: v["series"] for k, v in corpus.summary()["sources"].items()},
        ts.validation_windows,
    )

    history: list[dict[str, Any]] = []
    best: dict[str, float] = {}
    best_step = -1
    step = 0
    train_seconds = 0.0
    eval_seconds = 0.0
    stopped_by: StopReason = "steps"

    def evaluate_and_keep() -> None:
        nonlocal best, best_step, eval_seconds
        t = time.monotonic()
        metrics = _evaluate(model, validation, ts.eval_batch_size, device, ms.quantile_levels)
        eval_seconds = time.monotonic() - t
        record = {
            "step": step,
            "wall_seconds": round(time.monotonic() - started, 2),
            "learning_rate": scheduler.get_last_lr()[0],
            **metrics,
        }
        history.append(record)
        improved = not best or metrics["pinball"] < best["pinball"]
        if improved:
            best, best_step = metrics, step
            _save(model, out_dir)
        log.info(
            "step %d: validation pinball %.4f, mase %.3f (naive %.3f), relative mae %.3f, coverage80 %.2f%s",
            step,
            metrics["pinball"],
            metrics["mase"],
            metrics["naive_mase"],
            metrics["relative_mae"],
            metrics["coverage_80"],
            " (best, saved)" if improved else "",
        )
        _write_report(
            out_dir,
            settings,
            config,
            corpus,
            parameters,
            device,
            history,
            best_step,
            step,
            time.monotonic() - started,
            train_seconds,
            stopped_by,
        )

    autocast = _autocast(device)
    prepared = prepared_batches(corpus, tokenizer, ts.batch_size, ts.seed, ts.label_clip)
    # On the CPU a producer thread would fight torch's OpenMP threads for the cores (measured: 10x
    # slower steps on 2 cores), and preparing a batch costs ~1 % of a step anyway; on a GPU it overlaps.
    batches = PrefetchedBatches(prepared, depth=4) if device.type == "cuda" else InlineBatches(prepared)
    bar = tqdm(total=ts.steps, disable=not progress, unit="step", dynamic_ncols=True, desc="pretrain")
    try:
        with logging_redirect_tqdm():
            evaluate_and_keep()
            model.train()  # dropout on from here
            running: list[float] = []
            while step < ts.steps:
                if time.monotonic() - started + eval_seconds >= budget_s:
                    stopped_by = "time_budget"
                    break
                t = time.monotonic()
                batch = next(batches)
                ids = batch.ids.to(device, non_blocking=True)
                labels = batch.labels.to(device, non_blocking=True)
                with autocast:
                    out = model(input_ids=ids, labels=labels)
                loss = out.loss
                if loss is None:  # pragma: no cover - the model returns a loss whenever labels are given
                    raise RuntimeError("the model returned no loss")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), ts.grad_clip_norm)
                optimizer.step()
                scheduler.step()
                step += 1
                running.append(float(loss.detach()))
                train_seconds += time.monotonic() - t
                bar.update(1)
                if step % ts.log_every_steps == 0 or step == ts.steps:
                    bar.set_postfix(loss=f"{np.mean(running):.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
                    running.clear()
                if step % ts.eval_every_steps == 0 or step == ts.steps:
                    evaluate_and_keep()
    except KeyboardInterrupt:
        stopped_by = "interrupted"
        log.warning("pretrain: interrupted at step %d; keeping the best checkpoint (step %d)", step, best_step)
    finally:
        bar.close()
        batches.close()
    model.train(False)
    if history[-1]["step"] != step:
        evaluate_and_keep()
    wall = time.monotonic() - started
    speed = _speed(step, train_seconds, ts.batch_size, config)
    _write_report(
        out_dir, settings, config, corpus, parameters, device, history, best_step, step, wall, train_seconds, stopped_by
    )
    log.info(
        "pretrain: %d steps in %.0f s (%s); %.2f steps/s, %.0f windows/s; best step %d, pinball %.4f; saved in %s",
        step,
        wall,
        stopped_by,
        speed["steps_per_second"],
        speed["windows_per_second"],
        best_step,
        best["pinball"],
        out_dir,
    )
    return PretrainResult(
        out_dir=out_dir,
        steps=step,
        best_step=best_step,
        best_validation=best,
        history=history,
        wall_seconds=wall,
        train_seconds=train_seconds,
        device=_describe(device, ts.cpu_threads),
        stopped_by=stopped_by,
        parameters=parameters,
        speed=speed,
    )


# -- pieces ---------------------------------------------------------------------------


def _warm_start(path: Path, config: SentinelleTSConfig) -> SentinelleTSModel:
    """A model of shape ``config`` starting from the weights at ``path`` (continued pretraining).

    Every weight of the checkpoint must fit; parts the checkpoint lacks (the
    analog or smoothing branch added on top of an older model) keep their fresh init.
    """
    from safetensors.torch import load_file

    from ..forecast.engine import WEIGHTS_FILE, load_model

    donor = load_model(path, torch.device("cpu"), torch.float32)
    keys = (
        "context_length",
        "patch_length",
        "horizon",
        "d_model",
        "num_layers",
        "num_heads",
        "d_ff",
        "vocab_size",
        "token_limit",
        "quantile_levels",
    )
    theirs, ours = donor.config.to_dict(), config.to_dict()
    differ = [k for k in keys if theirs.get(k) != ours.get(k)]
    if differ:
        raise ValueError(f"init_from {path}: the checkpoint's {', '.join(differ)} differ from [model]")
    model = SentinelleTSModel(config)
    result = model.load_state_dict(load_file(str(path / WEIGHTS_FILE)), strict=False)
    if result.unexpected_keys or any(not k.startswith(("analog.", "smoothing.")) for k in result.missing_keys):
        raise ValueError(f"init_from {path}: weights do not fit [model]: {result}")
    log.info("pretrain: starting from %s (new: %s)", path, ", ".join(result.missing_keys) or "nothing")
    return model


def _pick_device(wanted: str) -> torch.device:
    if wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _describe(device: torch.device, threads: int) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)}, bf16 autocast)"
    return f"cpu ({platform.processor() or platform.machine()}, {threads} threads, fp32)"


def _autocast(device: torch.device) -> AbstractContextManager[Any]:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def _parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only: decaying norms, biases and the summary token just shrinks them."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    keep = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": keep, "weight_decay": 0.0}]


def _lr_factor(step: int, warmup: int, total: int, floor: float) -> float:
    """Linear warm-up to 1, then cosine down to ``floor`` at ``total`` steps.

    >>> [round(_lr_factor(s, 10, 110, 0.1), 3) for s in (0, 5, 10, 60, 110)]
    [0.1, 0.55, 1.0, 0.55, 0.1]
    """
    if warmup > 0 and step < warmup:
        return floor + (1.0 - floor) * step / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def _evaluate(
    model: SentinelleTSModel,
    data: ValidationSet,
    batch_size: int,
    device: torch.device,
    levels: tuple[float, ...],
) -> dict[str, float]:
    """Validation metrics of the module docstring, on the fixed validation windows."""
    was_training = model.training
    model.train(False)
    chunks = []
    with _autocast(device):
        for start in range(0, data.ids.shape[0], batch_size):
            out = model(input_ids=data.ids[start : start + batch_size].to(device))
            if out.quantiles is None:  # pragma: no cover
                raise RuntimeError("the model returned no quantiles")
            chunks.append(out.quantiles.float().cpu().numpy().astype(np.float64))
    model.train(was_training)
    q = np.concatenate(chunks, axis=0)  # (B, Q, H)
    return validation_metrics(q, data, levels)


def _speed(steps: int, seconds: float, batch_size: int, config: SentinelleTSConfig) -> dict[str, float]:
    """Training throughput, data preparation included, validation excluded."""
    if steps == 0 or seconds <= 0:
        return {"steps_per_second": 0.0, "windows_per_second": 0.0, "tokens_per_second": 0.0}
    per_second = steps / seconds
    return {
        "steps_per_second": round(per_second, 3),
        "windows_per_second": round(per_second * batch_size, 1),
        # Patch tokens the encoder reads (plus the summary token) per window.
        "tokens_per_second": round(per_second * batch_size * (config.num_patches + 1), 1),
        "time_steps_per_second": round(per_second * batch_size * config.context_length, 1),
    }


def _save(model: SentinelleTSModel, out_dir: Path) -> None:
    """``config.json`` + ``model.safetensors`` (transformers' own shard progress bar silenced)."""
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        model.save_pretrained(out_dir, safe_serialization=True)
    finally:
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def _write_report(
    out_dir: Path,
    settings: PretrainSettings,
    config: SentinelleTSConfig,
    corpus: Corpus,
    parameters: int,
    device: torch.device,
    history: list[dict[str, Any]],
    best_step: int,
    steps: int,
    wall_seconds: float,
    train_seconds: float,
    stopped_by: StopReason,
) -> None:
    """``training.json``: everything needed to say what a checkpoint is and how it was made."""
    best = next((h for h in history if h["step"] == best_step), None)
    report = {
        "model_config": {k: v for k, v in config.to_dict().items() if not k.startswith("_")},
        "settings": settings.model_dump(mode="json"),
        "seed": settings.train.seed,
        "corpus_seed": settings.corpus.seed,
        "parameters": parameters,
        "steps": steps,
        "best_step": best_step,
        "best_validation": best,
        "stopped_by": stopped_by,
        "wall_seconds": round(wall_seconds, 2),
        "train_seconds": round(train_seconds, 2),
        "speed": _speed(steps, train_seconds, settings.train.batch_size, config),
        "device": _describe(device, settings.train.cpu_threads),
        "torch": torch.__version__,
        "corpus": corpus.summary(),
        "validation_history": history,
        "held_out": HELDOUT_SUMMARY,
    }
    path = out_dir / "training.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
