"""The pretraining corpus: shapes, reproducibility, missing-value rules, held-out data, speed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sentinelle.evaluation.heldout import is_benchmark_seed
from sentinelle.settings import SimulatorSettings
from sentinelle.sim.chiller import ChillerModel
from sentinelle.training import corpus as corpus_module
from sentinelle.training.corpus import SOURCES, Corpus, industrial, kernel_synth, seasonal
from sentinelle.training.pretrain_settings import CorpusMix, CorpusSettings

from .conftest import HELDOUT_VALUE

CONTEXT, HORIZON = 64, 16


def _settings(**overrides: Any) -> CorpusSettings:
    base: dict[str, Any] = {
        "mix": CorpusMix(kernel_synth=1, industrial=1, chiller=0.5, real=0, seasonal=0),
        "kernel_synth_series": 30,
        "kernel_synth_length": 256,
        "industrial_series": 30,
        "industrial_length": 256,
        "chiller_runs": 3,
        "chiller_length": 200,
        "min_context_steps": 8,
    }
    base.update(overrides)
    return CorpusSettings(**base)


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus.build(_settings(), context_length=CONTEXT, horizon=HORIZON)


def test_shapes_and_sources(corpus: Corpus) -> None:
    batch = corpus.sample(256, np.random.default_rng(0))
    assert batch.context.shape == (256, CONTEXT) and batch.target.shape == (256, HORIZON)
    assert batch.context.dtype == np.float64 and len(batch) == 256
    counts = np.bincount(batch.source, minlength=len(SOURCES))
    assert counts[SOURCES.index("real")] == 0
    assert all(counts[SOURCES.index(s)] > 0 for s in ("kernel_synth", "industrial", "chiller"))
    summary = corpus.summary()["sources"]
    assert summary["chiller"]["series"] == 3 * 6
    assert summary["kernel_synth"]["validation_origins"] > 0


def test_same_seed_same_bank_and_batches(corpus: Corpus) -> None:
    again = Corpus.build(_settings(), context_length=CONTEXT, horizon=HORIZON)
    np.testing.assert_array_equal(again.values, corpus.values)
    a, b = corpus.sample(64, np.random.default_rng(7)), again.sample(64, np.random.default_rng(7))
    np.testing.assert_array_equal(a.context, b.context)
    np.testing.assert_array_equal(a.target, b.target)
    np.testing.assert_array_equal(corpus.validation(50).context, again.validation(50).context)
    other = Corpus.build(_settings(seed=1), context_length=CONTEXT, horizon=HORIZON)
    assert not np.array_equal(other.values, corpus.values)
    first = next(corpus.batches(16, seed=3))
    np.testing.assert_array_equal(first.context, corpus.sample(16, np.random.default_rng(3)).context)


def test_missing_value_rules(corpus: Corpus) -> None:
    batch = corpus.sample(2000, np.random.default_rng(1))
    observed = np.isfinite(batch.context)
    assert observed.any(axis=1).all(), "every context has something to read"
    assert np.isfinite(batch.target).any(axis=1).all(), "every window has something to learn"
    assert (observed.sum(axis=1) < CONTEXT).mean() > 0.2, "short contexts and gaps do occur"
    # Shortened contexts are missing on the left: the newest step is observed far more often than the oldest.
    assert observed[:, -1].mean() > observed[:, 0].mean() + 0.2
    assert not np.isinf(batch.context).any() and not np.isinf(batch.target).any()


def test_validation_is_fixed_and_disjoint_from_training(corpus: Corpus) -> None:
    val = corpus.validation(200)
    np.testing.assert_array_equal(val.context, corpus.validation(200).context)
    # Synthetic validation series are never cut for training, and vice versa.
    train_series = set(corpus._train[0].series.tolist()) | set(corpus._train[1].series.tolist())
    val_series = set(corpus._val[0].series.tolist()) | set(corpus._val[1].series.tolist())
    assert train_series and val_series and not (train_series & val_series)


def test_real_source_respects_held_out_data(tiny_data_dir: Path) -> None:
    settings = _settings(
        mix=CorpusMix(kernel_synth=0, industrial=0, chiller=0, real=1, seasonal=0),
        data_dir=tiny_data_dir,
        scale_augment_probability=0.0,
    )
    built = Corpus.build(settings, context_length=32, horizon=8)
    assert built.summary()["sources"]["real"]["series"] > 0
    assert np.nanmax(np.abs(built.values)) < HELDOUT_VALUE
    assert not any("valve" in n or "/other/" in n for n in built.names)
    for windows in (built.sample(500, np.random.default_rng(0)), built.validation(200)):
        assert np.nanmax(np.abs(windows.context)) < HELDOUT_VALUE
        assert np.nanmax(np.abs(windows.target)) < HELDOUT_VALUE


def test_chiller_runs_use_pretraining_seeds_only(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def spy(settings: SimulatorSettings) -> ChillerModel:
        seen.append(settings.seed)
        return ChillerModel(settings)

    monkeypatch.setattr(corpus_module, "ChillerModel", spy)
    rng = np.random.default_rng(0)
    for _ in range(20):
        corpus_module.chiller_run(rng, 5)
    assert len(seen) == 20 and not any(is_benchmark_seed(s) for s in seen)


def test_generators_are_finite_and_seeded() -> None:
    a = kernel_synth(np.random.default_rng(3), 20, 512)
    np.testing.assert_array_equal(a, kernel_synth(np.random.default_rng(3), 20, 512))
    assert np.isfinite(a).all()
    b = industrial(np.random.default_rng(3), 60, 512)
    np.testing.assert_array_equal(b, industrial(np.random.default_rng(3), 60, 512), strict=True)
    assert not np.isinf(b).any() and np.isfinite(b).mean() > 0.95
    many = industrial(np.random.default_rng(4), 300, 128)
    assert (np.nanstd(many, axis=1) == 0).any(), "flat lines are part of the mix"


def test_seasonal_series_repeat_themselves() -> None:
    x = seasonal(np.random.default_rng(5), 200, 512)
    np.testing.assert_array_equal(x, seasonal(np.random.default_rng(5), 200, 512))
    assert np.isfinite(x).all()

    def cyclic(v: np.ndarray) -> bool:
        """Some lag in 2..200 explains the detrended series far better than its variance."""
        d = np.diff(v)
        return min(float(np.mean((d[p:] - d[:-p]) ** 2)) for p in range(2, 200)) < 0.5 * 2 * float(np.var(d))

    share = np.mean([cyclic(v) for v in x])
    assert np.abs(x).max() < 1e9, "no degenerate profile blows a series up"
    assert share > 0.6, f"only {share:.0%} of the seasonal series repeat"


def test_seasonal_source_is_drawn_when_weighted() -> None:
    c = Corpus.build(
        _settings(
            mix=CorpusMix(kernel_synth=1, industrial=0, chiller=0, real=0, seasonal=1),
            seasonal_series=20,
            seasonal_length=256,
        ),
        context_length=CONTEXT,
        horizon=HORIZON,
    )
    counts = np.bincount(c.sample(256, np.random.default_rng(0)).source, minlength=len(SOURCES))
    assert counts[SOURCES.index("seasonal")] > 50 and counts[SOURCES.index("industrial")] == 0
    assert c.summary()["sources"]["seasonal"]["series"] == 20


def test_sampling_speed() -> None:
    """The brief: at least 5,000 windows/s of 576 steps on one core (measured well above it)."""
    built = Corpus.build(
        _settings(chiller_runs=0, mix=CorpusMix(kernel_synth=1, industrial=1, chiller=0, real=0, seasonal=0)),
        context_length=512,
        horizon=64,
    )
    rng = np.random.default_rng(0)
    built.sample(256, rng)
    start = time.perf_counter()
    for _ in range(20):
        built.sample(256, rng)
    rate = 20 * 256 / (time.perf_counter() - start)
    assert rate > 5_000, f"{rate:.0f} windows/s"
