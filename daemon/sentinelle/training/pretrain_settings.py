"""Settings of ``sentinelle pretrain``: their own small tree, apart from the daemon's.

The daemon never reads these, and a pretraining run never reads the daemon's;
keeping the trees apart lets either change without breaking the other's
config files.  ``config/pretrain.toml`` documents every field.  As for the
daemon, the environment overrides the file with the prefix
``SENTINELLE_PRETRAIN_`` and ``__`` between levels, e.g.
``SENTINELLE_PRETRAIN_TRAIN__STEPS=100``.

This module imports neither torch nor transformers, so a bad config file is
reported before the slow imports of a training run.

>>> s = PretrainSettings()
>>> s.model.context_length, s.model.patch_length, s.train.batch_size
(512, 16, 64)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import SettingsConfigDict

from ..errors import ConfigError
from ..settings import EnvOverTomlSettings, config_error, read_toml

QUANTILE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class _Section(BaseModel):
    # Unknown keys are errors: a typo in a training config would silently train the wrong thing.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSizeSettings(_Section):
    """Shape of the model; becomes ``SentinelleTSConfig`` (``config.json`` of the checkpoint)."""

    context_length: int = Field(default=512, ge=8, description="Longest context, steps.")
    patch_length: int = Field(default=16, ge=1, description="Steps per token; divides context_length.")
    horizon: int = Field(default=64, ge=1, description="Steps forecast in one pass.")
    d_model: int = Field(default=128, ge=8)
    num_layers: int = Field(default=3, ge=1)
    num_heads: int = Field(default=4, ge=1)
    d_ff: int = Field(default=512, ge=8)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    vocab_size: int = Field(default=4096, ge=4, description="Token ids per step, 0 = missing; even.")
    token_limit: float = Field(default=15.0, gt=0, description="Scaled values are clipped to ±this.")
    quantile_levels: tuple[float, ...] = QUANTILE_LEVELS
    analog_window: int = Field(
        default=32, ge=0, description="Steps matched by the analog (copy-the-cycle) branch; 0: no such branch."
    )
    analog_dim: int = Field(default=32, ge=1, description="Width of the analog branch's pattern embedding.")
    smoothing_max_period: int = Field(
        default=64,
        ge=0,
        description="Longest season (steps) of the exponential-smoothing branch's Holt-Winters experts; 0: no branch.",
    )
    smoothing_window: int = Field(
        default=256, ge=1, description="Newest context steps whose one-step errors choose the smoothing experts."
    )
    smoothing_spread_floor: float = Field(
        default=0.0,
        ge=0,
        description="Quantiles at least this × z_q × the smoothing experts' h-step σ from the median; 0: off.",
    )

    @model_validator(mode="after")
    def _shapes(self) -> ModelSizeSettings:
        if self.context_length % self.patch_length:
            raise ValueError(f"context_length ({self.context_length}) must be a multiple of patch_length")
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of num_heads ({self.num_heads})")
        if self.vocab_size % 2:
            raise ValueError("vocab_size must be even (the middle bin is then centred on 0)")
        lv = self.quantile_levels
        if not lv or any(not 0 < q < 1 for q in lv) or list(lv) != sorted(set(lv)) or 0.5 not in lv:
            raise ValueError("quantile_levels must be strictly increasing in (0, 1) and contain 0.5")
        return self


class CorpusMix(_Section):
    """Share of training windows drawn from each source (normalised; 0 leaves a source out)."""

    kernel_synth: float = Field(default=0.2, ge=0)
    industrial: float = Field(default=0.25, ge=0)
    chiller: float = Field(default=0.1, ge=0)
    real: float = Field(default=0.2, ge=0)
    seasonal: float = Field(default=0.25, ge=0)

    @model_validator(mode="after")
    def _some(self) -> CorpusMix:
        if self.kernel_synth + self.industrial + self.chiller + self.real + self.seasonal <= 0:
            raise ValueError("at least one source needs a positive weight")
        return self

    def weights(self) -> dict[str, float]:
        return {
            "kernel_synth": self.kernel_synth,
            "industrial": self.industrial,
            "chiller": self.chiller,
            "real": self.real,
            "seasonal": self.seasonal,
        }


class CorpusSettings(_Section):
    """How the bank of series is generated and how windows are cut from it."""

    seed: int = Field(default=0, ge=0, description="Seed of the bank (which series exist).")
    data_dir: Path | None = Field(
        default=None, description="Folder of the shared datasets; None: $SENTINELLE_DATA_DIR or <repo>/../shared/data."
    )
    mix: CorpusMix = CorpusMix()
    kernel_synth_series: int = Field(default=2000, ge=0, description="Gaussian-process series in the bank.")
    kernel_synth_length: int = Field(default=1024, ge=16)
    industrial_series: int = Field(default=2000, ge=0, description="Industrial-shape series in the bank.")
    industrial_length: int = Field(default=2048, ge=16)
    seasonal_series: int = Field(default=2000, ge=0, description="Repeating (seasonal, calendar) series in the bank.")
    seasonal_length: int = Field(default=2048, ge=16)
    chiller_runs: int = Field(default=40, ge=0, description="Simulator runs; each gives 6 tags (pump 3 = pump 2).")
    chiller_length: int = Field(default=2048, ge=16, description="Samples per simulator run.")
    chiller_fault_probability: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of simulator runs with one fault; 0 keeps fault dynamics out of what 'normal' means.",
    )
    validation_fraction: float = Field(
        default=0.1, gt=0, lt=1, description="Synthetic series kept for validation; tail of each real series."
    )
    min_context_steps: int = Field(default=32, ge=1, description="Fewest observed steps before a forecast origin.")
    short_context_probability: float = Field(default=0.3, ge=0, le=1)
    gap_probability: float = Field(default=0.2, ge=0, le=1)
    max_gaps: int = Field(default=3, ge=1)
    max_gap_steps: int = Field(default=64, ge=1)
    scale_augment_probability: float = Field(default=0.5, ge=0, le=1)


class TrainSettings(_Section):
    """The optimisation loop."""

    seed: int = Field(default=0, ge=0, description="Seed of the weights' init, dropout and window order.")
    steps: int = Field(default=20_000, ge=1)
    batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0)
    min_learning_rate_ratio: float = Field(default=0.1, ge=0, le=1, description="Cosine ends at lr × this.")
    warmup_steps: int = Field(default=500, ge=0)
    weight_decay: float = Field(default=0.01, ge=0)
    grad_clip_norm: float = Field(default=1.0, gt=0)
    label_clip: float = Field(
        default=50.0, gt=0, description="Scaled targets are clipped to ±this (a step after a flat context is ~1e8)."
    )
    eval_every_steps: int = Field(default=500, ge=1)
    validation_windows: int = Field(default=1024, ge=1)
    eval_batch_size: int = Field(default=256, ge=1)
    log_every_steps: int = Field(default=50, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    cpu_threads: int = Field(default=2, ge=1)
    max_minutes: float | None = Field(
        default=None, gt=0, description="Wall-clock budget, corpus included; the best checkpoint is kept."
    )
    out_dir: Path = Field(default=Path("runs/pretrain"), description="Checkpoint and training.json go here.")
    trainable: Literal["all", "head"] = Field(
        default="all",
        description="'head': only the parts after the encoder (head, final norm, analog and smoothing branches) "
        "learn — a fast way to fit a new branch on top of a trained encoder (no backward pass through it).",
    )
    init_from: Path | None = Field(
        default=None,
        description="Start from this checkpoint's weights (same shape as [model]) instead of a random init.",
    )


class PretrainSettings(EnvOverTomlSettings):
    """Root of the pretraining settings tree."""

    model_config = SettingsConfigDict(
        env_prefix="SENTINELLE_PRETRAIN_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    model: ModelSizeSettings = ModelSizeSettings()
    corpus: CorpusSettings = CorpusSettings()
    train: TrainSettings = TrainSettings()

    @model_validator(mode="after")
    def _consistent(self) -> PretrainSettings:
        _check_consistent(self)
        return self


def _check_consistent(settings: PretrainSettings) -> None:
    """Rules across sections (also run after command-line overrides)."""
    if settings.corpus.min_context_steps > settings.model.context_length:
        raise ValueError("corpus.min_context_steps must not exceed model.context_length")


def load_pretrain_settings(path: Path | None = None, **overrides: dict[str, Any]) -> PretrainSettings:
    """Read the TOML file, apply environment overrides, then ``overrides``, and validate.

    ``overrides`` are per section (``train={"steps": 10}``) and win over both the
    file and the environment: they are what a person typed on the command line.
    Every problem becomes a :class:`ConfigError` naming the field, as for the daemon's settings.
    """
    data: dict[str, Any] = read_toml(path) if path is not None else {}
    sections: dict[str, type[_Section]] = {"model": ModelSizeSettings, "corpus": CorpusSettings, "train": TrainSettings}
    try:
        settings = PretrainSettings(**data)
    except ValidationError as e:
        raise config_error(e, prefix="") from None
    update: dict[str, Any] = {}
    for name, values in overrides.items():
        if name not in sections:
            raise ConfigError("unknown section", field=name)
        try:
            update[name] = sections[name].model_validate({**getattr(settings, name).model_dump(), **values})
        except ValidationError as e:
            raise config_error(e, prefix=f"{name}.") from None
    if update:
        # Not PretrainSettings(...) again: that would let the environment win over the overrides.
        settings = settings.model_copy(update=update)
        try:
            _check_consistent(settings)
        except ValueError as e:
            raise ConfigError(str(e), field="settings") from None
    return settings
