"""The calibrated per-tag scorer (detect/scoring.py, surprise.py) on hand-made sequences.

Every test runs many independent tags side by side (the scorer is vectorised over rows),
so rates are measured, not single draws.
"""

from __future__ import annotations

import numpy as np

from sentinelle.detect.scoring import ResidualScorer
from sentinelle.detect.surprise import threshold_probability
from sentinelle.records import BoolArray, FloatArray, ForecastBatch, WindowBatch
from sentinelle.settings import DetectSettings

LEVELS = (0.1, 0.5, 0.9)
Z90 = 1.2815515655446004


def _fb(ts: float, values: FloatArray, median: FloatArray, sigma: FloatArray | float) -> ForecastBatch:
    n = len(values)
    tags = tuple(f"t{i}" for i in range(n))
    w = WindowBatch(ts=ts, period_s=1.0, tags=tags, assets=tags, values=values, contexts=values[:, None])
    s = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (n,))
    q = np.stack([median - Z90 * s, median, median + Z90 * s], axis=1)[:, :, None] + np.zeros((1, 1, 2))
    return ForecastBatch(window=w, levels=LEVELS, quantiles=q, forecaster="test")


class Run:
    """Feeds a scorer tick by tick; the forecast handed over at tick t is for tick t + 1."""

    def __init__(self, n: int, min_spread: float = 0.0, **settings: object) -> None:
        self.n = n
        self.scorer = ResidualScorer.from_settings(
            n,
            LEVELS,
            np.full(n, min_spread),
            DetectSettings(**settings),  # type: ignore[arg-type]
        )
        self.t = 0
        self.learn = np.ones(n, dtype=bool)

    def step(
        self, values: FloatArray, next_median: FloatArray | float, next_sigma: FloatArray | float
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        median = np.broadcast_to(np.asarray(next_median, dtype=np.float64), (self.n,)).copy()
        _, z, score, flagged = self.scorer.score(_fb(float(self.t), values, median, next_sigma), self.learn)
        self.t += 1
        return z, score, flagged


def test_calibration_flag_rate_on_gaussian_noise_with_a_correct_forecast_is_nominal() -> None:
    rng = np.random.default_rng(0)
    run = Run(1000)
    flags = scored = 0
    for t in range(1600):
        _, score, flagged = run.step(rng.standard_normal(1000), 0.0, 1.0)
        if t >= 300:
            flags += int(flagged.sum())
            scored += int(np.isfinite(score).sum())
    nominal = threshold_probability(DetectSettings().score_threshold)
    rate = flags / scored
    assert 0.5 * nominal < rate < 2.0 * nominal, (rate, nominal)


def test_a_flat_start_then_noise_is_a_finite_decaying_surprise_not_a_permanent_alarm() -> None:
    """Flat for 300 ticks under a forecast that is sure of it (spread at the resolution, 0.01); then
    unit noise while the forecast stays that sure: the first moves are flagged, and within a bounded
    time the flag rate is back at the normal rate (the old scorer flagged every tick for good)."""
    rng = np.random.default_rng(1)
    n = 50
    run = Run(n, min_spread=0.01)
    for _ in range(300):
        _, _, flagged = run.step(np.full(n, 10.0), 10.0, 0.0)
        assert not flagged.any()
    rates = []
    for _ in range(4000):
        _, _, flagged = run.step(10.0 + rng.standard_normal(n), 10.0, 0.0)
        rates.append(flagged.mean())
    assert np.mean(rates[:20]) > 0.5  # the tag starting to move is a surprise
    assert np.mean(rates[3000:]) < 0.01  # ... that has decayed to the normal rate
    assert np.all(np.isfinite(run.scorer.scale.sigma()))


def test_huge_first_residuals_do_not_poison_the_scale() -> None:
    """Forecasts from a 1-3 point context miss by 10⁴ spreads; they are not scored (context too short),
    and three more huge misses after that are winsorised: a 5σ anomaly later is still flagged."""
    rng = np.random.default_rng(2)
    n = 50
    run = Run(n, score_min_context_steps=8)
    for t in range(200):
        miss = 1e4 if t < 11 else 0.0  # ticks 0..7: short context; 8..10: learned, clipped
        z, _, _ = run.step(miss + rng.standard_normal(n), 0.0, 1.0)
        if t < 8:
            assert np.isnan(z).all()
    assert np.all(run.scorer.scale.sigma() < 1.5)
    _, _, flagged = run.step(np.full(n, 5.0), 0.0, 1.0)
    assert flagged.mean() > 0.9


def test_one_spike_is_flagged_at_once_without_inflating_the_scale() -> None:
    rng = np.random.default_rng(3)
    n = 50
    run = Run(n)
    for _ in range(300):
        run.step(rng.standard_normal(n), 0.0, 1.0)
    before = run.scorer.scale.sigma().copy()
    _, _, flagged = run.step(np.full(n, 30.0), 0.0, 1.0)
    assert flagged.all() and run.scorer.severe.all()  # one tick, 30σ: severe, may open an alert at once
    assert np.all(run.scorer.scale.sigma() < 1.05 * before)
    after = [run.step(rng.standard_normal(n), 0.0, 1.0)[2].mean() for _ in range(50)]
    assert np.mean(after) < 0.01  # the next normal ticks are normal
    _, _, flagged = run.step(np.full(n, 6.0), 0.0, 1.0)
    assert flagged.mean() > 0.9  # a second, smaller spike is still caught


def test_a_level_shift_is_flagged_then_absorbed_as_the_new_normal() -> None:
    """The value moves 10σ and stays while the forecast does not follow: flagged at once, and since
    flagged ticks are learned (winsorised) the shift is the new normal within a bounded time."""
    rng = np.random.default_rng(4)
    n = 50
    run = Run(n)
    for _ in range(300):
        run.step(rng.standard_normal(n), 0.0, 1.0)
    rates = [run.step(10.0 + rng.standard_normal(n), 0.0, 1.0)[2].mean() for _ in range(4000)]
    assert rates[0] == 1.0
    absorbed = int(np.argmax(np.convolve(rates, np.ones(50) / 50, mode="valid") < 0.01))
    assert 0 < absorbed < DetectSettings().score_memory_steps / 2, absorbed


def test_the_likelihood_layer_flags_a_lasting_moderate_shift() -> None:
    """score_method likelihood (and both): a shift of 2.5σ (no single tick beyond the plain threshold)
    lasting 30 ticks moves the short-term mean of the surprise far past its history."""
    rng = np.random.default_rng(5)
    n = 50
    plain, lik, both = Run(n), Run(n, score_method="likelihood"), Run(n, score_method="both")
    for _ in range(600):
        x = rng.standard_normal(n)
        for r in (plain, lik, both):
            r.step(x, 0.0, 1.0)
    hit_plain = np.zeros(n, dtype=bool)
    hit_lik = np.zeros(n, dtype=bool)
    hit_both = np.zeros(n, dtype=bool)
    for _ in range(30):
        x = 2.5 + 0.3 * rng.standard_normal(n)
        hit_plain |= plain.step(x, 0.0, 1.0)[2]
        hit_lik |= lik.step(x, 0.0, 1.0)[2]
        hit_both |= both.step(x, 0.0, 1.0)[2]
    assert hit_lik.mean() > 0.9 and hit_plain.mean() < 0.2
    assert hit_both.mean() > 0.9
    # ... and "both" still flags a single spike at once, as the plain surprise does.
    _, _, flagged = both.step(np.full(n, 30.0), 0.0, 1.0)
    assert flagged.all()


def _overconfident_tick(floor: float) -> tuple[BoolArray, BoolArray, FloatArray]:
    """500 tags, forecasts of spread 1 for 400 ticks; then one forecast 100 times surer than usual.

    Returns, for that tick: which tags flag an ordinary miss (0.5 to 1.5 σ of the usual band; 1 to 3 floored
    σ), which flag a real spike (20 usual σ, the other 500 tags), and each tag's typical spread before it.
    """
    rng = np.random.default_rng(3)
    run = Run(1000, score_spread_floor=floor)
    for _ in range(400):
        run.step(rng.standard_normal(1000), 0.0, 1.0)
    sure = np.full(1000, 0.01)
    run.step(rng.standard_normal(1000), 0.0, sure)  # hands over the over-sure forecast for the next tick
    typical = run.scorer.typical_spread().copy()
    miss = np.where(np.arange(1000) < 500, rng.uniform(0.5, 1.5, 1000), 20.0)
    _, _, flagged = run.step(miss, 0.0, 1.0)
    return flagged[:500], flagged[500:], typical


def test_a_forecast_suddenly_surer_than_usual_cannot_make_an_ordinary_miss_an_alarm() -> None:
    ordinary, spike, typical = _overconfident_tick(0.5)
    assert not ordinary.any()
    assert spike.all()  # 20 usual σ is still an alarm
    np.testing.assert_allclose(typical, 1.0, rtol=0.05)  # the geometric mean of the usual spreads


def test_without_the_spread_floor_the_over_sure_forecast_flags_ordinary_misses() -> None:
    ordinary, spike, typical = _overconfident_tick(0.0)
    assert ordinary.all() and spike.all()
    assert not typical.any()  # off: nothing learned


def _flat_then_step_then_spike(step_floor: float) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """200 tags: 300 ticks of noise (σ 1 about 5, forecast 5 ± 1), 100 flat ticks at 0 forecast with certainty
    (a spread of 0), one modest step to 1 against that certain forecast, 200 ticks of noise again, then a spike
    of 20 σ (NAB ``rogue_agent_key_updown``, issue 13).

    Returns the step's z and score, the spike's score, and each tag's typical step before the flat stretch.
    """
    rng = np.random.default_rng(11)
    n = 200
    run = Run(n, score_step_floor=step_floor)
    for _ in range(300):
        run.step(5.0 + rng.standard_normal(n), 5.0, 1.0)
    typical = run.scorer.typical_step().copy()
    run.step(5.0 + rng.standard_normal(n), 0.0, 0.0)  # the first certain forecast: 0 for the next tick
    for _ in range(100):
        run.step(np.zeros(n), 0.0, 0.0)
    z_step, score_step, _ = run.step(np.ones(n), 5.0, 1.0)
    for _ in range(200):
        run.step(5.0 + rng.standard_normal(n), 5.0, 1.0)
    _, score_spike, _ = run.step(np.full(n, 25.0), 5.0, 1.0)
    return z_step, score_step, score_spike, typical


def test_a_flat_stretch_is_scored_against_the_tags_own_step_so_a_later_spike_still_scores() -> None:
    z_step, score_step, score_spike, typical = _flat_then_step_then_spike(1 / np.sqrt(12))
    # The typical non-zero step of unit noise: the geometric mean of |N(0, 2)|, 0.75 σ.
    np.testing.assert_allclose(np.median(typical), 0.75, rtol=0.1)
    assert np.all(z_step < 10.0)  # one step of about its usual size: a few floored spreads, not 10⁹
    assert np.all(score_step < 0.5)
    assert np.all(score_spike > 0.4)  # the refractory peak of the flat stretch does not silence it


def test_without_the_step_floor_the_flat_stretch_silences_the_later_spike() -> None:
    z_step, score_step, score_spike, typical = _flat_then_step_then_spike(0.0)
    assert np.all(z_step > 1e8) and np.all(score_step > 0.99)
    assert np.all(score_spike == 0.0)
    assert not typical.any()  # off: nothing learned


def _spike_then_later_event(cap: float) -> tuple[FloatArray, FloatArray]:
    """100 tags of unit noise with a calibrated forecast: a spike of 500 σ (≈ 54,000 decades; NAB
    ``rogue_agent_key_updown``'s z = 464, issue 13), 1,200 ticks of noise, then an event of 50 σ.

    Returns both spikes' (onset) scores.
    """
    rng = np.random.default_rng(12)
    n = 100
    run = Run(n, score_refractory_max_decades=cap)
    for _ in range(300):
        run.step(rng.standard_normal(n), 0.0, 1.0)
    _, giant, _ = run.step(np.full(n, 500.0), 0.0, 1.0)
    for _ in range(1200):
        run.step(rng.standard_normal(n), 0.0, 1.0)
    _, later, _ = run.step(np.full(n, 50.0), 0.0, 1.0)
    return giant, later


def test_the_refractory_peak_remembers_a_bounded_surprise_so_a_later_event_scores() -> None:
    giant, later = _spike_then_later_event(1000.0)
    assert np.all(giant > 0.999)  # the spike itself still scores in full
    assert np.all(later > 0.9)  # 1,200 ticks on, 50 σ is beyond the capped peak's 1000 e^(-1.2) decades


def test_without_the_cap_one_giant_spike_silences_the_tag() -> None:
    giant, later = _spike_then_later_event(0.0)
    assert np.all(giant > 0.999)
    assert np.all(later == 0.0)
