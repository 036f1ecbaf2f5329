"""The SKAB report's account of issue 13's second pass: what the NAB score is made of, and what was chosen.

Prose only (kept out of :mod:`.skab_report`, which holds the tables); :data:`TUNING` is the record of the earlier
passes' choices, kept as written. Every number here was measured on the tuning files or on the labels
alone, before the held-out files were scored with the settings it describes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

FROZEN_COMMIT = "c92efa9"
"""The commit that froze :data:`~.skab.ASSET_ON` before the held-out files were scored (2026-12-07, sixth pass)."""

HELD_OUT_NOTE = (
    "The held-out files' scores were seen in earlier sessions (the choices below say so; this pass is the sixth "
    "look). In issue 13's sixth pass the settings were chosen by `bench/skab/tune_settle.py` and "
    "`bench/skab/tune_settle_rearm.py`, which replay the 23 tuning files only, with their grids and rule written in "
    "`docs/results/skab/settle/RULE.md` and committed (3c549e9; the second grid 452da82) before each first ran; the "
    f"choice was committed ({FROZEN_COMMIT}) before the held-out files were scored, once, by "
    "`bench/skab/score_heldout_settle.py` (beside the previous headline, frozen at 4814891, in the same run)."
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
detector's alerts alone (the residual detector's threshold set where it never flags), the headline both. The
univariate model (the shipped checkpoint) forecasts each tag on one slot in 16
(`forecast.refresh_every_steps`, the daemon's mode for a CPU too slow for every tick): at every slot one file
took 306 s on these shared cores, all 34 about three hours; Holt's residuals at the same cadence are the row
beside it, in the same run. The asset model (`forecast/checkpoints/asset`, as shipped; its rows adapted to
SKAB's pump are the "adapted to SKAB (LoRA)" rows, see below) adds, per tag, the residual against its estimate
from the other tags now (`detectors/asset_estimate.py`) and against the forecast made 16 ticks ago
(`horizon.py`), beside Holt's one-step residuals, as the chiller's asset rows; its estimate is made on one
slot in 16 (`forecast.asset_estimate_every_steps`, fixed for CPU before any run) and computed in batches
before the replays (`evaluation/prefill.py`: a dry replay records which estimates the model would be asked
for; the answers are the model's). Settings chosen on the 23 tuning files alone by
`bench/skab/tune_asset_model.py` (rule in its docstring, committed in cf8682b before it ran;
`tuning_asset_model.json`), frozen in 6ca9dfe before the held-out files were scored once by this run: the
estimate's EWMA chart (`detect.asset_estimate_ewma_alpha` 0 or 0.1) for the estimate-now + horizon row →
**0.1** (tuning F1 0.30, FAR 13.17 %, NAB 47.15; off: 0.20, 10.17 %, 33.23); for the estimate blind to the
newest 128 slots (`forecast.asset_mask_recent_steps`, the chiller's choice) → **off** (0.45, 26.19 %, 29.57;
0.1: 0.50, 35.76 %, 30.52); the asset model over the headline (mask 0 or 128 × chart 0 or 0.1) → mask 0, no
chart (0.79, 16.51 %, 34.61), which **does not beat the headline** on the tuning split by the rule (0.82, 7.30
%, 40.12: FAR and NAB worse), so the headline stays Holt + asset charts. The asset model's residuals alone
flag the faults' transitions and some of their steady part (F1 0.20–0.50 on the tuning split against Holt's
0.04) but far from the rows the state charts flag; the blind estimate flags more rows of the faults and more
false alarms (the `other` files' changed states after a fault)."""
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


def adaptation_note(manifest: dict[str, Any]) -> str:
    """Issue 14, step 3: where the adapter's data came from and its validation before and after (its manifest).

    >>> m = {"data": {"rows": 10, "source": "s"}, "training": {"steps": 5, "best_step": 4, "wall_seconds": 9.0},
    ...      "validation": {"windows": 2, "before": {"estimate": 0.3, "blind_estimate": 0.5, "forecast": 0.2,
    ...      "mae": {"pump.a": 2.0}}, "after": {"estimate": 0.2, "blind_estimate": 0.4, "forecast": 0.2,
    ...      "mae": {"pump.a": 1.0}}}}
    >>> adaptation_note(m).split("; ")[-1]
    'estimate MAE per tag a 2 → 1.'
    """
    v, t = manifest["validation"], manifest["training"]
    b, a = v["before"], v["after"]
    mae = ", ".join(f"{k.split('.', 1)[-1]} {b['mae'][k]:.3g} → {a['mae'][k]:.3g}" for k in b["mae"])
    return (
        "**Issue 14, step 3: the asset model adapted to SKAB's pump** (`bench/skab/adapt_asset_model.py`, "
        "`training/asset_finetune.py`): one LoRA adapter (rank 8 on the attention over time and across tags, "
        "the MLPs and the estimate head) trained on "
        f"{manifest['data']['source']} ({manifest['data']['rows']} rows; the newest 20 % its validation): "
        "SKAB's held-out rules (`evaluation/heldout.py`) reserve every fault file for evaluation, the tuning files "
        f"included. {t['steps']} steps in {t['wall_seconds'] / 60:.0f} min on the shared CPU cores, best at step "
        f"{t['best_step']}. Validation ({v['windows']} windows of the 8 tags; pinball loss in each window's scale, "
        f"base → adapted): estimate of now {b['estimate']:.4f} → {a['estimate']:.4f}, blind estimate "
        f"{b['blind_estimate']:.4f} → {a['blind_estimate']:.4f}, forecast {b['forecast']:.4f} → "
        f"{a['forecast']:.4f}; estimate MAE per tag {mae}."
    )


def summary(held: dict[str, Any], f1: float, far_percent: float, nab: float) -> str:
    """The report's opening paragraph: what this pass changed, where it was chosen, and the held-out result.

    >>> summary({"f1": 0.8, "far_percent": 10.0, "nab_standard": 30.0, "nab_alert_events_standard": 40.0},
    ...         0.78, 13.55, 32.42).split(" — ")[-1]
    "F1 and FAR met; NAB not met with the prediction's changes, met with the alert stream's events (issue 13)."
    """
    outlier = held["f1"] > f1 and held["far_percent"] < far_percent
    events = held.get("nab_alert_events_standard")
    return (
        "**The headline (issue 13's sixth pass; the seventh, a slow second chart, was not adopted — below):** a "
        "settling time of 240 ticks after an asset episode is sent cleared "
        "(`detect.asset_settle_*`, new), chosen on the 23 tuning files by `bench/skab/tune_settle.py` and "
        "`tune_settle_rearm.py` (21 configurations, rule committed before they ran) and frozen at "
        f"{FROZEN_COMMIT}; the previous headline (4814891) beside it; the changepoint column scored both as "
        "`|diff|` of the outlier prediction and as sentinelle's own output, the alert stream's events. Held-out "
        "split (valve2 + even "
        f"`other`): F1 {held['f1']}, FAR {held['far_percent']} %, NAB standard {held['nab_standard']} "
        f"(alert stream's events: {events}) — F1 and FAR {'met' if outlier else 'not met'}; NAB "
        f"{'met' if held['nab_standard'] > nab else 'not met'} with the prediction's changes, "
        f"{'met' if events is not None and events > nab else 'not met'} with the alert stream's events (issue 13)."
    )


TUNING = """\
**Issue 13, first pass: the asset alert's own life cycle, on the 23 tuning files alone
(`bench/skab/tune_asset_alerting.py` → `tuning_asset_alerting.json`, then
`bench/skab/tune_detectors_skab.py` → `tuning_detectors_skab.json`).** A diagnosis on the tuning
files (`why_missed_tuning.md`) found most missed anomaly ends were asset alerts that cleared 18–58 s
before the labelled end, and some starts late, so the asset alert got settings of its own —
`asset_open_k`/`asset_open_n`, `asset_clear_normal_steps` (the hold) and `asset_severe_factor` (a
tick that far over its limit opens at once) — leaving every other alert kind on the shared life
cycle (the asset detector is off in the daemon by default, so nothing the daemon ships changes).
The grids replayed only the tuning files (asserted in the scripts), through the daemon's stages
with Holt; their rule, written in the scripts' docstrings before they first ran: each of the
issue's three bounds' relative margin (as below), *averaged over the two tuning groups* `valve1`
and odd `other` (the held-out split holds 4 valve files and 7 `other` ones, the tuning split 16
and 7, so a pooled tuning score is mostly `valve1`), and the largest smallest averaged margin wins.
Stage 1 (hold 10, 20, 30, 60 × open 3 of 5, 2 of 3, 1 of 1 × severe off, 3× the limit; 24
configurations) chose **2 of 3, hold 10, no severe opening** — tuning split F1 0.82, FAR 9.29 %,
NAB 41.37 (the shared 3 of 5: 0.82, 8.75 %, 41.68; `valve1` F1 0.80 → 0.81). The diagnosis'
remedy did not hold up: a longer hold *lowered* the tuning NAB (hold 20: 36.59, 30: 35.62, 60:
31.47) and raised the odd `other` files' FAR (16.1 % → 19.8–29.1 %): it keeps alerts open past
the fault's end as often as it bridges a dip inside it. The severe opening changed nothing at 3×
the limit. Stage 2 (per-tag detectors beside the residuals: the distribution change of the recent
values, the residual against the forecast made 16 ticks ago; off/on each) kept both off: the
horizon residual tied on the smallest margin and lost on the second (tuning FAR 9.29 → 10.24 %, NAB
41.37 → 40.0), the distribution change raised the tuning FAR to 14.22 % (F1 0.81). Its second step,
the asset charts again, was planned and dropped for time (the shared machine's load), before any of
its results were seen. Then the settings were committed and the held-out files were scored once,
by the run of this report.

**Before it: both targets weighed alike (`bench/skab/tune_margins.py`, `tuning_margins.json`).** The
previous rule (next paragraph) took the highest tuning F1 over both bounds; its choice sat on the
NAB bound's edge on the tuning split and fell under it on all files, while an F1 of 0.83 was worth
no more to the issue than 0.82. The rule now gives each configuration its *relative margins* over
the issue's three bounds — `(F1 − 0.78)/0.78`, `(NAB − 32.42)/32.42`, `(13.55 − FAR)/13.55`, on the
tuning split — and takes the one whose smallest margin is largest (ties: the second smallest).
Same split, same prediction; the grid varies only the asset detector (chart weight 0.1, 0.15, 0.2
× chart limit factor 3, 3.5, 4, 5 × T²/Q limit factor 1.5, 3), not the life cycle every alert kind
shares. It was run after one fix to T² (a tag constant through the warm-up had a zero
self-correlation after the resolution floor, so T² flagged a one-resolution move of it; the floor
now joins the covariance's diagonal). Chosen: weight 0.15, factor 3.5, T²/Q ×3 — tuning split F1
0.82, FAR 8.37 %, MAR 25.97 %, NAB 37.38 (held out, not used: 0.77, 11.03 %, 31.56 %, 22.99; the
previous choice with the T² fix: tuning 0.83, 11.39 %, 34.0, held out 0.84, 18.18 %, 19.46).
Caveat, as before: the rule was set after an exploratory grid (asset part only, a scratch harness)
that printed all-file scores too. The trade is visible in the held-out split: fewer false alarms
and a better NAB, a lower F1 (more rows of the faults missed). A check of the rule, from the same
grid: applied to the held-out split instead it picks a neighbour, weight 0.2 × 3.5 (held out 0.76,
10.33 %, 25.66 — F1 and NAB under their bounds there; all files 0.80, 8.16 %, 33.07), and applied to
all files it picks that neighbour too; no configuration of the grid meets both targets on the
held-out split alone.

**Previous choice: the EWMA charts (`bench/skab/tune_charts.py`, `tuning_charts.json`).** Per-file analysis of
the previous headline showed two things a rule on `valve1` alone could not weigh: most false
alarms were in `other` files whose pump stays in a changed state after the labelled fault (FAR
62 % after the last anomaly there), and the misses were small lasting shifts — a flow 1.8–2.5
warm-up σ low for 300 s in `valve1/4` and `valve1/6`, never flagged — that T² of single ticks lets
pass. An EWMA chart per steady tag (`asset_chart_alpha`, `asset_chart_factor`) answers the
second; less sensitive T²/Q limits and no likelihood layer pay for it in false alarms. The form
was found in exploratory runs that printed all-file scores; the settings were then chosen on a
**tuning split fixed before the grid**: `valve1` and the odd-numbered `other` files (23 files),
held out `valve2` and the even-numbered `other` files (11). Grid: chart weight 0.05, 0.1, 0.2 ×
chart limit factor 3, 4, 5 × T²/Q limit factor 1.5, 3 × likelihood layer off / z 3, beside the
previous headline. Rule, the issue's two bounds as constraints: *highest tuning F1 among
configurations with tuning FAR under 13.55 % and tuning NAB standard over 32.42, ties to the higher
NAB*. Chosen: weight 0.1, factor 3, T²/Q ×3, no likelihood — tuning split F1 0.83, FAR 11.38 %,
MAR 21.98 %, NAB 33.17 (held out, not used by the rule: 0.84, 18.23 %, 16.07 %, 19.6; the previous
headline, as this grid's harness scores it: tuning 0.78, 17.98 %, held out 0.75, 39.88 %). These were the
`DetectSettings` defaults until the choice above. The held-out split's NAB is far below the tuning split's: its
`other` files keep their alerts open through the changed state after the fault (windows of the
fault's end missed) or flap across a limit there. The paragraphs below tell how the earlier
settings (moving baseline, components, life cycle) were chosen, on `valve1` alone; they stand.

The asset detector's settings were chosen on the `valve1` group alone (16 of the 34 files): a grid
of 750 configurations over the moving-baseline test (`asset_drift_share` 0.3, 0.5 or off;
`asset_drift_alpha` 1/30, 1/60), `asset_explained_variance` (0.7, 0.9, 1), the smoothing (none,
MEWMA α 0.1 or 0.03, EWMA of T² and Q α 0.3 or 0.1), `asset_ucl_factor` (1, 1.5, 2, 3, 4) and the
hysteresis `clear_normal_steps` (10, 60), with the rule *highest valve1 F1 among configurations
with valve1 FAR under 13.55 %, ties to the lower FAR*. The chosen one (valve1: F1 0.75, FAR 13.04 %,
MAR 33.19 %, NAB 29.49) is the `DetectSettings` default. `bench/skab/tune_valve1.py` re-runs the grid;
`tuning_valve1.json` holds every configuration's valve1 scores (a sensitivity table: the top ten
valve1 F1 scores under the FAR bound lie within 0.03 of each other). The detector never sees
labels, and nothing is set per file. Caveat: while the detector was being written, exploratory
runs printed all-file scores beside valve1's; the `valve2`/`other` rows below are held out from
the selection rule, not from our eyes. The ablation's one-change variants show how much the
headline depends on each choice (\"no smoothing\" would have scored better on all files; the
rule picked the EWMA on valve1, and we report that).

The anomaly-likelihood layer (`detect/likelihood.py`) was then chosen the same way, on valve1
alone: a grid of 270 configurations over the smoothing under it (`asset_ewma_alpha` 1, 0.3, 0.1),
the short-term mean (`asset_likelihood_short_steps` 1, 3, 10), the long-term history
(`asset_likelihood_history_steps` 500, 2000), the threshold (`asset_likelihood_z` 2, 2.5, 3, 4, 5)
and the hysteresis (`clear_normal_steps` 10, 30, 60), beside the previous headline (layer off,
EWMA α 0.3) at each hysteresis, all other settings as chosen above; same rule
(`tune_likelihood_valve1.py`, `tuning_likelihood_valve1.json`). Chosen: no smoothing, the raw
score judged alone (short mean of 1 tick) against the last 500 normal scores, z 3 — valve1: F1
0.76, FAR 12.44 %, MAR 32.37 %, NAB 26.56 (previous headline 0.75, 13.04 %, 33.19 %, 29.49; valve1's
NAB score is lower, and the rule does not look at it). The gain is one F1 point on valve1, and
nine configurations reach F1 0.76 under the FAR bound (FAR 12.44–13.43 %): a small, not a sharp,
optimum. A longer hysteresis raises valve1's F1 to 0.78 (layer off, 30 ticks) but FAR to 16.8 %,
over the bound. These were the `DetectSettings` defaults until the EWMA charts (the layer is now
off by default; `asset_likelihood_enabled` turns it on); valve2/other were held out from this
rule as from the first. On all 34 files the change is small and mixed (ablation: the previous
headline row): F1 0.77 either way, FAR 22.64 → 22.1 %, MAR 25.1 → 24.82 %, fewer alerts (2.17 → 1.56
per 10 minutes), but NAB standard 30.0 → 27.19 (fewer openings inside the changepoint windows);
the false alarms of `other` (FAR 35.5 %) are untouched, since the layer judges the same state score.

Accepting a new steady state (an automated \"new normal\": when the asset alert has been open and
the EWMA of the standardised vector stopped moving for a while, clear the alert and score against
that state as well as the warm-up's) was tried by the same rule on valve1
(`tune_new_normal_valve1.py`, `tuning_new_normal_valve1.json`; EWMA weight 0.1 or 0.03, steady
within 0.25, 0.5 or 1 σ RMS for 30, 60, 120, 300 or 600 ticks, over the headline). No configuration
beats the headline: accepting after 30–300 steady ticks accepts valve1's faults themselves (F1
0.26–0.71, MAR 40–84 %: a valve fault is a long steady state), after 600 it never fires in valve1's
files (the headline's scores, a tie the rule does not break towards a change). A first version that
re-learned the mean alone, forgetting the warm-up state, raised valve1's FAR to 28–38 % (each
fault's end alarmed). So the daemon has no such option: on this testbed a steady fault and a new
normal look alike, which is the risk such an automation carries; the operator's acknowledgement
stays the way to accept one.

The alert life cycle was last tried by the same rule, over the headline with the likelihood
(`tune_lifecycle_valve1.py`, `tuning_lifecycle_valve1.json`; per-tag part replayed for each
setting): opening on `open_k` of `open_n` ticks (1 of 1, 2 of 3, 3 of 5, 5 of 10) × clearing after
`clear_normal_steps` 5, 10, 20 or 30 normal ticks. The defaults (3 of 5, 10) keep the highest valve1
F1 under the FAR bound; a longer clearing run or a quicker opening raises F1 to 0.77–0.78 with FAR
14–54 %, over the bound.

A learned relation (a virtual sensor, `detect/relations.py`, as the chiller's headline uses) was
tried, before the likelihood layer and over the previous headline, by the same rule on valve1
alone: the pump's flow predicted from its current and pressure
(± voltage, or from all other tags; with an intercept, or proportional), `z_threshold` 4, 6 or 8
(`tune_relation_valve1.py`, `tuning_relation_valve1.json`). Beside the asset T²+Q no candidate
changes valve1's F1 (0.75) or FAR (13.04 %; MAR 33.19 → 33.08 % at best) — in an exploratory check
the flow relation alone flagged about a third of valve1's anomalous rows, rows the asset T²+Q
already flags — so the rule keeps the headline without a relation and the runs below have none."""
ONSET_ROWS: tuple[tuple[str, ...], ...] = (
    (
        "Configuration",
        "split",
        "F1",
        "FAR, %",
        "MAR, %",
        "NAB std",
        "NAB LowFP",
        "NAB LowFN",
        "windows hit / missed, changes outside",
    ),
    ("---", "---", "---", "---", "---", "---", "---", "---", "---"),
    (
        "chosen (39b1df6: charts ×2.5, clear after 3)",
        "held out",
        "**0.80**",
        "**15.20**",
        "24.46",
        "**24.92**",
        "12.65",
        "31.61",
        "18 / 22, 83",
    ),
    (
        "previous headline (0f174f2: charts ×3, clear after 5), re-run",
        "held out",
        "0.77",
        "11.64",
        "31.08",
        "26.46",
        "20.16",
        "31.81",
        "17 / 23, 38",
    ),
    ("chosen", "tuning", "0.82", "9.60", "24.58", "40.79", "36.12", "45.20", "47 / 40, 59"),
    ("previous headline", "tuning", "0.82", "7.30", "26.03", "40.12", "36.46", "43.99", "45 / 42, 44"),
    ("chosen", "all 34", "0.81", "11.35", "24.54", "35.79", "28.72", "40.92", "65 / 62, 142"),
    ("previous headline", "all 34", "0.80", "8.66", "27.62", "35.82", "31.33", "40.15", "62 / 65, 82"),
)
"""The fourth pass's table (``heldout_onset.json``): header, rule, then one row per configuration and split."""


def _table(rows: Sequence[Sequence[str]]) -> str:
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


ONSET_PASS = (
    """\
## Issue 13, fourth pass: the asset alert's onset and clearing (pre-registered 2026-12-07, before any held-out scoring)

**Where the tuning files lose points** (the 23 tuning files only; `bench/skab/why_nab_tuning.py` and a per-file
look at the openings at the headline, `ASSET_ON` frozen at 0f174f2): F1 0.82, FAR 7.30 %, NAB standard 40.12. Of
23 `start` windows 18 are hit (median 12 s late; missed: 2 with no alert, 2 opened more than 60 s late, 1 opened
≤ 10 s early); 15 of 20 `start+60` windows missed (the alert already open); `end-60` 13 of 22 hit, `end` 9 of 22
(11 missed with the alert already cleared: a state detector clears once, as the valve reopens); 44 changes
outside every window (38 with the label off, 6 dips inside a fault). A window hit at its start is worth +1.15
NAB points, a false change −0.063. On the 16 `valve1` files the fault is a slow ramp and the alert opens 59–61 s
after the labelled start (the flow is quantised; its EWMA chart creeps to its limit), so by a second either way
the opening scores almost nothing (the `start` window's last second) or a full hit (`start+60`'s first); the
`other` files' faults are steps that open at once (per-tag residuals). Early openings before a fault (valve1/2,
/10, /12, /15, other/1) and re-openings after a fault's end on the `other` files carry the FAR.

**Pre-registered decision** (`bench/skab/tune_onset.py`, committed with this section before it ran): on the 23
tuning files only, through the daemon's stages with Holt forecasts, grid of 16 configurations over `ASSET_ON` —
`asset_chart_alpha` 0.2 (today's), 0.3 × `asset_chart_factor` 3.0 (today's), 2.5 × `asset_ucl_factor` 3.0
(today's), 2.5 × `asset_clear_normal_steps` 5 (today's), 3 — one configuration for the whole benchmark. A
candidate is eligible when on the pooled tuning split its F1 (unrounded) is at least today's, its FAR is under
13.55 %, its NAB standard is at least today's + 0.5, and neither tuning group's (`valve1`, odd `other`) NAB
standard falls below today's; the eligible candidate with the highest pooled NAB standard is adopted (ties:
higher F1); if none is eligible, today's settings stay. The choice is committed (`tuning_onset.json`) before the
held-out split is scored, once, by `bench/skab/score_heldout_onset.py` (the choice and today's headline re-run
in the same process). Results: to follow below, whatever they say.

**Choice on the tuning files** (`tuning_onset.json`, 16 rows, ~40 s each; committed before the held-out split
was scored): 15 of the 16 candidates fail the rule — most lose F1 (every chart weight 0.3 row: 0.804–0.817
against 0.8206) or NAB; clearing after 3 at today's charts has NAB 41.43 but F1 0.8204. Adopted: **charts' limit
×2.5 (`asset_chart_factor`, was 3.0), clearing after 3 normal ticks (`asset_clear_normal_steps`, was 5)**, chart
weight 0.2 and T²/Q limits ×3 unchanged — tuning F1 0.8211 (0.8206), FAR 9.60 % (7.30 %), NAB standard 40.79
(40.12), LowFP 36.12 (36.46), LowFN 45.20 (43.99); `valve1` NAB 35.15 (34.28), odd `other` 55.59 (55.46). Noted
before scoring, not part of the rule: on the odd `other` files the choice raises FAR from 13.56 % to 21.70 % and
lowers F1 from 0.87 to 0.84 (the rule bounds the pooled FAR only), and the held-out split holds 7 `other` files
of 11, so its FAR may rise past the bound.

**Held-out split, scored once** (`bench/skab/score_heldout_onset.py` → `heldout_onset.json`, 2026-12-07 00:08
UTC, after 39b1df6; both configurations on all 34 files in the same process, Holt, 164 s; nothing chosen after
it):

"""
    + _table(ONSET_ROWS)
    + """

Per group (chosen; previous): `valve2` F1 0.84, FAR 1.26 %, NAB 42.95 (0.79, 1.59 %, 42.10); `other`, all 14
files, 0.81, 22.15 %, 34.24 (0.81, 15.31 %, 35.75). The re-run of the previous headline reproduces the earlier
report's held-out numbers exactly.

**Issue 13's SKAB target: not met.** F1 0.80 > 0.78 is met, but at FAR 15.20 % (bound 13.55 %), and NAB standard
24.92 < 32.42 (lower than the previous headline's 26.46). The FAR rise came where the note above expected it, on
the `other` files. On the tuning files the tighter chart limit alone raised FAR (7.30 → 10.52 %,
`tuning_onset.json`) and the shorter clearing run alone added changes outside the windows (44 → 48); on the
held-out split the changes outside every window more than doubled (38 → 83), each costing NAB points, while one
more window was hit. By the protocol the frozen choice is the evaluation's headline now (`evaluation/skab.py`
`ASSET_ON`; the previous one is `PREVIOUS_HEADLINE`); reverting it because of these held-out numbers would be
choosing on the held-out split. The tables below come from `sentinelle evaluate --dataset skab --forecaster holt
--no-ablation --keep-variants` at this headline (the same numbers as the held-out scoring above; nothing
chosen); the rows marked "not re-run" are carried over from earlier runs at the settings of
the run each row names (earlier headlines' asset settings).

What the tuning files say is left, for a next pass (not tried here, no held-out scoring): the rule bounded the
pooled FAR only, and the `other` group's FAR rose 13.56 → 21.70 % on the tuning files too — a rule that let no
tuning group's FAR rise would have kept the previous headline (said in hindsight, after the held-out scoring;
not used); the `valve1` openings sit on the `start`/`start+60` boundary (a second decides a full hit), so NAB
differences under about one point on the tuning files are not evidence; and what SKAB's NAB rewards beyond that
(a second change per transition) is not something an operator's alarm should do."""
)
"""Issue 13's fourth pass, at the top of the report: the diagnosis on the tuning files, the rule registered before
the grid ran, the choice, and the held-out split scored once (measured numbers, as written then)."""
