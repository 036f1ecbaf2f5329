"""Issue 13: the escalating rest with a margin on NAB, by the rule ``docs/results/nab/rest-margin/RULE.md``.

The rule's conditions and choice are those of ``band-cal/RULE.md``, so its runs and decision are ``tune_band.py``'s
with this rule's candidates: tuning step (``--forecaster model|holt``, then ``--decide``: the 31 tuning files
through the daemon's stage every tick, forecasts from the cache, the shipped defaults recomputed in the same run);
held-out step (``--held-out CAND``, once, only if a candidate passes: the 27 held-out files, both forecasters, the
shipped defaults and the candidate, corpus and category scores only, NAB result files under ``OUT/results``);
``--all CAND`` (after both, information): the 58 files, one threshold each.

    PYTHONPATH=daemon:bench/nab python bench/nab/tune_margin.py OUT CACHE --forecaster model|holt
    PYTHONPATH=daemon:bench/nab python bench/nab/tune_margin.py OUT CACHE --decide
    PYTHONPATH=daemon:bench/nab python bench/nab/tune_margin.py OUT CACHE --held-out M
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nab_tuning import FORECASTERS, all_files
from tune_band import Plan, decide, held_out_step, tuning_runs

from sentinelle.evaluation.nab_corpus import HELD_OUT, TUNING, load_corpus, split_of

CANDIDATES: dict[str, dict[str, object]] = {
    "shipped": {},
    "M": {"score_rest_escalate": "margin"},
    "MT": {"score_rest_escalate": "margin", "score_tail_calibration": True},
}
PLAN: Plan = (CANDIDATES, {1: ("M", "MT")})
"""One round, simplest first: M is chosen over a passing MT unless MT gains more than 0.3 beyond it."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("cache", type=Path)
    cands = ("M", "MT")
    ap.add_argument("--forecaster", choices=FORECASTERS, default=None, help="tuning runs (or held-out runs) of one")
    ap.add_argument("--decide", action="store_true", help="the rule's tuning conditions on the kept runs")
    ap.add_argument("--held-out", choices=cands, default=None, help="step 2: the chosen candidate, once")
    ap.add_argument("--all", choices=cands, default=None, help="after both steps: the 58 files (information)")
    a = ap.parse_args()
    files = load_corpus(Path("/work/shared/data/nab/data"))
    split = split_of(f.name for f in files)
    tuning = [f for f in files if split[f.name] == TUNING]
    a.out.mkdir(parents=True, exist_ok=True)
    if a.all is not None:
        all_files(a.out, files, split, a.all)
    elif a.held_out is not None:
        held = [f for f in files if split[f.name] == HELD_OUT]
        held_out_step(a.out, a.cache, held, a.held_out, a.forecaster, PLAN, prefix="margin")
    elif a.decide:
        decide(a.out, a.cache, tuning, 1, PLAN)
    else:
        assert a.forecaster is not None, "--forecaster for the tuning runs"
        tuning_runs(a.out, a.cache, tuning, a.forecaster, 1, PLAN)


if __name__ == "__main__":
    main()
