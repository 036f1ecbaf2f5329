"""The acceptance gate (training/acceptance.py): an adapter is kept only if it beats the base on both counts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sentinelle.cli.training import _no_op_reason
from sentinelle.evaluation.datasets import Series
from sentinelle.forecast.engine import ModelForecaster
from sentinelle.settings import FinetuneSettings
from sentinelle.training import finetune as finetune_module
from sentinelle.training.acceptance import Verdict, judge
from sentinelle.training.finetune import FinetuneResult, finetune, load_adapter
from sentinelle.training.keep_best import KeepBest

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny-model"
GATED = FinetuneSettings(  # the gate is on by default
    max_steps=20, eval_every_steps=10, batch_size=16, threads=1, patience_evals=10, learning_rate=3e-3
)


@pytest.mark.parametrize(
    ("adapter", "failed"),
    [
        ({"mase": 7.0, "coverage_80": 0.81}, ()),  # better point error, nearer nominal
        ({"mase": 7.0, "coverage_80": 0.75}, ()),  # 0.05 off nominal, as the base: not worse
        ({"mase": 6.4, "coverage_80": 0.902}, ("calibration",)),  # seed 1555's shape: sharper median, worse cover
        ({"mase": 6.4, "coverage_80": 0.70}, ("calibration",)),  # too narrow counts as much as too wide
        ({"mase": 8.0, "coverage_80": 0.80}, ("point_error",)),  # equal MASE is not better
        ({"mase": 9.0, "coverage_80": 0.95}, ("point_error", "calibration")),
        ({"mase": math.nan, "coverage_80": 0.80}, ("point_error",)),  # no read point: no proof of benefit
    ],
)
def test_the_gate_needs_both_point_error_and_calibration(adapter: dict[str, float], failed: tuple[str, ...]) -> None:
    verdict = judge({"mase": 8.0, "coverage_80": 0.85}, adapter)
    assert verdict.failed == failed
    assert verdict.accepted == (not failed)


def test_keep_best_reverts_to_the_first_weights() -> None:
    layer = torch.nn.Linear(2, 1)
    first = layer.weight.detach().clone()
    keep = KeepBest(layer, "loss", patience=5)
    keep.offer(0, {"loss": 1.0})
    with torch.no_grad():
        layer.weight.add_(1.0)
    keep.offer(10, {"loss": 0.5})
    with torch.no_grad():
        layer.weight.add_(1.0)
    keep.restore()
    assert keep.step == 10 and torch.equal(layer.weight, first + 1.0)
    keep.revert_to_first()
    assert keep.step == 0 and keep.best == {"loss": 1.0}
    assert torch.equal(layer.weight, first)


def _plant(n: int = 400) -> list[Series]:
    """One tag with a 24-step square cycle: the tiny model learns it within a few steps."""
    rng = np.random.default_rng(3)
    t = np.arange(float(n))
    values = 8.0 + 2.0 * np.sign(np.sin(2 * np.pi * t / 24)) + rng.normal(0, 0.1, n)
    return [Series("pump1.temp_c", "test", values, 1_767_225_600.0 + 60.0 * t, 60.0)]


def _median_gap(adapter_dir: Path) -> float:
    """Largest gap between the adapter's and the base model's medians on one context."""
    base = ModelForecaster(TINY, (0.1, 0.5, 0.9), 16, device="cpu")
    context = _plant()[0].values[-64:][None, :]
    encoded = base.tokenizer.encode(context)
    with torch.inference_mode():
        q = load_adapter(TINY, adapter_dir)(input_ids=torch.from_numpy(encoded.ids)).quantiles
    assert q is not None
    adapted = base.tokenizer.unscale(q.numpy().astype(np.float64), encoded.loc, encoded.scale)[0, 4]
    return float(np.abs(adapted - base.forecast(context)[0, 1]).max())


def test_the_gate_is_on_by_default() -> None:
    assert FinetuneSettings().acceptance_gate is True


def test_a_rejected_adapter_is_saved_as_a_no_op(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(finetune_module, "judge", lambda base, adapter: Verdict(("calibration",)))
    result = finetune(TINY, _plant(), GATED, asset="pump1", out_dir=tmp_path / "pump1", progress=False, device="cpu")
    gate = json.loads((tmp_path / "pump1" / "manifest.json").read_text())["validation"]["acceptance"]
    assert gate["gate"] is True and gate["accepted"] is False and gate["failed"] == ["calibration"]
    assert gate["trained_best_step"] > 0, "the plant is learnable: training did improve validation"
    assert result.best_step == 0 and result.after == result.before and not result.improved
    assert _median_gap(tmp_path / "pump1") < 1e-6  # the saved adapter forecasts as the base model


def test_an_accepted_or_ungated_adapter_is_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(finetune_module, "judge", lambda base, adapter: Verdict(()))
    kept = finetune(TINY, _plant(), GATED, asset="pump1", out_dir=tmp_path / "a", progress=False, device="cpu")
    ungated = GATED.model_copy(update={"acceptance_gate": False})
    monkeypatch.setattr(finetune_module, "judge", lambda base, adapter: Verdict(("point_error",)))
    free = finetune(TINY, _plant(), ungated, asset="pump1", out_dir=tmp_path / "b", progress=False, device="cpu")
    for result, folder in ((kept, tmp_path / "a"), (free, tmp_path / "b")):
        gate = json.loads((folder / "manifest.json").read_text())["validation"]["acceptance"]
        assert gate["accepted"] is True and gate["failed"] == []
        assert result.best_step == gate["trained_best_step"] > 0
        assert _median_gap(folder) > 0.05
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["validation"]["acceptance"]["gate"] is False


@pytest.mark.parametrize(
    ("best_step", "acceptance", "says"),
    [
        (5, {"accepted": True, "failed": []}, ""),
        (0, {"accepted": True, "failed": []}, "no improvement"),
        (0, {"accepted": False, "failed": ["calibration"]}, "acceptance_gate (not better on calibration)"),
    ],
)
def test_the_command_says_why_an_adapter_is_a_no_op(best_step: int, acceptance: dict[str, object], says: str) -> None:
    result = FinetuneResult(
        out_dir=Path("a"),
        asset="pump1",
        steps=10,
        best_step=best_step,
        stopped_by="steps",
        before={},
        after={},
        train_origins=1,
        validation_windows=1,
        trainable_parameters=1,
        wall_seconds=1.0,
        manifest={"validation": {"acceptance": acceptance}},
    )
    reason = _no_op_reason(result)
    assert (says in reason) if says else reason == ""
