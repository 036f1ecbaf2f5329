"""The asset corpus (training/asset_corpus.py): the couplings hold, faults stay out of targets, batches are sound."""

from __future__ import annotations

import numpy as np
import pytest

from sentinelle.evaluation.heldout import BENCHMARK_SEED_START
from sentinelle.training import asset_corpus as ac


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_chilled_water_loop_obeys_its_physics(seed: int) -> None:
    tags, v = ac.chilled_water(np.random.default_rng(seed), 2000)
    c = dict(zip(tags, v.T, strict=True))
    # Energy balance: kW = 1.163 · m³/h · K.
    np.testing.assert_allclose(c["cooling_kw"], 1.163 * c["flow_m3h"] * (c["return_c"] - c["supply_c"]), rtol=1e-9)
    # Pump affinity laws: head ∝ speed², shaft power ∝ speed³.
    s = c["speed_pct"] / 100
    assert np.ptp(c["head_m"] / s**2) < 1e-9 * c["head_m"].max()
    assert np.ptp(c["pump_kw"] / s**3) < 1e-9 * c["pump_kw"].max()
    # The PI loop's actuator stays within its limits, and uses them at some point or moves.
    assert c["speed_pct"].min() >= 20 - 1e-9 and c["speed_pct"].max() <= 100 + 1e-9
    assert np.ptp(c["speed_pct"]) > 1
    assert (c["return_c"] > c["supply_c"]).all()


def test_the_pi_loop_tracks_its_setpoint_within_its_limits() -> None:
    tags, v = ac.pi_loop(np.random.default_rng(3), 3000)
    c = dict(zip(tags, v.T, strict=True))
    assert c["output_pct"].min() >= 0 and c["output_pct"].max() <= 100
    unsaturated = (c["output_pct"] > 1) & (c["output_pct"] < 99)
    err = np.abs(c["measurement"] - c["setpoint"])[unsaturated][-500:]
    assert np.median(err) < 0.2 * np.ptp(c["setpoint"]) + 1.0
    assert np.corrcoef(c["measurement"], c["measurement_b"])[0, 1] > 0.9  # a monotone second transmitter


def test_mixing_balances_mass_and_energy() -> None:
    tags, v = ac.mixing(np.random.default_rng(4), 2000)
    c = dict(zip(tags, v.T, strict=True))
    np.testing.assert_allclose(
        c["temp_mix"] * (c["flow_1"] + c["flow_2"]), c["flow_1"] * c["temp_1"] + c["flow_2"] * c["temp_2"], rtol=1e-9
    )
    ratio = c["flow_out"] / np.sqrt(c["level_m"])  # the outlet valve: q = k √h
    assert np.ptp(ratio) < 1e-9 * ratio.max()
    # The level integrates in − out: it rises exactly when more comes in than goes out.
    rising = np.diff(c["level_m"]) > 0
    assert (rising == ((c["flow_1"] + c["flow_2"] - c["flow_out"])[:-1] > 0)).all()


def test_sensors_add_noise_and_quantise_but_keep_the_signal() -> None:
    rng = np.random.default_rng(5)
    _, clean = ac.chilled_water(rng, 1000)
    noisy = ac.sensors(rng, clean)
    assert not np.array_equal(noisy, clean)
    for j in range(clean.shape[1]):
        if np.ptp(clean[:, j]) == 0:  # a constant (the supply setpoint without steps): tiny noise only
            assert np.ptp(noisy[:, j]) < 1e-3 * abs(clean[0, j])
            continue
        assert np.corrcoef(noisy[:, j], clean[:, j])[0, 1] > 0.95


def test_chiller_faults_are_kept_out_of_targets() -> None:
    rng = np.random.default_rng(6)
    s = ac.chiller_system(rng, 400, fault_probability=1.0)
    assert s.values.shape == (400, 6) and not s.target_ok.all()
    corpus = ac.AssetCorpus([s])
    for _ in range(20):
        batch = corpus.sample(4, context=64, horizon=16, rng=rng)
        assert np.isnan(batch.future[batch.tag_mask]).any() or s.target_ok.sum() > 0


def test_batches_mask_absent_tags_and_keep_one_at_least() -> None:
    corpus = ac.AssetCorpus.build(seed=1, systems_per_source=2, length=500, chiller_runs=0)
    assert len(corpus.systems) == 2 * len(ac.SOURCES)
    rng = np.random.default_rng(0)
    sizes = set()
    for _ in range(30):
        b = corpus.sample(8, context=128, horizon=16, rng=rng)
        assert b.context.shape[:2] == b.future.shape[:2] == b.tag_mask.shape
        assert b.tag_mask.any(axis=1).all()
        assert np.isnan(b.context[~b.tag_mask]).all() and np.isnan(b.future[~b.tag_mask]).all()
        sizes.update(b.tag_mask.sum(axis=1).tolist())
    assert 1 in sizes and max(sizes) >= 5  # the univariate use and whole groups both occur


def test_the_same_seed_gives_the_same_corpus_and_no_benchmark_seed() -> None:
    a = ac.AssetCorpus.build(seed=2, systems_per_source=1, length=300, chiller_runs=1)
    b = ac.AssetCorpus.build(seed=2, systems_per_source=1, length=300, chiller_runs=1)
    for x, y in zip(a.systems, b.systems, strict=True):
        np.testing.assert_array_equal(x.values, y.values)
    assert BENCHMARK_SEED_START == 1000  # chiller_system draws below it (pretraining_seed)
