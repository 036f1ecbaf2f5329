"""Fine-tuning's data: each tag's series cut in time, its training windows and its validation set.

What :mod:`.finetune` trains on (see its docstring): a series is split in time (the newest
``validation_fraction`` is validation); a window is a context (up to ``context_length``
steps before an origin, held points included, as the export gives them) and the bounds of
the next ``horizon`` targets (:func:`~.censored.target_bounds`: a read point is its own
bounds, a held one ``±deadband``), scaled by the context's loc/scale and clipped.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from ..evaluation.datasets import Series
from ..forecast.tokenizer import TSTokenizer
from ..records import FloatArray
from ..settings import FinetuneSettings
from .censored import HeldTargets, target_bounds

__all__ = ["Track", "Validation", "batch", "deadbands", "span", "tracks", "train_origins", "validation_set"]

log = logging.getLogger(__name__.rpartition(".")[0] + ".finetune")


@dataclass(frozen=True, slots=True)
class Track:
    """One series as the trainer needs it: values, optional timestamps, and its time split."""

    name: str
    values: FloatArray
    timestamps: FloatArray | None
    period_s: float | None
    targets: FloatArray
    """``values`` with held points NaN: the read points the validation scores in units are computed on."""
    lower: FloatArray
    upper: FloatArray
    """Bounds of each point's true value, the loss's targets (:func:`~.censored.target_bounds`; NaN: none)."""
    deadband: float | None
    split: int
    """First index of the validation part."""


@dataclass(frozen=True, slots=True)
class Validation:
    ids: torch.Tensor
    lower: torch.Tensor  # scaled, clipped bounds (the training loss's view)
    upper: torch.Tensor
    contexts: FloatArray
    targets: FloatArray
    loc: FloatArray
    scale: FloatArray


def tracks(
    series: Sequence[Series | FloatArray], validation_fraction: float, held_targets: HeldTargets = "nearest"
) -> list[Track]:
    out = []
    for i, s in enumerate(series):
        if isinstance(s, Series):
            name, values, ts, period = s.name, s.values, s.timestamps, s.period_s
        else:
            name, values, ts, period = f"series{i}", np.asarray(s, dtype=np.float64), None, None
        if values.ndim != 1:
            raise ConfigError(f"{name}: expected a 1-D series, got shape {values.shape}", field="data")
        values = np.where(np.isfinite(values), values, np.nan)
        held = s.held if isinstance(s, Series) else None
        deadband = s.deadband if isinstance(s, Series) else None
        targets = values if held is None else np.where(held, np.nan, values)
        lower, upper = target_bounds(values, held, deadband, held_targets)
        if held is not None and held.any() and deadband is None and held_targets != "skip":
            log.warning("%s: no deadband known (none set, too few steps to estimate): held points are no targets", name)
        n = len(values)
        split = n - max(1, round(n * validation_fraction))
        out.append(
            Track(name, values, ts, period, targets, lower, upper, deadband if held is not None else None, split)
        )
    if not out:
        raise ConfigError("no series to fine-tune on", field="data")
    return out


def train_origins(tracks: list[Track], min_context: int) -> np.ndarray:
    """Every (track, origin) whose context has ``min_context`` steps and whose first target is training data.

    Returned as an (N, 2) int array; a batch samples rows of it uniformly, so a long
    series contributes in proportion to its length.
    """
    parts = []
    for k, t in enumerate(tracks):
        origins = np.arange(min_context, t.split)
        if len(origins):
            parts.append(np.stack([np.full(len(origins), k), origins], axis=1))
    return np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)


def window(
    track: Track, origin: int, stop: int, context_length: int, horizon: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Context (left-padded with NaN to ``context_length``), then the read targets and the lower and upper bounds
    of the next ``horizon`` steps (NaN from ``stop`` on)."""
    context = np.full(context_length, np.nan)
    past = track.values[max(0, origin - context_length) : origin]
    context[context_length - len(past) :] = past
    futures = []
    for array in (track.targets, track.lower, track.upper):
        future = np.full(horizon, np.nan)
        part = array[origin : min(origin + horizon, stop)]
        future[: len(part)] = part
        futures.append(future)
    return context, futures[0], futures[1], futures[2]


def _labels(
    windows: list[tuple[FloatArray, FloatArray, FloatArray, FloatArray]], tokenizer: TSTokenizer, clip: float
) -> tuple[FloatArray, Any, torch.Tensor, torch.Tensor]:
    """Stacked contexts, their encoding, and the bounds scaled by each context's loc/scale and clipped to ±clip."""
    contexts = np.stack([w[0] for w in windows])
    encoded = tokenizer.encode(contexts)
    lower, upper = (
        torch.from_numpy(
            np.clip(
                tokenizer.scale_values(np.stack([w[i] for w in windows]), encoded.loc, encoded.scale), -clip, clip
            ).astype(np.float32)
        )
        for i in (2, 3)
    )
    return contexts, encoded, lower, upper


def batch(
    tracks: list[Track],
    index: np.ndarray,
    settings: FinetuneSettings,
    tokenizer: TSTokenizer,
    context_length: int,
    horizon: int,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ids of ``batch_size`` random training windows and their scaled target bounds (lower, upper)."""
    rows = index[rng.integers(0, len(index), settings.batch_size)]
    windows = [window(tracks[k], o, tracks[k].split, context_length, horizon) for k, o in rows.tolist()]
    _, encoded, lower, upper = _labels(windows, tokenizer, settings.label_clip)
    return torch.from_numpy(encoded.ids), lower, upper


def validation_set(
    tracks: list[Track], settings: FinetuneSettings, tokenizer: TSTokenizer, context_length: int, horizon: int
) -> Validation:
    candidates: list[tuple[int, int]] = []
    for k, t in enumerate(tracks):
        n = len(t.values)
        first = max(t.split, settings.min_context_steps)
        last = n - horizon if n - horizon >= first else n - 1  # full targets when the part is long enough
        candidates.extend((k, o) for o in range(first, last + 1))
    if not candidates:
        raise ConfigError("too little history for a validation window", field="data")
    pick = np.unique(
        np.linspace(0, len(candidates) - 1, min(settings.validation_windows, len(candidates))).round().astype(int)
    )
    windows = [
        window(tracks[k], o, len(tracks[k].values), context_length, horizon)
        for k, o in (candidates[i] for i in pick.tolist())
    ]
    contexts, encoded, lower, upper = _labels(windows, tokenizer, settings.label_clip)
    return Validation(
        ids=torch.from_numpy(encoded.ids),
        lower=lower,
        upper=upper,
        contexts=contexts,
        targets=np.stack([w[1] for w in windows]),
        loc=encoded.loc,
        scale=encoded.scale,
    )


def span(tracks: list[Track]) -> dict[str, Any]:
    """First and last observed timestamps (ISO, UTC), where validation starts, and sizes."""
    firsts, lasts, splits = [], [], []
    for t in tracks:
        seen = np.flatnonzero(np.isfinite(t.values))
        if t.timestamps is None or not len(seen):
            continue
        firsts.append(float(t.timestamps[seen[0]]))
        lasts.append(float(t.timestamps[seen[-1]]))
        splits.append(float(t.timestamps[t.split]))
    periods = sorted({t.period_s for t in tracks if t.period_s is not None})
    return {
        "first": _iso(min(firsts)) if firsts else None,
        "last": _iso(max(lasts)) if lasts else None,
        "validation_from": _iso(min(splits)) if splits else None,
        "series": len(tracks),
        "points": int(sum(np.isfinite(t.values).sum() for t in tracks)),
        "period_s": periods[0] if len(periods) == 1 else periods,
    }


def deadbands(tracks: list[Track]) -> dict[str, float | None]:
    """Tag → the deadband its held points were widened by (only tags with held points; None: not known)."""
    return {t.name: t.deadband for t in tracks if np.isnan(t.targets[np.isfinite(t.values)]).any()}


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
