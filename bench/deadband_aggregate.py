"""Issue 17's must-show over many seeds: the pre-registered criterion of ``docs/results/deadband/aggregate/RULE.md``.

Why a script: the rule's per-seed and pooled verdicts (false alerts per fault-free day of "on" ≤ "off", no
fault found later, a fault not found counting as found infinitely late) are computed the same way for every
seed and forecaster, from the experiment's own JSONs, not by hand.  "off" is configuration a (no backfill,
no adapter); "on" is d for the model (backfill + the gated adapter) and c for Holt (backfill; Holt takes no
adapter).  Prints markdown rows and writes the verdicts to ``--out``.

    .venv/bin/python bench/deadband_aggregate.py docs/results/deadband/aggregate --seeds 1580-1587 \
        --out docs/results/deadband/aggregate/aggregate.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

ON = {"model": "d:", "holt": "c:"}


def delays(r: dict[str, Any]) -> list[float]:
    """Per fault, the first alert's delay (s); +inf where none was found."""
    return [math.inf if f["delay_s"] is None else float(f["delay_s"]) for f in r["faults"]]


def compare(off: dict[str, Any], on: dict[str, Any]) -> dict[str, Any]:
    d_off, d_on = delays(off), delays(on)
    later = [i for i, (a, b) in enumerate(zip(d_off, d_on, strict=True)) if b > a]
    earlier = [i for i, (a, b) in enumerate(zip(d_off, d_on, strict=True)) if b < a]
    fa_off, fa_on = off["false_alerts_fault_free_days"], on["false_alerts_fault_free_days"]
    return {
        "fa_fault_free_off": fa_off,
        "fa_fault_free_on": fa_on,
        "fa_days_8_11_off": off["false_alerts_days_8_11"],
        "fa_days_8_11_on": on["false_alerts_days_8_11"],
        "fa_hours_on": on["false_alerts_hours_after_live_start"],
        "fa_hours_off": off["false_alerts_hours_after_live_start"],
        "delays_off": [None if math.isinf(x) else int(x) for x in d_off],
        "delays_on": [None if math.isinf(x) else int(x) for x in d_on],
        "faults_later": [on["faults"][i]["kind"] for i in later],
        "faults_earlier": [on["faults"][i]["kind"] for i in earlier],
        "met": fa_on <= fa_off and not later,
    }


def pick(results: list[dict[str, Any]], prefix: str, variant: str | None = None) -> dict[str, Any]:
    """The first result of the configuration ``prefix``; with ``variant``, the one of that hand-over (its label,
    ``bench/deadband_experiment.py --hand-over``), so several hand-overs run on one forecast pass compare."""
    return next(
        r
        for r in results
        if r["config"]["label"].startswith(prefix)
        and (variant is None or r.get("hand_over", {}).get("label") == variant)
    )


def seeds_of(text: str) -> list[int]:
    """Seeds from ranges and single seeds, comma-separated (two lanes of seeds finish out of order).

    >>> seeds_of("1580-1582"), seeds_of("1720-1723,1725")
    ([1580, 1581, 1582], [1720, 1721, 1722, 1723, 1725])
    """
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += range(int(a), int(b or a) + 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--seeds", default="1580-1587")
    ap.add_argument("--prefix", default="report", help="file prefix: report (fresh), seen or dev")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--variant", default=None, help="the 'on' result of this hand-over label (default: the first)")
    ap.add_argument("--model-on", default=ON["model"], help="the model's 'on' configuration (dev seeds: c:)")
    ap.add_argument("--off", default="a:", help="the 'off' configuration (default a:)")
    ap.add_argument("--off-variant", default=None, help="the 'off' result of this hand-over label")
    args = ap.parse_args()
    out: dict[str, Any] = {
        "rule": "docs/results/deadband/aggregate/RULE.md",
        "prefix": args.prefix,
        "off": [args.off, args.off_variant],
        "on_variant": args.variant,
    }
    on_of = ON | {"model": args.model_on}
    for fc in ("model", "holt"):
        rows: dict[str, Any] = {}
        for s in seeds_of(args.seeds):
            path = args.folder / f"{args.prefix}_{s}_{fc}.json"
            if not path.exists():
                continue
            data = json.loads(path.read_text(encoding="utf-8"))
            labels = [r["config"]["label"] for r in data["results"]]
            if not any(x.startswith(args.off) for x in labels) or not any(x.startswith(on_of[fc]) for x in labels):
                continue
            off = pick(data["results"], args.off, args.off_variant)
            row = compare(off, pick(data["results"], on_of[fc], args.variant))
            manifest = data.get("adapter_manifest")
            if fc == "model" and manifest is not None:
                v = manifest["validation"]
                row["gate"] = v.get("acceptance")
                row["base_mase"], row["base_coverage80"] = v["before"]["mase"], v["before"]["coverage_80"]
                row["finetune_steps"] = manifest["training"].get("steps")
                row["finetune_stop"] = manifest["training"].get("stopped_by")
            rows[str(s)] = row
            print(f"{fc} {s}: FA fault-free {row['fa_fault_free_off']} -> {row['fa_fault_free_on']} "
                  f"(days 8-11 {row['fa_days_8_11_off']} -> {row['fa_days_8_11_on']}, on at {row['fa_hours_on']} h); "
                  f"delays {row['delays_off']} -> {row['delays_on']}; later {row['faults_later']} "
                  f"earlier {row['faults_earlier']}; met {row['met']}")  # fmt: skip
        n = len(rows)
        if not n:
            continue
        fa_off = sum(r["fa_fault_free_off"] for r in rows.values())
        fa_on = sum(r["fa_fault_free_on"] for r in rows.values())
        later = sum(len(r["faults_later"]) for r in rows.values())
        earlier = sum(len(r["faults_earlier"]) for r in rows.values())
        agg = {
            "seeds": n,
            "fa_per_fault_free_day_off": round(fa_off / (2 * n), 4),
            "fa_per_fault_free_day_on": round(fa_on / (2 * n), 4),
            "fa_days_8_11_off": sum(r["fa_days_8_11_off"] for r in rows.values()),
            "fa_days_8_11_on": sum(r["fa_days_8_11_on"] for r in rows.values()),
            "faults_later": later,
            "faults_earlier": earlier,
            "faults_same": 7 * n - later - earlier,
            "seeds_met": sum(r["met"] for r in rows.values()),
            "met": fa_on <= fa_off and later == 0,
        }
        print(f"{fc} aggregate: {agg}")
        out[fc] = {"per_seed": rows, "aggregate": agg}
    if args.out is not None:
        args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
