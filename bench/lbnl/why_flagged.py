"""Why fault-free LBNL days are flagged: every alert opened on the tuning half's days, with its tag's values,
forecasts and z around the opening (issue 13).  Tuning days only (evaluation/lbnl.py split_of).

    PYTHONPATH=daemon SENTINELLE_DATA_DIR=../shared/data python bench/lbnl/why_flagged.py [--faulted] [--asset]
"""

from __future__ import annotations

import argparse

import numpy as np

from sentinelle.evaluation.datasets import LBNL_FILES
from sentinelle.evaluation.lbnl import (
    asset_warmup,
    day_recording,
    lbnl_days,
    mode_rules,
    split_of,
    warm_up_day,
)
from sentinelle.evaluation.replay import SharedForecasters, replay, replay_settings
from sentinelle.settings import DetectSettings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faulted", action="store_true", help="faulted tuning days instead of fault-free ones")
    ap.add_argument("--split", default="tuning")
    ap.add_argument("--set", nargs="*", default=[], help="detect overrides k=v")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    over: dict[str, object] = {"asset_enabled": True, **asset_warmup()}
    for kv in args.set:
        k, v = kv.split("=")
        over[k] = type(DetectSettings.model_fields[k].default)(eval(v))
    detect = DetectSettings.model_validate({**over, "assets": tuple(mode_rules(f) for f in LBNL_FILES)})
    settings = replay_settings("holt", detect)
    days = lbnl_days(mode_tags=True)
    shared = SharedForecasters()
    flagged = n = 0
    for day in days:
        if day.faulted != args.faulted or split_of(day, days) != args.split:
            continue
        warm = warm_up_day(day, days)
        if warm is None:
            continue
        rec = day_recording(day, warm)
        tr = replay(rec, settings, shared["holt"])
        start = rec.timestamps[rec.test_start]
        opened = [e for e in tr.events if e.event == "opened" and e.event_ts >= start]
        n += 1
        flagged += bool(opened)
        print(f"== {day.file} {day.date} faulted={day.faulted}: {len(opened)} openings")
        if args.quiet:
            print(
                "   ",
                "; ".join(
                    f"{(e.event_ts - start) / 60 // 60:.0f}:{(e.event_ts - start) / 60 % 60:02.0f}+0:30 "
                    f"{e.kind[:5]} {e.tag.split('.', 1)[-1][:22]} {e.severity[:4]}"
                    for e in opened
                ),
            )
            continue
        for e in opened:
            i = round((e.event_ts - rec.timestamps[0]) / 60.0)
            j = rec.tags.index(e.tag) if e.tag in rec.tags else -1
            hm = f"{(i - 1440) // 60}:{(i - 1440) % 60:02d}"
            print(
                f"  {hm} {e.kind} {e.tag.split('.', 1)[-1]} sev={e.severity} "
                f"members={[m.split('.', 1)[-1] for m in e.members]}"
            )
            if j >= 0:
                sl = slice(i - 6, i + 2)
                print("    v ", np.round(rec.values[sl, j], 3).tolist())
                print("    f ", np.round(tr.forecast[sl, j], 3).tolist())
                print("    lo", np.round(tr.lower[sl, j], 3).tolist(), "hi", np.round(tr.upper[sl, j], 3).tolist())
                print("    z ", np.round(tr.z[sl, j], 1).tolist())
            modes = [k for k, t in enumerate(rec.tags) if "status" in t or "occupancy" in t]
            print(
                "    modes", {rec.tags[k].split(".", 1)[-1]: rec.values[i - 40 : i + 1 : 10, k].tolist() for k in modes}
            )
    print(f"flagged {flagged}/{n}")


if __name__ == "__main__":
    main()
