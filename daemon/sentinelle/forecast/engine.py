"""The model forecaster: windows in, quantiles out, through the local model.

:class:`ModelForecaster` implements :class:`~sentinelle.forecast.base.Forecaster`
on top of :class:`~sentinelle.forecast.model.SentinelleTSModel`:

1. fit each window to the model (its newest ``context_length`` steps; a shorter
   window is padded on the left with NaN to whole patches — missing patches are
   masked in the model, so padding does not change the forecast);
2. tokenise with :class:`~sentinelle.forecast.tokenizer.TSTokenizer` (numpy);
3. one forward pass per chunk of ``max_batch`` windows under
   ``torch.inference_mode()`` on the chosen device;
4. keep the first ``horizon`` steps, interpolate the requested quantile levels
   linearly from the model's, and unscale back to the tag's units.

Loading reads only the given directory (``config.json`` + ``model.safetensors``)
with ``local_files_only=True`` and ``HF_HUB_OFFLINE=1``: a plant server has no
model hub.  Every failure — missing directory or file, corrupt weights, a
config this code cannot build, weights that do not fit the config — is raised
as :class:`~sentinelle.errors.ModelError` naming the file, so the daemon can
fall back to a baseline instead of dying.  A window whose forecast comes out
non-finite is answered with a row of NaN, which the batcher fills from its
baseline for that row alone (:mod:`.batcher`).

Per-asset adapters (``adapters_dir``, written by ``sentinelle finetune``): every
subfolder ``<adapters_dir>/<asset>/`` is checked and attached at start
(:mod:`.adapters`).  ``forecast(contexts, assets)`` then groups the rows by
adapter and runs one forward pass per group (and per ``max_batch`` chunk): rows
of assets without an adapter go through the base model with the adapters
disabled, and so do the rows whose context reaches back fewer than
``adapter_min_context_steps`` slots (a cold start: the adapter, fine-tuned on full
contexts, is too sure of itself on short ones).  An adapter that fails its checks (wrong base, corrupt or missing
file) is refused with an ERROR log naming the file, counted in
``sentinelle_forecast_errors_total{forecaster="model"}``, and its asset is
forecast by the base model; the daemon keeps running.

Importing this module imports torch and transformers (~5 s cold); the daemon
does so only when the model forecaster is selected.
"""

from __future__ import annotations

import json
import logging
import os

# huggingface_hub reads this once, when it is first imported: set it before transformers loads it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from safetensors import safe_open
from transformers.utils import logging as hf_logging

from ..errors import ModelError
from ..records import FloatArray
from .band_floor import floor_band, holt_band
from .baselines import HoltForecaster
from .long_season import LongSeason, blend, long_season_expert
from .model import SentinelleTSConfig, SentinelleTSModel
from .stat_experts import StatExpert, stat_expert
from .tokenizer import TSTokenizer

if TYPE_CHECKING:
    from peft import PeftModel

    from ..metrics import Metrics

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

SHIPPED_LONG_SEASON = LongSeason()
"""The long-season expert as the daemon ships it (:mod:`.long_season`: weight 0.75, level 14 steps,
8 candidate lags, full weight from step 16), chosen by the pre-registered rule on the validation
mirror of ``bench/forecast_validation.py`` (geometric-mean MASE there 0.821 → 0.803 alone)."""
SHIPPED_SMOOTHING_SHARE: tuple[float, ...] = (0.75,) * 4
"""Least share of the smoothing answer in the median for the first 4 steps (``SentinelleTSModel.smoothing_share``),
chosen on the same validation mirror (0.803 → 0.7945 with the expert); empty: the gates' own weights."""

SHIPPED_STAT_EXPERT = StatExpert()
"""No statistical expert in the median (weight 0): the pre-registered rule of ``bench/forecast_experts.py``
decides whether one ships (``docs/results/forecast-accuracy/experts/``)."""

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelForecaster:
    """Quantile forecasts from a sentinelle model checkpoint in a local directory.

    ``levels`` must contain 0.5 and lie within the model's own levels (they are
    interpolated linearly between them); ``horizon`` (steps) must not exceed the
    model's.  ``device="auto"`` takes CUDA when available; ``dtype="auto"`` is
    bfloat16 on CUDA and float32 on the CPU.  ``threads`` sets torch's intra-op
    threads for the whole process (None: torch's default).  ``adapters_dir``
    holds per-asset LoRA adapters (see the module docstring); refused ones are
    counted in ``metrics`` when given.
    """

    name = "model"

    def __init__(
        self,
        path: Path,
        levels: tuple[float, ...],
        horizon: int,
        *,
        device: str = "auto",
        dtype: str = "auto",
        max_batch: int = 1024,
        threads: int | None = None,
        adapters_dir: Path | None = None,
        adapter_min_context_steps: int = 0,
        asset_tags: Mapping[str, Collection[str]] | None = None,
        metrics: Metrics | None = None,
        long_season: LongSeason = SHIPPED_LONG_SEASON,
        smoothing_share: Sequence[float] = SHIPPED_SMOOTHING_SHARE,
        stat_expert: StatExpert = SHIPPED_STAT_EXPERT,
        band_floor_holt: float = 0.0,
        holt: HoltForecaster | None = None,
    ) -> None:
        self.path = Path(path)
        if not 0.0 <= band_floor_holt <= 10.0:
            raise ModelError(f"band_floor_holt must lie in [0, 10], got {band_floor_holt}")
        self.band_floor_holt = band_floor_holt
        """Each level's distance from the median at least this × damped Holt's on the same context (0: off;
        :mod:`.band_floor`)."""
        self._holt = holt if holt is not None else HoltForecaster(tuple(levels), horizon)
        self.long_season = long_season
        """The long-season expert mixed into the median (:mod:`.long_season`; weight 0: off)."""
        if not 0.0 <= stat_expert.weight <= 1.0:
            raise ModelError(f"stat_expert weight must lie in [0, 1], got {stat_expert.weight}")
        self.stat_expert = stat_expert
        """The statistical expert mixed into the median before the long-season one (:mod:`.stat_experts`; 0: off)."""
        self._asset_tags = asset_tags
        """Asset → its configured tags: an adapter trained on other tags is refused (None: not checked)."""
        self.levels = tuple(levels)
        self.horizon = horizon
        if max_batch < 1:
            raise ModelError(f"max_batch must be ≥ 1, got {max_batch}")
        self.max_batch = max_batch
        if threads is not None:
            if threads < 1:
                raise ModelError(f"threads must be ≥ 1, got {threads}")
            torch.set_num_threads(threads)
        self._device = _pick_device(device)
        self._dtype = _pick_dtype(dtype, self._device)
        self.device = str(self._device)
        """Where the model runs, e.g. ``cpu`` or ``cuda`` (for logs and metrics)."""

        self.model = load_model(self.path, self._device, self._dtype)
        share = [float(v) for v in smoothing_share]
        if not all(0.0 <= v <= 1.0 for v in share):
            raise ModelError(f"smoothing_share values must lie in [0, 1], got {share}")
        if share and any(share):
            self.model.smoothing_share = torch.tensor(share, dtype=torch.float32)
        self.config: SentinelleTSConfig = self.model.config
        self.param_count = self.model.param_count()
        """Parameters of the loaded model."""
        self.tokenizer = TSTokenizer(self.config.vocab_size, self.config.token_limit)
        config_file = self.path / CONFIG_FILE
        if not 1 <= horizon <= self.config.horizon:
            raise ModelError(f"{config_file}: the model forecasts {self.config.horizon} steps; {horizon} requested")
        self._weights = _level_weights(self.levels, tuple(self.config.quantile_levels), config_file)
        self._metrics = metrics
        self._base_sha256: str | None = None
        self._peft: PeftModel | None = None
        self.adapters: dict[str, str] = {}
        """Asset → name of its attached adapter."""
        self.adapter_min_context_steps = adapter_min_context_steps
        """A row whose context reaches back fewer slots (at most a full context) is forecast by the base model
        (:func:`context_spans`)."""
        self.adapter_errors: dict[str, str] = {}
        """Asset → why its adapter was refused (the asset is forecast by the base model)."""
        if adapters_dir is not None:
            self.load_adapters(Path(adapters_dir))
        log.info(
            "model forecaster: %s, %d parameters, %s %s, context %d steps, horizon %d of %d steps",
            self.path,
            self.param_count,
            self.device,
            str(self._dtype).removeprefix("torch."),
            self.config.context_length,
            horizon,
            self.config.horizon,
        )

    def load_adapters(self, adapters_dir: Path) -> None:
        """Attach every ``<adapters_dir>/<asset>/``; refuse bad ones with an ERROR log (base model for them)."""
        if not adapters_dir.is_dir():
            log.warning("adapters_dir %s does not exist: every asset uses the base model", adapters_dir)
            return
        for directory in sorted(p for p in adapters_dir.iterdir() if p.is_dir()):
            if directory.suffix in (".tmp", ".old"):  # a save in progress or interrupted (adapters.save_adapter)
                continue
            try:
                self.add_adapter(directory.name, directory)
            except ModelError as e:
                self.adapter_errors[directory.name] = str(e)
                if self._metrics is not None:
                    self._metrics.forecast_errors.labels(self.name).inc()
                log.error("adapter of asset %r refused: %s; the asset is forecast by the base model", directory.name, e)

    def add_adapter(self, asset: str, directory: Path) -> None:
        """Check the adapter in ``directory`` against this base and use it for ``asset``'s rows.

        Raises :class:`ModelError` naming the file (wrong base, corrupt or missing
        file); the model is then unchanged.
        """
        from .adapters import attach, check_adapter_tags, file_sha256, read_adapter  # peft only with adapters

        if self._base_sha256 is None:
            self._base_sha256 = file_sha256(self.path / WEIGHTS_FILE)
        files = read_adapter(directory, self._base_sha256, self.model)
        if self._asset_tags is not None:
            check_adapter_tags(files, asset, self._asset_tags.get(asset, ()))
        name = self.adapters.get(asset) or f"asset{len(self.adapters)}"  # peft names must be identifiers
        if self._peft is not None and name in self._peft.peft_config:
            self._peft.delete_adapter(name)
        self._peft = attach(self._peft if self._peft is not None else self.model, files, name)
        self._peft.to(self._device, dtype=self._dtype)
        self.adapters[asset] = name
        self.adapter_errors.pop(asset, None)
        log.info(
            "adapter for asset %r: %s (tags %s, trained on %s .. %s)",
            asset,
            directory,
            files.manifest.get("tags"),
            files.manifest.get("data", {}).get("first"),
            files.manifest.get("data", {}).get("last"),
        )

    def forecast(self, contexts: FloatArray, assets: Sequence[str] | None = None) -> FloatArray:
        """Windows (n, L), oldest first, NaN for gaps → quantiles (n, len(levels), horizon) in the tags' units.

        With ``assets`` (one per row), rows of an asset with an adapter are
        forecast with it, one forward pass per adapter group; the others by the base.
        """
        x = np.asarray(contexts, dtype=np.float64)
        if x.ndim != 2:
            raise ModelError(f"expected windows of shape (n, steps), got shape {x.shape}")
        out = np.full((x.shape[0], len(self.levels), self.horizon), np.nan)
        if x.shape[0] == 0:
            return out
        given = x
        # Never more than a full context: the windows' (forecast.context_steps) or the model's.
        need = min(self.adapter_min_context_steps, x.shape[1], self.config.context_length)
        x = self._fit_length(x)
        if assets is not None and len(assets) != x.shape[0]:
            raise ModelError(f"{len(assets)} assets given for {x.shape[0]} windows")
        groups: dict[str | None, list[int]] = {}
        if assets is None or not self.adapters:
            groups[None] = list(range(x.shape[0]))
        else:
            short = context_spans(x) < need
            for i, asset in enumerate(assets):
                groups.setdefault(None if short[i] else self.adapters.get(asset), []).append(i)
        # Extreme values overflow in scaling; such rows come out NaN (see _forecast_chunk), not as warnings.
        with np.errstate(over="ignore", invalid="ignore"):
            for adapter, rows in groups.items():
                for start in range(0, len(rows), self.max_batch):
                    part = np.asarray(rows[start : start + self.max_batch], dtype=np.intp)
                    out[part] = self._forecast_chunk(x[part], adapter)
        return self.floor_band(out, given)

    def floor_band(self, quantiles: FloatArray, contexts: FloatArray) -> FloatArray:
        """The model's quantiles for ``contexts`` with :attr:`band_floor_holt` applied (unchanged when it is 0).

        Public so that forecasts cached without it (``evaluation``'s caches, made before the floor) are floored
        exactly as :meth:`forecast` would: the floor reads nothing but the quantiles and the contexts."""
        if self.band_floor_holt <= 0:
            return quantiles
        holt = holt_band(contexts, self.levels, quantiles.shape[2], self._holt)
        return floor_band(quantiles, holt, self.levels, self.band_floor_holt)

    def _fit_length(self, x: FloatArray) -> FloatArray:
        """The newest ``context_length`` steps, left-padded with NaN to whole patches."""
        cfg = self.config
        x = x[:, -cfg.context_length :]
        width = max(cfg.patch_length, -(-x.shape[1] // cfg.patch_length) * cfg.patch_length)
        if width == x.shape[1]:
            return x
        return np.concatenate([np.full((x.shape[0], width - x.shape[1]), np.nan), x], axis=1)

    def _forecast_chunk(self, chunk: FloatArray, adapter: str | None = None) -> FloatArray:
        encoded = self.tokenizer.encode(chunk)
        ids = torch.from_numpy(encoded.ids).to(self._device)
        with torch.inference_mode():
            if self._peft is None:
                quantiles = self.model(ids).quantiles
            elif adapter is None:
                with self._peft.disable_adapter():  # LoRA layers sit in the base model once any adapter is attached
                    quantiles = self.model(ids).quantiles
            else:
                self._peft.set_adapter(adapter, inference_mode=True)
                quantiles = self.model(ids).quantiles
        assert quantiles is not None  # forward always sets it
        scaled = quantiles[..., : self.horizon].float().cpu().numpy().astype(np.float64)
        scaled = np.einsum("rq,bqh->brh", self._weights, scaled)
        # Interpolation keeps the model's order; this only absorbs float rounding.
        scaled = np.maximum.accumulate(scaled, axis=1)
        values = self.tokenizer.unscale(scaled, encoded.loc, encoded.scale)
        if self.stat_expert.weight > 0:
            # A fixed share at every step; the long-season expert, where it has skill, then moves the mix.
            expert = stat_expert(chunk, self.config.horizon, self.stat_expert)
            share = np.where(np.isfinite(expert), self.stat_expert.weight, 0.0)  # a row it cannot answer: the model
            values = blend(values, expert, share, self.levels.index(0.5))
        if self.long_season.weight > 0:
            # The expert for the model's whole horizon, so step k's answer does not depend on the steps asked for.
            forecast, weight = long_season_expert(chunk, self.config.horizon, self.long_season)
            values = blend(values, forecast, weight, self.levels.index(0.5))
        # A window without data has no forecast; a row the model got wrong (inf/NaN, e.g. from an
        # overflow on extreme values) is NaN as a whole, for the batcher to give its baseline's forecast:
        # one bad window must not cost the other rows of its chunk the model.
        bad = ~np.isfinite(chunk).any(axis=1) | ~np.isfinite(values).all(axis=(1, 2))
        values[bad] = np.nan
        return values


def load_model(
    path: Path, device: torch.device, dtype: torch.dtype, model_class: type[SentinelleTSModel] = SentinelleTSModel
) -> SentinelleTSModel:
    """Load a checkpoint from a local directory, or raise :class:`ModelError` naming the file at fault.

    ``model_class``: :class:`SentinelleTSModel`, or the asset model (:mod:`.asset_engine`).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = Path(path)
    config_file, weights_file = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not path.is_dir():
        raise ModelError(f"{path}: model directory not found")
    for f in (config_file, weights_file):
        if not f.is_file():
            raise ModelError(f"{f}: missing from the model directory")
    try:
        raw = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ModelError(f"{config_file}: not readable JSON ({e})") from e
    if not isinstance(raw, dict) or raw.get("model_type") != SentinelleTSConfig.model_type:
        found = raw.get("model_type") if isinstance(raw, dict) else type(raw).__name__
        raise ModelError(f"{config_file}: model_type is {found!r}, expected {SentinelleTSConfig.model_type!r}")
    try:
        config = SentinelleTSConfig.from_pretrained(path, local_files_only=True)
    except Exception as e:
        raise ModelError(f"{config_file}: unusable model config ({e})") from e
    try:
        with safe_open(str(weights_file), framework="pt") as f:
            f.keys()
    except Exception as e:
        raise ModelError(f"{weights_file}: not a readable safetensors file ({e})") from e

    progress = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # a daemon's log is not a terminal
    try:
        loaded = model_class.from_pretrained(
            path, config=config, local_files_only=True, dtype=dtype, output_loading_info=True
        )
        model, info = cast(tuple[SentinelleTSModel, dict[str, Any]], loaded)
    except Exception as e:
        raise ModelError(f"{weights_file}: cannot load the weights ({e})") from e
    finally:
        if progress:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]  # unannotated upstream
    bad = {k: sorted(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if bad:
        raise ModelError(f"{weights_file}: weights do not match {config_file}: {bad}")
    try:
        # Through nn.Module's own (typed) methods: transformers re-wraps them untyped.
        module: torch.nn.Module = model
        module.to(device)
        module.eval()
        return model
    except Exception as e:  # e.g. CUDA out of memory
        raise ModelError(f"{weights_file}: cannot move the model to {device} ({e})") from e


def _pick_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ModelError("model_device 'cuda' requested but no CUDA device is available")
    if choice not in ("cpu", "cuda"):
        raise ModelError(f"model_device must be 'auto', 'cpu' or 'cuda', got {choice!r}")
    return torch.device(choice)


def _pick_dtype(choice: str, device: torch.device) -> torch.dtype:
    if choice == "auto":
        # bf16 halves memory traffic on a GPU with fp32's range; CPUs gain little and lose precision.
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if choice not in DTYPES:
        raise ModelError(f"dtype must be 'auto' or one of {sorted(DTYPES)}, got {choice!r}")
    return DTYPES[choice]


def _level_weights(requested: tuple[float, ...], available: tuple[float, ...], config_file: Path) -> FloatArray:
    """Matrix W (len(requested), len(available)) with ``W @ q_model = q_requested`` (linear interpolation).

    >>> _level_weights((0.1, 0.5, 0.85), (0.1, 0.5, 0.8, 0.9), Path("config.json")).round(2).tolist()
    [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]]
    """
    if 0.5 not in requested:
        raise ModelError(f"quantile levels {list(requested)} must contain 0.5 (the point forecast)")
    outside = [q for q in requested if not available[0] - 1e-9 <= q <= available[-1] + 1e-9]
    if outside:
        raise ModelError(
            f"{config_file}: levels {outside} lie outside the model's range "
            f"[{available[0]}, {available[-1]}]; they cannot be interpolated"
        )
    grid = np.asarray(available, dtype=np.float64)
    eye = np.eye(len(available))
    columns = [np.interp(np.asarray(requested, dtype=np.float64), grid, eye[k]) for k in range(len(available))]
    return np.stack(columns, axis=1)


def context_spans(x: FloatArray) -> np.ndarray:
    """Per row, how many slots back its oldest value lies (0: no value): what an adapter needs before it applies.

    Gaps inside the span count: the span, not the number of values, is what the model
    reads (its left NaN padding is what a cold start looks like).

    >>> nan = float("nan")
    >>> context_spans(np.array([[nan, nan, 1.0, nan, 2.0], [1.0, 2.0, 3.0, 4.0, 5.0], [nan] * 5])).tolist()
    [3, 5, 0]
    """
    finite = np.isfinite(x)
    first = np.argmax(finite, axis=1)
    return np.where(finite.any(axis=1), x.shape[1] - first, 0)
