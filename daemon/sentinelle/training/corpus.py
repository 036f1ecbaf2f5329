"""The pretraining corpus: a seeded bank of series, and training windows cut from it.

numpy only (no torch), so it can be built, inspected and tested without the model.

Four sources, each generated (or read) once into one flat array at start, then
cropped at random for every batch, which is what makes window sampling cheap
(far above 5,000 windows/s of 576 steps on one core):

``kernel_synth``
    Gaussian-process samples from random sums and products of kernels (RBF,
    rational quadratic, periodic with daily/weekly-like periods in steps,
    constant, white noise), plus random linear trends, in the manner of
    Chronos's KernelSynth.  Sampled exactly for the stationary part by
    circulant embedding (two FFTs per series instead of a Cholesky).
``industrial``
    Shapes a plant produces and GP samples rarely do: a PI-controlled
    first-order process with dead time (its measurement or its valve output),
    thermostat duty cycles (temperature, compressor power, on/off state),
    daily/weekly cycles with weekends, steps and ramps between operating
    modes, flat lines, random walks; then noise of various levels and tails,
    slow drift, quantised sensors and missing stretches.
``seasonal``
    Series that repeat: a random profile (smooth harmonics or a step profile
    such as weekday factors) of a period from 2 to 400 steps, often nested in
    a longer one (week in year, day in week), added or multiplied onto a level
    with trend, level shifts, occasional "holidays" and AR(1) noise — and
    calendar series sampled daily (weekday profile × yearly cycle, holidays),
    the shape of a plant's or a grid's daily energy.  The first starter model
    met such series only inside GP mixtures and forecast a period-7 sine as a
    flat line; this source is what teaches copying a cycle forward.
``chiller``
    The simulated plant of :mod:`sentinelle.sim.chiller` over random settings
    (flow, setpoint, supply temperature, daily amplitude, sample period, noise)
    and seeds below :data:`~sentinelle.evaluation.heldout.BENCHMARK_SEED_START`;
    every tag is a series.
``real``
    The public datasets, cut by :mod:`sentinelle.evaluation.heldout`.

Validation: a share of the synthetic series (whole simulator runs for the
chiller) is validation only; each real series keeps its tail for validation,
so a validation horizon is never a training target.

>>> from sentinelle.training.pretrain_settings import CorpusMix, CorpusSettings
>>> settings = CorpusSettings(mix=CorpusMix(kernel_synth=1, industrial=1, chiller=0, real=0, seasonal=0),
...                           kernel_synth_series=20, industrial_series=20)
>>> corpus = Corpus.build(settings, context_length=64, horizon=16)
>>> batch = corpus.sample(8, np.random.default_rng(0))
>>> batch.context.shape, batch.target.shape
((8, 64), (8, 16))
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..evaluation.datasets import Series
from ..evaluation.heldout import check_pretraining_allowed, pretraining_seed, pretraining_series
from ..records import FloatArray
from ..settings import FaultKind, FaultSettings, SimulatorSettings
from ..sim.chiller import CHILLER_TAGS, ChillerModel
from .pretrain_settings import CorpusSettings

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]

SOURCES: tuple[str, ...] = ("kernel_synth", "industrial", "chiller", "real", "seasonal")
"""Source names, in the order of :attr:`Windows.source` codes (new sources go last: codes stay stable)."""

_VALIDATION_STREAM = 1_000_003  # spawn key of the validation windows' generator
_SAMPLE_PERIODS_S = np.array([1.0, 5.0, 10.0, 60.0, 300.0, 900.0, 3600.0])
_DAY_S = 86_400.0
_WEEK_S = 7 * _DAY_S


@dataclass(frozen=True, slots=True)
class Windows:
    """A batch of training (or validation) windows, aligned by row."""

    context: FloatArray
    """(B, context_length), oldest first, NaN where unobserved (before the series, gaps)."""
    target: FloatArray
    """(B, horizon): the values right after the context (NaN only where the series itself has gaps)."""
    source: IntArray
    """(B,): index into :data:`SOURCES`."""

    def __len__(self) -> int:
        return int(self.context.shape[0])


@dataclass(frozen=True, slots=True)
class _Origins:
    """Where forecast origins may fall for one source and one split: for vectorised sampling."""

    series: IntArray  # bank index of each series that has at least one origin
    first: IntArray  # first allowed origin (flat index) of each
    cumulative: IntArray  # running total of allowed origins

    @property
    def total(self) -> int:
        return int(self.cumulative[-1]) if len(self.cumulative) else 0


class Corpus:
    """A bank of series and the windows cut from it; see the module docstring.

    Reproducible: the same settings give the same bank, the same ``rng`` state the
    same batch, and :meth:`validation` always the same windows.
    """

    def __init__(
        self,
        settings: CorpusSettings,
        *,
        context_length: int,
        horizon: int,
        values: FloatArray,
        begin: IntArray,
        end: IntArray,
        split: IntArray,
        source: IntArray,
        names: list[str],
        build_seconds: float = 0.0,
    ) -> None:
        self.settings = settings
        self.context_length = context_length
        self.horizon = horizon
        self.values = values
        self.begin, self.end, self.split, self.source = begin, end, split, source
        self.names = names
        self.build_seconds = build_seconds
        weights = settings.mix.weights()
        self._weights = np.array([weights[s] for s in SOURCES], dtype=np.float64)
        m = settings.min_context_steps
        # Training: the whole window lies before the split.  Validation: the horizon lies after it.
        self._train = [self._origins(k, begin + m, split - horizon) for k in range(len(SOURCES))]
        self._val = [self._origins(k, np.maximum(split, begin + m), end - horizon) for k in range(len(SOURCES))]
        for k, name in enumerate(SOURCES):
            if self._weights[k] > 0 and self._train[k].total == 0:
                raise ValueError(f"corpus source {name!r} has weight {self._weights[k]} but no training windows")

    # -- construction -------------------------------------------------------------

    @classmethod
    def build(cls, settings: CorpusSettings, *, context_length: int, horizon: int) -> Corpus:
        """Generate (and read) every series of the sources with a positive weight."""
        started = time.perf_counter()
        root = np.random.SeedSequence(settings.seed)
        # One independent stream per source: changing one source's size leaves the others unchanged.
        streams = dict(zip(SOURCES, root.spawn(len(SOURCES)), strict=True))
        weights = settings.mix.weights()
        pieces: list[tuple[str, str, FloatArray, bool]] = []  # source, name, values, validation-only
        min_length = settings.min_context_steps + horizon

        def synthetic(name: str, count: int, generate: Callable[[np.random.Generator], list[FloatArray]]) -> None:
            if weights[name] <= 0 or count <= 0:
                return
            t = time.perf_counter()
            rng = np.random.default_rng(streams[name])
            series = generate(rng)
            n_val = _validation_count(len(series), settings.validation_fraction)
            for i, v in enumerate(series):
                pieces.append((name, f"{name}/{i}", v, i >= len(series) - n_val))
            log.info("corpus: %d %s series in %.1f s", len(series), name, time.perf_counter() - t)

        synthetic(
            "kernel_synth",
            settings.kernel_synth_series,
            lambda rng: list(kernel_synth(rng, settings.kernel_synth_series, settings.kernel_synth_length)),
        )
        synthetic(
            "industrial",
            settings.industrial_series,
            lambda rng: list(industrial(rng, settings.industrial_series, settings.industrial_length)),
        )
        synthetic(
            "seasonal",
            settings.seasonal_series,
            lambda rng: list(seasonal(rng, settings.seasonal_series, settings.seasonal_length)),
        )
        if weights["chiller"] > 0 and settings.chiller_runs > 0:
            t = time.perf_counter()
            rng = np.random.default_rng(streams["chiller"])
            n_val = _validation_count(settings.chiller_runs, settings.validation_fraction)
            for run in range(settings.chiller_runs):
                for tag, v in chiller_run(rng, settings.chiller_length, settings.chiller_fault_probability):
                    pieces.append(("chiller", f"chiller/{run}/{tag}", v, run >= settings.chiller_runs - n_val))
            log.info("corpus: %d chiller runs in %.1f s", settings.chiller_runs, time.perf_counter() - t)

        real_split: dict[str, int] = {}
        if weights["real"] > 0:
            t = time.perf_counter()
            for s in real_series(settings.data_dir):
                tail = max(horizon, math.ceil(settings.validation_fraction * len(s)))
                real_split[s.name] = len(s) - tail
                pieces.append(("real", s.name, s.values, False))
            log.info("corpus: %d real series in %.1f s", len(real_split), time.perf_counter() - t)

        kept = [p for p in pieces if len(p[2]) >= min_length and np.isfinite(p[2]).sum() >= settings.min_context_steps]
        lengths = np.array([len(p[2]) for p in kept], dtype=np.int64)
        end = np.cumsum(lengths)
        begin = end - lengths
        split = np.array(
            [
                b if val_only else (b + real_split[name] if src == "real" else e)
                for (src, name, _, val_only), b, e in zip(kept, begin, end, strict=True)
            ],
            dtype=np.int64,
        )
        values = np.concatenate([p[2] for p in kept]) if kept else np.zeros(0)
        source = np.array([SOURCES.index(p[0]) for p in kept], dtype=np.int64)
        corpus = cls(
            settings,
            context_length=context_length,
            horizon=horizon,
            values=values.astype(np.float64),
            begin=begin,
            end=end,
            split=split,
            source=source,
            names=[p[1] for p in kept],
            build_seconds=time.perf_counter() - started,
        )
        log.info(
            "corpus: %d series, %.1f M points, built in %.1f s", len(kept), len(values) / 1e6, corpus.build_seconds
        )
        return corpus

    def _origins(self, k: int, first: IntArray, last: IntArray) -> _Origins:
        counts = np.maximum(last - first + 1, 0)
        pick = (self.source == k) & (counts > 0)
        return _Origins(
            series=np.flatnonzero(pick).astype(np.int64),
            first=first[pick].astype(np.int64),
            cumulative=np.cumsum(counts[pick]).astype(np.int64),
        )

    # -- windows ------------------------------------------------------------------

    def sample(self, batch_size: int, rng: np.random.Generator) -> Windows:
        """``batch_size`` augmented training windows drawn with ``rng``."""
        return self._windows(self._train, batch_size, rng, augment_scale=True)

    def batches(self, batch_size: int, seed: int) -> Iterator[Windows]:
        """An endless, reproducible stream of training batches."""
        rng = np.random.default_rng(seed)
        while True:
            yield self.sample(batch_size, rng)

    def validation(self, count: int) -> Windows:
        """The validation windows: always the same for the same bank and count.

        They get the same short contexts and gaps as training windows (that is
        what the model meets in a plant), but no rescaling, so the naive
        forecast's errors stay in the series' own units.
        """
        rng = np.random.default_rng(np.random.SeedSequence(self.settings.seed, spawn_key=(_VALIDATION_STREAM,)))
        return self._windows(self._val, count, rng, augment_scale=False)

    def summary(self) -> dict[str, Any]:
        """Counts per source, for logs and ``training.json``."""
        out: dict[str, Any] = {"build_seconds": round(self.build_seconds, 2), "sources": {}}
        total = self._weights.sum()
        for k, name in enumerate(SOURCES):
            mine = self.source == k
            out["sources"][name] = {
                "weight": float(self._weights[k] / total) if total else 0.0,
                "series": int(mine.sum()),
                "points": int((self.end - self.begin)[mine].sum()),
                "training_origins": self._train[k].total,
                "validation_origins": self._val[k].total,
            }
        return out

    def _windows(self, tables: list[_Origins], count: int, rng: np.random.Generator, *, augment_scale: bool) -> Windows:
        context = np.empty((count, self.context_length))
        target = np.empty((count, self.horizon))
        source = np.empty(count, dtype=np.int64)
        todo = np.arange(count)
        for _attempt in range(10):
            c, t, s = self._draw(tables, len(todo), rng)
            self._augment(c, rng)
            if augment_scale:
                self._rescale(c, t, rng)
            context[todo], target[todo], source[todo] = c, t, s
            # Redraw the rare window with nothing to learn from (a sensor that was off throughout).
            bad = ~(np.isfinite(c).any(axis=1) & np.isfinite(t).any(axis=1))
            if not bad.any():
                break
            todo = todo[bad]
        return Windows(context=context, target=target, source=source)

    def _draw(
        self, tables: list[_Origins], count: int, rng: np.random.Generator
    ) -> tuple[FloatArray, FloatArray, IntArray]:
        weights = np.array([w if tables[k].total else 0.0 for k, w in enumerate(self._weights)])
        if weights.sum() <= 0:
            raise ValueError("the corpus has no windows for this split")
        kinds = rng.choice(len(SOURCES), size=count, p=weights / weights.sum())
        origin = np.empty(count, dtype=np.int64)
        series = np.empty(count, dtype=np.int64)
        for k in np.unique(kinds):
            rows = np.flatnonzero(kinds == k)
            table = tables[k]
            u = rng.integers(0, table.total, size=len(rows))
            j = np.searchsorted(table.cumulative, u, side="right")
            starts = np.concatenate(([0], table.cumulative[:-1]))
            origin[rows] = table.first[j] + (u - starts[j])
            series[rows] = table.series[j]
        steps = np.arange(-self.context_length, self.horizon)
        index = origin[:, None] + steps[None, :]
        inside = index >= self.begin[series][:, None]
        window = np.where(inside, self.values[np.where(inside, index, 0)], np.nan)
        return window[:, : self.context_length].copy(), window[:, self.context_length :].copy(), kinds.astype(np.int64)

    def _augment(self, context: FloatArray, rng: np.random.Generator) -> None:
        """Shorten some contexts (left part missing) and punch gaps into some, in place."""
        s = self.settings
        n, length = int(context.shape[0]), int(context.shape[1])
        positions = np.arange(length)[None, :]
        short = rng.random(n) < s.short_context_probability
        keep = np.exp(rng.uniform(math.log(s.min_context_steps), math.log(length), size=n)).astype(np.int64)
        context[short[:, None] & (positions < (length - keep)[:, None])] = np.nan

        gappy = rng.random(n) < s.gap_probability
        if gappy.any():
            mask = np.zeros_like(context, dtype=bool)
            for g in range(s.max_gaps):
                active = gappy & ((g == 0) | (rng.random(n) < 0.5))
                start = rng.integers(0, length, size=n)
                size = np.exp(rng.uniform(0.0, math.log(s.max_gap_steps + 1), size=n)).astype(np.int64)
                mask |= active[:, None] & (positions >= start[:, None]) & (positions < (start + size)[:, None])
            # Never blank a whole context with gaps: those rows keep their values.
            emptied = ~(np.isfinite(context) & ~mask).any(axis=1)
            mask[emptied] = False
            context[mask] = np.nan

    def _rescale(self, context: FloatArray, target: FloatArray, rng: np.random.Generator) -> None:
        """Random gain (sometimes negative) and offset, in place, on some rows.

        The tokenizer standardises each window, so this mostly exercises its
        floors (a large offset over a small variation) and sign-flipped dynamics.
        """
        n = context.shape[0]
        pick = rng.random(n) < self.settings.scale_augment_probability
        gain = 10.0 ** rng.uniform(-2.0, 3.0, size=n) * np.where(rng.random(n) < 0.2, -1.0, 1.0)
        offset = rng.normal(0.0, 1.0, size=n) * 10.0 ** rng.uniform(-1.0, 3.0, size=n) * np.abs(gain)
        gain = np.where(pick, gain, 1.0)
        offset = np.where(pick, offset, 0.0)
        context *= gain[:, None]
        context += offset[:, None]
        target *= gain[:, None]
        target += offset[:, None]


def _validation_count(count: int, fraction: float) -> int:
    """Series kept for validation: at least one when there are two or more."""
    if count < 2:
        return 0
    return min(count - 1, max(1, round(count * fraction)))


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


def _log_uniform(rng: np.random.Generator, low: float, high: float, size: int) -> FloatArray:
    return np.exp(rng.uniform(math.log(low), math.log(high), size=size))


def _pid_loop(rng: np.random.Generator, n: int, length: int, _period_s: FloatArray) -> FloatArray:
    """A first-order process with dead time under PI control, its setpoint stepping now and then.

    Emits the measured process value or the controller output (a valve, 0..100 %),
    some loops tuned tightly, some sluggish, some oscillating.
    """
    tau = _log_uniform(rng, 3.0, 100.0, n)
    dead = rng.integers(0, 10, size=n)
    gain = rng.uniform(0.5, 2.0, size=n)
    closed_loop = np.maximum(dead, 1) * rng.uniform(0.5, 3.0, size=n)
    kp = tau / (gain * (closed_loop + dead + 1)) * _log_uniform(rng, 0.5, 4.0, n)  # detuned at times
    ti = np.minimum(tau, 4.0 * (closed_loop + dead + 1))
    disturbance_mean = rng.uniform(-20.0, 20.0, size=n)
    setpoint = np.repeat((disturbance_mean + gain * rng.uniform(25.0, 75.0, size=n))[:, None], length, axis=1)
    for i in range(n):
        for at in rng.integers(0, length, size=int(rng.integers(0, 6))):
            setpoint[i, at:] += rng.normal(0.0, 8.0) * gain[i]
    walk = np.cumsum(rng.normal(0.0, 1.0, size=(n, length)) * _log_uniform(rng, 0.01, 0.5, n)[:, None], axis=1)
    walk -= walk.mean(axis=1, keepdims=True)
    cycle = rng.uniform(0, 5, size=n)[:, None] * np.sin(
        2 * np.pi * np.arange(length)[None, :] / _log_uniform(rng, 50.0, 2000.0, n)[:, None]
    )
    disturbance = disturbance_mean[:, None] + walk + cycle
    noise = rng.normal(0.0, 1.0, size=(n, length)) * _log_uniform(rng, 0.01, 1.0, n)[:, None]
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
    heat = band * _log_uniform(rng, 0.005, 0.2, n)
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
    cycle_s = np.where(own_period, _log_uniform(rng, 6.0, 500.0, n) * period_s, _DAY_S)
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
    phi = 1.0 - _log_uniform(rng, 1e-4, 0.1, n)
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
        sigma = spread * float(_log_uniform(rng, 1e-3, 0.3, 1)[0])
        noise = rng.standard_t(3, size=n) / math.sqrt(3) if rng.random() < 0.15 else rng.standard_normal(n)
        x = x + sigma * noise
    if rng.random() < 0.2:
        x = x + spread * rng.uniform(-1.0, 1.0) * np.linspace(0.0, 1.0, n)
    if rng.random() < 0.25:
        resolution = spread * float(_log_uniform(rng, 0.005, 0.2, 1)[0])
        x = np.round(x / resolution) * resolution
    scale = 10.0 ** rng.uniform(-2.0, 3.0)
    x = x * scale + rng.normal(0.0, 3.0) * scale
    if rng.random() < 0.1:
        for _ in range(int(rng.integers(1, 4))):
            start = int(rng.integers(0, n))
            x[start : start + int(_log_uniform(rng, 1.0, 100.0, 1)[0])] = np.nan
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
        period = float(_log_uniform(rng, 2.0, 400.0, 1)[0])
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
    sigma = float(_log_uniform(rng, 1e-3, 0.6, 1)[0])
    phi = rng.uniform(0.0, 0.9)
    e = rng.normal(0.0, sigma, size=length)
    ar = np.empty(length)
    ar[0] = e[0]
    for k in range(1, length):
        ar[k] = phi * ar[k - 1] + e[k]
    scale = 10.0 ** rng.uniform(-2.0, 3.0)
    return np.asarray((x + ar) * scale, dtype=np.float64)


# -- the chiller simulator ----------------------------------------------------------

_CHILLER_PERIODS_S = np.array([1.0, 2.0, 5.0, 10.0, 30.0, 60.0])
_CHILLER_PERIOD_WEIGHTS = np.array([0.3, 0.2, 0.2, 0.15, 0.1, 0.05])
# Pump 3 always mirrors pump 2 (the lag pumps share the load): one copy is enough.
_CHILLER_CORPUS_TAGS = tuple(t for t in CHILLER_TAGS if t != "pump3_speed_pct")
_CORPUS_FAULTS: tuple[FaultKind, ...] = (
    "pump_degradation",
    "sensor_drift",
    "stuck_sensor",
    "setpoint_violation",
    "fouling",
    "control_oscillation",
)


def chiller_run(rng: np.random.Generator, length: int, fault_probability: float = 0.0) -> list[tuple[str, FloatArray]]:
    """One simulator run with random settings and a pretraining seed: ``(tag, values)`` per tag."""
    setpoint = rng.uniform(4.0, 9.0)
    delta = rng.uniform(3.0, 10.0)
    period = float(rng.choice(_CHILLER_PERIODS_S, p=_CHILLER_PERIOD_WEIGHTS))
    faults: tuple[FaultSettings, ...] = ()
    total_s = length * period
    if rng.random() < fault_probability:
        kind = _CORPUS_FAULTS[int(rng.integers(0, len(_CORPUS_FAULTS)))]
        faults = (
            FaultSettings(
                kind=kind, onset_s=rng.uniform(0.2, 0.7) * total_s, duration_s=rng.uniform(0.05, 0.3) * total_s
            ),
        )
    settings = SimulatorSettings(
        seed=pretraining_seed(rng),
        sample_period_s=period,
        flow_m3h=float(_log_uniform(rng, 20.0, 300.0, 1)[0]),
        chw_setpoint_c=setpoint,
        supply_temp_mean_c=setpoint + delta,
        daily_load_amplitude_c=rng.uniform(0.0, 0.5) * delta,
        noise_scale=float(_log_uniform(rng, 0.3, 3.0, 1)[0]),
        start_ts=rng.uniform(1.58e9, 1.9e9),
        faults=faults,
    )
    model = ChillerModel(settings)
    start = settings.start_ts or 0.0
    data = np.stack([model.step_array(start + k * period) for k in range(length)])
    columns = {name: i for i, name in enumerate(model.tag_names)}
    return [(tag, np.ascontiguousarray(data[:, columns[tag]])) for tag in _CHILLER_CORPUS_TAGS]


# -- real data ----------------------------------------------------------------------


def real_series(data_dir: Path | None) -> list[Series]:
    """The real series pretraining may use (held-out parts already removed, and checked again)."""
    series = pretraining_series(data_dir)
    for s in series:
        check_pretraining_allowed(s)
    return series
