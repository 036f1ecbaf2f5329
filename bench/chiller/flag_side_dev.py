"""Issue 14 on DEVELOPMENT runs: the pump speeds flag only above their estimate (``asset_estimate_group_flag_side``).

Diagnosis (docs/results/chiller-detection/flag-side/report.md): K1 (group-learn study) traced tick by tick on the 108
development runs.  The speeds' healthy-wander events that met the opening (fresh-3500's fault-free-0, dev fault-free
2321) were the speeds *below* their estimate; every pump degradation put them *above* it (a weakening pump: the
controller raises every speed to hold the flow).  K1's two fresh pump misses (3407, 3414) had the speeds 5..7 scale
units above the estimate while the fault was young, but before the speeds' 600-learned minimum let them flag.  So:
flag the group only above, and the later schedule that was there against the healthy wander may go.

The plan, candidates and rule were committed before any candidate was scored, in
docs/results/chiller-detection/flag-side/RULE.md; repeated here.  Runs (108): seeds 2180..2203, 3200..3223,
fault-free 2310..2321 and the spent report sets 3400..3423, 3500..3523, the grouped estimates read from their caches
(never written).  Rows, in this order: K1 (the baseline; its 60 old development runs must reproduce
group_learn_dev.json's K1 run by run), S1 K1 + speeds flag only above; S2 S1 with the speeds at the other tags'
300 / 300; S3 S2 with every tag flagging after 600 learned (the scale still 300 late); S4 S3 opening on 16 of 24.

    python bench/chiller/flag_side_dev.py --roots DEV DEV3200 FREE R3400 R3500 [--out JSON]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from asset_blind_dev import EVERY, RESULTS, run_record, table_row
from asset_stride_delay_dev import MASK, STRIDE
from group_learn_dev import _same
from group_learn_dev import configs as group_configs
from held_spread_dev import choose, write_dev
from pump_group_dev import SPEEDS

from sentinelle.evaluation.chiller_eval import ChillerRun, Config, chiller_plan, evaluate_run, simulate
from sentinelle.evaluation.replay import SharedForecasters, replay_settings

REPORT_SEED = 3600
"""The report's fresh seeds (3600..3623; a second set 3700..3723): never a development run."""
OUT = RESULTS / "flag-side" / "flag_side_dev.json"
RULE = (
    "eligible: no false alarm on the 108 development runs and at least K1's faults detected there (K1 first); "
    "among them the most sensor drifts + foulings detected, then the most faults, then the most pump "
    "degradations, then the smallest median slow-fault delay; ties to the earlier row (K1 first: if K1 wins or "
    "none is eligible, nothing is chosen and seeds 3600..3623 stay unscored)"
)


def configs() -> list[Config]:
    """K1 (group_learn_dev's, unchanged), then S1..S4 (RULE.md)."""
    k1 = group_configs()[1]
    assert k1.label.startswith("K1") and k1.asset_mask_groups == SPEEDS
    base = k1.label.removeprefix("K1: ")

    def row(name: str, label: str, **detect: Any) -> Config:
        return dataclasses.replace(k1, label=f"{name}: {label}", detect={**k1.detect, **detect})

    side = {"asset_estimate_group_flag_side": 1}
    plain = {"asset_estimate_group_learn_delay_steps": None, "asset_estimate_group_min_learned_steps": None}
    s2 = base.split(" (their scale")[0] + ", their flags only above the estimate"
    s3 = s2.replace("flags after 300 learned", "flags after 600 learned")
    return [
        k1,
        row("S1", base + ", their flags only above the estimate", **side),
        row("S2", s2, **side, **plain),
        row("S3", s3, **side, **plain, asset_estimate_min_learned_steps=600),
        row(
            "S4",
            s3.replace("opens on 20 of 24", "opens on 16 of 24"),
            **side,
            **plain,
            asset_estimate_min_learned_steps=600,
            asset_estimate_open_k=16,
        ),
    ]


def configs_round2() -> list[Config]:
    """Round 2 (RULE.md's amendment, after round 1 chose none): S5 = S1 with every tag flagging only after 600
    learned (the speeds keep K1's 600 / 600, the others' scale 300 late)."""
    s1 = configs()[1]
    assert s1.label.startswith("S1")
    label = s1.label.replace("S1: ", "S5: ").replace("flags after 300 learned", "flags after 600 learned")
    return [dataclasses.replace(s1, label=label, detect={**s1.detect, "asset_estimate_min_learned_steps": 600})]


def plans() -> list[tuple[str, list[ChillerRun]]]:
    return [
        ("faults", chiller_plan(3, 3, 3600.0, first_seed=2180)),
        ("new", chiller_plan(3, 3, 3600.0, first_seed=3200)),
        ("free", chiller_plan(0, 12, 3600.0, first_seed=2310)),
        ("r3400", chiller_plan(3, 3, 3600.0, first_seed=3400)),
        ("r3500", chiller_plan(3, 3, 3600.0, first_seed=3500)),
    ]


def rank(row: dict[str, Any]) -> tuple[float, ...]:
    def found(*kinds: str) -> int:
        return sum(bool(r["detected"]) for r in row["runs"] if r["kind"] in kinds)

    delay = row["slow_delay_s_median"]
    return (found("sensor_drift", "fouling"), row["faults_detected"], found("pump_degradation"), -(delay or 1e9))


def run(roots: dict[str, Path], checkpoint: Path, partial: Path, rows: list[Config]) -> dict[str, list[dict[str, Any]]]:
    """Every row on every run (grouped estimates and Holt's forecasts from the caches, never written)."""
    started = time.perf_counter()
    per: dict[str, list[dict[str, Any]]] = {}
    for cache, plan in plans():
        assert not any(REPORT_SEED <= r.seed < REPORT_SEED + 200 for r in plan), "3600.. are the report's"
        sf = SharedForecasters(roots[cache], model_threads=1)
        for r_ in plan:
            rec, truth = simulate(r_)
            sf.begin(r_.name)
            est = sf.estimator(
                checkpoint, mask_recent_steps=MASK, every_steps=EVERY, context_stride_steps=STRIDE, mask_groups=SPEEDS
            )
            for c in rows:
                o = evaluate_run(rec, truth, replay_settings("holt", c.detect_settings()), c, sf["holt"], est)
                rr = run_record(r_, o)
                per.setdefault(c.label, []).append({"run": r_.name, "seed": r_.seed, **rr})
                print(
                    r_.name,
                    r_.seed,
                    c.label[:2],
                    rr["detected"],
                    rr["delay_s"],
                    rr["first_alert"],
                    rr["false_alarm_alerts"],
                    round(time.perf_counter() - started),
                    flush=True,
                )
            partial.write_text(json.dumps(per, default=str))
    return per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=Path("daemon/sentinelle/forecast/checkpoints/asset_blind"))
    ap.add_argument("--roots", type=Path, nargs=5, metavar=("FAULTS", "NEW", "FREE", "R3400", "R3500"))
    ap.add_argument("--partial", type=Path, default=Path("/tmp/flag_side_partial.json"))
    ap.add_argument("--from-partial", action="store_true", help="only tabulate a finished --partial")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--round", type=int, choices=(1, 2), default=1, help="2: S5 alone, beside round 1's rows")
    args = ap.parse_args()
    started = time.perf_counter()
    if args.from_partial:
        per = json.loads(args.partial.read_text())
    else:
        names = ("faults", "new", "free", "r3400", "r3500")
        rows = configs() if args.round == 1 else configs_round2()
        per = run(dict(zip(names, args.roots, strict=True)), args.checkpoint, args.partial, rows)
    if args.round == 2:  # round 1's rows first (the same code, caches and runs), then S5
        first = json.loads(OUT.read_text())
        per = {**{r["candidate"]: r["runs"] for r in first["rows"]}, **per}
        args.out = OUT.with_name("flag_side_dev_round2.json")
    table = [table_row(label, runs) for label, runs in per.items()]
    assert table[0]["candidate"].startswith("K1"), "K1 first: the rule's baseline"
    before = json.loads((RESULTS / "group-learn" / "group_learn_dev.json").read_text())
    (k1_before,) = [r for r in before["rows"] if r["candidate"].startswith("K1")]
    old = {r["seed"] for r in k1_before["runs"]}
    reproduced = _same([r for r in table[0]["runs"] if r["seed"] in old], k1_before["runs"])
    print("K1 reproduces group_learn_dev's on its 60 runs:", reproduced)
    chosen = choose(table, rank)
    seeds = sorted({r["seed"] for runs in per.values() for r in runs})
    timing = {"seconds": round(time.perf_counter() - started, 1), "k1_reproduces_group_learn": reproduced}
    shown = ("fouling", "fouling")
    write_dev(args.out, "flag_side_dev", seeds, str(args.checkpoint), RULE, table, chosen, timing, shown)


if __name__ == "__main__":
    main()
