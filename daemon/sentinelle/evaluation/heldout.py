"""The held-out rules of issue 4, in one place: what pretraining may never see.

Pretraining (:mod:`sentinelle.training.corpus`) and the benchmarks (``bench/``)
both call these functions, so the line between "trained on" and "evaluated on"
cannot drift apart in two copies.

==================  ===================================================  ==========================================
dataset             pretraining may use                                  reserved for evaluation
==================  ===================================================  ==========================================
electricity_fr      days up to 2014-10-30                                2014-10-31 onwards (the study's window
                                                                         2014-10-31..2014-12-31, and 2019)
SKAB                the first 60 % of ``anomaly-free.csv``               the last 40 % of ``anomaly-free.csv``
                                                                         (forecast accuracy) and every fault file
                                                                         (``valve1``, ``valve2``, ``other``)
LBNL AHU            fault-free days only (labels are per day)            faulted days
chiller simulator   seeds 0..999                                         seeds ≥ 1000 (:func:`benchmark_seeds`)
==================  ===================================================  ==========================================

The SKAB split is stricter than issue 4 (which allows all of ``anomaly-free``)
because the forecast-accuracy benchmark scores on SKAB's anomaly-free channels:
training on the same minutes would make that score in-sample.

>>> is_benchmark_seed(1000), is_benchmark_seed(999)
(True, False)
>>> list(benchmark_seeds(3))
[1000, 1001, 1002]
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from .datasets import Series, load_electricity, load_lbnl, load_skab

ELECTRICITY_HELDOUT_FROM = dt.date(2014, 10, 31)
"""First day of electricity consumption that pretraining never sees (the study's validation window starts here)."""
ELECTRICITY_HELDOUT_FROM_TS = dt.datetime(2014, 10, 31, tzinfo=dt.UTC).timestamp()

SKAB_PRETRAINING_GROUPS: frozenset[str] = frozenset({"anomaly-free"})
"""SKAB folders pretraining may read; the fault folders (valve1, valve2, other) are benchmark data."""
SKAB_ANOMALY_FREE_PRETRAIN_FRACTION = 0.6
"""Pretraining reads the first 60 % of each anomaly-free channel; the rest is the forecast benchmark's."""

BENCHMARK_SEED_START = 1000
"""Simulator seeds from here on belong to benchmarks; pretraining draws seeds below it."""

HELDOUT_SUMMARY: dict[str, str] = {
    "electricity_fr": f"days from {ELECTRICITY_HELDOUT_FROM.isoformat()} onwards",
    "skab": "fault files (valve1, valve2, other) and the last "
    f"{1 - SKAB_ANOMALY_FREE_PRETRAIN_FRACTION:.0%} of anomaly-free.csv",
    "lbnl_ahu_fdd": "faulted days",
    "chiller_simulator": f"seeds >= {BENCHMARK_SEED_START}",
}
"""Written into ``training.json`` so a checkpoint says what it never saw."""


def is_benchmark_seed(seed: int) -> bool:
    """True for simulator seeds that pretraining must not use."""
    return seed >= BENCHMARK_SEED_START


def benchmark_seeds(count: int) -> range:
    """The simulator seeds a benchmark should run: never seen in pretraining."""
    return range(BENCHMARK_SEED_START, BENCHMARK_SEED_START + count)


def pretraining_seed(rng: np.random.Generator) -> int:
    """A simulator seed pretraining may use, drawn from ``rng``."""
    return int(rng.integers(0, BENCHMARK_SEED_START))


def skab_anomaly_free_cut(series: Series) -> int:
    """Index where an anomaly-free SKAB channel's benchmark part starts."""
    return int(len(series) * SKAB_ANOMALY_FREE_PRETRAIN_FRACTION)


def pretraining_parts(series: Series) -> list[Series]:
    """The parts of ``series`` that pretraining may use (possibly none).

    >>> import numpy as np
    >>> ts = np.array([0.0, 86400.0, 172800.0])
    >>> s = Series("lbnl/x/a", "lbnl", np.arange(3.0), ts, 86400.0, labels=np.array([False, True, False]))
    >>> [p.values.tolist() for p in pretraining_parts(s)]
    [[0.0], [2.0]]
    """
    if series.dataset == "electricity":
        keep = int(np.searchsorted(series.timestamps, ELECTRICITY_HELDOUT_FROM_TS, side="left"))
        return [series.slice(0, keep)] if keep > 0 else []
    if series.dataset == "skab":
        if series.group not in SKAB_PRETRAINING_GROUPS:
            return []
        cut = skab_anomaly_free_cut(series)
        return [series.slice(0, cut)] if cut > 0 else []
    if series.dataset == "lbnl":
        if series.labels is None:
            return []
        return [series.slice(a, b, name=f"{series.name}#{a}") for a, b in _false_runs(series.labels)]
    raise ValueError(f"{series.name}: no held-out rule for dataset {series.dataset!r}")


def check_pretraining_allowed(series: Series) -> None:
    """Raise ``ValueError`` if any point of ``series`` is held out: the corpus's last line of defence."""
    if series.dataset == "electricity":
        if len(series) and series.timestamps.max() >= ELECTRICITY_HELDOUT_FROM_TS:
            raise ValueError(f"{series.name}: reaches {ELECTRICITY_HELDOUT_FROM}, which is held out")
    elif series.dataset == "skab":
        if series.group not in SKAB_PRETRAINING_GROUPS:
            raise ValueError(f"{series.name}: SKAB {series.group} is held out")
    elif series.dataset == "lbnl":
        if series.labels is None or series.labels.any():
            raise ValueError(f"{series.name}: contains faulted (or unlabelled) days, which are held out")
    else:
        raise ValueError(f"{series.name}: no held-out rule for dataset {series.dataset!r}")


def pretraining_series(data_dir: Path | None = None) -> list[Series]:
    """Every real series pretraining may use, already cut by the rules above."""
    every = [
        *load_electricity(data_dir).values(),
        *load_skab(data_dir, groups=sorted(SKAB_PRETRAINING_GROUPS)),
        *load_lbnl(data_dir),
    ]
    out = [part for s in every for part in pretraining_parts(s)]
    for s in out:
        check_pretraining_allowed(s)
    return out


def skab_benchmark_series(data_dir: Path | None = None) -> list[Series]:
    """The anomaly-free SKAB channels' held-out tails, for the forecast-accuracy benchmark."""
    out = []
    for s in load_skab(data_dir, groups=("anomaly-free",)):
        cut = skab_anomaly_free_cut(s)
        out.append(s.slice(cut, len(s), name=f"{s.name}#heldout"))
    return out


def _false_runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each maximal run of False."""
    padded = np.concatenate(([True], labels.astype(bool), [True]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2], strict=True)]
