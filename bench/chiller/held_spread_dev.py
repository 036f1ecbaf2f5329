"""Issue 14 on DEVELOPMENT seeds: the estimate residual read in the band's usual width (a slow fault widens it).

The best row so far (residuals-alone-history.md row 8, not shipped): Holt's residuals + the blind estimate
(``asset_blind``, means of 4 slots, the newest 128 masked, made every 8, opening on 16 of 24, its scale learning
300 ticks late, flagging after 300 learned, held off 900 ticks after an alert) + the residual energy over 120 ticks
below 4 q²/12.  Unseen it missed the supply temperature's sensor drift.  Diagnosis on development seed 2188
(docs/results/chiller-detection/held-spread/report.md): the estimate residual grows from ~0.1 to ~0.6 °C, but the
estimate's own 10-90 % band grows with it (0.27 → 0.65 °C), so the residual read in the tick's band stays healthy.
The mechanism (off by default): ``detect.asset_estimate_held_spread`` (detect/held_spread.py) reads it in the
band's usual width, learned as late as the scale.

The plan, the candidates and the rule were committed before any candidate was scored, in
docs/results/chiller-detection/held-spread/RULE.md; repeated here.  Runs: seeds 2180..2203 (``chiller_plan(3, 3,
3600, first_seed=2180)``), 3200..3223 (the same shape, new) and 12 fault-free hours, seeds 2310..2321.
Candidates, in this order: C0 row 8; C1 row 8 + held spread; C2 C1 with the scale and the usual width learning
600 ticks late; C3 C1 with the estimate opening on 20 of 24 ticks (not 16).  Rule: eligible are the candidates
with no false alarm on all these runs and at least C0's faults detected; among them the most sensor drifts
detected, then the most slow faults, then the most faults, then the most kinds, then the smallest median
slow-fault delay; ties to the earlier candidate.

    python bench/chiller/held_spread_dev.py --checkpoint PATH --cache-root DIR --new-cache-root DIR \
        --free-cache-root DIR [--round 2]

Round 2 (RULE.md's amendment, committed after round 1's development results and before round 2's runs; no run of
the report's seeds in between): round 1 chose C0 (every held-spread candidate had false alarms, most of them soon
after the estimate could first flag, while the scale and the usual width were young).  Candidates R1..R3
(``CANDIDATES2``) add a larger minimum of learned ticks L; the same runs and rule, C0 from round 1.

Estimates missing from a cache are computed (the asset model, one thread) and saved.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asset_blind_dev import EVERY, RESULTS, run_record, table_row
from asset_stride_delay_dev import MASK, STRIDE
from residual_energy_dev import energy_row

from sentinelle.evaluation.chiller_eval import ChillerRun, Config, chiller_plan, evaluate_run, simulate
from sentinelle.evaluation.chiller_report import REPORT_FIRST_SEED
from sentinelle.evaluation.replay import SharedForecasters, replay_settings

UNSEEN_FIRST_SEED = 3100
"""The report's fresh seeds (3100..3123): never a development run."""
CANDIDATES: tuple[tuple[str, bool, int, int], ...] = (
    ("C0", False, 300, 16),
    ("C1", True, 300, 16),
    ("C2", True, 600, 16),
    ("C3", True, 300, 20),
)
"""(name, held spread, learn delay D, the estimate's open k of 24), in the rule's order."""
CANDIDATES2: tuple[tuple[str, bool, int, int, int], ...] = (
    ("R1", True, 600, 16, 600),
    ("R2", True, 600, 16, 900),
    ("R3", True, 300, 16, 900),
)
"""Round 2 (RULE.md's amendment): (name, held spread, D, open k, min learned L), in the rule's order; C0 is round 1's
row (the same code, caches and runs: not re-run)."""
RULE = (
    "eligible: no false alarm on all development runs and at least C0's faults detected; among them the most "
    "sensor drifts detected, then the most slow faults, then the most faults, then the most kinds, then the "
    "smallest median slow-fault delay; ties to the earlier candidate"
)


def held_row(name: str, held: bool, delay: int, open_k: int = 16, min_learned: int = 300) -> Config:
    """Row 8 (energy_row(120, 900, 4)) with the held spread on or off, the learn delay D, the estimate's
    opening k of 24 and the minimum learned ticks L."""
    c = energy_row(120, 900, 4.0)
    detect = {
        **c.detect,
        "asset_estimate_learn_delay_steps": delay,
        "asset_estimate_open_k": open_k,
        "asset_estimate_min_learned_steps": min_learned,
    }
    label = c.label.replace("learns 300 ticks", f"learns {delay} ticks").replace("16 of 24", f"{open_k} of 24")
    label = label.replace("after 300 learned", f"after {min_learned} learned")
    if held:
        detect["asset_estimate_held_spread"] = True
        label += ", residual read in the band's usual width"
    return dataclasses.replace(c, label=f"{name}: {label}", detect=detect)


def plans() -> list[tuple[str, list[ChillerRun]]]:
    return [
        ("faults", chiller_plan(3, 3, 3600.0, first_seed=2180)),
        ("new", chiller_plan(3, 3, 3600.0, first_seed=3200)),
        ("free", chiller_plan(0, 12, 3600.0, first_seed=2310)),
    ]


def rank(row: dict[str, Any]) -> tuple[float, ...]:
    delay = row["slow_delay_s_median"]
    drifts = sum(bool(r["detected"]) for r in row["runs"] if r["kind"] == "sensor_drift")
    return (drifts, row["slow_detected"], row["faults_detected"], row["kinds_detected"], -(delay or 1e9))


def choose(table: list[dict[str, Any]], by: Callable[[dict[str, Any]], tuple[float, ...]] = rank) -> str:
    """The rule: eligible (no false alarm, at least C0's faults), then the study's ranking ``by`` (this study's
    :func:`rank`); ties to the earlier."""
    base = table[0]["faults_detected"]
    eligible = [r for r in table if r["false_alarms"] == 0 and r["faults_detected"] >= base]
    if not eligible:
        return "none"
    best = max(by(r) for r in eligible)
    return str(next(r for r in eligible if by(r) == best)["candidate"])


def run_dev(
    configs: list[Config], roots: dict[str, Path], checkpoint: Path, started: float, reserved: tuple[int, ...] = ()
) -> tuple[dict[str, list[dict[str, Any]]], list[int]]:
    """Every configuration on every development run of :func:`plans` (estimates from the caches ``roots``, by
    plan name): each configuration's run records, by label, and the seeds.  ``reserved``: first seeds of 24
    report seeds that no development run may be (beside the old report's and 3100's)."""
    per: dict[str, list[dict[str, Any]]] = {}
    seeds = []
    for cache, plan in plans():
        for first in (REPORT_FIRST_SEED, UNSEEN_FIRST_SEED, *reserved):
            assert not any(first <= r.seed < first + 24 for r in plan), f"seeds {first}.. are a report's"
        sf = SharedForecasters(roots[cache], model_threads=1)
        for run in plan:
            seeds.append(run.seed)
            rec, truth = simulate(run)
            sf.begin(run.name)
            est = sf.estimator(checkpoint, mask_recent_steps=MASK, every_steps=EVERY, context_stride_steps=STRIDE)
            for c in configs:
                o = evaluate_run(rec, truth, replay_settings("holt", c.detect_settings()), c, sf["holt"], est)
                r = run_record(run, o)
                per.setdefault(c.label, []).append({"run": run.name, "seed": run.seed, **r})
                print(run.name, run.seed, c.label[:2], r, round(time.perf_counter() - started), flush=True)
            sf.save()
    return per, seeds


def write_dev(
    out: Path,
    benchmark: str,
    seeds: list[int],
    checkpoint: str,
    rule: str,
    table: list[dict[str, Any]],
    chosen: str,
    timing: dict[str, Any],
    shown: tuple[str, str] = ("sensor_drift", "drifts"),
) -> None:
    """A development grid's JSON (the rule, every row, the choice) and its one-line-per-candidate summary, whose
    delays are those of the study's fault kind ``shown`` (the kind and its label)."""
    doc = {
        "benchmark": benchmark,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seeds": seeds,
        "checkpoint": checkpoint,
        "rule": rule,
        "rows": table,
        "chosen": chosen,
        **timing,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    kind, label = shown
    for r in table:
        delays = [x["delay_s"] for x in r["runs"] if x["kind"] == kind]
        print(
            r["candidate"][:2],
            f"{r['faults_detected']}/{r['faults']} faults, {r['kinds_detected']} kinds, slow {r['slow_detected']}, "
            f"median {r['slow_delay_s_median']}, {label} {delays}, FA {r['false_alarms']}",
        )
    print("chosen:", chosen, "->", out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--cache-root", type=Path, required=True, help="estimates of seeds 2180..2203")
    ap.add_argument("--new-cache-root", type=Path, required=True, help="estimates of seeds 3200..3223")
    ap.add_argument("--free-cache-root", type=Path, required=True, help="estimates of seeds 2310..2321")
    ap.add_argument("--round", type=int, choices=(1, 2), default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    first = RESULTS / "held-spread" / "held_spread_dev.json"
    out: Path = args.out or (first if args.round == 1 else RESULTS / "held-spread" / "held_spread_dev_round2.json")
    roots = {"faults": args.cache_root, "new": args.new_cache_root, "free": args.free_cache_root}
    started = time.perf_counter()
    configs = [held_row(*c) for c in CANDIDATES] if args.round == 1 else [held_row(*c) for c in CANDIDATES2]
    per, seeds = run_dev(configs, roots, args.checkpoint, started)
    table = [table_row(name, runs) for name, runs in per.items()]
    if args.round == 2:
        table.insert(0, json.loads(first.read_text())["rows"][0])  # C0, round 1's
    chosen = choose(table)
    timing = {"seconds": round(time.perf_counter() - started, 1)}
    write_dev(out, "held_spread_dev", seeds, str(args.checkpoint), RULE, table, chosen, timing)


if __name__ == "__main__":
    main()
