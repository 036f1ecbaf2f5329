"""The model's exponential-smoothing branch (forecast/smoothing.py) on hand-made series."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sentinelle.forecast import smoothing
from sentinelle.forecast.model import SentinelleTSModel
from sentinelle.forecast.smoothing import SmoothingBranch

from .model_helpers import forecast_with, small_model


def _branch(horizon: int = 24, max_period: int = 64, window: int = 256) -> SmoothingBranch:
    return SmoothingBranch(d_model=8, horizon=horizon, max_period=max_period, window=window)


def _run(branch: SmoothingBranch, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = torch.from_numpy(np.nan_to_num(x)).float()
    seen = torch.from_numpy(np.isfinite(x))
    with torch.no_grad():
        answer = branch(torch.zeros(x.shape[0], 8), v, seen)
    assert torch.isfinite(answer.logit).all() and torch.isfinite(answer.sigma).all()
    return answer.forecast.numpy(), answer.usable.numpy()


@pytest.mark.parametrize("period", [7, 12, 24])
def test_finds_the_season_and_continues_it(period: int) -> None:
    rng = np.random.default_rng(period)
    t = np.arange(512 + 24)
    profile = rng.normal(0, 1, period)
    y = 3.0 + profile[t % period] + 0.001 * t
    branch = _branch()
    window = torch.from_numpy(y[None, :512]).float()
    periods, found = branch.seasons(window - window.mean(), torch.tensor([[512]]))
    assert bool(found[0, 0]) and int(periods[0, 0]) == period
    forecast, usable = _run(branch, y[None, :512])
    assert usable[0]
    err = np.abs(forecast[0] - y[512:]).mean()
    assert err < 0.05 * np.abs(profile).mean(), err


def test_on_noise_it_smooths_the_level() -> None:
    """White noise around a level: the soft-best expert is a slow one, its forecast near the level."""
    rng = np.random.default_rng(3)
    x = 5.0 + rng.normal(0, 1, (64, 512))
    forecast, _ = _run(_branch(), x)
    # The last value is off by ~1 σ on average; a good level estimate by far less.
    assert np.abs(forecast[:, 0] - 5.0).mean() < 0.35
    assert np.abs(x[:, -1] - 5.0).mean() > 0.6


def test_on_a_random_walk_it_follows_the_last_value() -> None:
    rng = np.random.default_rng(4)
    x = np.cumsum(rng.normal(0, 1, (64, 512)), axis=1)
    forecast, _ = _run(_branch(), x)
    assert np.abs(forecast[:, 0] - x[:, -1]).mean() < 0.3


def test_gaps_short_and_empty_windows() -> None:
    rng = np.random.default_rng(5)
    x = 10 + np.sin(np.arange(512) / 3.0)[None].repeat(4, axis=0) + rng.normal(0, 0.05, (4, 512))
    x[0, ::3] = np.nan  # a third missing
    x[1, :500] = np.nan  # 12 observed steps
    x[2, 100:400] = np.nan  # a long hole
    x[3] = np.nan  # nothing observed
    forecast, usable = _run(_branch(), x)
    assert usable.tolist() == [True, True, True, False]
    assert np.isfinite(forecast[:3]).all()
    assert np.abs(forecast[:3, :4] - 10).max() < 2.0


def test_rows_are_independent_of_the_batch() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(0, 1, (6, 512)).cumsum(axis=1)
    x[2, :300] = np.nan
    branch = _branch()
    together, _ = _run(branch, x)
    alone = np.concatenate([_run(branch, x[i : i + 1])[0] for i in range(6)])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-5)


def _model(smoothing: bool, gate: float, floor: float = 0.0) -> SentinelleTSModel:
    model = small_model(smoothing_max_period=32 if smoothing else 0, smoothing_window=64, smoothing_spread_floor=floor)
    if model.smoothing is not None:
        with torch.no_grad():
            model.smoothing.gate.bias.fill_(gate)
    return model


def test_in_the_model_the_gate_chooses_between_head_and_smoothing() -> None:
    t = np.arange(144)
    y = 20 + 2 * np.sin(2 * np.pi * t / 8)
    x = y[None, :128]
    smooth = forecast_with(_model(True, 30.0), x)  # gate pinned to the smoothing answer
    assert np.abs(smooth[0, 4] - y[128:]).mean() < 0.05
    assert (np.diff(smooth, axis=1) >= 0).all()
    # Pinned to the head, the branch changes nothing: the model is the plain transformer.
    head, plain = _model(True, -30.0), _model(False, 0.0)
    plain.load_state_dict({k: v for k, v in head.state_dict().items() if not k.startswith("smoothing.")})
    np.testing.assert_allclose(forecast_with(head, x), forecast_with(plain, x), rtol=1e-5)
    # Nothing observed in the scoring window (a long outage): the head answers, no NaN.
    gap = y[None, :128].copy()
    gap[0, 40:] = np.nan
    pinned, fallback = forecast_with(_model(True, 30.0), gap), forecast_with(_model(True, -30.0), gap)
    assert np.isfinite(pinned).all()
    np.testing.assert_allclose(pinned, fallback, rtol=1e-5)


def test_the_spread_floor_gives_noise_its_width() -> None:
    """On white noise the untrained head's bands are arbitrary; with the floor the 10–90 % band
    is at least what the series' one-step errors imply, so it covers about 80 % of new draws."""
    rng = np.random.default_rng(7)
    x = 3.0 + rng.normal(0, 1, (200, 128 + 16))
    narrow = _model(True, 30.0, floor=0.0)
    with torch.no_grad():  # shrink the head's offsets to nothing: bands of zero width
        narrow.head.output_layer.bias.fill_(-20.0)
        narrow.head.residual_layer.bias.fill_(-20.0)
    floored = _model(True, 30.0, floor=1.0)
    floored.load_state_dict(narrow.state_dict())
    future = x[:, 128:]
    for model, lo, hi in ((narrow, 0.0, 0.2), (floored, 0.7, 0.9)):
        q = forecast_with(model, x[:, :128])
        covered = ((future >= q[:, 0]) & (future <= q[:, -1])).mean()
        assert lo <= covered <= hi, (model.config.smoothing_spread_floor, covered)
        assert (np.diff(q, axis=1) >= -1e-9).all()


# The chunked form against the step-by-step recursion it replaces on the GPU.  Float32 on the CPU;
# the two sum the same errors in a different order, so they agree to rounding, not bit for bit.
PARITY_ATOL = 2e-5


def _both(branch: SmoothingBranch, x: np.ndarray, alpha: torch.Tensor | None = None) -> list[list[torch.Tensor]]:
    v = torch.from_numpy(np.nan_to_num(x)).float()
    seen = torch.from_numpy(np.isfinite(x))
    a, g, s = branch.constants(v.device)
    if alpha is not None:
        a = alpha
    out = []
    for scan in ("recursion", "chunked"):
        branch.scan = scan
        with torch.no_grad():
            out.append(list(branch.experts(v, seen, a, g, s)))
    return out


def _gappy(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    t = np.arange(length)
    period = rng.integers(3, 40, (n, 1))
    x = rng.normal(0, 2, (n, 1)) + np.cumsum(rng.normal(0, 0.1, (n, length)), axis=1)
    x += rng.uniform(0, 3, (n, 1)) * np.sin(2 * np.pi * t / period) + rng.normal(0, 0.2, (n, length))
    x[rng.random((n, length)) < 0.05] = np.nan  # scattered gaps
    x[0, : length - 12] = np.nan  # 12 observed steps
    x[1] = np.nan  # nothing observed
    x[2, length // 5 : 4 * length // 5] = np.nan  # a long hole
    x[3, -40:] = np.nan  # a hole at the end of the context
    x[4, ::2] = np.nan  # every other step
    return x


@pytest.mark.parametrize(("length", "chunk", "window"), [(512, 32, 256), (128, 32, 64), (100, 16, 100), (37, 8, 10)])
def test_the_chunked_form_gives_the_recursions_numbers(length: int, chunk: int, window: int) -> None:
    """Random windows with seasons, scattered gaps, holes, a last partial chunk, windows shorter than a chunk."""
    rng = np.random.default_rng(length)
    branch = _branch(horizon=16, max_period=min(64, length // 2), window=window)
    branch.chunk = chunk
    x = _gappy(rng, 40, length)
    (f_rec, e_rec, valid_rec, usable_rec), (f_chk, e_chk, valid_chk, usable_chk) = _both(branch, x)
    assert torch.equal(valid_rec, valid_chk) and torch.equal(usable_rec, usable_chk)
    assert usable_rec.tolist()[:3] == [True, False, True]  # 12 steps / nothing / a hole
    torch.testing.assert_close(f_chk, f_rec, atol=PARITY_ATOL, rtol=1e-5)
    torch.testing.assert_close(e_chk, e_rec, atol=PARITY_ATOL, rtol=1e-5)
    assert f_rec.abs().max() > 1.0  # the comparison is not between zeros


@pytest.mark.parametrize("alpha", [1e-6, 0.02, 0.999999, 1.0])
def test_the_chunked_form_is_stable_at_extreme_smoothing_weights(alpha: float) -> None:
    """α near 0 (level barely moves) and near 1 (random walk, where powers of 1−α would cancel)."""
    rng = np.random.default_rng(11)
    branch = _branch(horizon=16, max_period=64, window=256)
    x = _gappy(rng, 24, 512) * 50.0  # raw-unit magnitudes, not only scaled ones
    alphas = torch.full((len(branch.constants(torch.device("cpu"))[0]),), alpha)
    (f_rec, e_rec, *_), (f_chk, e_chk, *_) = _both(branch, x, alphas)
    assert torch.isfinite(f_chk).all() and torch.isfinite(e_chk).all()
    scale = float(f_rec.abs().max())
    torch.testing.assert_close(f_chk, f_rec, atol=PARITY_ATOL * scale, rtol=1e-5)
    torch.testing.assert_close(e_chk, e_rec, atol=PARITY_ATOL * float(e_rec.max()), rtol=1e-4)


def test_the_scan_is_chosen_by_device() -> None:
    branch = _branch()
    assert not branch.use_chunked(torch.device("cpu")) and branch.use_chunked(torch.device("cuda"))
    branch.scan = "chunked"
    assert branch.use_chunked(torch.device("cpu"))


def test_the_shipped_model_forecasts_the_same_with_either_form() -> None:
    """The starter checkpoint on the chiller simulator's tags (with gaps): quantiles of both forms agree."""
    from sentinelle.forecast import SHIPPED_CHECKPOINT
    from sentinelle.forecast.engine import ModelForecaster
    from sentinelle.settings import SimulatorSettings
    from sentinelle.sim.chiller import ChillerModel

    plant = ChillerModel(SimulatorSettings(seed=3))
    series = np.stack([plant.step_array(1_700_000_000.0 + k) for k in range(700)], axis=1)  # (tags, steps)
    windows = np.concatenate([series[:, k : k + 512] for k in (0, 90, 188)])
    windows[np.random.default_rng(2).random(windows.shape) < 0.02] = np.nan
    model = ModelForecaster(SHIPPED_CHECKPOINT, (0.1, 0.5, 0.9), 16, device="cpu")
    branch = model.model.smoothing
    assert branch is not None
    quantiles = {}
    for scan in ("recursion", "chunked"):
        branch.scan = scan
        quantiles[scan] = model.forecast(windows)
    spread = np.abs(quantiles["recursion"]).max()
    assert np.isfinite(quantiles["chunked"]).all() and spread > 1.0
    np.testing.assert_allclose(quantiles["chunked"], quantiles["recursion"], rtol=1e-5, atol=1e-5 * spread)


def test_the_chunked_form_is_differentiable() -> None:
    """The branch runs its experts under no_grad (only the gate and temperature learn), but the
    chunked form is differentiable should the smoothing weights ever learn: autograd matches
    finite differences (float64) through gaps, seasons, α = 1 and chunk boundaries."""
    branch = _branch(horizon=4, max_period=6, window=10)
    branch.chunk = 8
    generator = torch.Generator().manual_seed(0)
    mask = (torch.rand(2, 20, generator=generator) > 0.2).double()
    values = torch.randn(2, 20, dtype=torch.float64, generator=generator, requires_grad=True)
    level = torch.randn(2, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    profile = torch.randn(2, 3, 6, dtype=torch.float64, generator=generator)
    period = torch.tensor([[1, 3, 5], [1, 2, 6]])
    alpha = torch.tensor([0.3, 0.5, 1.0], dtype=torch.float64)
    gain = torch.tensor([0.0, 0.1, 0.0], dtype=torch.float64)

    def run(x: torch.Tensor, start: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, error, forecasts = branch._chunked(x * mask, mask, start, profile, period, alpha, gain, 10)
        return error, forecasts

    assert torch.autograd.gradcheck(run, (values, level))


def test_rows_in_blocks_give_the_recursions_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recursion run over blocks of rows (each op on one thread) is the one-block recursion, bit for bit."""
    rng = np.random.default_rng(5)
    branch = _branch(horizon=16, max_period=64, window=256)
    branch.scan = "recursion"
    x = _gappy(rng, 23, 512)
    v, seen = torch.from_numpy(np.nan_to_num(x)).float(), torch.from_numpy(np.isfinite(x))
    alpha, gamma, season_of = branch.constants(torch.device("cpu"))
    with torch.no_grad():
        whole = branch.experts(v, seen, alpha, gamma, season_of)
        experts = len(alpha)
        monkeypatch.setattr(smoothing, "SERIAL_ELEMENTS", 5 * experts)  # blocks of 5 rows, the last of 3
        blocks = branch.experts(v, seen, alpha, gamma, season_of)
    for a, b in zip(whole, blocks, strict=True):
        assert torch.equal(a, b)
    assert whole[0].abs().max() > 1.0
