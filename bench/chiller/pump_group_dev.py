"""Issue 14 on DEVELOPMENT seeds: the pump speeds estimated from the plant's state alone (masked together).

Diagnosis (docs/results/chiller-detection/sign-held/report.md, "Pumps"): when a pump weakens the controller
raises one demand and all three speed commands rise together through fixed maps; flow, supply, chilled water
and power stay.  Each speed is implied by the other two, so row 8's blind estimate (which reads the others'
current values) follows the fault.  ``forecast.asset_mask_groups`` (forecast/asset_engine.py) hides the three
speeds' current values together when any of them is estimated: the speeds are then estimated from flow,
supply, chilled water and power alone, and a weakening pump shows as speeds higher than the state implies.

The plan, candidates and rule were committed before any candidate was scored, in
docs/results/chiller-detection/pump-group/RULE.md; repeated here.  Runs: the sign-held study's 60 (seeds
2180..2203, 3200..3223, fault-free 2310..2321).  Candidates, in this order: C0 row 8 (estimates from the sign-held
study's caches); G1 row 8 with the speeds masked together; G2 G1 with the estimate opening on 20 of 24 ticks.
Rule: eligible are those with no false alarm on these runs and at least C0's faults detected; among them the most
pump degradations detected, then the most faults, then the most kinds, then the smallest median slow-fault delay;
ties to the earlier.

    python bench/chiller/pump_group_dev.py --checkpoint PATH --part A|B --old-roots F N R --new-roots F N R
    python bench/chiller/pump_group_dev.py --merge PART_JSON...

Part A: seeds 2180..2203 and the first 6 fault-free hours; part B: 3200..3223 and the last 6 (one core each).

Round 2 (``--round 2``; RULE.md's amendment, committed after round 1's results and before round 2's runs): round 1
chose C0 (G1 12 and G2 6 false alarms, all three speeds at once on healthy hours, 419..1563 s into scored time).
H1 = G2 and H2 = G1, each with the scale learning 600 ticks late and flagging after 600 learned (the held-spread
study's round-2 remedy for early false alarms); the same runs and rule, C0 from round 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asset_blind_dev import EVERY, RESULTS, run_record, table_row
from asset_stride_delay_dev import MASK, STRIDE
from held_spread_dev import UNSEEN_FIRST_SEED, choose, held_row, write_dev

from sentinelle.evaluation.chiller_eval import ChillerRun, Config, chiller_plan, evaluate_run, simulate
from sentinelle.evaluation.chiller_report import REPORT_FIRST_SEED
from sentinelle.evaluation.replay import SharedForecasters, replay_settings
from sentinelle.sim.tags import PUMP_TAGS

ASSET = "chiller1"
SPEEDS: tuple[tuple[str, ...], ...] = (tuple(f"{ASSET}.{t}" for t in PUMP_TAGS),)
"""The one group: the three pump speed commands, hidden together."""
REPORT_SEED = 3300
"""The report's fresh seeds (3300..3323): never a development run."""
CANDIDATES: tuple[tuple[str, bool, int], ...] = (("C0", False, 16), ("G1", True, 16), ("G2", True, 20))
"""(name, speeds masked together, the estimate's open k of 24), in the rule's order."""
CANDIDATES2: tuple[tuple[str, bool, int, int, int], ...] = (("H1", True, 20, 600, 600), ("H2", True, 16, 600, 600))
"""Round 2 (RULE.md's amendment, after round 1 chose C0: every grouped candidate had false alarms on healthy hours):
(name, speeds masked together, open k, learn delay D, min learned L), in the rule's order."""
RULE = (
    "eligible: no false alarm on all development runs and at least C0's faults detected; among them the most "
    "pump degradations detected, then the most faults, then the most kinds, then the smallest median slow-fault "
    "delay; ties to the earlier candidate"
)


def configs(round_: int = 1) -> list[Config]:
    """Each candidate's configuration: row 8 with its open k (round 2: learn delay D, min learned L), the speeds
    masked together or not."""
    spec = [(*c, 300, 300) for c in CANDIDATES] if round_ == 1 else list(CANDIDATES2)
    out = []
    for name, grouped, open_k, delay, min_learned in spec:
        c = held_row(name, False, delay, open_k, min_learned)
        if grouped:
            c = dataclasses.replace(c, label=c.label + ", pump speeds masked together", asset_mask_groups=SPEEDS)
        out.append(c)
    return out


def plans(part: str) -> list[tuple[str, list[ChillerRun]]]:
    free = chiller_plan(0, 12, 3600.0, first_seed=2310)
    if part == "A":
        return [("faults", chiller_plan(3, 3, 3600.0, first_seed=2180)), ("free", free[:6])]
    return [("new", chiller_plan(3, 3, 3600.0, first_seed=3200)), ("free", free[6:])]


def rank(row: dict[str, Any]) -> tuple[float, ...]:
    pumps = sum(bool(r["detected"]) for r in row["runs"] if r["kind"] == "pump_degradation")
    delay = row["slow_delay_s_median"]
    return (pumps, row["faults_detected"], row["kinds_detected"], -(delay or 1e9))


def run_part(
    part: str,
    old: dict[str, Path],
    new: dict[str, Path],
    checkpoint: Path,
    round_: int = 1,
    cands: Sequence[Config] | None = None,
    reserved: tuple[int, ...] = (),
) -> dict[str, Any]:
    """Every candidate (``cands``, else the round's) on the part's runs: row 8's estimates read from ``old`` (never
    written), the grouped ones from ``new`` (computed where missing, saved).  ``reserved``: first seeds of other
    reports' 24 seeds, never a development run."""
    started = time.perf_counter()
    per: dict[str, list[dict[str, Any]]] = {}
    rows = list(cands) if cands is not None else configs(round_)
    for cache, plan in plans(part):
        for first in (REPORT_FIRST_SEED, UNSEEN_FIRST_SEED, REPORT_SEED, *reserved):
            assert not any(first <= r.seed < first + 24 for r in plan), f"seeds {first}.. are a report's"
        sf_old = SharedForecasters(old[cache], model_threads=1)
        sf_new = SharedForecasters(new[cache], model_threads=1)
        for run in plan:
            rec, truth = simulate(run)
            assert set(SPEEDS[0]) <= {t.name for t in rec.tag_settings()}, "the speed tags are not the run's"
            sf_old.begin(run.name)
            sf_new.begin(run.name)
            plain = sf_old.estimator(checkpoint, mask_recent_steps=MASK, every_steps=EVERY, context_stride_steps=STRIDE)
            grouped = sf_new.estimator(
                checkpoint, mask_recent_steps=MASK, every_steps=EVERY, context_stride_steps=STRIDE, mask_groups=SPEEDS
            )
            for c in rows:
                est = grouped if c.asset_mask_groups else plain
                o = evaluate_run(rec, truth, replay_settings("holt", c.detect_settings()), c, sf_old["holt"], est)
                r = run_record(run, o)
                per.setdefault(c.label, []).append({"run": run.name, "seed": run.seed, **r})
                print(run.name, run.seed, c.label[:2], r, round(time.perf_counter() - started), flush=True)
            sf_new.save()
    return {"part": part, "per": per, "seconds": round(time.perf_counter() - started, 1)}


def merge(parts: list[Path], out: Path, checkpoint: str, first: Path | None = None) -> None:
    """The parts' table (with round 1's C0 first when ``first``, round 1's result, is given) and the rule's choice."""
    docs = [json.loads(p.read_text()) for p in parts]
    per: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        for label, runs in d["per"].items():
            per.setdefault(label, []).extend(runs)
    table = [table_row(label, runs) for label, runs in per.items()]
    if first is not None:
        table.insert(0, json.loads(first.read_text())["rows"][0])  # C0, round 1's (same code, caches, runs)
    chosen = choose(table, rank)
    seeds = sorted({r["seed"] for runs in per.values() for r in runs})
    timing = {"seconds_per_part": [d["seconds"] for d in docs]}
    write_dev(out, "pump_group_dev", seeds, checkpoint, RULE, table, chosen, timing, ("pump_degradation", "pumps"))


def part_parser(doc: str) -> argparse.ArgumentParser:
    """The command line of a study whose development runs go in two parts (two processes) and a merge."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=Path("daemon/sentinelle/forecast/checkpoints/asset_blind"))
    ap.add_argument("--part", choices=("A", "B"))
    ap.add_argument("--old-roots", type=Path, nargs=3, metavar=("FAULTS", "NEW", "FREE"))
    ap.add_argument("--new-roots", type=Path, nargs=3, metavar=("FAULTS", "NEW", "FREE"))
    ap.add_argument("--part-out", type=Path)
    ap.add_argument("--merge", type=Path, nargs="+")
    return ap


def main() -> None:
    ap = part_parser(__doc__)
    ap.add_argument("--round", type=int, choices=(1, 2), default=1)
    ap.add_argument("--out", type=Path, default=RESULTS / "pump-group" / "pump_group_dev.json")
    args = ap.parse_args()
    first = RESULTS / "pump-group" / "pump_group_dev.json"
    if args.merge:
        out = args.out if args.round == 1 else first.with_name("pump_group_dev_round2.json")
        merge(args.merge, out, str(args.checkpoint), first if args.round == 2 else None)
        return
    names = ("faults", "new", "free")
    old = dict(zip(names, args.old_roots, strict=True))
    doc = run_part(args.part, old, dict(zip(names, args.new_roots, strict=True)), args.checkpoint, args.round)
    args.part_out.parent.mkdir(parents=True, exist_ok=True)
    args.part_out.write_text(json.dumps(doc, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
