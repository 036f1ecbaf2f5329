"""Synthetic series for the pretraining corpus (:mod:`.corpus`): KernelSynth, industrial shapes, seasonal series.

Each generator takes a seeded ``numpy.random.Generator``, a count and a length, and
returns ``count`` series as rows of one array: numpy only, vectorised over the series
where the shape allows it.  The corpus module draws them once at start and crops
training windows from them.

``kernel_synth``
    Gaussian-process samples from random sums and products of kernels, in the manner of
    Chronos's KernelSynth (circulant embedding: two FFTs per series).
``industrial``
    What a plant produces and GP samples rarely do: PI loops with dead time, thermostat
    duty cycles, daily/weekly cycles, steps and ramps, flat lines, random walks, then noise,
    drift, quantisation and missing stretches.
``seasonal``
    Series that repeat (a profile of a period from 2 to 400 steps, often nested), and
    calendar series sampled daily.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..records import FloatArray

_SAMPLE_PERIODS_S = np.array([1.0, 5.0, 10.0, 60.0, 300.0, 900.0, 3600.0])
_DAY_S = 86_400.0
_WEEK_S = 7 * _DAY_S


# -- KernelSynth --------------------------------------------------------------------

_PERIODS_STEPS = np.array([4, 7, 12, 14, 24, 30, 48, 52, 60, 96, 144, 168, 288, 336, 360, 720, 1440])


def kernel_synth(rng: np.random.Generator, count: int, length: int) -> FloatArray:
    """``count`` GP samples of ``length`` steps from random kernel compositions, shape (count, length).

    >>> x = kernel_synth(np.random.default_rng(0), 3, 256)
    >>> x.shape, bool(np.isfinite(x).all())
    ((3, 256), True)
    """
    out = np.empty((count, length))
    lags = np.arange(length, dtype=np.float64)
    t = np.linspace(0.0, 1.0, length)
    for i in range(count):
        acov = _random_kernel(rng, lags, length)
        for _ in range(int(rng.integers(0, 5))):
            other = _random_kernel(rng, lags, length)
            acov = acov + other if rng.random() < 0.5 else acov * other
        y = _stationary_sample(rng, acov)
        if rng.random() < 0.3:
            # Linear kernel: its GP sample is a random line; a product with it scales the sample along t.
            line = rng.normal(0.0, 1.0) * (t - rng.uniform(0.0, 1.0))
            y = y + line if rng.random() < 0.5 else y * (1.0 + line)
        out[i] = y
    return out


def _random_kernel(rng: np.random.Generator, lags: FloatArray, length: int) -> FloatArray:
    """Autocovariance at ``lags`` of one random stationary kernel."""
    kind = rng.choice(5, p=[0.3, 0.2, 0.35, 0.05, 0.1])
    if kind == 0:  # RBF
        ell = math.exp(rng.uniform(math.log(2.0), math.log(length / 2)))
        return np.asarray(np.exp(-0.5 * (lags / ell) ** 2))
    if kind == 1:  # rational quadratic
        ell = math.exp(rng.uniform(math.log(2.0), math.log(length / 2)))
        alpha = float(rng.choice([0.1, 0.5, 1.0, 2.0, 10.0]))
        return np.asarray((1.0 + lags**2 / (2 * alpha * ell**2)) ** -alpha)
    if kind == 2:  # periodic
        periods = _PERIODS_STEPS[np.less_equal(_PERIODS_STEPS, length // 2)]
        period = float(rng.choice(periods)) if len(periods) else length / 2
        ell = float(rng.choice([0.3, 0.5, 1.0, 2.0]))
        return np.asarray(np.exp(-2.0 * np.sin(np.pi * lags / period) ** 2 / ell**2))
    if kind == 3:  # constant
        return np.full(len(lags), rng.uniform(0.1, 1.0))
    white = np.zeros(len(lags))  # white noise
    white[0] = rng.uniform(0.01, 0.3)
    return white


def _stationary_sample(rng: np.random.Generator, acov: FloatArray) -> FloatArray:
    """One sample of a stationary GP by circulant embedding (Dietrich & Newsam).

    Exact when the embedding is non-negative definite; the rare negative
    eigenvalues of very smooth kernels are clipped to zero, which only slightly
    rough-ens the sample.
    """
    n = len(acov)
    if n < 3:
        return rng.normal(0.0, math.sqrt(max(acov[0], 0.0)), size=n)
    c = np.concatenate([acov, acov[-2:0:-1]])
    eig = np.maximum(np.fft.fft(c).real, 0.0)
    z = rng.standard_normal(len(c)) + 1j * rng.standard_normal(len(c))
    y = np.fft.fft(np.sqrt(eig / len(c)) * z)
    return np.asarray(y.real[:n], dtype=np.float64)


# -- industrial shapes --------------------------------------------------------------

_SHAPES = ("pid", "duty_cycle", "cycles", "steps_ramps", "flat", "random_walk")
_SHAPE_WEIGHTS = np.array([0.25, 0.17, 0.2, 0.18, 0.07, 0.13])


def industrial(rng: np.random.Generator, count: int, length: int) -> FloatArray:
    """``count`` plant-like series of ``length`` steps (see the module docstring), shape (count, length).

    >>> x = industrial(np.random.default_rng(0), 12, 300)
    >>> x.shape
    (12, 300)
    """
    out = np.empty((count, length))
    shape = rng.choice(len(_SHAPES), size=count, p=_SHAPE_WEIGHTS / _SHAPE_WEIGHTS.sum())
    period_s = rng.choice(_SAMPLE_PERIODS_S, size=count)
    makers: dict[str, Callable[[np.random.Generator, int, int, FloatArray], FloatArray]] = {
        "pid": _pid_loop,
        "duty_cycle": _duty_cycle,
        "cycles": _cycles,
        "steps_ramps": _steps_ramps,
        "flat": _flat,
        "random_walk": _random_walk,
    }
    for k, name in enumerate(_SHAPES):
        rows = np.flatnonzero(shape == k)
        if len(rows):
            out[rows] = makers[name](rng, len(rows), length, period_s[rows])
    for i in range(count):
        out[i] = _finish(rng, out[i], smooth=_SHAPES[shape[i]] in ("flat", "steps_ramps"))
    return out


def log_uniform(rng: np.random.Generator, low: float, high: float, size: int) -> FloatArray:
    return np.exp(rng.uniform(math.log(low), math.log(high), size=size))


def _pid_loop(rng: np.random.Generator, n: int, length: int, _period_s: FloatArray) -> FloatArray:
    """A first-order process with dead time under PI control, its setpoint stepping now and then.

    Emits the measured process value or the controller output (a valve, 0..100 %),
    some loops tuned tightly, some sluggish, some oscillating.
    """
    tau = log_uniform(rng, 3.0, 100.0, n)
    dead = rng.integers(0, 10, size=n)
    gain = rng.uniform(0.5, 2.0, size=n)
    closed_loop = np.maximum(dead, 1) * rng.uniform(0.5, 3.0, size=n)
    kp = tau / (gain * (closed_loop + dead + 1)) * log_uniform(rng, 0.5, 4.0, n)  # detuned at times
    ti = np.minimum(tau, 4.0 * (closed_loop + dead + 1))
    disturbance_mean = rng.uniform(-20.0, 20.0, size=n)
    setpoint = np.repeat((disturbance_mean + gain * rng.uniform(25.0, 75.0, size=n))[:, None], length, axis=1)
    for i in range(n):
        for at in rng.integers(0, length, size=int(rng.integers(0, 6))):
            setpoint[i, at:] += rng.normal(0.0, 8.0) * gain[i]
    walk = np.cumsum(rng.normal(0.0, 1.0, size=(n, length)) * log_uniform(rng, 0.01, 0.5, n)[:, None], axis=1)
    walk -= walk.mean(axis=1, keepdims=True)
    cycle = rng.uniform(0, 5, size=n)[:, None] * np.sin(
        2 * np.pi * np.arange(length)[None, :] / log_uniform(rng, 50.0, 2000.0, n)[:, None]
    )
    disturbance = disturbance_mean[:, None] + walk + cycle
    noise = rng.normal(0.0, 1.0, size=(n, length)) * log_uniform(rng, 0.01, 1.0, n)[:, None]
    pv = setpoint[:, 0].copy()
    integral = np.clip((setpoint[:, 0] - disturbance[:, 0]) / gain, 0.0, 100.0)
    history = np.repeat(integral[:, None], length, axis=1)
    measured = np.empty((n, length))
    output = np.empty((n, length))
    rows = np.arange(n)
    for t in range(length):
        m = pv + noise[:, t]
        error = setpoint[:, t] - m
        integral = np.clip(integral + kp / ti * error, 0.0, 100.0)
        u = np.clip(kp * error + integral, 0.0, 100.0)
        history[:, t] = u
        delayed = history[rows, np.maximum(t - dead, 0)]
        pv = pv + (gain * delayed + disturbance[:, t] - pv) / tau
        measured[:, t] = m
        output[:, t] = u
    emit_output = rng.random(n) < 0.4
    return np.where(emit_output[:, None], output, measured)


def _duty_cycle(rng: np.random.Generator, n: int, length: int, period_s: FloatArray) -> FloatArray:
    """A thermostat switching a compressor: the temperature, the power drawn, or the on/off state."""
    centre = rng.uniform(-20.0, 10.0, size=n)
    band = rng.uniform(0.5, 3.0, size=n)
    heat = band * log_uniform(rng, 0.005, 0.2, n)
    cool = heat * rng.uniform(1.5, 5.0, size=n)
    steps_per_day = _DAY_S / period_s
    load = 1.0 + rng.uniform(0.0, 0.5, size=n)[:, None] * np.sin(
        2 * np.pi * np.arange(length)[None, :] / steps_per_day[:, None] + rng.uniform(0, 2 * np.pi, size=n)[:, None]
    )
    noise = rng.normal(0.0, 1.0, size=(n, length)) * (0.02 * band)[:, None]
    temp = centre + rng.uniform(-0.5, 0.5, size=n) * band
    on = rng.random(n) < 0.5
    temps = np.empty((n, length))
    states = np.empty((n, length))
    for t in range(length):
        temp = temp + heat * load[:, t] - cool * on + noise[:, t]
        on = np.where(temp > centre + band / 2, True, np.where(temp < centre - band / 2, False, on))
        temps[:, t] = temp
        states[:, t] = on
    power = states * rng.uniform(2.0, 200.0, size=n)[:, None] * (1.0 + 0.02 * rng.standard_normal((n, length)))
    power += rng.uniform(0.0, 1.0, size=n)[:, None]  # standby draw
    pick = rng.choice(3, size=n, p=[0.5, 0.35, 0.15])
    return np.where((pick == 0)[:, None], temps, np.where((pick == 1)[:, None], power, states))


def _cycles(rng: np.random.Generator, n: int, length: int, period_s: FloatArray) -> FloatArray:
    """Daily profile (a few harmonics), weekends, or a process cycle of its own period; plus AR(1) noise."""
    t_s = (np.arange(length)[None, :] * period_s[:, None]) + rng.uniform(0.0, _WEEK_S, size=n)[:, None]
    own_period = rng.random(n) < 0.4
    cycle_s = np.where(own_period, log_uniform(rng, 6.0, 500.0, n) * period_s, _DAY_S)
    phase = 2 * np.pi * t_s / cycle_s[:, None]
    x = np.zeros((n, length))
    for k in (1, 2, 3):
        amp = rng.uniform(0.0, 1.0, size=n) / k
        x += amp[:, None] * np.sin(k * phase + rng.uniform(0.0, 2 * np.pi, size=n)[:, None])
    square = rng.random(n) < 0.2  # batch / shift patterns are closer to square than to sine
    x = np.where(square[:, None], np.sign(x), x)
    weekend = (np.floor(t_s / _DAY_S) % 7) >= 5
    weekly = (~own_period) & (rng.random(n) < 0.6)
    factor = np.where(weekly[:, None] & weekend, rng.uniform(0.2, 0.9, size=n)[:, None], 1.0)
    level = rng.uniform(1.0, 5.0, size=n)[:, None]
    x = level + x
    x = x * factor
    phi = rng.uniform(0.0, 0.95, size=n)
    e = rng.normal(0.0, 1.0, size=(n, length)) * rng.uniform(0.0, 0.3, size=n)[:, None]
    ar = np.empty_like(e)
    ar[:, 0] = e[:, 0]
    for t in range(1, length):
        ar[:, t] = phi * ar[:, t - 1] + e[:, t]
    return np.asarray(x + ar)


def _steps_ramps(rng: np.random.Generator, n: int, length: int, _period_s: FloatArray) -> FloatArray:
    """Operating modes: plateaus joined by steps or ramps."""
    out = np.empty((n, length))
    for i in range(n):
        knots = np.sort(rng.integers(1, length, size=int(rng.integers(1, 12))))
        level = rng.normal(0.0, 1.0)
        x = np.full(length, level)
        for at in knots:
            new = level + rng.normal(0.0, 1.0)
            ramp = int(rng.integers(1, max(2, length // 10))) if rng.random() < 0.4 else 1
            stop = min(length, at + ramp)
            x[at:stop] = np.linspace(level, new, stop - at + 1)[1:]
            x[stop:] = new
            level = new
        out[i] = x
    return out


def _flat(rng: np.random.Generator, n: int, length: int, _period_s: FloatArray) -> FloatArray:
    """Flat lines: a setpoint, a closed valve, a stuck sensor; now and then one step."""
    x = np.repeat(rng.normal(0.0, 10.0, size=n)[:, None], length, axis=1)
    stepped = rng.random(n) < 0.3
    at = rng.integers(0, length, size=n)
    jump = rng.normal(0.0, 1.0, size=n)
    x += np.where(stepped[:, None] & (np.arange(length)[None, :] >= at[:, None]), jump[:, None], 0.0)
    return x


def _random_walk(rng: np.random.Generator, n: int, length: int, _period_s: FloatArray) -> FloatArray:
    """AR(1) close to a random walk, sometimes with a drift."""
    phi = 1.0 - log_uniform(rng, 1e-4, 0.1, n)
    drift = np.where(rng.random(n) < 0.3, rng.normal(0.0, 0.05, size=n), 0.0)
    e = rng.normal(0.0, 1.0, size=(n, length))
    x = np.empty((n, length))
    x[:, 0] = e[:, 0]
    for t in range(1, length):
        x[:, t] = phi * x[:, t - 1] + drift + e[:, t]
    return x


def _finish(rng: np.random.Generator, x: FloatArray, *, smooth: bool) -> FloatArray:
    """Sensor effects on one series: noise (sometimes heavy-tailed), drift, quantisation, gaps, units."""
    n = len(x)
    spread = float(np.std(x)) or 1.0
    if rng.random() < (0.5 if smooth else 0.8):
        sigma = spread * float(log_uniform(rng, 1e-3, 0.3, 1)[0])
        noise = rng.standard_t(3, size=n) / math.sqrt(3) if rng.random() < 0.15 else rng.standard_normal(n)
        x = x + sigma * noise
    if rng.random() < 0.2:
        x = x + spread * rng.uniform(-1.0, 1.0) * np.linspace(0.0, 1.0, n)
    if rng.random() < 0.25:
        resolution = spread * float(log_uniform(rng, 0.005, 0.2, 1)[0])
        x = np.round(x / resolution) * resolution
    scale = 10.0 ** rng.uniform(-2.0, 3.0)
    x = x * scale + rng.normal(0.0, 3.0) * scale
    if rng.random() < 0.1:
        for _ in range(int(rng.integers(1, 4))):
            start = int(rng.integers(0, n))
            x[start : start + int(log_uniform(rng, 1.0, 100.0, 1)[0])] = np.nan
    return np.asarray(x, dtype=np.float64)


# -- seasonal series -------------------------------------------------------------------

_CALENDAR_PERIODS = np.array([7, 12, 24, 48, 52, 96, 144, 168, 288])


def seasonal(rng: np.random.Generator, count: int, length: int) -> FloatArray:
    """``count`` repeating series of ``length`` steps (see the module docstring), shape (count, length).

    >>> x = seasonal(np.random.default_rng(0), 8, 400)
    >>> x.shape, bool(np.isfinite(x).all())
    ((8, 400), True)
    """
    out = np.empty((count, length))
    for i in range(count):
        out[i] = _calendar_daily(rng, length) if rng.random() < 0.25 else _repeating(rng, length)
    return out


def _profile(rng: np.random.Generator, period: float, t: FloatArray) -> FloatArray:
    """One period's shape evaluated at times ``t`` (steps): harmonics, or steps between random levels."""
    phase = (t / period) % 1.0
    if rng.random() < 0.3 and period >= 3:
        blocks = int(rng.integers(2, min(int(period), 24) + 1))
        levels = rng.normal(0.0, 1.0, size=blocks)
        return np.asarray(levels[np.minimum((phase * blocks).astype(np.int64), blocks - 1)])
    x = np.zeros_like(t)
    harmonics = int(rng.integers(1, 7))
    decay = rng.uniform(0.5, 2.0)
    for k in range(1, harmonics + 1):
        if 2 * k > period:  # above Nyquist for this period
            break
        x += rng.normal(0.0, 1.0) / k**decay * np.sin(2 * np.pi * k * phase + rng.uniform(0.0, 2 * np.pi))
    return x


def _standardised(x: FloatArray) -> FloatArray:
    """Unit spread; a profile that is flat over the series (one block of a very long cycle) becomes zeros."""
    spread = float(np.std(x))
    return np.asarray((x - np.mean(x)) / spread if spread > 1e-9 else np.zeros_like(x))


def _repeating(rng: np.random.Generator, length: int) -> FloatArray:
    t = np.arange(length, dtype=np.float64)
    if rng.random() < 0.4:
        period = float(rng.choice(_CALENDAR_PERIODS))
    else:
        period = float(log_uniform(rng, 2.0, 400.0, 1)[0])
        if rng.random() < 0.5:
            period = float(max(2, round(period)))
    x = _standardised(_profile(rng, period, t))
    if rng.random() < 0.4:  # a slower cycle the fast one rides on (day in week, week in year)
        slow = period * float(rng.integers(3, 60))
        y = _standardised(_profile(rng, slow, t))
        additive = rng.random() < 0.5
        x = x + rng.uniform(0.2, 2.0) * y if additive else x * (1.0 + rng.uniform(0.1, 0.6) * np.tanh(y))
    if rng.random() < 0.2:  # slowly changing amplitude
        x = x * (1.0 + 0.5 * np.sin(2 * np.pi * t / (length * rng.uniform(0.5, 4.0)) + rng.uniform(0, 6.3)))
    level = rng.normal(0.0, 3.0)
    if rng.random() < 0.2:  # a few level shifts
        for _ in range(int(rng.integers(1, 4))):
            level_shift = np.where(t >= rng.integers(0, length), rng.normal(0.0, 1.5), 0.0)
            x = x + level_shift
    x = x + level + rng.normal(0.0, 1.0) * 2.0 * t / length * (rng.random() < 0.4)
    return _noisy(rng, x, length)


def _calendar_daily(rng: np.random.Generator, length: int) -> FloatArray:
    """Daily energy-like data: weekday profile × yearly cycle, holidays, weather-like AR noise."""
    t = np.arange(length, dtype=np.float64)
    weekday = np.ones(7)
    weekday[5] = rng.uniform(0.7, 1.0)
    weekday[6] = rng.uniform(0.6, weekday[5])
    weekday[:5] += rng.normal(0.0, 0.02, size=5)
    start = int(rng.integers(0, 7))
    week = weekday[(t.astype(np.int64) + start) % 7]
    yearly = 1.0 + rng.uniform(0.0, 0.4) * np.cos(2 * np.pi * (t / 365.25 + rng.uniform(0.0, 1.0)))
    weather = np.zeros(length)
    phi, sigma = rng.uniform(0.6, 0.95), rng.uniform(0.005, 0.04)
    e = rng.normal(0.0, sigma, size=length)
    for k in range(1, length):
        weather[k] = phi * weather[k - 1] + e[k]
    x = week * (yearly + weather) * (1.0 + rng.normal(0.0, 0.1) * t / 365.25)
    holidays = rng.random(length) < 0.01
    x = np.where(holidays, x * weekday[6], x)
    return np.asarray(x * 10.0 ** rng.uniform(0.0, 6.0))


def _noisy(rng: np.random.Generator, x: FloatArray, length: int) -> FloatArray:
    """AR(1) noise from none to as strong as the cycle, then a random unit scale."""
    sigma = float(log_uniform(rng, 1e-3, 0.6, 1)[0])
    phi = rng.uniform(0.0, 0.9)
    e = rng.normal(0.0, sigma, size=length)
    ar = np.empty(length)
    ar[0] = e[0]
    for k in range(1, length):
        ar[k] = phi * ar[k - 1] + e[k]
    scale = 10.0 ** rng.uniform(-2.0, 3.0)
    return np.asarray((x + ar) * scale, dtype=np.float64)
