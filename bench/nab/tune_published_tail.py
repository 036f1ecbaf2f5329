"""Issue 13: the published score's tail bound on NAB, by the rule ``docs/results/nab/published-tail/RULE.md``.

Tuning step (``--forecaster model|holt``, then ``--decide``): the 31 tuning files through the daemon's stage every
tick, forecasts from the cache, the shipped defaults recomputed in the same run (``tune_band.py``'s replay and
kept runs), then this rule's conditions 1-4 and its choice.  Held-out step (``--held-out CAND``, once, only for the
candidate chosen on tuning): the 27 held-out files, both forecasters, the shipped defaults and the candidate,
corpus and category scores only, NAB result files under ``OUT/results``, then this rule's held-out conditions.
``--all CAND`` (after both, information): the 58 files, one threshold each.

    PYTHONPATH=daemon:bench/nab python bench/nab/tune_published_tail.py OUT CACHE --forecaster model|holt
    PYTHONPATH=daemon:bench/nab python bench/nab/tune_published_tail.py OUT CACHE --decide
    PYTHONPATH=daemon:bench/nab python bench/nab/tune_published_tail.py OUT CACHE --held-out P5
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nab_tuning import FORECASTERS, all_files
from tune_band import Changes, Minima, Plan, decide, held_out_changes, held_out_step, judge_held_out, tuning_runs

from sentinelle.evaluation.nab_corpus import HELD_OUT, TUNING, NabFile, load_corpus, split_of

CANDIDATES: dict[str, dict[str, object]] = {
    "shipped": {},
    "P": {"score_published_tail": True},
    "P4": {"score_published_tail": True, "score_published_tail_floor_sigmas": 4.0},
    "P5": {"score_published_tail": True, "score_published_tail_floor_sigmas": 5.0},
    "P6": {"score_published_tail": True, "score_published_tail_floor_sigmas": 6.0},
}
ORDER = ("P", "P5", "P4", "P6")
"""Simplest first (RULE.md): no floor, then the floor where the model's tail excess begins (5 σ), then 4 and 6."""
PLAN: Plan = (CANDIDATES, {1: ORDER})
MIN_GAIN = 0.5
"""Condition 1: the model's standard and low-FP scores each rise by at least this much."""
WITHIN = 0.3
"""Condition 2 and 4: Holt's scores (and the model's low FN) fall by at most this much; the choice's tie margin."""
GAP_AT_LEAST = -1.46
"""Condition 3: the model − Holt gap on standard (both with the candidate) is at least this (half of today's −2.92)."""


def conditions(d: Changes, gap: list[float], gap0: list[float], loo: Minima) -> tuple[bool, bool, bool, bool]:
    """This rule's tuning conditions 1-4 (RULE.md), for ``tune_band.decide``."""
    c1 = d["model"][0] >= MIN_GAIN and d["model"][1] >= MIN_GAIN
    c2 = all(x >= -WITHIN for x in d["holt"]) and d["model"][2] >= -WITHIN
    c3 = gap[0] >= GAP_AT_LEAST and gap[1] >= gap0[1]
    c4 = all(x >= 0 for x in loo["model"]) and all(x >= -WITHIN for x in loo["holt"])
    return c1, c2, c3, c4


def held_out_conditions(out: Path, cache: Path, files: list[NabFile], cand: str) -> None:
    """This rule's held-out conditions (H2: Holt's three and the model's low FN within ``WITHIN``)."""
    h = held_out_changes(out, cache, files, cand, PLAN)
    h2 = all(x >= -WITHIN for x in h.change["holt"]) and h.change["model"][2] >= -WITHIN
    judge_held_out(cand, h, h2, f"Holt's three and the model's low FN within {WITHIN}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("cache", type=Path)
    ap.add_argument("--forecaster", choices=FORECASTERS, default=None, help="tuning runs of one forecaster")
    ap.add_argument("--decide", action="store_true", help="the rule's tuning conditions on the kept runs")
    ap.add_argument("--held-out", choices=ORDER, default=None, help="step 2: the chosen candidate, once")
    ap.add_argument("--all", choices=ORDER, default=None, help="after both steps: the 58 files (information)")
    a = ap.parse_args()
    files = load_corpus(Path("/work/shared/data/nab/data"))
    split = split_of(f.name for f in files)
    tuning = [f for f in files if split[f.name] == TUNING]
    a.out.mkdir(parents=True, exist_ok=True)
    if a.all is not None:
        all_files(a.out, files, split, a.all)
    elif a.held_out is not None:
        held = [f for f in files if split[f.name] == HELD_OUT]
        held_out_step(a.out, a.cache, held, a.held_out, None, PLAN, prefix="pubtail")
        held_out_conditions(a.out, a.cache, held, a.held_out)
    elif a.decide:
        decide(a.out, a.cache, tuning, 1, PLAN, conditions, WITHIN)
    else:
        assert a.forecaster is not None, "--forecaster for the tuning runs"
        tuning_runs(a.out, a.cache, tuning, a.forecaster, 1, PLAN)


if __name__ == "__main__":
    main()
