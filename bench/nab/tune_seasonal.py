"""Issue 13: the seasonal repeat bound on NAB, by the rule ``docs/results/nab/seasonal-repeat/RULE.md``.

The tuning conditions and choice are those of ``band-cal/RULE.md`` (``tune_band.py``'s ``decide``), with this rule's
candidates: tuning step (``--forecaster model|holt``, then ``--decide``: the 31 tuning files through the daemon's
stage every tick, forecasts from the cache, the shipped defaults recomputed in the same run).  Held-out step
(``--held-out CAND``, once, only for the candidate chosen on tuning): the 27 held-out files, both forecasters, the
shipped defaults and the candidate, corpus and category scores only, NAB result files under ``OUT/results``, then
this rule's held-out conditions (none of the six scores falls; the model − Holt gap on standard does not widen).
``--all CAND`` (after both, information): the 58 files, one threshold each.

    PYTHONPATH=daemon:bench/nab python bench/nab/tune_seasonal.py OUT CACHE --forecaster model|holt
    PYTHONPATH=daemon:bench/nab python bench/nab/tune_seasonal.py OUT CACHE --decide
    PYTHONPATH=daemon:bench/nab python bench/nab/tune_seasonal.py OUT CACHE --held-out R
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nab_tuning import FORECASTERS, all_files
from tune_band import Plan, decide, held_out_changes, held_out_step, tuning_runs

from sentinelle.evaluation.nab_corpus import HELD_OUT, TUNING, NabFile, load_corpus, split_of

CANDIDATES: dict[str, dict[str, object]] = {
    "shipped": {},
    "R": {"score_seasonal_repeat_periods": 2, "score_seasonal_repeat_tolerance_s": 3600.0},
    "R30": {"score_seasonal_repeat_periods": 2, "score_seasonal_repeat_tolerance_s": 1800.0},
}
PLAN: Plan = (CANDIDATES, {1: ("R", "R30")})
"""One round, the settings' defaults first: R is chosen over a passing R30 unless R30 gains more than 0.3 beyond it."""


def held_out_conditions(out: Path, cache: Path, files: list[NabFile], cand: str) -> None:
    """This rule's held-out conditions: none of the six scores falls; the model − Holt gap on standard holds."""
    h = held_out_changes(out, cache, files, cand, PLAN)
    a = all(x >= 0 for fc in FORECASTERS for x in h.change[fc])
    b = h.gap >= h.gap0 - 0.005
    print(
        f"{cand} held out (this rule): change model {h.change['model']} holt {h.change['holt']}; model - Holt standard "
        f"{h.gap:.2f} (shipped {h.gap0:.2f}); H1 none of the six falls {a}; H2 gap does not widen {b}; "
        f"ships: {a and b}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("cache", type=Path)
    cands = ("R", "R30")
    ap.add_argument("--forecaster", choices=FORECASTERS, default=None, help="tuning runs of one forecaster")
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
        held_out_step(a.out, a.cache, held, a.held_out, None, PLAN, prefix="seasonal")
        held_out_conditions(a.out, a.cache, held, a.held_out)
    elif a.decide:
        decide(a.out, a.cache, tuning, 1, PLAN)
    else:
        assert a.forecaster is not None, "--forecaster for the tuning runs"
        tuning_runs(a.out, a.cache, tuning, a.forecaster, 1, PLAN)


if __name__ == "__main__":
    main()
