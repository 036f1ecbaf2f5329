"""Evaluation: the public datasets, the held-out rules, and (later) replays and reports.

``datasets`` reads the files in ``shared/data`` into named numpy series;
``heldout`` says which parts pretraining may use and which belong to the
benchmarks.  Both are numpy only, so benchmarks and pretraining share them
without importing torch.
"""

from __future__ import annotations

from .datasets import Series, default_data_dir, load_electricity, load_lbnl, load_skab, to_study_units
from .heldout import (
    BENCHMARK_SEED_START,
    ELECTRICITY_HELDOUT_FROM,
    benchmark_seeds,
    is_benchmark_seed,
    pretraining_parts,
    pretraining_series,
)

__all__ = [
    "BENCHMARK_SEED_START",
    "ELECTRICITY_HELDOUT_FROM",
    "Series",
    "benchmark_seeds",
    "default_data_dir",
    "is_benchmark_seed",
    "load_electricity",
    "load_lbnl",
    "load_skab",
    "pretraining_parts",
    "pretraining_series",
    "to_study_units",
]
