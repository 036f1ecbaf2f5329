"""Per-asset LoRA adapters on disk: what a folder holds, how it is checked, how it is attached.

``sentinelle finetune`` writes one folder per asset; the daemon and the backtests
read it back through :func:`read_adapter` and :func:`attach`::

    <adapters_dir>/<asset>/
        adapter_config.json          peft's LoraConfig (rank, alpha, target layers)
        adapter_model.safetensors    the LoRA weights, peft state-dict keys
        manifest.json                base model fingerprint, tags, data span, steps,
                                     validation scores before/after, creation time

An adapter is a small *difference* to one particular base model: attached to any
other checkpoint it would silently give nonsense.  So the manifest records the
SHA-256 of the base's ``model.safetensors`` and loading refuses an adapter whose
base hash differs.  The adapter's own weights are hashed too, which catches a
truncated copy or a flipped bit that safetensors alone would read without
complaint.  Every refusal is a :class:`~sentinelle.errors.ModelError` naming the
file at fault; the daemon then logs it and forecasts that asset with the base
model (``engine.ModelForecaster``).

The weights are checked against the base model's layers *before* anything is
attached (each ``lora_A`` is ``(r, in_features)`` of a linear layer the config
targets, each ``lora_B`` ``(out_features, r)``, all finite), so a refused
adapter leaves the model exactly as it was.

Importing this module imports torch and peft.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import math
import shutil
import warnings
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from peft.tuners.tuners_utils import BaseTunerLayer, check_target_module_exists
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import ModelError
from ..settings import FinetuneSettings
from .model import SentinelleTSModel

MANIFEST_FILE = "manifest.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
BASE_WEIGHTS_FILE = "model.safetensors"
BASE_CONFIG_FILE = "config.json"
MANIFEST_FORMAT = 1
"""Version of ``manifest.json``; a reader refuses formats it does not know."""

_PREFIX = "base_model.model."


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (checkpoints can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def base_fingerprint(base_dir: Path) -> dict[str, Any]:
    """What identifies a base checkpoint: hashes of its weights and config, and the config itself."""
    weights, config = Path(base_dir) / BASE_WEIGHTS_FILE, Path(base_dir) / BASE_CONFIG_FILE
    try:
        raw = json.loads(config.read_text(encoding="utf-8"))
        return {
            "path": str(base_dir),
            "sha256": file_sha256(weights),
            "config_sha256": file_sha256(config),
            "config": {k: v for k, v in raw.items() if k not in ("transformers_version", "architectures")},
        }
    except (OSError, ValueError) as e:
        raise ModelError(f"{base_dir}: cannot fingerprint the base model ({e})") from e


@dataclass(frozen=True, slots=True)
class AdapterFiles:
    """A checked adapter folder, ready to attach to the base it was trained on."""

    directory: Path
    manifest: dict[str, Any]
    config: LoraConfig
    weights: dict[str, torch.Tensor]

    @property
    def asset(self) -> str:
        return str(self.manifest.get("asset", self.directory.name))


def read_adapter(directory: Path, base_sha256: str, base_model: SentinelleTSModel) -> AdapterFiles:
    """Read and check an adapter folder against the base model (its weights' hash and its layers).

    Raises :class:`ModelError` naming the file for a missing folder or file,
    unreadable JSON, an unknown manifest format, a base-hash mismatch, weights
    whose hash differs from the manifest's, or weights that do not fit the
    base's layers.
    """
    directory = Path(directory)
    manifest_file = directory / MANIFEST_FILE
    config_file = directory / ADAPTER_CONFIG_FILE
    weights_file = directory / ADAPTER_WEIGHTS_FILE
    if not directory.is_dir():
        raise ModelError(f"{directory}: adapter directory not found")
    for f in (manifest_file, config_file, weights_file):
        if not f.is_file():
            raise ModelError(f"{f}: missing from the adapter directory")
    manifest = _read_json(manifest_file)
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ModelError(f"{manifest_file}: unknown manifest format {manifest.get('format')!r} (expected 1)")
    base = manifest.get("base_model")
    expected = base.get("sha256") if isinstance(base, dict) else None
    if not isinstance(expected, str):
        raise ModelError(f"{manifest_file}: no base_model.sha256; not written by `sentinelle finetune`")
    if expected != base_sha256:
        raise ModelError(
            f"{manifest_file}: adapter was trained on base model sha256 {expected[:12]}…, but the loaded base "
            f"model has sha256 {base_sha256[:12]}…; fine-tune again on this base (`sentinelle finetune`)"
        )
    adapter = manifest.get("adapter")
    recorded = adapter.get("sha256") if isinstance(adapter, dict) else None
    actual = file_sha256(weights_file)
    if recorded != actual:
        raise ModelError(
            f"{weights_file}: sha256 {actual[:12]}… differs from the manifest's {str(recorded)[:12]}…; "
            "the file is corrupt or was replaced"
        )
    config = _read_lora_config(config_file)
    try:
        weights = load_file(str(weights_file), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelError(f"{weights_file}: not a readable safetensors file ({e})") from e
    _check_weights(base_model, config, weights, weights_file)
    return AdapterFiles(directory=directory, manifest=manifest, config=config, weights=weights)


def check_adapter_tags(files: AdapterFiles, asset: str, configured: Collection[str]) -> None:
    """Refuse an adapter trained on tags the asset does not have (a tag map missing, or another asset's data).

    The adapter must have been trained on configured tags of this asset (a subset is
    fine: an export may lack a tag).  Tags under other names mean the fine-tuning read
    the export without the configuration's tag map, so the adapter never saw the
    signals it would forecast under those names.

    Raises :class:`ModelError` naming both sides.
    """
    trained = files.manifest.get("tags")
    manifest_file = files.directory / MANIFEST_FILE
    if not isinstance(trained, list) or not trained:
        raise ModelError(f"{manifest_file}: records no tags; fine-tune again (`sentinelle finetune --asset {asset}`)")
    foreign = sorted(str(t) for t in trained if t not in configured)
    if foreign:
        raise ModelError(
            f"{manifest_file}: adapter of asset {asset!r} was trained on tags {foreign} that are not the asset's "
            f"configured tags {sorted(configured)}; fine-tune again from the configured history sources "
            f"(`sentinelle finetune --asset {asset}`, which applies their tag_map)"
        )


def attach(model: SentinelleTSModel | PeftModel, files: AdapterFiles, name: str) -> PeftModel:
    """Add the adapter under ``name`` (a Python identifier) to ``model``; return the peft wrapper.

    The first adapter wraps the base model (peft injects LoRA layers into it in
    place); later ones are added beside it.  The active adapter afterwards is
    unspecified: callers choose one with ``set_adapter`` or ``disable_adapter``.
    """
    try:
        with quiet_peft():
            if isinstance(model, PeftModel):
                model.add_adapter(name, files.config)
                peft_model = model
            else:
                peft_model = get_peft_model(model, files.config, adapter_name=name)
            result = set_peft_model_state_dict(peft_model, files.weights, adapter_name=name)
    except Exception as e:  # peft and torch raise many kinds; the caller needs one
        raise ModelError(f"{files.directory / ADAPTER_WEIGHTS_FILE}: cannot attach the adapter ({e})") from e
    missing = [k for k in getattr(result, "missing_keys", []) if f".{name}." in k]
    if missing:
        raise ModelError(f"{files.directory / ADAPTER_WEIGHTS_FILE}: weights missing for {missing[:3]}")
    torch.nn.Module.eval(peft_model)
    return peft_model


def lora_config(settings: FinetuneSettings, target_modules: Collection[str] | None = None) -> LoraConfig:
    """The LoRA of ``[finetune]`` (rank, alpha, dropout), on ``target_modules`` or the settings' own."""
    modules = settings.target_modules if target_modules is None else target_modules
    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=list(modules),
        bias="none",
    )


def wrap_for_training(model: SentinelleTSModel, config: LoraConfig, name: str = "default") -> PeftModel:
    """Fresh LoRA weights on ``model`` (B = 0, so the wrapped model starts equal to the base)."""
    with quiet_peft():
        return get_peft_model(model, config, adapter_name=name)


def save_adapter(model: PeftModel, name: str, directory: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write the three files of an adapter folder; return the manifest as written (with hashes).

    Written to a temporary sibling folder first and renamed, so a crash leaves
    either the old adapter or the new one, never half of each.
    """
    directory = Path(directory)
    problem = replace_problem(directory)
    if problem:
        raise ModelError(f"{directory}: {problem}")
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    state = {
        k: v.detach().to("cpu", torch.float32).contiguous()
        for k, v in get_peft_model_state_dict(model, adapter_name=name).items()
    }
    save_file(state, str(tmp / ADAPTER_WEIGHTS_FILE), metadata={"format": "pt"})
    model.peft_config[name].save_pretrained(str(tmp))  # adapter_config.json, nothing else
    written = dict(manifest)
    written["format"] = MANIFEST_FORMAT
    written["adapter"] = {
        **dict(manifest.get("adapter", {})),
        "file": ADAPTER_WEIGHTS_FILE,
        "sha256": file_sha256(tmp / ADAPTER_WEIGHTS_FILE),
        "parameters": int(sum(v.numel() for v in state.values())),
    }
    written.setdefault("created", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    (tmp / MANIFEST_FILE).write_text(json.dumps(written, indent=2, default=_json_default) + "\n")
    if directory.exists():
        old = directory.with_name(directory.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old)
    else:
        tmp.rename(directory)
    return written


def replace_problem(directory: Path) -> str | None:
    """Why saving an adapter in ``directory`` would destroy something that is not an adapter (None: it would not).

    A save replaces the whole folder, so ``--out`` naming a file, or a folder of other files (a
    typo, the data's own folder), must be refused before training rather than renamed and deleted.
    """
    if directory.exists() and not directory.is_dir():
        return "exists and is not a folder; an adapter is saved as a folder"
    if directory.is_dir() and any(directory.iterdir()) and not (directory / MANIFEST_FILE).is_file():
        return f"folder holds files but no {MANIFEST_FILE} (not an adapter); not replacing it"
    return None


def load_adapter(base_model: Path, directory: Path, *, device: str = "cpu") -> PeftModel:
    """The base checkpoint in ``base_model`` with the adapter in ``directory`` attached and active.

    For notebooks and tools; the daemon goes through ``ModelForecaster``, which
    attaches many adapters to one base.  Raises :class:`ModelError` naming the
    file when the adapter is missing, corrupt or was trained on another base.
    """
    from .engine import load_model  # engine imports this module

    base = load_model(Path(base_model), torch.device(device), torch.float32)
    files = read_adapter(directory, file_sha256(Path(base_model) / BASE_WEIGHTS_FILE), base)
    model = attach(base, files, "default")
    model.set_adapter("default")
    return model


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """Silence the one deprecation transformers raises when peft probes gradient checkpointing.

    peft 0.21 reads ``model.is_gradient_checkpointing``, which transformers 5
    deprecates with a FutureWarning; nothing for us to change, and the test suite
    turns warnings into errors, so exactly that message is ignored here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.* is deprecated", category=FutureWarning)
        yield


# -- pieces ------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ModelError(f"{path}: not readable JSON ({e})") from e
    if not isinstance(raw, dict):
        raise ModelError(f"{path}: expected a JSON object, found {type(raw).__name__}")
    return raw


def _read_lora_config(path: Path) -> LoraConfig:
    raw = _read_json(path)
    if raw.get("peft_type") not in (None, "LORA"):
        raise ModelError(f"{path}: peft_type is {raw.get('peft_type')!r}, expected 'LORA'")
    if raw.get("rank_pattern") or raw.get("alpha_pattern"):
        raise ModelError(f"{path}: per-layer rank or alpha patterns are not supported")
    # Keys a newer peft may add are dropped rather than fatal: the weight checks decide usability.
    known = {f.name for f in dataclasses.fields(LoraConfig) if f.init}
    try:
        config = LoraConfig(**{k: v for k, v in raw.items() if k in known})
    except (TypeError, ValueError) as e:
        raise ModelError(f"{path}: not a usable LoRA config ({e})") from e
    if not isinstance(config.r, int) or config.r < 1 or not config.target_modules:
        raise ModelError(f"{path}: LoRA rank must be ≥ 1 and target_modules non-empty")
    return config


def _check_weights(
    base: SentinelleTSModel, config: LoraConfig, weights: dict[str, torch.Tensor], weights_file: Path
) -> None:
    """Every targeted linear layer has a finite (r, in) A and (out, r) B, and nothing else is there.

    Once an adapter is attached, peft has replaced the targeted layers by LoRA
    wrappers around them; the layer an adapter's weights must fit is then the
    wrapper's base layer, and the wrapper's own parts (base_layer, lora_A, …)
    are not targets themselves.
    """
    modules = dict(base.named_modules())
    wrappers = [path for path, module in modules.items() if isinstance(module, BaseTunerLayer)]
    layers: dict[str, torch.nn.Module] = {}
    for path, module in modules.items():
        if isinstance(module, BaseTunerLayer):
            layers[path] = module.get_base_layer()
        elif path and not any(path.startswith(w + ".") for w in wrappers):
            layers[path] = module
    targeted = {
        path
        for path, layer in layers.items()
        if isinstance(layer, torch.nn.Linear) and check_target_module_exists(config, path)
    }
    if not targeted:
        raise ModelError(
            f"{weights_file}: the adapter's target layers {config.target_modules} match no linear layer of the base"
        )
    expected: dict[str, tuple[int, int]] = {}
    for path in targeted:
        layer = layers[path]
        assert isinstance(layer, torch.nn.Linear)
        expected[f"{_PREFIX}{path}.lora_A.weight"] = (config.r, layer.in_features)
        expected[f"{_PREFIX}{path}.lora_B.weight"] = (layer.out_features, config.r)
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise ModelError(
            f"{weights_file}: weights do not fit the base model's layers "
            f"(missing {missing[:3]}{'…' if len(missing) > 3 else ''}, "
            f"unexpected {unexpected[:3]}{'…' if len(unexpected) > 3 else ''})"
        )
    for key, shape in expected.items():
        tensor = weights[key]
        if tuple(tensor.shape) != shape:
            raise ModelError(f"{weights_file}: {key} has shape {tuple(tensor.shape)}, the base needs {shape}")
        if not bool(torch.isfinite(tensor).all()):
            raise ModelError(f"{weights_file}: {key} holds non-finite values")


def _json_default(value: object) -> object:
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)
