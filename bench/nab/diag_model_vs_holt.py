"""Issue 13 diagnosis (tuning split only): per-row scores of Holt and the model, at forecast cadence 1 and 16.

Writes one npz per (forecaster, refresh) under the folder given: every file's score and parts, for the
tuning split (default) or, with ``--split held_out``, the held-out one (then diag_analyse.py prints corpus
scores only: no per-file look at held-out files).
Run: PYTHONPATH=daemon python bench/nab/diag_model_vs_holt.py OUT_DIR [--split held_out] holt:1 holt:16 model:16
The forecasts are cached under OUT_DIR/cache (a re-run with other detection settings reuses them).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sentinelle.evaluation.nab_corpus import HELD_OUT, TUNING, load_corpus, split_of
from sentinelle.evaluation.nab_stream import replay_corpus
from sentinelle.settings import DetectSettings


def main() -> None:
    args = sys.argv[1:]
    out = Path(args.pop(0))
    which = TUNING
    if args and args[0] == "--split":
        which = {"tuning": TUNING, "held_out": HELD_OUT}[args[1]]
        args = args[2:]
    out.mkdir(parents=True, exist_ok=True)
    files = load_corpus(Path("/work/shared/data/nab/data"))
    split = split_of(f.name for f in files)
    tuning = [f for f in files if split[f.name] == which]
    for spec in args:
        name, every, *extra = spec.split(":")  # holt:1:tail = with detect.score_tail_calibration on
        detect = DetectSettings(score_tail_calibration=True) if extra == ["tail"] else None
        run = replay_corpus(tuning, name, detect, print, out / "cache", int(every))
        arrays: dict[str, np.ndarray] = {}
        for f in tuning:
            r = run.results[f.name]
            arrays[f.name + "|score"] = r.score
            for part, s in r.parts.items():
                arrays[f.name + "|" + part] = s
        suffix = ("_tail" if detect else "") + ("" if which == TUNING else "_held_out")
        np.savez(out / f"{name}_{every}{suffix}.npz", **arrays)  # type: ignore[arg-type]
        print(f"done {spec} in {run.seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
