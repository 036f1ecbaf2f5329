"""Issue 13: the model's band floored at damped Holt's on the same context, by ``docs/results/nab/band-floor/RULE.md``.

A forecaster-side candidate (``forecast.model_band_floor_holt``, ``forecast/band_floor.py``): only the model's
forecasts change, so Holt's rows are the shipped ones by construction; the script checks it (every per-row number of
Holt's candidate runs equal to Holt's shipped run, NaN for NaN).  The cached forecasts (``/tmp/nabm/cache``, the
shipped mixing) are floored by the model forecaster's own ``floor_band`` from each window's context, as its
``forecast`` would (``diag_fp_rows.replay``).

Tuning step (``--forecaster model|holt``, then ``--decide``): the 31 tuning files through the daemon's stage every
tick, the shipped defaults and the candidates; then this rule's conditions 1-4 (``tune_band.decide``) and its choice.
Held-out step (``--held-out CAND``, once, only for a candidate chosen on tuning): the 27 held-out files, both
forecasters, shipped and the candidate, corpus and category scores only, NAB result files under ``OUT/results`` for
``bench/nab_official.py``, then the rule's held-out conditions.

    PYTHONPATH=daemon:bench/nab python bench/nab/tune_band_floor.py OUT CACHE --forecaster model|holt
    PYTHONPATH=daemon:bench/nab python bench/nab/tune_band_floor.py OUT CACHE --decide
    PYTHONPATH=daemon:bench/nab python bench/nab/tune_band_floor.py OUT CACHE --held-out H75
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from diag_fp_rows import FIELDS
from nab_tuning import FORECASTERS, runs_of
from tune_band import Changes, Minima, Plan, decide, held_out_changes, held_out_step, judge_held_out, tuning_runs

from sentinelle.evaluation.nab_corpus import HELD_OUT, TUNING, NabFile, load_corpus, split_of

CANDIDATES: dict[str, dict[str, object]] = {
    "shipped": {},
    "H50": {"forecast": {"model_band_floor_holt": 0.5}},
    "H75": {"forecast": {"model_band_floor_holt": 0.75}},
    "H100": {"forecast": {"model_band_floor_holt": 1.0}},
}
ORDER = ("H50", "H75", "H100")
"""The least intervention first (RULE.md): a smaller factor within ``WITHIN`` of the best passing one is chosen."""
PLAN: Plan = (CANDIDATES, {1: ORDER})
MIN_GAIN = 0.5
"""Condition 1: the model's standard and low-FP scores each rise by at least this much."""
WITHIN = 0.3
"""Condition 2 and 4: the model's low FN falls by at most this much; the choice's tie margin."""
GAP_AT_LEAST = -1.46
"""Condition 3: the model − Holt gap on standard (both with the candidate) is at least this (half of −2.92)."""
HOLT_SAME = 0.005
"""Condition 2: Holt's three scores are the shipped ones (identical by construction; rounding only)."""


def conditions(d: Changes, gap: list[float], gap0: list[float], loo: Minima) -> tuple[bool, bool, bool, bool]:
    """This rule's tuning conditions 1-4 (RULE.md), for ``tune_band.decide``."""
    c1 = d["model"][0] >= MIN_GAIN and d["model"][1] >= MIN_GAIN
    c2 = all(abs(x) <= HOLT_SAME for x in d["holt"]) and d["model"][2] >= -WITHIN
    c3 = gap[0] >= GAP_AT_LEAST and gap[1] >= gap0[1]
    c4 = all(x >= 0 for x in loo["model"]) and all(abs(x) <= HOLT_SAME for x in loo["holt"])
    return c1, c2, c3, c4


def holt_unchanged(out: Path, cache: Path, files: list[NabFile], split: str, cands: tuple[str, ...]) -> None:
    """Every per-row number of Holt's candidate runs equals the shipped run's (the floor is the model's only)."""
    base = runs_of(out, cache, files, "holt", "shipped", split, CANDIDATES["shipped"])
    for c in cands:
        run = runs_of(out, cache, files, "holt", c, split, CANDIDATES[c])
        same = all(np.array_equal(run[f.name][k], base[f.name][k], equal_nan=True) for f in files for k in FIELDS)
        print(f"Holt's {split} rows with {c} identical to the shipped ones, every field of every row: {same}")
        assert same, f"Holt's rows changed under {c}: the floor must be the model's only"


def held_out_conditions(out: Path, cache: Path, files: list[NabFile], cand: str) -> None:
    """This rule's held-out conditions (H2: Holt unchanged, the model's low FN within ``WITHIN``)."""
    h = held_out_changes(out, cache, files, cand, PLAN)
    h2 = all(abs(x) <= HOLT_SAME for x in h.change["holt"]) and h.change["model"][2] >= -WITHIN
    judge_held_out(cand, h, h2, f"Holt unchanged and the model's low FN within {WITHIN}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("cache", type=Path)
    ap.add_argument("--forecaster", choices=FORECASTERS, default=None, help="tuning runs of one forecaster")
    ap.add_argument("--decide", action="store_true", help="the rule's tuning conditions on the kept runs")
    ap.add_argument("--held-out", choices=ORDER, default=None, help="step 2: the chosen candidate, once")
    a = ap.parse_args()
    files = load_corpus(Path("/work/shared/data/nab/data"))
    split = split_of(f.name for f in files)
    tuning = [f for f in files if split[f.name] == TUNING]
    a.out.mkdir(parents=True, exist_ok=True)
    if a.held_out is not None:
        held = [f for f in files if split[f.name] == HELD_OUT]
        held_out_step(a.out, a.cache, held, a.held_out, None, PLAN, prefix="holtfloor")
        holt_unchanged(a.out, a.cache, held, HELD_OUT, (a.held_out,))
        held_out_conditions(a.out, a.cache, held, a.held_out)
    elif a.decide:
        holt_unchanged(a.out, a.cache, tuning, TUNING, ORDER)
        decide(a.out, a.cache, tuning, 1, PLAN, conditions, WITHIN)
    else:
        assert a.forecaster is not None, "--forecaster for the tuning runs"
        tuning_runs(a.out, a.cache, tuning, a.forecaster, 1, PLAN)


if __name__ == "__main__":
    main()
