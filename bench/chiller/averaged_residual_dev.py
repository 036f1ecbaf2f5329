"""Issue 14 on DEVELOPMENT runs: S5 + the estimate residual also scored as its mean over the last ticks.

Diagnosis (docs/results/chiller-detection/averaged-residual/): the flow meter's drift (sensor_drift-2, +2.3 m³/h
ramped in over 900 s) is missed by K1/S5 on dev 3215, 3515 and on three fresh sets.  K1's traces (the flag-side
study's, 85 runs of the development pool) show its per-tick residual ``z`` 4 to 5 estimate spreads high while the
scale's spread was 1.3 to 1.6 (the meter's own noise): the tick's standardised residual stood near the threshold,
crossing it on about half of the ticks, never 20 of 24, until the scale, 300 ticks late, learned the drift.  The
new opt-in ``detect.asset_estimate_mean_steps`` (detect/averaged_residual.py) scores, beside each tick, the mean of
the row's last W residuals against a second scale of the per-tick residual learned D ticks late, flagging after L
learned.

The plan, candidates and rule were committed before any candidate was scored, in
docs/results/chiller-detection/averaged-residual/RULE.md.  Runs: flag_side_dev's 108 (seeds 2180..2203,
3200..3223, fault-free 2310..2321 and the spent report sets 3400..3423, 3500..3523), the grouped estimates read
from their caches (never written).  Rows, in this order: S5 (the baseline; its records must equal
flag_side_dev_round2.json's S5 run by run), A1 S5 + W 60, D 900, L 300; A2 W 120, D 900, L 300; A3 W 60, D 750,
L 300.

    python bench/chiller/averaged_residual_dev.py --roots DEV DEV3200 FREE R3400 R3500 [--partial P] [--out JSON]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from asset_blind_dev import RESULTS, table_row
from flag_side_dev import configs_round2 as flag_side_round2
from flag_side_dev import rank
from flag_side_dev import run as run_rows
from group_learn_dev import _same
from held_spread_dev import choose, write_dev

from sentinelle.evaluation.chiller_eval import Config

REPORT_SEED = 3800
"""The report's fresh seeds (3800..3823; a second set 3900..3923): never a development run."""
OUT = RESULTS / "averaged-residual" / "averaged_residual_dev.json"
RULE = (
    "eligible: no false alarm on the 108 development runs and at least S5's faults detected there (S5 first); "
    "among them the most sensor drifts + foulings detected, then the most faults, then the most pump "
    "degradations, then the smallest median slow-fault delay; ties to the earlier row (S5 first: if S5 wins or "
    "none is eligible, nothing is chosen and seeds 3800..3823 stay unscored)"
)
CANDIDATES = (("A1", 60, 900, 300), ("A2", 120, 900, 300), ("A3", 60, 750, 300))
"""Name, window W, the mean's scale's learn delay D and its minimum learned L (RULE.md)."""


def configs() -> list[Config]:
    """S5 (flag_side_dev's round 2, unchanged), then A1..A3 (RULE.md)."""
    (s5,) = flag_side_round2()
    assert s5.label.startswith("S5: ")
    base = s5.label.removeprefix("S5: ")

    def row(name: str, window: int, delay: int, learned: int) -> Config:
        label = f"{name}: {base}, + the residual's mean over {window} ticks against the tick scale {delay} late, "
        label += f"flagging after {learned} learned"
        mean = {
            "asset_estimate_mean_steps": window,
            "asset_estimate_mean_learn_delay_steps": delay,
            "asset_estimate_mean_min_learned_steps": learned,
        }
        return dataclasses.replace(s5, label=label, detect={**s5.detect, **mean})

    return [s5, *(row(*c) for c in CANDIDATES)]


def configs_round2() -> list[Config]:
    """Round 2 (RULE.md's amendment, after round 1 chose none): B1 = S5 + the mean over 300 ticks, its scale 900
    late, flagging after 300 learned, on the tags outside the pump-speed group only."""
    s5 = configs()[0]
    label = s5.label.replace("S5: ", "B1: ") + (
        ", + the residual's mean over 300 ticks against the tick scale 900 late, flagging after 300 learned, "
        "the speeds not by the mean"
    )
    mean = {
        "asset_estimate_mean_steps": 300,
        "asset_estimate_mean_learn_delay_steps": 900,
        "asset_estimate_mean_min_learned_steps": 300,
        "asset_estimate_mean_groups": False,
    }
    return [dataclasses.replace(s5, label=label, detect={**s5.detect, **mean})]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=Path("daemon/sentinelle/forecast/checkpoints/asset_blind"))
    ap.add_argument("--roots", type=Path, nargs=5, metavar=("FAULTS", "NEW", "FREE", "R3400", "R3500"))
    ap.add_argument("--partial", type=Path, default=Path("/tmp/averaged_residual_partial.json"))
    ap.add_argument("--from-partial", action="store_true", help="only tabulate a finished --partial")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--round", type=int, choices=(1, 2), default=1, help="2: B1 alone, beside round 1's rows")
    args = ap.parse_args()
    started = time.perf_counter()
    if args.from_partial:
        per: dict[str, list[dict[str, Any]]] = json.loads(args.partial.read_text())
    else:
        names = ("faults", "new", "free", "r3400", "r3500")
        rows = configs() if args.round == 1 else configs_round2()
        per = run_rows(dict(zip(names, args.roots, strict=True)), args.checkpoint, args.partial, rows)
    if args.round == 2:  # round 1's rows first (the same code, caches and runs), then B1
        first = json.loads(OUT.read_text())
        per = {**{r["candidate"]: r["runs"] for r in first["rows"]}, **per}
        args.out = OUT.with_name("averaged_residual_dev_round2.json")
    table = [table_row(label, runs) for label, runs in per.items()]
    assert table[0]["candidate"].startswith("S5"), "S5 first: the rule's baseline"
    assert not any(REPORT_SEED <= r["seed"] < REPORT_SEED + 200 for r in table[0]["runs"]), "3800.. are the report's"
    before = json.loads((RESULTS / "flag-side" / "flag_side_dev_round2.json").read_text())
    (s5_before,) = [r for r in before["rows"] if r["candidate"].startswith("S5")]
    reproduced = _same(table[0]["runs"], s5_before["runs"])
    print("S5 reproduces flag_side_dev_round2's on the 108 runs:", reproduced)
    chosen = choose(table, rank)
    seeds = sorted({r["seed"] for runs in per.values() for r in runs})
    timing = {"seconds": round(time.perf_counter() - started, 1), "s5_reproduces_flag_side": reproduced}
    write_dev(args.out, "averaged_residual_dev", seeds, str(args.checkpoint), RULE, table, chosen, timing)


if __name__ == "__main__":
    main()
