"""Fine-tuning on a deadband-compressed export (issue 17): a held point is a target known to within ±deadband.

The loss (:mod:`sentinelle.training.censored`) is checked against its definition, then on what it is
for: quantiles fitted to a compressed noise series with held points dropped (``skip``, the behaviour
before) come out wider than the band the noise really has, with held points as intervals they do not;
and ``sentinelle finetune``'s path from a compressed wide CSV export (deadband estimated by the history
reader) to an adapter whose manifest says how it took the held points.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sentinelle.evaluation.history_data import load_sources
from sentinelle.forecast.model import pinball_loss
from sentinelle.records import BoolArray
from sentinelle.settings import CsvWideSource, FinetuneSettings
from sentinelle.training.censored import (
    HeldTargets,
    interval_pinball_loss,
    target_bounds,
)
from sentinelle.training.finetune import finetune
from sentinelle.training.finetune_data import tracks

from .deadband_helpers import compress

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny-model"
LEVELS = (0.1, 0.5, 0.9)
SIGMA = 0.1
DEADBAND = 2.5 * SIGMA  # the deadband report's export: 2.5 sensor-noise sigmas
TAG = "pump1.temp_c"
T0 = 1_767_225_600.0


def _loss(q: float, lo: float, hi: float, mode: HeldTargets, levels: tuple[float, ...] = (0.9,)) -> float:
    quantiles = torch.full((1, len(levels), 1), q)
    return float(interval_pinball_loss(quantiles, torch.tensor([[lo]]), torch.tensor([[hi]]), levels, mode))


# -- the loss -----------------------------------------------------------------------------------


def test_nearest_is_zero_inside_the_band_and_grows_outside_it() -> None:
    lo, hi = 0.8, 1.2
    inside = [_loss(q, lo, hi, "nearest") for q in np.linspace(lo, hi, 9).tolist()]
    assert inside == [0.0] * 9
    above = [_loss(hi + d, lo, hi, "nearest") for d in (0.1, 0.2, 0.4)]
    below = [_loss(lo - d, lo, hi, "nearest") for d in (0.1, 0.2, 0.4)]
    assert above == pytest.approx([0.1 * 0.1, 0.1 * 0.2, 0.1 * 0.4])  # (1 − τ) × distance to the upper edge
    assert below == pytest.approx([0.9 * 0.1, 0.9 * 0.2, 0.9 * 0.4])  # τ × distance to the lower edge


@pytest.mark.parametrize("mode", ["uniform", "nearest", "skip"])
def test_a_point_target_is_the_ordinary_pinball_loss(mode: HeldTargets) -> None:
    rng = np.random.default_rng(0)
    quantiles = torch.from_numpy(np.sort(rng.normal(size=(4, 3, 6)), axis=1)).float()
    labels = torch.from_numpy(rng.normal(size=(4, 5))).float()
    labels[1, 2] = float("nan")  # no target: not counted, as in pinball_loss
    ours = interval_pinball_loss(quantiles, labels, labels.clone(), LEVELS, mode)
    assert float(ours) == pytest.approx(float(pinball_loss(quantiles, labels, LEVELS)), rel=1e-6)


def test_uniform_is_the_expected_pinball_loss_of_a_value_uniform_in_the_band() -> None:
    lo, hi = 0.8, 1.2
    ys = np.linspace(lo, hi, 200_001)
    for tau in (0.1, 0.5, 0.9):
        for q in (0.5, 0.85, 1.0, 1.19, 1.5):
            expected = float(np.mean(np.maximum(tau * (ys - q), (tau - 1.0) * (ys - q))))
            assert _loss(q, lo, hi, "uniform", (tau,)) == pytest.approx(expected, rel=1e-4, abs=1e-7)


def test_uniform_draws_each_quantile_to_its_place_in_the_band() -> None:
    """Inside the band the gradient is P(y < q) − τ under the uniform value: zero at lo + τ (hi − lo)."""
    lo, hi = 0.8, 1.2
    q = torch.tensor([[[0.9], [1.0], [1.1]]], requires_grad=True)
    loss = interval_pinball_loss(q, torch.tensor([[lo]]), torch.tensor([[hi]]), LEVELS, "uniform")
    loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
    assert q.grad is not None
    expected = [(0.9 - lo) / (hi - lo) - 0.1, (1.0 - lo) / (hi - lo) - 0.5, (1.1 - lo) / (hi - lo) - 0.9]
    assert (q.grad.flatten() * 3).tolist() == pytest.approx(expected, abs=1e-5)  # the mean over 3 levels


def test_bounds_of_held_points() -> None:
    values = np.array([1.0, 1.0, 1.0, 1.6])
    held = np.array([False, True, True, False])
    lo, hi = target_bounds(values, held, 0.2, "uniform")
    assert lo.tolist() == pytest.approx([1.0, 0.8, 0.8, 1.6]) and hi.tolist() == pytest.approx([1.0, 1.2, 1.2, 1.6])
    for mode, deadband in (("skip", 0.2), ("uniform", None)):  # skipped, or no deadband known: no target
        lo, hi = target_bounds(values, held, deadband, mode)  # type: ignore[arg-type]
        assert np.isnan(lo[held]).all() and np.isnan(hi[held]).all() and lo[~held].tolist() == [1.0, 1.6]
    with pytest.raises(ValueError, match="below its lower bound"):
        interval_pinball_loss(torch.zeros(1, 3, 1), torch.tensor([[1.0]]), torch.tensor([[0.0]]), LEVELS)


# -- what it is for: the band learned from a compressed export ------------------------------------


def _fitted_band(mode: HeldTargets, seed: int = 0, n: int = 4000) -> float:
    """80 % band (q0.9 − q0.1) of the next value around the export's last value, fitted to a compressed export.

    The plant is white noise of SIGMA around a constant, so the true band of the next value around the last
    one exported is what the export's compression leaves: a quantile model fitted by gradient descent on the
    interval loss, as fine-tuning fits the adapter (one free quantile per level instead of a network).
    """
    x = 10.0 + np.random.default_rng(seed).normal(0.0, SIGMA, n)
    exported, held = compress(x, DEADBAND)
    lo, hi = target_bounds(exported[1:] - exported[:-1], held[1:], DEADBAND, mode)  # next value − last exported
    q = torch.zeros(1, len(LEVELS), 1, requires_grad=True)
    opt = torch.optim.Adam([q], lr=0.02)
    lower, upper = torch.from_numpy(lo).float()[:, None], torch.from_numpy(hi).float()[:, None]
    for _ in range(300):
        opt.zero_grad()
        loss = interval_pinball_loss(q.expand(len(lo), -1, -1), lower, upper, LEVELS, mode)
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        opt.step()
    return float((q[0, 2, 0] - q[0, 0, 0]).detach())


def test_the_band_fitted_to_a_compressed_export() -> None:
    """Skip (held points dropped) learns only the moves past the deadband: a band wider than ±deadband, far
    wider than the band the next value really has around the last exported one (the empirical one, from the
    uncompressed values); held points as intervals bring it back within the deadband."""
    x = 10.0 + np.random.default_rng(0).normal(0.0, SIGMA, 4000)
    exported, _ = compress(x, DEADBAND)
    true_step = x[1:] - exported[:-1]
    true_band = float(np.quantile(true_step, 0.9) - np.quantile(true_step, 0.1))
    skip, uniform, nearest = (_fitted_band(m) for m in ("skip", "uniform", "nearest"))
    assert skip > 2 * DEADBAND > true_band
    assert nearest <= 2 * DEADBAND + 0.01
    assert abs(uniform - true_band) < abs(nearest - true_band) < abs(skip - true_band)
    assert abs(uniform - true_band) < 0.3 * true_band


# -- end to end: a compressed export, through the history reader, to an adapter ------------------


def _wide_export(path: Path, n: int = 400) -> BoolArray:
    """A compressed wide CSV (an empty cell: held) of a noisy tag with a slow cycle; its held mask."""
    t = np.arange(n)
    x = 8.0 + 0.5 * np.sin(2 * np.pi * t / 96) + np.random.default_rng(1).normal(0.0, SIGMA, n)
    exported, held = compress(x, DEADBAND)
    lines = ["Date;Température (°C)"]
    for k in range(n):
        cell = "" if held[k] else f"{exported[k]:.6f}"
        lines.append(f"{np.datetime_as_string(np.datetime64(int(T0 + 60 * k), 's'))}Z;{cell}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return held


def test_finetune_on_a_compressed_export_takes_held_points_as_intervals(tmp_path: Path) -> None:
    held = _wide_export(tmp_path / "export.csv")
    source = CsvWideSource(path=tmp_path / "export.csv", date_column="Date", tag_map={"Température (°C)": TAG})
    (series,) = load_sources([source], periods={TAG: 60.0})
    assert series.held is not None and series.held.tolist() == held.tolist() and held.mean() > 0.5
    assert series.deadband is not None and DEADBAND <= series.deadband < 1.5 * DEADBAND  # estimated from the steps
    (track,) = tracks([series], 0.2, "uniform")
    assert track.lower[held] == pytest.approx(series.values[held] - series.deadband)
    assert track.upper[held] == pytest.approx(series.values[held] + series.deadband)
    assert (track.lower[~held] == series.values[~held]).all() and np.isnan(track.targets[held]).all()

    settings = FinetuneSettings(max_steps=6, eval_every_steps=3, batch_size=8, threads=1, validation_windows=16)
    result = finetune(TINY, [series], settings, asset="pump1", out_dir=tmp_path / "a", progress=False, device="cpu")
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text(encoding="utf-8"))
    assert result.steps == 6
    assert manifest["data"]["held_targets"] == FinetuneSettings().held_targets == "nearest"  # the default
    assert manifest["data"]["deadbands"] == {TAG: pytest.approx(series.deadband)}
    assert np.isfinite(result.before["pinball"]) and result.before["pinball"] > 0
