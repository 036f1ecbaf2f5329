"""The pretraining corpus: a seeded bank of series, and training windows cut from it.

numpy only (no torch), so it can be built, inspected and tested without the model.

Five sources (the synthetic ones in :mod:`.synthetic`), each generated (or read) once into one flat array at start, then
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
from .synthetic import industrial, kernel_synth, log_uniform, seasonal

__all__ = [
    "SOURCES",
    "Corpus",
    "IntArray",
    "Windows",
    "chiller_run",
    "industrial",
    "kernel_synth",
    "real_series",
    "seasonal",
]

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]

SOURCES: tuple[str, ...] = ("kernel_synth", "industrial", "chiller", "real", "seasonal")
"""Source names, in the order of :attr:`Windows.source` codes (new sources go last: codes stay stable)."""

_VALIDATION_STREAM = 1_000_003  # spawn key of the validation windows' generator


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
        flow_m3h=float(log_uniform(rng, 20.0, 300.0, 1)[0]),
        chw_setpoint_c=setpoint,
        supply_temp_mean_c=setpoint + delta,
        daily_load_amplitude_c=rng.uniform(0.0, 0.5) * delta,
        noise_scale=float(log_uniform(rng, 0.3, 3.0, 1)[0]),
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
