"""The tokenizer: scaling that survives industrial signals, quantisation error bounded by half a bin."""

from __future__ import annotations

import numpy as np
import pytest

from sentinelle.forecast.tokenizer import MISSING_ID, TSTokenizer
from sentinelle.records import FloatArray

TOK = TSTokenizer(vocab_size=4096, limit=15.0)


def _round_trip(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    enc = TOK.encode(x)
    back = TOK.unscale(TOK.decode_ids(enc.ids), enc.loc, enc.scale)
    return back, enc.scale


def _windows() -> dict[str, FloatArray]:
    rng = np.random.default_rng(0)
    t = np.arange(512)
    with_gaps = 20.0 + np.sin(t / 9.0) + rng.normal(0, 0.1, 512)
    with_gaps[[0, 100, 101, 102, 511]] = np.nan
    return {
        "flat": np.full(512, 5.0),
        "flat_zero": np.zeros(512),
        "negative": -40.0 + 3.0 * np.sin(t / 20.0) + rng.normal(0, 0.5, 512),
        "huge": 3.1e6 + 2.5e5 * np.sin(2 * np.pi * t / 7.0) + rng.normal(0, 1e4, 512),
        "tiny": 1e-6 * np.sin(t / 5.0),
        "with_gaps": with_gaps,
        "trend": 0.05 * t + rng.normal(0, 0.01, 512),
    }


@pytest.mark.parametrize("name", list(_windows()))
def test_round_trip_error_is_at_most_half_a_bin(name: str) -> None:
    x = _windows()[name][None, :]
    back, scale = _round_trip(x)
    observed = np.isfinite(x)
    bound = TOK.bin_width / 2 * scale[0] * (1 + 1e-9) + 1e-12 * np.abs(x[observed]).max()
    err = np.abs(back[observed] - x[observed])
    assert err.max() <= bound, f"{name}: max error {err.max():.3g} > bound {bound:.3g}"
    assert (TOK.encode(x).ids[~observed] == MISSING_ID).all()
    assert (TOK.encode(x).ids[observed] >= 1).all()


def test_flat_windows_decode_exactly_and_keep_a_positive_scale() -> None:
    x = np.array([np.full(64, 5.0), np.zeros(64), np.full(64, -3e6)])
    enc = TOK.encode(x)
    assert (enc.ids == TOK.vocab_size // 2).all(), "a flat window sits on the bin centred on 0"
    np.testing.assert_allclose(TOK.unscale(TOK.decode_ids(enc.ids), enc.loc, enc.scale), x, rtol=1e-12)
    np.testing.assert_allclose(enc.scale, [5e-4, 1e-8, 300.0])


def test_all_nan_window() -> None:
    x = np.array([[np.nan] * 32, [np.inf, -np.inf, *[np.nan] * 30]])
    enc = TOK.encode(x)
    assert (enc.ids == 0).all()
    assert enc.loc.tolist() == [0.0, 0.0]
    assert enc.scale.tolist() == [1.0, 1.0]


def test_values_beyond_the_limit_are_clipped_to_the_extreme_bins() -> None:
    # One spike among 1,000 steps lies ~31 standard deviations out (sqrt(999)).
    x = np.zeros((2, 1000))
    x[:, ::2] = 1.0
    x[0, 10] = 1e9
    x[1, 11] = -1e9
    ids = TOK.encode(x).ids
    assert ids[0, 10] == TOK.vocab_size - 1
    assert ids[1, 11] == 1


def test_rows_are_scaled_independently() -> None:
    w = _windows()
    x = np.stack([w["huge"], w["tiny"], w["negative"]])
    enc = TOK.encode(x)
    for i in range(3):
        alone = TOK.encode(x[i : i + 1])
        assert (alone.ids[0] == enc.ids[i]).all()
        assert alone.loc[0] == enc.loc[i] and alone.scale[0] == enc.scale[i]


def test_scale_values_and_unscale_are_inverse_and_broadcast() -> None:
    rng = np.random.default_rng(1)
    loc, scale = np.array([3e6, -2.0]), np.array([1e4, 0.5])
    target = np.array([[3.01e6, np.nan, 2.99e6], [-2.5, -1.0, np.nan]])
    scaled = TSTokenizer.scale_values(target, loc, scale)
    np.testing.assert_allclose(scaled, [[1.0, np.nan, -1.0], [-1.0, 2.0, np.nan]], rtol=1e-9)
    quantiles = rng.normal(size=(2, 3, 5))  # (B, Q, H)
    values = TSTokenizer.unscale(quantiles, loc, scale)
    np.testing.assert_allclose(values[1, 2], quantiles[1, 2] * 0.5 - 2.0)
    np.testing.assert_allclose(TSTokenizer.scale_values(values, loc, scale), quantiles, atol=1e-9)


def test_codebook() -> None:
    c = TOK.centers
    assert c.shape == (4096,) and c[0] == 0.0
    assert np.all(np.diff(c[1:]) > 0)
    np.testing.assert_allclose(c[1:], -c[1:][::-1], atol=1e-12)
    assert c[1] == pytest.approx(-15.0 + TOK.bin_width / 2)
    with pytest.raises(ValueError, match="shape"):
        TOK.encode(np.zeros(5))
