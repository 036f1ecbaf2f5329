"""The SKAB report's account of issue 13's second pass: what the NAB score is made of, and what was chosen.

Prose only (kept out of :mod:`.skab_report`, which holds the tables and the earlier choices); every
number here was measured on the tuning files or on the labels alone, before the held-out files were
scored with the settings it describes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

FROZEN_COMMIT = "0f174f2"
"""The commit that froze :data:`~.skab.ASSET_ON` before the held-out files were scored (2026-12-06 16:07 UTC)."""

HELD_OUT_NOTE = (
    "The held-out files' scores were seen in earlier sessions (the choices below say so). In this pass the "
    "settings were chosen by `bench/skab/tune_deadband.py`, which replays the 23 tuning files only, with its rule "
    "written in its docstring and committed (acd86b0) before it first ran; the choice was committed "
    f"({FROZEN_COMMIT}, 2026-12-06 16:07 UTC) before the held-out files were scored. They were scored twice with "
    "those settings: first with a change to the NAB windows (changepoints inside the training rows kept, as older "
    "SKAB notebooks did), then, after SKAB's current pipeline turned out to score the test rows alone, with that "
    "change reverted; nothing was chosen between the two, and this report is the second."
)
"""How the headline's settings were frozen before the held-out split was scored (issue 13 asks to say how)."""

NAB_ANATOMY = """\
**What SKAB's NAB score can be for a detector of state** (`bench/skab/nab_ceiling.py`, labels only, no
detector). SKAB marks each transition of a fault twice, 60 s apart: the fault's start and 60 s later, 60 s
before its end and its end, each with a 60 s window to its right. Under the leaderboard's protocol the
changepoint prediction is `|diff|` of the outlier prediction, so a detector that opens once per fault and
clears once can hit the start's window and the end's, and the `end-60` window only on its shared last
point (worth `A_FP`); the other two are missed whatever it does. The labels themselves, as the
prediction, score NAB standard **56.20 on the tuning split, 51.52 on the held-out split, 54.73 on all
files** (F1 1.00); delayed 20 s, 43.82 / 42.42 / 43.38 (F1 0.95); one second *early*, 11.68 / 12.18 /
11.84 (every start's window missed and counted as a false positive). So MSCRED's 32.42 sits at about
60 % of what a perfect state detector can get on all files, and the held-out split's own ceiling is lower
than the tuning split's (its `other/2` starts its fault inside the training rows).

**Our NAB implementation against SKAB's.** Checked line by line against `tsad`
(`evaluating.py`, `src.py`, `univariate_funcs.py`: right-sided windows, cut right window on overlap,
bounds included, the first detection in a window scored on the tanh scale, every detection outside the
windows a flat `A_FP`, raw/null/perfect summed over files) and SKAB's current pipeline (`core/utils.py`:
`preprocess_skab` splits features and `df[["anomaly", "changepoint"]]` at row 400; the notebooks score
`y_test` against `prediction_cp = abs(prediction.diff())`, the first value kept): the same. Older SKAB
notebooks scored whole files (training rows predicted in-sample, or the whole changepoint column against
test-row predictions); under the latter, `other/2`'s two changepoints inside its training rows (its
fault starts at row 104) would be two windows every detector misses, lowering every held-out NAB score
by a factor 40/42. We follow the current pipeline: 127 windows in all, 40 held out.

**Where the NAB score is lost on the tuning split** (`bench/skab/why_nab_tuning.py`, the previous
headline, tuning files only): of 87 windows, `start` 16 of 23 hit (median delay 11 s; 6 late or never, 1 with
the alert already open),
`start+60` 7 of 20 (hits only where the alert dips and reopens), `end-60` 14 of 22 (the alert clears
while the valve reopens, before the labelled end), `end` 9 of 22 (11 missed because the alert had already
cleared in `end-60`), and 31 changes outside every window with the label off (false alarms and late
clearings; each costs 0.06 points, a window missed instead of hit at its start 1.15). The tuning
split's 41.37 is close to the labels' own ceiling delayed by 20 s (43.82): on those files the
remaining loss is the windows no state detector can hit, not late or false alerts.

**Issue 13, second pass: a deadband, then the clearing run and the charts
(`bench/skab/tune_deadband.py` → `tuning_deadband.json`).** New mechanism: `detect.asset_clear_score`,
an ISA-18.2 deadband for the asset alert (once open, its condition holds while the score is above this
fraction of the limit; 1 = none, the daemon's default). Step 1, deadband 1, 0.7, 0.5, 0.3 × clearing
run 10, 5; step 2, at step 1's choice, chart weight 0.1, 0.15, 0.2 × limit factor 3, 3.5, 4. Same rule
as stages 1 and 2 (largest smallest relative margin over the three bounds, each averaged over `valve1`
and the odd `other` files). **The deadband lost**: at 0.7 the tuning FAR rose 9.29 → 12.54 % and NAB fell
41.37 → 35.55 (0.5: 16.09 %, 32.26; 0.3: 28.28 %, 24.47) — it keeps the alert open through the changed
state after a fault as much as through a dip inside one, like the time hold before it. Chosen: no
deadband, the asset alert clearing after **5** normal ticks, charts of weight **0.2** with limits **×3**
— tuning split F1 0.82, FAR 7.30 %, NAB 40.12 (the previous headline: 0.82, 9.29 %, 41.37). A small
choice: the smallest averaged margin (F1's) moves from 0.064 to 0.071, the FAR margin grows, the tuning
NAB falls 1.25 points; four other configurations reach 0.064, within 0.007 of it.
The daemon's defaults are unchanged (charts 0.15 × 3.5, the shared clearing run of 10, no deadband):
the asset detector is off by default and the other reports that turn it on were not re-run."""
"""Issue 13's second pass, placed before the earlier choices in the report's "How the settings were chosen"."""

ISSUE_14 = """\
**Issue 14's rows** (this pass): "per-tag only" is a forecaster's residuals alone, "asset only" the asset
detector's alerts alone (the residual detector's threshold set where it never flags), the headline both.
The univariate model (the shipped checkpoint) forecasts each tag on one slot in 16
(`forecast.refresh_every_steps`, the daemon's mode for a CPU too slow for every tick): at every slot one
file took 306 s on these shared cores, all 34 about three hours; Holt's residuals at the same cadence are
the row beside it, in the same run. The asset model (`forecast/checkpoints/asset`, not adapted to SKAB's
pump: no `finetune --asset` was run) adds, per tag, the residual against its estimate from the other tags
now (`detectors/asset_estimate.py`) and against the forecast made 16 ticks ago (`horizon.py`), beside
Holt's one-step residuals, as the chiller's asset rows; its estimate is made on one slot in 16
(`forecast.asset_estimate_every_steps`, fixed for CPU before any run) and computed in batches before the
replays (`evaluation/prefill.py`: a dry replay records which estimates the model would be asked for; the
answers are the model's). Settings chosen on the 23 tuning files alone by `bench/skab/tune_asset_model.py`
(rule in its docstring, committed in cf8682b before it ran; `tuning_asset_model.json`), frozen in 6ca9dfe
before the held-out files were scored once by this run: the estimate's EWMA chart
(`detect.asset_estimate_ewma_alpha` 0 or 0.1) for the estimate-now + horizon row → **0.1** (tuning F1 0.30,
FAR 13.17 %, NAB 47.15; off: 0.20, 10.17 %, 33.23); for the estimate blind to the newest 128 slots
(`forecast.asset_mask_recent_steps`, the chiller's choice) → **off** (0.45, 26.19 %, 29.57; 0.1: 0.50,
35.76 %, 30.52); the asset model over the headline (mask 0 or 128 × chart 0 or 0.1) → mask 0, no chart
(0.79, 16.51 %, 34.61), which **does not beat the headline** on the tuning split by the rule (0.82,
7.30 %, 40.12: FAR and NAB worse), so the headline stays Holt + asset charts. The asset model's
residuals alone flag the faults' transitions and some of their steady part (F1 0.20–0.50 on the tuning
split against Holt's 0.04) but far from the rows the state charts flag; the blind estimate flags more
rows of the faults and more false alarms (the `other` files' changed states after a fault)."""
"""What the report's residual-alone and detector-alone rows are, and how issue 14's settings were chosen."""


def issue14_verdict(rows: Sequence[tuple[str, dict[str, Any]]], f1: float, far_percent: float) -> str:
    """Issue 14's bound on the held-out split (F1 ≥ ``f1`` at FAR < ``far_percent``) for each model row.

    >>> issue14_verdict([("m", {"f1": 0.3, "far_percent": 5.0, "nab_standard": 20.0})], 0.78, 13.55).split(": ", 1)[1]
    'm: F1 0.3, FAR 5.0 %, NAB 20.0 — not met.'
    """
    parts = [
        f"{label}: F1 {h['f1']}, FAR {h['far_percent']} %, NAB {h['nab_standard']} — "
        + ("met" if h["f1"] >= f1 and h["far_percent"] < far_percent else "not met")
        for label, h in rows
    ]
    return (
        f"Issue 14 on the held-out split (F1 ≥ {f1} at FAR < {far_percent} % for the model's residuals alone): "
        + "; ".join(parts)
        + "."
    )


def summary(held: dict[str, Any], f1: float, far_percent: float, nab: float) -> str:
    """The report's opening paragraph: what this pass changed, where it was chosen, and the held-out result.

    >>> summary({"f1": 0.8, "far_percent": 10.0, "nab_standard": 40.0}, 0.78, 13.55, 32.42).split(" — ")[-1]
    'F1 and FAR met, NAB met (issue 13).'
    """
    outlier = held["f1"] > f1 and held["far_percent"] < far_percent
    return (
        "**This pass (issue 14):** the univariate model's and the asset model's residuals alone, beside Holt's "
        "and the headline (rows below; the asset model's settings chosen on the 23 tuning files by "
        "`bench/skab/tune_asset_model.py` and frozen before the held-out files were scored; none beat the "
        "headline on the tuning split, so the headline is unchanged: the asset charts chosen in issue 13's second "
        f"pass (`bench/skab/tune_deadband.py`), frozen at {FROZEN_COMMIT}). Held-out split (valve2 + even "
        f"`other`): F1 {held['f1']}, FAR {held['far_percent']} %, NAB standard {held['nab_standard']} — F1 and FAR "
        f"{'met' if outlier else 'not met'}, NAB {'met' if held['nab_standard'] > nab else 'not met'} (issue 13)."
    )
