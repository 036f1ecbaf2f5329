"""Issue 13: the tag's own step as a floor of the forecast spread (``detect.score_step_floor``) on NAB — rule first.

The defect (tuning split, ``rogue_agent_key_updown``; ``docs/results/nab/report.md``): a forecast made from a
flat stretch is certain to the last bit, so the tag's first ordinary move was scored against the spread's
last-resort floor of 1e-9 (z ≈ 10⁹, 10 rows before the file's first window); the refractory peak that z
left (≈ 10¹⁷ decades) then kept the file's second window (residual surprise 0.98) at a score of 0.  The fix
(forecaster-agnostic, every tag, ``detect/scoring.py``): the spread is floored at ``score_step_floor`` times
the tag's typical non-zero step between successive values, learned online from the values before the tick
(a forgetting geometric mean over ``score_memory_steps``).  Its value is fixed from first principles, not
tuned: ``1/√12`` (0.29), the standard deviation of a value known only to within one step.

**Candidates (fixed before any run; amended once, below):**

* ``a``: the shipped defaults + ``score_step_floor = 0.29`` + ``score_refractory_max_decades = 1000``;
* ``b``: ``a`` + ``score_rest_scope = "term"``;
* ``c``: ``b`` + ``score_spread_floor = 1.0``.

*Amendment (2026-12-07 02:50 UTC, after candidate a's first form — the step floor alone — ran on the tuning
split with Holt only, and before any other candidate, forecaster or held-out run):* the step floor alone gave
Holt 70.90 / 61.43 / 75.92 on the tuning split (windows 49/57, 103 FP rows) and removed
``rogue_agent_key_updown``'s z ≈ 10⁹ (row 2233; the spread there is now ≥ 0.37), but that file's windows still
score 0: a genuine spike of z = 464 at row 1148 (outside the windows) leaves a refractory peak of ≈ 47,000
decades that still exceeds the windows' surprises (≈ 340-800 decades) 1,100 ticks later.  So the fix also
caps what the refractory peak remembers (``detect.score_refractory_max_decades``; a surprise beyond it still
scores in full).  ``1000`` decades (a normal tail at r ≈ 68; beyond that the normal tail is extrapolation):
chosen by reasoning and from that one tuning file's numbers, not tuned over values.  The rule below is
unchanged; the candidates are a, b, c with the cap.

**Decision rule (written and committed before any candidate was run).**

1. *Tuning split only, through the stage* (``diag_fp_rows.py --set ...``, both forecasters, every tick, the
   forecast caches of the report).  A candidate *passes* if, against the shipped stage rows (Holt 70.71 /
   61.04 / 75.80, model 68.87 / 59.05 / 74.57), Holt's and the model's standard and low-FP scores all rise
   and none of the six numbers falls by more than 0.2.  Among the passing candidates the one with the
   largest sum of the six numbers is chosen; a candidate within 0.3 of that sum with fewer changed settings
   is chosen instead (a before b before c).  None passing: nothing is scored held out, nothing ships.
2. *Held out, once per forecaster*, the chosen candidate only (``diag_fp_rows.py --held-out --set ...``:
   corpus and category scores only, nothing per file).  It becomes the shipped default only if, against
   today's shipped held-out rows (Holt 65.91 / 54.38 / 72.19, model 64.78 / 54.19 / 71.43):
   (i) neither forecaster's standard nor low-FP score falls; (ii) none of the six numbers falls by more
   than 0.2; (iii) aiming at "the model at least Holt": the model's held-out gap to Holt on the standard
   and on the low-FP profile each widens by no more than 0.2 (today −1.13 and −0.19); (iv) the step floor
   changes residual flags and so alert openings: on the chiller DEVELOPMENT seeds 2140..2149 (never the
   report's 2000..2023) the chosen candidate opens no more false alarms than today's defaults.
   Otherwise it ships off (opt-in) and is reported as a candidate.  The issue's targets (≥ 65 / 55 / 70,
   model ≥ Holt) are reported as met or not, whatever is shipped.

Run: PYTHONPATH=daemon python bench/nab/diag_fp_rows.py /tmp/h-nab5/diag CACHE [--held-out] \
    --set score_step_floor=0.29 [--set score_rest_scope='"term"'] [--floor 1.0] FORECASTER
(CACHE: ``/tmp/nab-fc-detect`` for holt, ``/tmp/h-nab3/fc`` for model); :func:`choose` and :func:`ships` apply the
rule to the printed scores; ``python bench/nab/tune_step_floor.py DIAG NPZ_TAG`` prints the chosen candidate's
tuning, held-out and all-files scores and its held-out categories from the two recorded runs.

**Outcome (2026-12-07, after the rule above).**  Tuning (stage): a Holt 73.55 / 63.74 / 78.86, model 71.20 /
60.95 / 77.02; b Holt 75.92 / 64.90 / 81.61, model 73.59 / 62.19 / 80.05; c Holt 74.32 / 64.59 / 79.96, model
75.90 / 65.46 / 81.60: all pass, c chosen (sum 441.83 against b's 438.26).  Held out, once per forecaster: Holt
67.15 / 54.70 / 73.02, model 66.20 / 53.72 / 72.38 — the model's low FP falls 0.47 (i) and its low-FP gap to Holt
widens to −0.98 (iii), so c ships off (opt-in).  Chiller development seeds, run afterwards for information (Holt):
identical to today's defaults.  ``docs/results/nab/report.md``, top section.
"""

from __future__ import annotations

SHIPPED_TUNING = {"holt": (70.71, 61.04, 75.80), "model": (68.87, 59.05, 74.57)}
SHIPPED_HELD_OUT = {"holt": (65.91, 54.38, 72.19), "model": (64.78, 54.19, 71.43)}
CANDIDATES = ("a", "b", "c")
MAX_FALL = 0.2
SIMPLER_WITHIN = 0.3


def passes(scores: dict[str, tuple[float, float, float]], base: dict[str, tuple[float, float, float]]) -> bool:
    """Step 1 / 2 (i, ii): standard and low FP rise (tuning) or do not fall (held out), none falls > 0.2."""
    rise = all(scores[fc][i] > base[fc][i] for fc in base for i in (0, 1))
    bounded = all(scores[fc][i] >= base[fc][i] - MAX_FALL for fc in base for i in range(3))
    return rise and bounded


def choose(tuning: dict[str, dict[str, tuple[float, float, float]]]) -> str | None:
    """Step 1's choice among the candidates' tuning scores (None: none passed)."""
    ok = [c for c in CANDIDATES if c in tuning and passes(tuning[c], SHIPPED_TUNING)]
    if not ok:
        return None
    total = {c: sum(sum(v) for v in tuning[c].values()) for c in ok}
    best = max(total.values())
    return next(c for c in ok if total[c] >= best - SIMPLER_WITHIN)


def ships(held_out: dict[str, tuple[float, float, float]], chiller_false_alarms_ok: bool) -> bool:
    """Step 2: (i)-(iv); (i) holds at equality on held-out files (does not fall)."""
    no_fall = all(held_out[fc][i] >= SHIPPED_HELD_OUT[fc][i] for fc in SHIPPED_HELD_OUT for i in (0, 1))
    bounded = all(held_out[fc][i] >= SHIPPED_HELD_OUT[fc][i] - MAX_FALL for fc in SHIPPED_HELD_OUT for i in range(3))
    gap = all(
        held_out["model"][i] - held_out["holt"][i]
        >= SHIPPED_HELD_OUT["model"][i] - SHIPPED_HELD_OUT["holt"][i] - MAX_FALL
        for i in (0, 1)
    )
    return no_fall and bounded and gap and chiller_false_alarms_ok


def main() -> None:
    """The chosen candidate's recorded scores (tuning npz + held-out npz of ``diag_fp_rows.py``): every split,
    the held-out categories at the held-out standard threshold, all 58 files at one threshold."""
    import json
    import sys
    from pathlib import Path

    import numpy as np

    from sentinelle.evaluation.nab_corpus import load_corpus
    from sentinelle.evaluation.nab_stream import score_detector

    diag, tag = Path(sys.argv[1]), sys.argv[2]  # tag: the npz name without "_held_out", e.g. holt_floor1_...
    files = load_corpus(Path("/work/shared/data/nab/data"))
    runs = [np.load(diag / f"{tag}.npz"), np.load(diag / f"{tag}_held_out.npz")]
    scores = []
    for f in files:
        key = f"{f.name}|score"
        z = next(r for r in runs if key in r.files)
        scores.append(np.nan_to_num(np.clip(z[key], 0.0, 1.0)))
    out = score_detector(files, scores)
    print(json.dumps({k: out[k] for k in ("tuning", "held_out", "all", "held_out_by_category")}, indent=1))


if __name__ == "__main__":
    main()
