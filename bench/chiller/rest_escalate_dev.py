"""Issue 13 on chiller DEVELOPMENT seeds 2140..2149: does the escalating rest change the shipped detection?

Step (iv) of the rule ``docs/results/nab/rest-escalate/RULE.md`` (committed before any candidate was scored): the
chosen candidate may ship only if, on the development runs, the shipped rows (the univariate model's and Holt's,
per-tag + rules) with it detect no fewer faults and kinds and open no more false alarms and no more openings per
10 min than without.  Plan (fixed before any run, as ``step_floor_dev.py``): ``chiller_plan(1, 3, 3600,
first_seed=2140)`` — one run per fault kind (2140..2146) and three fault-free hours (2147..2149), never the report's
2000..2023.  Candidates a and a2 (``score_rest_escalate``) change only the published
score, which flags and alerts do not read, so their rows must equal the shipped ones exactly; b and b2 also turn
``score_tail_calibration`` on, which bounds the surprise the flags read.

    PYTHONPATH=daemon python bench/chiller/rest_escalate_dev.py OUT a|b|a2|b2 [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from quick_dev import run_quick_dev

from sentinelle.evaluation.chiller_eval import Config

CANDIDATES: dict[str, dict[str, object]] = {
    "a": {"score_rest_escalate": "any"},
    "b": {"score_rest_escalate": "any", "score_tail_calibration": True},
    "a2": {"score_rest_escalate": "excursion"},
    "b2": {"score_rest_escalate": "excursion", "score_tail_calibration": True},
    # docs/results/nab/rest-margin/RULE.md (step iv for MT; M changes only the published score).
    "M": {"score_rest_escalate": "margin"},
    "MT": {"score_rest_escalate": "margin", "score_tail_calibration": True},
}


def configs(cand: str) -> tuple[Config, ...]:
    """The shipped rows (model, Holt; per-tag + rules) without and with the candidate."""
    out = []
    for fc in ("model", "holt"):
        out.append(Config(f"{fc}: per-tag + rules (shipped)", fc, asset=False, rules=True))
        out.append(
            Config(f"{fc}: per-tag + rules, candidate {cand}", fc, asset=False, rules=True, detect=CANDIDATES[cand])
        )
    return tuple(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("candidate", choices=sorted(CANDIDATES))
    ap.add_argument("--cache-dir", type=Path, default=None)
    a = ap.parse_args()
    run_quick_dev(a.out, configs(a.candidate), a.cache_dir)


if __name__ == "__main__":
    main()
