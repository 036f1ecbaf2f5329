"""Per-asset LoRA fine-tuning on the tiny model: what is written, what is refused, and how the daemon uses it."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from prometheus_client import CollectorRegistry
from safetensors.torch import load_file, save_file

from sentinelle.errors import ModelError
from sentinelle.evaluation.datasets import Series
from sentinelle.forecast import make_forecaster
from sentinelle.forecast.adapters import file_sha256
from sentinelle.forecast.batcher import ForecastBatcher
from sentinelle.forecast.engine import ModelForecaster
from sentinelle.forecast.tokenizer import TSTokenizer
from sentinelle.metrics import Metrics
from sentinelle.records import ForecastBatch, WindowBatch
from sentinelle.settings import FinetuneSettings, ForecastSettings
from sentinelle.training.finetune import FinetuneResult, finetune, load_adapter
from sentinelle.training.finetune_data import batch, tracks, train_origins

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny-model"
LEVELS = (0.1, 0.5, 0.9)
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
FAST = FinetuneSettings(
    max_steps=30, eval_every_steps=10, batch_size=16, threads=1, patience_evals=10, learning_rate=3e-3
).model_copy(update={"acceptance_gate": False})  # a trained adapter to test; the gate: test_finetune_acceptance


def _plant(n: int = 400, seed: int = 0) -> list[Series]:
    """Two tags of one asset with a 24-step cycle the tiny model has not seen at this shape."""
    rng = np.random.default_rng(seed)
    t = np.arange(float(n))
    temp = 8.0 + 2.0 * np.sign(np.sin(2 * np.pi * t / 24)) + rng.normal(0, 0.1, n)
    power = 400.0 + 60.0 * np.sin(2 * np.pi * t / 24) ** 3 + rng.normal(0, 3.0, n)
    ts = T0 + 60.0 * t
    return [Series(f"pump1.{name}", "test", v, ts, 60.0) for name, v in (("temp_c", temp), ("power_kw", power))]


@pytest.fixture(scope="module")
def adapted(tmp_path_factory: pytest.TempPathFactory) -> tuple[FinetuneResult, Path]:
    """One fine-tuning run shared by the tests: ``<root>/adapters/pump1``."""
    root = tmp_path_factory.mktemp("finetune")
    result = finetune(
        TINY, _plant(), FAST, asset="pump1", out_dir=root / "adapters" / "pump1", progress=False, device="cpu"
    )
    return result, root / "adapters"


def _copy_adapter(adapters: Path, to: Path, asset: str = "pump1") -> Path:
    shutil.copytree(adapters / "pump1", to / asset)
    return to / asset


def test_finetune_writes_adapter_and_manifest(adapted: tuple[FinetuneResult, Path]) -> None:
    result, adapters = adapted
    folder = adapters / "pump1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "manifest.json",
    ]
    m = json.loads((folder / "manifest.json").read_text())
    assert m["asset"] == "pump1" and m["format"] == 1
    assert m["base_model"]["sha256"] == file_sha256(TINY / "model.safetensors")
    assert m["base_model"]["config"]["context_length"] == 64
    assert m["tags"] == ["pump1.temp_c", "pump1.power_kw"]
    assert m["data"]["first"] == "2026-01-01T00:00:00Z" and m["data"]["last"] == "2026-01-01T06:39:00Z"
    assert m["data"]["validation_from"] == "2026-01-01T05:20:00Z"  # the newest 20 %: 80 of 400 minutes
    assert m["adapter"]["sha256"] == file_sha256(folder / "adapter_model.safetensors")
    assert m["training"]["steps"] == result.steps == 30 and m["training"]["best_step"] == result.best_step
    for when in ("before", "after"):
        assert {"mase", "wql", "pinball", "coverage_80"} <= set(m["validation"][when])
    # It learnt the asset: the validation loss went down from the base model's.
    assert result.improved and result.after["pinball"] < result.before["pinball"]


def test_the_adapter_changes_the_forecasts(adapted: tuple[FinetuneResult, Path]) -> None:
    _, adapters = adapted
    base = ModelForecaster(TINY, LEVELS, 16, device="cpu")
    model = load_adapter(TINY, adapters / "pump1")
    context = _plant(seed=1)[1].values[-64:][None, :]
    encoded = base.tokenizer.encode(context)
    with torch.inference_mode():
        q = model(input_ids=torch.from_numpy(encoded.ids)).quantiles
    median_adapted = base.tokenizer.unscale(q.numpy().astype(np.float64), encoded.loc, encoded.scale)[0, 4]
    median_base = base.forecast(context)[0, 1]
    assert np.abs(median_adapted - median_base).max() > 0.5  # power in kW: the adapter moved it


def test_training_never_sees_the_validation_part() -> None:
    """Time-ordered split: a target that would reach into the newest 20 % is cut at the split."""
    values = np.concatenate([np.sin(np.arange(160) / 3.0), np.full(40, 1e6)])  # validation part: a sentinel
    cut = tracks([values], validation_fraction=0.2)
    assert cut[0].split == 160
    index = train_origins(cut, min_context=8)
    assert index[:, 1].max() == 159
    rng = np.random.default_rng(0)
    tokenizer = TSTokenizer(1024, 15.0)
    for _ in range(20):
        _, labels, upper = batch(cut, index, FAST, tokenizer, 64, 16, rng)
        assert torch.equal(torch.isnan(labels), torch.isnan(upper))
        finite = labels[torch.isfinite(labels)]
        assert finite.abs().max() < 10, "a validation value reached a training label"


def test_an_adapter_for_another_base_is_refused(adapted: tuple[FinetuneResult, Path], tmp_path: Path) -> None:
    other = tmp_path / "other-base"
    shutil.copytree(TINY, other)
    weights = load_file(str(other / "model.safetensors"))
    first = sorted(weights)[0]
    weights[first] = weights[first] + 1e-3
    save_file(weights, str(other / "model.safetensors"))
    with pytest.raises(ModelError, match=r"manifest\.json: adapter was trained on base model sha256"):
        load_adapter(other, adapted[1] / "pump1")


@pytest.mark.parametrize(
    ("damage", "file"),
    [
        ("truncate", "adapter_model.safetensors"),
        ("flip", "adapter_model.safetensors"),
        ("delete", "adapter_config.json"),
        ("garbage", "manifest.json"),
    ],
)
def test_a_corrupt_or_incomplete_adapter_is_refused(
    adapted: tuple[FinetuneResult, Path], tmp_path: Path, damage: str, file: str
) -> None:
    folder = _copy_adapter(adapted[1], tmp_path)
    path = folder / file
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        path.write_bytes(data[:-8] + bytes(b ^ 0xFF for b in data[-8:]))
    elif damage == "delete":
        path.unlink()
    else:
        path.write_text("{not json")
    with pytest.raises(ModelError, match=str(path).replace(".", r"\.")):
        load_adapter(TINY, folder)


def test_weights_that_do_not_fit_the_layers_are_refused(adapted: tuple[FinetuneResult, Path], tmp_path: Path) -> None:
    """Even with a consistent manifest: a LoRA matrix of the wrong shape never reaches the model."""
    folder = _copy_adapter(adapted[1], tmp_path)
    weights = load_file(str(folder / "adapter_model.safetensors"))
    key = next(k for k in weights if k.endswith("lora_A.weight"))
    weights[key] = torch.zeros(3, 5)
    save_file(weights, str(folder / "adapter_model.safetensors"))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["adapter"]["sha256"] = file_sha256(folder / "adapter_model.safetensors")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="has shape"):
        load_adapter(TINY, folder)


def _window_batch(contexts: np.ndarray, assets: tuple[str, ...]) -> WindowBatch:
    return WindowBatch(
        ts=T0,
        period_s=60.0,
        tags=tuple(f"{a}.tag{i}" for i, a in enumerate(assets)),
        assets=assets,
        values=contexts[:, -1].copy(),
        contexts=contexts,
    )


def test_the_daemon_forecasts_each_asset_with_its_adapter(adapted: tuple[FinetuneResult, Path], tmp_path: Path) -> None:
    """Rows of several assets in one batch: pump1 and pump4 with their adapters, pump2 with the base; a
    broken adapter (pump3) is refused at load (logged and counted) and its asset forecast by the base."""
    adapters = tmp_path / "adapters"
    _copy_adapter(adapted[1], adapters)
    _copy_adapter(adapted[1], adapters, asset="pump4")  # a second adapter beside the first
    broken = _copy_adapter(adapted[1], adapters, asset="pump3")
    (broken / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    metrics = Metrics(CollectorRegistry())
    settings = ForecastSettings(
        forecaster="model", model_path=TINY, horizon_steps=16, model_device="cpu", adapters_dir=adapters, max_wait_ms=0
    )
    forecaster = make_forecaster(settings, metrics)
    assert isinstance(forecaster, ModelForecaster)
    assert list(forecaster.adapters) == ["pump1", "pump4"]
    assert "adapter_model.safetensors" in forecaster.adapter_errors["pump3"]
    assert metrics.registry.get_sample_value("sentinelle_forecast_errors_total", {"forecaster": "model"}) == 1

    series = _plant(seed=2)
    contexts = np.stack(
        [
            series[1].values[-64:],
            series[1].values[-80:-16],
            series[0].values[-64:],
            series[1].values[-64:],
            series[0].values[-70:-6],
        ]
    )
    assets = ("pump1", "pump2", "pump1", "pump3", "pump4")
    base = ModelForecaster(TINY, LEVELS, 16, device="cpu").forecast(contexts)
    alone = load_adapter(TINY, adapted[1] / "pump1")
    tok = TSTokenizer(1024, 15.0)
    enc = tok.encode(contexts)
    with torch.inference_mode():
        q = alone(input_ids=torch.from_numpy(enc.ids)).quantiles.numpy().astype(np.float64)
    own = tok.unscale(q, enc.loc, enc.scale)[:, [0, 4, 8]]

    async def through_the_batcher() -> ForecastBatch:
        inbox: asyncio.Queue[WindowBatch | None] = asyncio.Queue()
        outbox: asyncio.Queue[ForecastBatch | None] = asyncio.Queue()
        await inbox.put(_window_batch(contexts, assets))
        await inbox.put(None)
        await ForecastBatcher(forecaster, settings, metrics).run(inbox, outbox)
        out = await outbox.get()
        assert out is not None
        return out

    got = asyncio.run(through_the_batcher()).quantiles
    np.testing.assert_allclose(got[[0, 2, 4]], own[[0, 2, 4]], rtol=1e-5, atol=1e-4)  # pump1, pump4: adapters
    np.testing.assert_allclose(got[[1, 3]], base[[1, 3]], rtol=1e-5, atol=1e-4)  # pump2, pump3: the base
    assert np.abs(got[0] - base[0]).max() > 0.5
    # Without asset information (an older caller) every row gets the base model.
    np.testing.assert_allclose(forecaster.forecast(contexts), base, rtol=1e-5, atol=1e-4)


def test_a_short_context_is_forecast_by_the_base_model(adapted: tuple[FinetuneResult, Path]) -> None:
    """A cold start (a context reaching back fewer than forecast.adapter_min_context_steps slots) gets the base
    model, a full one the adapter; the threshold is capped at a full context, and 0 turns the rule off."""
    series = _plant(seed=3)[1].values
    full = series[-64:]
    short = np.concatenate([np.full(40, np.nan), series[-24:]])  # 24 slots of history
    gap = full.copy()
    gap[5:30] = np.nan  # a gap inside a full span: still a full context
    contexts = np.stack([full, short, gap])
    assets = ("pump1",) * 3
    base = ModelForecaster(TINY, LEVELS, 16, device="cpu").forecast(contexts)

    def with_threshold(steps: int) -> np.ndarray:
        settings = ForecastSettings(
            forecaster="model",
            model_path=TINY,
            horizon_steps=16,
            model_device="cpu",
            adapters_dir=adapted[1],
            adapter_min_context_steps=steps,
        )
        forecaster = make_forecaster(settings)
        return forecaster.forecast(contexts, assets)

    default = with_threshold(ForecastSettings().adapter_min_context_steps)  # 512, capped at the model's 64
    np.testing.assert_allclose(default[1], base[1], rtol=1e-5, atol=1e-4)
    assert np.abs(default[0] - base[0]).max() > 0.5 and np.abs(default[2] - base[2]).max() > 0.5
    always = with_threshold(0)
    assert np.abs(always[1] - base[1]).max() > 0.1  # the rule, not the data, kept the adapter off
    np.testing.assert_allclose(always[[0, 2]], default[[0, 2]], rtol=1e-5, atol=1e-4)
    low = with_threshold(24)
    np.testing.assert_allclose(low, always, rtol=1e-5, atol=1e-4)  # 24 slots reach a threshold of 24
