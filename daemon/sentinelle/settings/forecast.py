"""Forecasting and per-plant fine-tuning (``[forecast]``, ``[finetune]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from .base import _Section


class ForecastSettings(_Section):
    forecaster: Literal["naive", "seasonal_naive", "holt", "model"] = Field(
        default="model",
        description="model: our time-series transformer (the shipped checkpoint unless model_path is set); "
        "holt, naive, seasonal_naive: baselines, also the fallback when the model cannot be loaded.",
    )
    horizon_steps: int = Field(default=16, ge=1, le=1024)
    season_steps: int = Field(default=0, ge=0, description="Season length for seasonal_naive (0: last value).")
    quantile_levels: tuple[float, ...] = (0.1, 0.5, 0.9)
    holt_alpha: float = Field(default=0.3, gt=0, le=1)
    holt_beta: float = Field(default=0.05, ge=0, le=1)
    holt_damping: float = Field(default=0.9, gt=0, le=1)
    max_batch: int = Field(default=4096, ge=1)
    max_wait_ms: float = Field(default=20.0, ge=0)
    refresh_every_steps: int = Field(
        default=1,
        ge=1,
        description="Forecast each tag every R ticks (a rotating 1/R of the tags per tick) and use the "
        "earlier multi-step forecast in between: how a model too slow for every tag every tick keeps up.",
    )
    fallback_retry_s: float = Field(
        default=300.0,
        gt=0,
        description="After the forecaster fails a whole call, its baseline forecasts for this long before the "
        "forecaster is tried again; the wait doubles after each failed retry.",
    )
    fallback_retry_max_s: float = Field(
        default=3600.0, gt=0, description="Longest wait between retries of a failing forecaster."
    )
    model_path: Path | None = Field(
        default=None,
        description="Local checkpoint directory (config.json + model.safetensors); "
        "None: the checkpoint shipped in the package.",
    )
    model_device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="auto: CUDA (bfloat16) when available, else the CPU (float32)."
    )
    model_max_batch: int = Field(default=1024, ge=1, description="Windows per forward pass of the model.")
    model_threads: int | None = Field(
        default=None, ge=1, description="Torch CPU threads for the whole process; None: torch's default."
    )
    model_long_season_weight: float = Field(
        default=0.75,
        ge=0,
        le=1,
        description="Largest share of the long-season expert in the model's median (the context's own cycle of "
        "65+ steps copied forward, weighted per step by its in-context skill; forecast/long_season.py). "
        "0: off. Chosen on bench/forecast_validation.py's validation mirror.",
    )
    model_long_season_level_steps: int = Field(
        default=14,
        ge=1,
        le=256,
        description="Steps averaged for the long-season expert's level now and a cycle ago (the cycle is moved by "
        "their difference). Chosen on bench/forecast_validation.py's validation mirror.",
    )
    model_stat_expert: Literal["ses", "damped", "theta", "ar"] = Field(
        default="theta",
        description="The statistical expert mixed into the model's median (forecast/stat_experts.py): SES, the "
        "damped-trend family or Theta on the deseasonalised context, or a direct linear AR; fitted in each window's "
        "context. Used only when model_stat_expert_weight > 0.",
    )
    model_stat_expert_weight: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="The statistical expert's share in the model's median at every horizon step (the quantiles are "
        "shifted with it). 0: off (bench/forecast_experts.py's pre-registered rule shipped none).",
    )
    model_smoothing_share: tuple[float, ...] = Field(
        default=(0.75, 0.75, 0.75, 0.75),
        description="Per horizon step, the least share of the model's smoothing (Holt-Winters) answer in its "
        "median; steps beyond the list keep the model's own gates. (): the gates alone. Chosen on "
        "bench/forecast_validation.py's validation mirror.",
    )
    model_band_floor_holt: float = Field(
        default=0.0,
        ge=0,
        le=10,
        description="The model's band, level by level, at least this many times the band the damped-Holt baseline "
        "(holt_*) quotes from the same context: its one-step error over the whole context, where the model's own "
        "spread floor reads the best of its smoothing experts over the newest 256 steps only (forecast/band_floor.py; "
        "docs/results/nab/band-floor/). Only widens; the median is kept. 0: off.",
    )
    adapters_dir: Path | None = Field(
        default=None,
        description="Per-asset LoRA adapters of the model (<adapters_dir>/<asset>/, written by "
        "`sentinelle finetune`); an asset without one, or with one that fails its checks, uses the base model. "
        "None: the base model for every asset.",
    )
    adapter_min_context_steps: int = Field(
        default=512,
        ge=0,
        description="An asset's adapter forecasts a tag only once the tag's context reaches back this many slots "
        "(from its oldest value); shorter contexts (a cold start, a tag back after a long gap) get the base model. "
        "Fine-tuning sees full contexts almost only, and from short ones an adapter's band came out 10 % narrower "
        "than the base model's and too narrow (coverage80 0.75; issue 17). 0: the adapter from the first forecast.",
    )
    asset_model_path: Path | None = Field(
        default=None,
        description="An asset-model checkpoint (e.g. the package's forecast/checkpoints/asset): every slot, each "
        "tag is also estimated from the other tags of its asset, and the asset_estimate detector scores the "
        "value against that estimate. None: off. A checkpoint that cannot be loaded is logged and counted; "
        "the daemon runs without estimates.",
    )
    asset_model_adapters_dir: Path | None = Field(
        default=None,
        description="Per-asset LoRA adapters of the asset model (<asset_model_adapters_dir>/<asset>/, written by "
        "`sentinelle finetune --asset A --asset-model`): an asset with one is estimated by the asset model with "
        "its adapter merged in, the others by the base. One that fails its checks (another base, a corrupt file, "
        "tags that are not the asset's) is refused with an ERROR naming both sides; its asset uses the base. "
        "None: the base for every asset.",
    )
    asset_mask_recent_steps: int = Field(
        default=0,
        ge=0,
        le=4096,
        description="With the asset model: its estimate reads the tags' contexts only up to this many slots "
        "before now (the newest ones masked) and the other tags now, so a slow fault (a drifting sensor, "
        "fouling) accumulates in the residual instead of being followed. 0: the whole context (the estimate "
        "follows slow faults). At most three quarters of the checkpoint's context (512 slots: 384).",
    )
    asset_mask_groups: list[list[str]] = Field(
        default_factory=list,
        description="With the asset model and asset_mask_recent_steps > 0: groups of tag names (two or more each, "
        "no tag in two) whose current values are hidden together when any of them is estimated, in one extra "
        "pass per group for the assets that have it (forecast/asset_engine.py): for tags tied by a fixed map, "
        "e.g. pump speed commands set together from one controller demand, each of which the others give away. "
        "Empty: off (the estimates as without it).",
    )
    asset_context_stride_steps: int = Field(
        default=1,
        ge=1,
        le=64,
        description="With the asset model and asset_mask_recent_steps > 0: its estimate reads each tag's context "
        "as means of this many slots (the windows keep a second ring of windows.context_steps such means, "
        "spanning this many times the context), the newest asset_mask_recent_steps of them masked, so the "
        "reference is older than a slow fault (a 15-minute drift, a 5-minute pump ramp) instead of 128 slots at "
        "most. 1: the context as it is (today). Measured in docs/results/chiller-detection/asset-stride.md.",
    )
    asset_anchor_band_widths: float = Field(
        default=0.0,
        ge=0,
        le=100,
        description="With the asset model: when a refreshed estimate misses any tag of an asset by more than this "
        "many half-widths of its own band, the asset's next estimates read the contexts only up to that excursion's "
        "start (the newer slots masked for all its tags) and the others now, until every tag is back inside the "
        "anchored band or the mask would pass three quarters of the context (forecast/asset_anchor.py): the "
        "estimate then does not follow a lasting fault, and judges the recovery against the asset before it. "
        "0: off (the estimate reads its whole context, or asset_mask_recent_steps). At least "
        "asset_anchor_release_band_widths; needs asset_context_stride_steps 1. Measured on SKAB: "
        "docs/results/skab/anchored-estimate/.",
    )
    asset_anchor_release_band_widths: float = Field(
        default=1.0,
        gt=0,
        le=100,
        description="With asset_anchor_band_widths: the anchor is released when every tag of the asset is within "
        "this many band half-widths of the anchored estimate (1: back inside its band).",
    )
    asset_estimate_every_steps: int = Field(
        default=1,
        ge=1,
        le=3600,
        description="The asset model estimates an asset's tags on one slot in this many; its estimates stand "
        "for the slots between (the model cost about 10 to 23 ms of CPU per 7-tag asset and slot, 16 assets to a "
        "pass or one alone, before the speed work of 2026-12-07: 0.66-0.82x that since, one thread). 1: every slot.",
    )
    asset_cpu_rows_per_pass: int | None = Field(
        default=None,
        ge=0,
        le=65536,
        description="On the CPU, the asset model's forward passes hold at most this many rows (assets x tags; at "
        "least one asset), so that a pass's activations stay in the caches. 0: model_max_batch assets a pass. "
        "None: 128 (quiet machine, 1,000 tags, 2 threads: 1,713 tag-windows/s against 1,096 in one pass; "
        "where other work crowds the cores set model_threads = 1 rather than 0 here).",
    )

    @model_validator(mode="after")
    def _levels_valid(self) -> ForecastSettings:
        lv = self.quantile_levels
        if not lv or any(not 0 < q < 1 for q in lv) or list(lv) != sorted(set(lv)):
            raise ValueError("quantile_levels must be strictly increasing values in (0, 1)")
        if 0.5 not in lv:
            raise ValueError("quantile_levels must contain 0.5 (the point forecast)")
        if any(not 0 <= v <= 1 for v in self.model_smoothing_share):
            raise ValueError(f"model_smoothing_share values must lie in [0, 1], got {list(self.model_smoothing_share)}")
        if self.asset_context_stride_steps > 1 and not self.asset_mask_recent_steps:
            raise ValueError(
                "asset_context_stride_steps > 1 needs asset_mask_recent_steps > 0: the newest coarse slot holds "
                "the current value, which the estimate must not read"
            )
        if self.asset_mask_groups and not self.asset_mask_recent_steps:
            raise ValueError("asset_mask_groups needs asset_mask_recent_steps > 0 (the newest slots give values away)")
        if self.asset_anchor_band_widths and (
            self.asset_anchor_band_widths <= 1 or self.asset_context_stride_steps > 1
        ):
            raise ValueError(
                "asset_anchor_band_widths must be 0 (off) or above 1 (the release is back inside the band), and "
                "needs asset_context_stride_steps 1"
            )
        if self.refresh_every_steps > self.horizon_steps:
            raise ValueError(
                f"refresh_every_steps ({self.refresh_every_steps}) must not exceed horizon_steps "
                f"({self.horizon_steps}): a tag's forecast must reach its next refresh"
            )
        return self


class FinetuneSettings(_Section):
    """How ``sentinelle finetune`` adapts the model to one asset's history (LoRA, early stopping).

    Windows are cut from the asset's own tags; the newest ``validation_fraction``
    of each series is kept for validation and never trained on, so the scores in
    the adapter's manifest are out of sample.
    """

    rank: int = Field(default=8, ge=1, le=256, description="LoRA rank r.")
    alpha: int = Field(default=16, ge=1, description="LoRA scaling numerator (the update is scaled by alpha/r).")
    lora_dropout: float = Field(default=0.0, ge=0, lt=1)
    target_modules: tuple[str, ...] = Field(
        default=("q_proj", "v_proj", "o_proj", "up_proj", "down_proj"),
        min_length=1,
        description="Linear layers of the model that get LoRA weights (names or dotted suffixes, e.g. "
        "head.output_layer).",
    )
    learning_rate: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    batch_size: int = Field(default=32, ge=1)
    max_steps: int = Field(default=400, ge=1, description="Upper bound; early stopping usually ends sooner.")
    eval_every_steps: int = Field(default=25, ge=1)
    patience_evals: int = Field(
        default=4, ge=1, description="Stop after this many validations in a row without a better validation loss."
    )
    validation_fraction: float = Field(default=0.2, gt=0, lt=1, description="Newest share of each series.")
    validation_windows: int = Field(default=256, ge=1, description="Most validation windows (evenly spaced).")
    min_context_steps: int = Field(default=32, ge=2, description="Fewest steps of history before an origin.")
    label_clip: float = Field(default=50.0, gt=0, description="Scaled targets are clipped to ±this (as pretraining).")
    season_steps: int = Field(default=1, ge=1, description="Season of the MASE scale in the validation scores.")
    seed: int = Field(default=0, ge=0)
    threads: int = Field(default=2, ge=1, description="Torch CPU threads during fine-tuning.")
    max_minutes: float | None = Field(default=None, gt=0, description="Wall-clock budget; the best adapter is kept.")
    held_targets: Literal["nearest", "uniform", "skip"] = Field(
        default="nearest",
        description="A compressed export's held points (no sample read, the last value repeated) as targets, "
        "the true value known only to lie within ±deadband: nearest: the pinball loss of the nearest value in that "
        "band (zero inside); uniform: the expected pinball loss of a value uniform in it; skip: no target. "
        "nearest was chosen on selection seed 1510 (docs/results/deadband/report.md). "
        "Read points are ordinary targets in every mode; held points are always kept as context.",
    )
    acceptance_gate: bool = Field(
        default=True,
        description="Keep the trained adapter only if, on the held-back validation slice (read points), it beats the "
        "base model on both point error (MASE lower) and calibration (|coverage_80 - 0.8| no larger); otherwise save "
        "it as a no-op and say why in the manifest (training/acceptance.py). On by the rule pre-registered in "
        "docs/results/deadband/gate/RULE.md (development seeds 1560-1562).",
    )
