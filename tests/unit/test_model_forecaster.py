"""The model forecaster on the tiny checked-in checkpoint: shapes, independence, slicing, loading, failures."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from prometheus_client import CollectorRegistry

from sentinelle.app import Daemon
from sentinelle.errors import ModelError
from sentinelle.forecast import SHIPPED_CHECKPOINT, make_fallback, make_forecaster
from sentinelle.forecast.batcher import ForecastBatcher
from sentinelle.forecast.engine import ModelForecaster
from sentinelle.forecast.model import SentinelleTSConfig, SentinelleTSModel
from sentinelle.metrics import Metrics
from sentinelle.records import FloatArray
from sentinelle.settings import ForecastSettings, Settings

from .model_helpers import forecast_with, in_eval_mode, small_model

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny-model"
LEVELS = (0.1, 0.5, 0.9)
ALL_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@pytest.fixture(scope="module")
def tiny() -> ModelForecaster:
    return ModelForecaster(TINY, LEVELS, 16, device="cpu")


def _contexts(n: int = 10, length: int = 64, seed: int = 0) -> FloatArray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)[None, :]
    period = rng.uniform(10, 30, (n, 1))
    x = rng.uniform(-5, 5, (n, 1)) + np.sin(2 * np.pi * t / period) + rng.normal(0, 0.05, (n, length))
    if n < 7:
        return x
    x[1] = 3.1e6 + 2e5 * np.sin(t[0] / 4.0)  # huge
    x[2] = 5.0  # flat
    x[3] = np.nan  # no history
    x[4, 20:35] = np.nan  # a gap
    x[5, :-3] = np.nan  # only three values
    x[6] = -x[6] - 100.0  # negative
    return x


def test_import_of_the_forecast_package_does_not_import_torch() -> None:
    code = (
        "import sys, sentinelle.forecast, sentinelle.app, sentinelle.forecast.tokenizer; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_shapes_finiteness_and_order(tiny: ModelForecaster) -> None:
    ctx = _contexts()
    q = tiny.forecast(ctx)
    assert q.shape == (10, 3, 16) and q.dtype == np.float64
    rows = np.isfinite(q).all(axis=(1, 2))
    assert rows.tolist() == [True, True, True, False, True, True, True, True, True, True]
    assert np.isnan(q[3]).all()
    assert (np.diff(q[rows], axis=1) >= 0).all(), "quantiles must not cross"
    np.testing.assert_allclose(q[2], 5.0, atol=0.05)  # flat stays flat, tight
    assert np.all(np.abs(q[1, 1] - 3.1e6) < 1e6)  # a huge signal stays at its level
    assert tiny.name == "model" and tiny.device == "cpu" and tiny.param_count == 28_608
    assert tiny.forecast(np.zeros((0, 64))).shape == (0, 3, 16)


def test_forecasts_are_sane_on_sines(tiny: ModelForecaster) -> None:
    """The tiny model learnt something: its median beats the last value on noisy sines."""
    rng = np.random.default_rng(3)
    t = np.arange(80)[None, :]
    y = 10 + 2 * np.sin(2 * np.pi * t / rng.uniform(12, 30, (64, 1)) + rng.uniform(0, 6, (64, 1)))
    y = y + rng.normal(0, 0.1, y.shape)
    median = tiny.forecast(y[:, :64])[:, 1]
    model_err = np.abs(median - y[:, 64:]).mean()
    naive_err = np.abs(y[:, 63:64] - y[:, 64:]).mean()
    assert model_err < 0.8 * naive_err


def test_a_row_is_independent_of_its_batch(tiny: ModelForecaster) -> None:
    ctx = _contexts(12)
    full = tiny.forecast(ctx)
    # Compare in units of each window's scale: 1e-5 of it is far below any forecast's spread.
    scale = tiny.tokenizer.scaling(ctx)[1][:, None, None]
    perm = np.random.default_rng(1).permutation(12)
    chunked = ModelForecaster(TINY, LEVELS, 16, device="cpu", max_batch=5)
    for other in (tiny.forecast(ctx[perm])[np.argsort(perm)], chunked.forecast(ctx)):
        np.testing.assert_allclose(other / scale, full / scale, atol=1e-5, equal_nan=True)
    for i in range(12):
        alone = tiny.forecast(ctx[i : i + 1])
        np.testing.assert_allclose(alone / scale[i], full[i : i + 1] / scale[i], atol=1e-5, equal_nan=True)
    # Companions of another make-up (other values, other gaps) do not matter either.
    mixed = np.concatenate([_contexts(7, seed=9), ctx[4:5], _contexts(3, seed=8) * 1e3])
    np.testing.assert_allclose(tiny.forecast(mixed)[7] / scale[4], full[4] / scale[4], atol=1e-5)


def test_context_length_is_fitted(tiny: ModelForecaster) -> None:
    long = _contexts(6, length=200, seed=2)
    # Longer windows: only the newest 64 steps count.
    np.testing.assert_allclose(tiny.forecast(long), tiny.forecast(long[:, -64:]), rtol=1e-6, equal_nan=True)
    # Shorter windows are padded with gaps, and gaps on the left do not change the forecast.
    short = long[:, -37:]
    padded = np.concatenate([np.full((6, 27), np.nan), short], axis=1)
    np.testing.assert_allclose(tiny.forecast(short), tiny.forecast(padded), rtol=1e-6, equal_nan=True)
    assert np.isfinite(tiny.forecast(short)).all()


def test_horizon_and_levels_are_sliced_and_interpolated(tiny: ModelForecaster) -> None:
    ctx = _contexts()
    full = ModelForecaster(TINY, ALL_LEVELS, 16, device="cpu").forecast(ctx)
    np.testing.assert_allclose(tiny.forecast(ctx), full[:, [0, 4, 8]], equal_nan=True)
    short = ModelForecaster(TINY, LEVELS, 4, device="cpu").forecast(ctx)
    np.testing.assert_allclose(short, full[:, [0, 4, 8], :4], equal_nan=True)
    between = ModelForecaster(TINY, (0.25, 0.5, 0.83), 16, device="cpu").forecast(ctx)
    np.testing.assert_allclose(between[:, 0], (full[:, 1] + full[:, 2]) / 2, equal_nan=True)
    np.testing.assert_allclose(between[:, 2], 0.7 * full[:, 7] + 0.3 * full[:, 8], equal_nan=True)


@pytest.mark.parametrize(
    ("levels", "horizon", "match"),
    [
        (LEVELS, 17, "forecasts 16 steps"),
        ((0.05, 0.5, 0.9), 16, "outside the model's range"),
        ((0.1, 0.9), 16, "0.5"),
    ],
)
def test_requests_the_model_cannot_answer(levels: tuple[float, ...], horizon: int, match: str) -> None:
    with pytest.raises(ModelError, match=match):
        ModelForecaster(TINY, levels, horizon, device="cpu")


def test_bfloat16_and_device_choices(tiny: ModelForecaster) -> None:
    ctx = _contexts()
    half = ModelForecaster(TINY, LEVELS, 16, device="cpu", dtype="bfloat16")
    q, ref = half.forecast(ctx), tiny.forecast(ctx)
    rows = np.isfinite(ref).all(axis=(1, 2))
    assert np.isfinite(q[rows]).all() and (np.diff(q[rows], axis=1) >= 0).all()
    scale = tiny.tokenizer.scaling(ctx)[1][:, None, None]
    assert np.nanmax(np.abs(q - ref) / scale) < 0.2  # bf16 keeps ~3 significant digits
    with pytest.raises(ModelError, match="dtype"):
        ModelForecaster(TINY, LEVELS, 16, device="cpu", dtype="float8")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA"):
            ModelForecaster(TINY, LEVELS, 16, device="cuda")


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    model = in_eval_mode(SentinelleTSModel.from_pretrained(TINY, local_files_only=True))
    ids = torch.randint(0, 1024, (5, 64))
    ids[0, :30] = 0
    with torch.inference_mode():
        before = model(ids).quantiles
    model.save_pretrained(tmp_path / "copy")
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["config.json", "model.safetensors"]
    again = in_eval_mode(SentinelleTSModel.from_pretrained(tmp_path / "copy", local_files_only=True))
    with torch.inference_mode():
        after = again(ids).quantiles
    assert before is not None and after is not None
    assert torch.equal(before, after)
    assert again.config.quantile_levels == ALL_LEVELS


def test_loss_ignores_missing_labels() -> None:
    config = SentinelleTSConfig(
        context_length=32, patch_length=8, horizon=4, d_model=16, num_layers=1, num_heads=2, d_ff=32, vocab_size=64
    )
    model = in_eval_mode(SentinelleTSModel(config))
    ids = torch.randint(1, 64, (2, 32))
    labels = torch.tensor([[0.0, 1.0, float("nan"), 2.0], [float("nan")] * 4])
    out = model(ids, labels=labels)
    assert out.loss is not None and torch.isfinite(out.loss)
    only_first = model(ids[:1], labels=labels[:1, [0, 1, 3]][:, [0, 1]])
    assert only_first.loss is not None and only_first.loss > 0


# peft 0.21 still asks transformers 5 for the deprecated `is_gradient_checkpointing`.
@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_peft_lora_wraps_the_model() -> None:
    from peft import LoraConfig, get_peft_model

    model = SentinelleTSModel.from_pretrained(TINY, local_files_only=True)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    n_trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert n_trainable == 2 * 4 * (32 + 32)  # q and v, each A (4 × 32) and B (32 × 4)
    assert n_trainable < 0.05 * model.param_count()
    out = peft_model(input_ids=torch.randint(0, 1024, (4, 64)), labels=torch.randn(4, 16))
    out.loss.backward()
    grads = [p.grad for n, p in peft_model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)


def test_loading_and_inference_make_no_network_call(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    forecaster = make_forecaster(ForecastSettings(forecaster="model", model_path=TINY, horizon_steps=16))
    q = forecaster.forecast(_contexts())
    assert forecaster.name == "model" and np.isfinite(q[0]).all()
    assert attempts == []


def _broken_copy(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A damaged copy of the tiny checkpoint and the file name the error must give."""
    d = tmp_path / "broken"
    shutil.copytree(TINY, d)
    if kind == "garbage_weights":
        (d / "model.safetensors").write_bytes(b"\x00\xffnot a safetensors file" * 10)
        return d, "model.safetensors"
    if kind == "truncated_weights":
        data = (d / "model.safetensors").read_bytes()
        (d / "model.safetensors").write_bytes(data[: len(data) // 2])
        return d, "model.safetensors"
    if kind == "missing_weights":
        (d / "model.safetensors").unlink()
        return d, "model.safetensors"
    if kind == "missing_config":
        (d / "config.json").unlink()
        return d, "config.json"
    if kind == "bad_json":
        (d / "config.json").write_text("{ not json")
        return d, "config.json"
    if kind == "other_model_type":
        (d / "config.json").write_text('{"model_type": "llama"}')
        return d, "config.json"
    if kind == "unusable_config":
        text = (d / "config.json").read_text().replace('"patch_length": 8', '"patch_length": 7')
        (d / "config.json").write_text(text)
        return d, "config.json"
    if kind == "weights_of_another_shape":
        text = (d / "config.json").read_text().replace('"d_ff": 64', '"d_ff": 48')
        (d / "config.json").write_text(text)
        return d, "model.safetensors"
    assert kind == "missing_dir"
    shutil.rmtree(d)
    return d, str(d)


BROKEN = [
    "garbage_weights",
    "truncated_weights",
    "missing_weights",
    "missing_config",
    "bad_json",
    "other_model_type",
    "unusable_config",
    "weights_of_another_shape",
    "missing_dir",
]


@pytest.mark.parametrize("kind", BROKEN)
def test_a_broken_checkpoint_raises_model_error_naming_the_file(tmp_path: Path, kind: str) -> None:
    d, culprit = _broken_copy(tmp_path, kind)
    with pytest.raises(ModelError) as e:
        ModelForecaster(d, LEVELS, 16, device="cpu")
    assert culprit in str(e.value)


def test_the_daemon_falls_back_to_holt_when_the_model_cannot_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    d, _ = _broken_copy(tmp_path, "garbage_weights")
    metrics = Metrics(CollectorRegistry())
    settings = Settings(forecast=ForecastSettings(forecaster="model", model_path=d))
    with caplog.at_level(logging.ERROR, logger="sentinelle.app"):
        daemon = Daemon(settings, metrics, sinks=[], sources=[])
    assert daemon.batcher.forecaster.name == "holt"
    assert daemon.batcher.fallback is not None and daemon.batcher.fallback.name == "naive"
    assert metrics.registry.get_sample_value("sentinelle_forecast_errors_total", {"forecaster": "model"}) == 1
    assert metrics.registry.get_sample_value("sentinelle_forecaster_active", {"forecaster": "holt"}) == 1
    assert metrics.registry.get_sample_value("sentinelle_forecast_fallback_active") == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and str(d / "model.safetensors") in errors[0].getMessage()


def test_the_daemon_uses_a_good_model_with_holt_as_its_fallback() -> None:
    settings = Settings(forecast=ForecastSettings(forecaster="model", model_path=TINY, model_device="cpu"))
    daemon = Daemon(settings, Metrics(CollectorRegistry()), sinks=[], sources=[])
    assert daemon.batcher.forecaster.name == "model"
    assert daemon.batcher.fallback is not None and daemon.batcher.fallback.name == "holt"
    fallback = make_fallback(settings.forecast)
    assert fallback is not None and fallback.name == "holt"


def test_the_default_forecaster_is_the_shipped_model() -> None:
    assert ForecastSettings().forecaster == "model" and ForecastSettings().model_path is None
    daemon = Daemon(
        Settings(forecast=ForecastSettings(model_device="cpu")), Metrics(CollectorRegistry()), sinks=[], sources=[]
    )
    forecaster = daemon.batcher.forecaster
    assert isinstance(forecaster, ModelForecaster) and forecaster.path == SHIPPED_CHECKPOINT
    assert daemon.batcher.fallback is not None and daemon.batcher.fallback.name == "holt"


def _analog_model(gate: int) -> SentinelleTSModel:
    """An untrained model with the analog branch, its gate pinned to one answer (0 head, 1 moved, 2 shape)."""
    model = small_model(analog_window=16)
    assert model.analog is not None
    with torch.no_grad():
        bias = torch.full((16, 3), -30.0)
        bias[:, gate] = 30.0
        model.analog.gate.bias.copy_(bias.flatten())
    return model


def test_the_analog_branch_copies_a_cycle_forward() -> None:
    """Untrained, the nearest-pattern answer already continues a cycle of any period and phase."""
    rng = np.random.default_rng(0)
    t = np.arange(144)
    for period in (5, 7, 12, 23):
        profile = rng.normal(0, 1, period)
        # A step profile; the "moved" answer follows a slow trend too, the "shape" one averages cycles.
        for gate, trend in ((1, 0.01), (2, 0.0)):
            y = 50 + 3 * profile[t % period] + trend * t
            median = forecast_with(_analog_model(gate), y[None, :128])[0, 4]
            err = np.abs(median - y[128:]).mean()
            assert err < 0.1 * np.abs(y[128:] - y[127]).mean(), (period, gate, err)
    # With the gate on the head, the branch changes nothing: the model is the plain transformer.
    head = _analog_model(0)
    plain = SentinelleTSModel(head.config.__class__(**{**head.config.to_dict(), "analog_window": 0}))
    plain.load_state_dict({k: v for k, v in head.state_dict().items() if not k.startswith("analog.")})
    y = 50 + np.sin(t / 3.0)
    np.testing.assert_allclose(
        forecast_with(head, y[None, :128]), forecast_with(in_eval_mode(plain), y[None, :128]), rtol=1e-5
    )


def test_the_analog_branch_needs_observed_history() -> None:
    """Gaps, short and empty contexts: finite forecasts; without a usable match the head answers."""
    moved, head = _analog_model(1), _analog_model(0)
    rng = np.random.default_rng(1)
    x = 10 + np.sin(np.arange(128) / 2.0)[None, :].repeat(4, axis=0) + rng.normal(0, 0.01, (4, 128))
    x[1, :100] = np.nan  # 28 steps: no complete 16-step window has a future inside the context for h > 12
    x[2, ::3] = np.nan  # no window without a gap: no candidate at all
    x[3] = np.nan
    q = forecast_with(moved, x)
    assert np.isfinite(q[:3]).all() and (np.diff(q[:3], axis=1) >= 0).all()
    fallback = forecast_with(head, x)
    np.testing.assert_allclose(q[2], fallback[2], rtol=1e-5)
    np.testing.assert_allclose(q[1, :, 13:], fallback[1, :, 13:], rtol=1e-5)
    assert not np.allclose(q[1, :, :12], fallback[1, :, :12])


def test_the_shipped_model_continues_cycles() -> None:
    """Guards the shipped checkpoint: a cycle of period 7–50 is carried forward, not flattened
    (the first starter, without the analog branch, forecast a period-7 sine as a flat line)."""
    from sentinelle.forecast import SHIPPED_CHECKPOINT

    model = ModelForecaster(SHIPPED_CHECKPOINT, (0.1, 0.5, 0.9), 64, device="cpu")
    t = np.arange(512 + 64)
    periods = (7, 12, 24, 50)
    y = np.stack([10 + np.sin(2 * np.pi * t / p) for p in periods])
    median = model.forecast(y[:, :512])[:, 1]
    err = np.abs(median - y[:, 512:]).mean(axis=1)
    assert (err < 0.1).all(), dict(zip(periods, err.round(3), strict=True))
    assert (median.std(axis=1) > 0.6).all(), "the forecast keeps the cycle's amplitude (std 0.71)"


def test_the_shipped_model_runs_in_bfloat16_as_on_cuda() -> None:
    """On CUDA the engine loads the model in bfloat16.  The analog and smoothing branches compute
    their distances and recursions in float32 and once fed float32 into their bfloat16 layers,
    so every forward pass on a GPU failed (and the daemon fell back to Holt): found on an H100."""
    from sentinelle.forecast import SHIPPED_CHECKPOINT

    ctx = _contexts(n=12, length=512, seed=3)
    ref = ModelForecaster(SHIPPED_CHECKPOINT, LEVELS, 16, device="cpu").forecast(ctx)
    half = ModelForecaster(SHIPPED_CHECKPOINT, LEVELS, 16, device="cpu", dtype="bfloat16")
    assert half.model.analog is not None and half.model.smoothing is not None
    q = half.forecast(ctx)
    rows = np.isfinite(ref).all(axis=(1, 2))
    assert rows.sum() >= 10 and np.isfinite(q[rows]).all() and (np.diff(q[rows], axis=1) >= 0).all()
    scale = half.tokenizer.scaling(ctx)[1][:, None, None]
    assert np.nanmax(np.abs(q - ref) / scale) < 0.2


def test_a_window_the_model_cannot_forecast_is_a_nan_row_and_the_batcher_fills_it_from_holt() -> None:
    """Values near the float limit overflow in scaling: that row alone is NaN, and Holt answers it."""
    f = ModelForecaster(TINY, LEVELS, 4, device="cpu")
    x = np.tile(np.sin(np.arange(64) / 5.0), (3, 1)) + np.arange(3.0)[:, None]
    x[1] = 1.7e308
    q = f.forecast(x)
    assert np.isfinite(q[[0, 2]]).all() and np.isnan(q[1]).all()
    np.testing.assert_allclose(q[[0, 2]], f.forecast(x[[0, 2]]), rtol=1e-5)  # the bad row changes nothing else

    m = Metrics(CollectorRegistry())
    settings = ForecastSettings(forecaster="model", horizon_steps=4)
    fallback = make_fallback(settings)
    assert fallback is not None
    batcher = ForecastBatcher(f, settings, m, fallback)
    with np.errstate(over="ignore", invalid="ignore"):  # Holt overflows on such values too
        out, name = batcher.predict(x)
        expected = fallback.forecast(x[1:2])[0]
    assert name == "model"
    np.testing.assert_allclose(out[[0, 2]], q[[0, 2]], rtol=1e-5)
    np.testing.assert_array_equal(out[1], expected)
    assert m.registry.get_sample_value("sentinelle_forecast_fallback_rows_total", {"forecaster": "model"}) == 1
