"""Issue 13: the rest period per term of the per-tag score (``detect.score_rest_scope``) on NAB — rule first.

Diagnosis (TUNING split only, every tick, the shipped defaults; ``diag_fp_rows.py``'s per-row npz):
the contextual novelty's score is 0 or 1, so every novelty row ties at 1.0 in the per-tag score, and the one
rest period of that score (``detect.score_rest_steps`` = 100 ticks from a score ≥ 0.4) starts on *any* term.
At the low-FP profile's threshold Holt misses 8 of 57 windows; three of them are rested away by an earlier
firing of another term: ``exchange-3`` (a novelty row in the probation, row 225, rests the window's
residual onset z = 10.7 at row 296), ``exchange-4`` (a novelty row 4 rows before the window) and
``rogue_agent_key_updown`` (a flat stretch's z ≈ 10⁹ 10 rows before the window).  Grading the novelty
instead (its tag's own novelty rate as a tail probability, alone, added to the residual's decades, or as a
tie-break) lowered both forecasters on every profile (e.g. Holt 61.73 / 43.38 / 69.81 with the rate alone):
the novelty's false rows and its detections have the same rates and the same residual surprise.

Candidate (forecaster-agnostic, every tag): ``detect.score_rest_scope = "term"`` — each term of the per-tag
score (the residual's onset score, each detector's ``tag_score``) rests on its own after it fires, and the
published score is the maximum of the rested terms.  One event of one kind is one detection, as today;
a different kind of evidence (a residual onset while the novelty rests) is a detection of its own — as an
operator's alarm re-arms per alarm, not per instrument.  The residual term keeps its refractory period.

**Decision rule (written and committed before the stage confirm and before any held-out score).**

1. *Screen* (this script, offline, tuning split): the terms recorded by the stage replay of the shipped
   defaults, rested per tick (gap slots count, as in the stage; the ``tag`` scope reproduces the stage's
   tuning rows exactly: Holt 70.71 / 61.04 / 75.80, model 68.87 / 59.05 / 74.57).  Already seen before this
   rule was written: ``term`` scope Holt 72.89 / 62.06 / 78.42, model 71.66 / 61.55 / 77.60.
2. *Confirm* (``diag_fp_rows.py --set score_rest_scope='"term"'``: the daemon's stage, tuning split, both
   forecasters): passes only if, against the shipped stage rows above, Holt's and the model's standard and
   low-FP scores both rise and none of the six numbers falls by more than 0.2.
3. *Held out*, scored once per forecaster after 2 passed (the model's only if its every-tick held-out
   forecast cache is complete; otherwise Holt alone decides, and the report says so).  It becomes the shipped
   default only if, against the shipped held-out rows (Holt 65.91 / 54.38 / 72.19, model 64.78 / 54.19 /
   71.43), neither forecaster's standard nor low-FP score falls, none of the six numbers falls by more than
   0.2, and the chiller development seeds (2140-2149, never the report's 2000-2023) show no more false
   alarms than the shipped default.  Otherwise it ships off (opt-in) and is reported as a candidate.

**Outcome (2026-12-07, after the rule above).**  Confirm (tuning, stage): Holt 72.89 / 62.06 / 78.42 (+2.18 /
+1.02 / +2.62), model 71.66 / 61.55 / 77.60 (+2.79 / +2.50 / +3.03): passed.  Held out, once per forecaster:
Holt 68.15 / 55.08 / 74.81 (+2.24 / +0.70 / +2.62), model 68.13 / 53.28 / 75.36 (+3.35 / −0.91 / +3.93): the
model's low FP falls, so by step 3 the term scope ships off (opt-in); chiller seeds not run (no default
changed).  ``docs/results/nab/report.md``, top section.

Run: PYTHONPATH=daemon python bench/nab/tune_rest_scope.py DIAG_DIR [--held-out] FORECASTER...
(DIAG_DIR: diag_fp_rows.py's OUT_DIR.  The terms do not depend on the scope, so one stage run gives both scopes'
scores; ``--held-out`` reads the held-out run of step 3, ``diag_fp_rows.py --held-out --set
score_rest_scope='"term"'``, and prints corpus scores only: its ``tag`` row must reproduce the shipped held-out rows.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sentinelle.detect.rest import Rest
from sentinelle.evaluation.nab_corpus import HELD_OUT, TUNING, NabFile, load_corpus, split_of
from sentinelle.evaluation.nab_scorer import PROFILES, score_corpus
from sentinelle.evaluation.stream_eval import close_windows, median_period, stream_settings
from sentinelle.settings import DetectSettings

SCOPES = ("tag", "term")


def slots_of(f: NabFile) -> tuple[np.ndarray, list[int]]:
    """Each row's slot (−1: none) and every slot the stage ticks at, in order (gap slots included)."""
    p = median_period(f.timestamps)
    w = close_windows(f.stream(), stream_settings(p, "holt", DetectSettings()), p)
    return w.row_slot, [round(b.ts / p) for b in w.batches]


def rested(residual: np.ndarray, novelty: np.ndarray, row_slot: np.ndarray, slots: list[int], scope: str) -> np.ndarray:
    """The published per-row score from the two recorded terms, rested per tick with the given scope."""
    d = DetectSettings()
    first: dict[int, int] = {}
    for i, k in enumerate(row_slot.tolist()):
        if k >= 0:
            first.setdefault(k, i)
    n_terms = 1 if scope == "tag" else 2
    rest = Rest(n_terms, d.score_rest_steps, d.score_rest_level)
    by_slot: dict[int, float] = {}
    for k in slots:
        row = first.get(k)
        terms = np.array([residual[row], novelty[row]]) if row is not None else np.full(2, np.nan)
        if scope == "tag":
            out = rest.apply(np.array([np.fmax(terms[0], terms[1])]))[0]
        else:
            r = rest.apply(terms)
            out = np.fmax(r[0], r[1])
        by_slot[k] = float(out)
    score = np.array([by_slot.get(int(k), np.nan) if k >= 0 else np.nan for k in row_slot])
    return np.asarray(np.nan_to_num(np.clip(score, 0.0, 1.0)), dtype=np.float64)


def main() -> None:
    diag, *forecasters = sys.argv[1:]
    held_out = "--held-out" in forecasters
    forecasters = [fc for fc in forecasters if fc != "--held-out"]
    files = load_corpus(Path("/work/shared/data/nab/data"))
    split = split_of(f.name for f in files)
    tuning = [f for f in files if split[f.name] == (HELD_OUT if held_out else TUNING)]
    slots = {f.name: slots_of(f) for f in tuning}
    for fc in forecasters:
        z = np.load(Path(diag) / (f"{fc}_score_rest_scopeterm_held_out.npz" if held_out else f"{fc}.npz"))
        for scope in SCOPES:
            pairs = [
                (f.labelled, rested(z[f"{f.name}|residual"], z[f"{f.name}|novelty"], *slots[f.name], scope))
                for f in tuning
            ]
            cs = [score_corpus(pairs, p) for p in PROFILES]
            print(
                f"{fc} scope {scope} (standard, low FP, low FN): {[round(c.normalised, 2) for c in cs]}; "
                f"windows {cs[0].detected}/{cs[0].windows}, FP rows {cs[0].false_positive_rows}",
                flush=True,
            )


if __name__ == "__main__":
    main()
