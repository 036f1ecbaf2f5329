"""Issue 14 on DEVELOPMENT seeds: the later scale learning on the pump speeds only (the tags of the mask group).

The pump-group study's H1 (docs/results/chiller-detection/pump-group/report.md: the three speeds hidden together,
``forecast.asset_mask_groups``; estimate opening on 20 of 24; scale learning 600 ticks late and flagging after 600
learned, on every tag) found every fresh pump degradation and drift but missed a fouling run that row 8 (300 / 300)
found through the flow estimate; on development runs its 600 delayed the fouling alerts by 270..480 s.  The 600 was
needed only against the grouped speed estimates' healthy wander.  ``detect.asset_estimate_group_learn_delay_steps``
/ ``_group_min_learned_steps`` (detectors/asset_estimate.py) give the group's rows their own schedule: here the
speeds at 600 (or 900), the other tags at row 8's 300.

The plan, candidates and rule were committed before any candidate was scored, in
docs/results/chiller-detection/group-learn/RULE.md; repeated here.  Runs: the pump-group study's 60 (seeds
2180..2203, 3200..3223, fault-free 2310..2321), row 8's estimates from the sign-held study's caches, the grouped
ones from the pump-group study's.  Rows, in this order: H1 re-run (the check: the same code must give round 2's
H1 run by run, and the rule's baseline), then the candidates K1 (H1's opening 20 of 24; speeds 600 / 600, the rest
300 / 300), K2 (G1's opening 16 of 24; the same), K3 (16 of 24; speeds 900 / 900, the rest 300 / 300).

    python bench/chiller/group_learn_dev.py --checkpoint PATH --part A|B --old-roots F N R --new-roots F N R \\
        --part-out PART.json
    python bench/chiller/group_learn_dev.py --merge PARTA.json PARTB.json
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from asset_blind_dev import RESULTS, table_row
from held_spread_dev import choose, held_row, write_dev
from pump_group_dev import SPEEDS, part_parser, run_part
from pump_group_dev import configs as pump_configs

from sentinelle.evaluation.chiller_eval import Config

REPORT_SEED = 3400
"""The report's fresh seeds (3400..3423): never a development run."""
CANDIDATES: tuple[tuple[str, int, int, int], ...] = (("K1", 20, 600, 600), ("K2", 16, 600, 600), ("K3", 16, 900, 900))
"""(name, the estimate's open k of 24, the speeds' learn delay, the speeds' min learned), in the rule's order; the
other tags at row 8's 300 / 300, the speeds masked together."""
RULE = (
    "eligible: no false alarm on all 60 development runs and at least H1's faults detected (H1 re-run, first row); "
    "among them the most sensor drifts + foulings detected, then the most faults, then the smallest median "
    "slow-fault delay; ties to the earlier row (H1 first: if H1 wins, nothing new is chosen)"
)
OUT = RESULTS / "group-learn" / "group_learn_dev.json"


def configs() -> list[Config]:
    """H1 (pump_group_dev's round 2, unchanged), then each candidate: row 8 with its open k, the speeds masked
    together, their scale learning D ticks late and flagging after L learned."""
    h1 = pump_configs(2)[0]
    assert h1.label.startswith("H1")
    out = [h1]
    for name, open_k, delay, min_learned in CANDIDATES:
        c = held_row(name, False, 300, open_k, 300)
        detect = {
            **c.detect,
            "asset_estimate_group_learn_delay_steps": delay,
            "asset_estimate_group_min_learned_steps": min_learned,
        }
        label = c.label + f", pump speeds masked together (their scale {delay} late, flagging after {min_learned})"
        out.append(dataclasses.replace(c, label=label, detect=detect, asset_mask_groups=SPEEDS))
    return out


def rank(row: dict[str, Any]) -> tuple[float, ...]:
    slow = sum(bool(r["detected"]) for r in row["runs"] if r["kind"] in ("sensor_drift", "fouling"))
    delay = row["slow_delay_s_median"]
    return (slow, row["faults_detected"], -(delay or 1e9))


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    """Two candidates' run records agree run by run (detection, delay, first alert, false alarms)."""
    keys = ("run", "seed", "detected", "delay_s", "first_alert", "false_alarms", "false_alarm_alerts")
    order = sorted((r["seed"], r["run"]) for r in a) == sorted((r["seed"], r["run"]) for r in b)
    by = {(r["seed"], r["run"]): r for r in b}
    return order and all(all(r[k] == by[(r["seed"], r["run"])][k] for k in keys) for r in a)


def merge(parts: list[Path], out: Path, checkpoint: str) -> None:
    """The parts' table, the check that H1 reproduces round 2's, and the rule's choice."""
    docs = [json.loads(p.read_text()) for p in parts]
    per: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        for label, runs in d["per"].items():
            per.setdefault(label, []).extend(runs)
    table = [table_row(label, runs) for label, runs in per.items()]
    assert table[0]["candidate"].startswith("H1"), "H1 first: the rule's baseline"
    round2 = json.loads((RESULTS / "pump-group" / "pump_group_dev_round2.json").read_text())
    (h1_before,) = [r for r in round2["rows"] if r["candidate"].startswith("H1")]
    reproduced = _same(table[0]["runs"], h1_before["runs"])
    print("H1 reproduces round 2's run by run:", reproduced)
    chosen = choose(table, rank)
    seeds = sorted({r["seed"] for runs in per.values() for r in runs})
    timing = {"seconds_per_part": [d["seconds"] for d in docs], "h1_reproduces_round2": reproduced}
    write_dev(out, "group_learn_dev", seeds, checkpoint, RULE, table, chosen, timing, ("fouling", "fouling"))


def main() -> None:
    ap = part_parser(__doc__)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.merge:
        merge(args.merge, args.out, str(args.checkpoint))
        return
    names = ("faults", "new", "free")
    old = dict(zip(names, args.old_roots, strict=True))
    new = dict(zip(names, args.new_roots, strict=True))
    doc = run_part(args.part, old, new, args.checkpoint, cands=configs(), reserved=(REPORT_SEED,))
    args.part_out.parent.mkdir(parents=True, exist_ok=True)
    args.part_out.write_text(json.dumps(doc, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
