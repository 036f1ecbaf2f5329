"""Issue 14 on DEVELOPMENT seeds: the usual band width held only while the estimate residual keeps its sign.

The held spread (``detect.asset_estimate_held_spread``, held_spread_dev.py) found every development sensor drift
but flagged healthy tags where the estimate's band is legitimately wide (2 to 7 false alarms on 60 runs).  The
gate (``detect.asset_estimate_held_spread_sign_steps`` N, ``_sign_share`` Q; detect/held_spread.py's
``PersistentSign``): the usual width is held only on tags whose residual's forgetting mean sign over N ticks
reaches Q; elsewhere the tick's own band, as row 8.

The plan, candidates and rule were committed before any candidate was scored, in
docs/results/chiller-detection/sign-held/RULE.md; repeated here.  Runs: the 60 development runs of
held_spread_dev.py (seeds 2180..2203, 3200..3223, fault-free 2310..2321).  Candidates, in this order: C0 row 8
(re-run: the code changed since the held spread's round 1); S1 round 2's R1 (held, learning 600 ticks late,
flagging after 600 learned) gated at N 120, Q 0.9; S2 R1 gated at N 120, Q 0.95; S3 round 1's C2 (held, 600
late, after 300 learned) gated at N 120, Q 0.9.  Rule: held_spread_dev's (eligible: no false alarm and at least
C0's faults; then the most sensor drifts, slow faults, faults, kinds, the smallest median slow delay; ties to the
earlier).

    python bench/chiller/sign_held_dev.py --checkpoint PATH --cache-root DIR --new-cache-root DIR \\
        --free-cache-root DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from asset_blind_dev import RESULTS, table_row
from held_spread_dev import CANDIDATES, RULE, choose, held_row, run_dev, write_dev

from sentinelle.evaluation.chiller_eval import Config

REPORT_SEED = 3300
"""The report's fresh seeds (3300..3323): never a development run."""
SIGN_CANDIDATES: tuple[tuple[str, int, int, float], ...] = (
    ("S1", 600, 120, 0.9),
    ("S2", 600, 120, 0.95),
    ("S3", 300, 120, 0.9),
)
"""(name, min learned L, sign memory N, share Q), in the rule's order; each held, learning 600 ticks late, the
estimate opening on 16 of 24."""


def sign_row(name: str, min_learned: int, sign_steps: int, share: float) -> Config:
    """The held spread (learning 600 ticks late, flagging after ``min_learned``) held only while one-sided."""
    c = held_row(name, True, 600, 16, min_learned)
    detect = {
        **c.detect,
        "asset_estimate_held_spread_sign_steps": sign_steps,
        "asset_estimate_held_spread_sign_share": share,
    }
    label = f"{c.label}, only while its sign holds (mean sign over {sign_steps} ticks ≥ {share})"
    return dataclasses.replace(c, label=label, detect=detect)


def candidates() -> list[Config]:
    """C0 (row 8), then the sign-held candidates, in the rule's order."""
    return [held_row(*CANDIDATES[0]), *(sign_row(*c) for c in SIGN_CANDIDATES)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--cache-root", type=Path, required=True, help="estimates of seeds 2180..2203")
    ap.add_argument("--new-cache-root", type=Path, required=True, help="estimates of seeds 3200..3223")
    ap.add_argument("--free-cache-root", type=Path, required=True, help="estimates of seeds 2310..2321")
    ap.add_argument("--out", type=Path, default=RESULTS / "sign-held" / "sign_held_dev.json")
    args = ap.parse_args()
    roots = {"faults": args.cache_root, "new": args.new_cache_root, "free": args.free_cache_root}
    started = time.perf_counter()
    per, seeds = run_dev(candidates(), roots, args.checkpoint, started, reserved=(REPORT_SEED,))
    table = [table_row(name, runs) for name, runs in per.items()]
    chosen = choose(table)
    timing = {"seconds": round(time.perf_counter() - started, 1)}
    write_dev(args.out, "sign_held_dev", seeds, str(args.checkpoint), RULE, table, chosen, timing)


if __name__ == "__main__":
    main()
