"""The LBNL report's prose: its top section (what changed, the issues' targets) and the notes under the table.

Kept apart from :mod:`.lbnl`, which replays the days; the text here reads the results it is given.
"""

from __future__ import annotations

from collections.abc import Sequence

from .lbnl import (
    ASSET_WARMUP_ROWS,
    HEADLINE,
    LEAK_FRACTION,
    MODE_HOLDOFF_S,
    REJECTED,
    RULES,
    SPLITS,
    STATISTICAL,
    WITH_APAR,
    DayResult,
    LbnlResult,
    alerts_per_day,
    day_scores,
    with_the_rest,
)


def notes() -> list[str]:
    """The paragraphs under the configurations table: how each row was set up and what earlier runs found."""
    return [
        "**Headline: ASHRAE Guideline 36's fault conditions** (`detect/afdd.py`, `[detect.assets.afdd]`): the "
        "guideline's AHU conditions FC2-FC13 (mixed air outside return/outdoor air, supply air against mixed air "
        "plus fan heat in each operating state, set point not met with a valve fully open, hunting, outdoor air "
        "unfit for the state) with the guideline's published tolerances and delays (2 °F sensor errors, 5 °F for "
        "the mixed air, 2 °F fan heat, 5-minute averages, ModeDelay 15 min, AlarmDelay 30 min), mapped to each "
        "AHU's points (the supply-air set points are read for it). Nothing in them was fitted to these files. The "
        "one choice, whether each condition first learns the healthy unit's offset on the warm-up day "
        "(`calibration_s`), was made on the tuning days only by a rule fixed beforehand "
        "(`bench/lbnl/tune_afdd.py`, `docs/results/lbnl/tuning_afdd.json`: detection minus false-positive rate "
        "0.601 without, 0.612 with — within the 0.05 margin, so no calibration). A feasibility look at the "
        "tuning days, computed from the CSVs outside the daemon, came before that rule. The headline counts only "
        "the Guideline 36 conditions' `ahu_fault` alerts of a replay that also runs APAR's rules (each condition "
        "its own subject, k = n of its own ticks: the two sets do not interact; the other detectors run in the "
        "same replay, uncounted). Rows name the alerts they count; one replay gives several rows (`VIEWS` in "
        "`evaluation/lbnl.py`): the residuals alone and the asset model alone are the same replay's "
        "`forecast_residual` and `asset_state`/`relation` alerts.",
        "",
        "Configurations: *per-tag only* = forecast-residual scores per tag (the calibrated surprise of "
        "detect/surprise.py, k of n or a severe tick); *(tail)* = with `detect.score_tail_calibration` "
        "(detect/tail.py); "
        "*+ asset* = `detect.asset_enabled` (the asset-level detector at its defaults: PCA T² and Q of the AHU's "
        "tag vector and an EWMA chart per steady tag, learned on the whole warm-up day and frozen when it ends); "
        "*+ modes* = operating-mode rules (detect.assets.modes) on two more "
        "tags, the supply-fan status and the occupancy indicator: mode `off` (fan status 0) pauses detection, "
        "mode `unoccupied` (occupancy 0) is detected, and any change holds detection off for "
        f"{MODE_HOLDOFF_S / 60:.0f} minutes (an AHU's start-up). No static limits or rate limits: the dataset "
        "comes with none, and limits read off the scored days would be tuning on the test set.",
        "",
        "Labels: the CSV's `Fault Detection Ground Truth`. Where LBNL's inventory disagrees (MZVAV-2-1 on "
        "2007-08-30: a heating-coil leak, stage 3, in the inventory; fault-free in the CSV) the CSV's label is used.",
        "",
        "A day-level score with 'any alert that day' is strict for a streaming detector: one alert in 1,440 "
        "minutes flags a fault-free day. The alert rate and the alert count per day (with its AUC) show how "
        "far from that the detector is.",
        "",
        "**Why fault-free days were flagged** (issue 13; `bench/lbnl/why_flagged.py` on the 16 fault-free days "
        "of the tuning half, Holt, the previous headline: 53 openings, 16/16 days): (1) about half were single "
        "severe ticks of *held control signals* that step when commanded — a damper or valve holds for hours "
        "(its forecast sure to one quantum), then steps by 0.4-0.6 at a schedule or economizer change: 10-30 "
        "forecast spreads; (2) the other half were k-of-n openings on *ramps the one-step forecast lags* "
        "(Holt's fixed α = 0.3 trails a supply- or return-air temperature ramping at a start-up, 8:00 occupancy "
        "or a cooling stage by 4-6 spreads for ten minutes); both recur every day. The calibrated scale cannot "
        "learn them (it is winsorised so one spike cannot inflate it, and diluted by hours of exact zeros). "
        "`detect.score_tail_calibration` (detect/tail.py) bounds each tick's surprise by the tag's own record: "
        "−log10 of the rate of its excursions of that size (counted when they end, so a lasting fault keeps its "
        "surprise); an excursion a tag made once in the warm-up day scores about 3.2 decades, under the 3.5 "
        "threshold, one a level (√2) larger than any it made keeps its full surprise. On the tuning half it took "
        "the fault-free days from 16/16 to 12/16 (openings 53 → 23) with the faulted days still 19/19. What stays "
        "is mostly *first-time* behaviour that one warm-up day cannot show: an economizer switch (dampers 1.0 → "
        "0.4) the warm-up day never made, a weekday's 8:00 return-air rise after a Sunday warm-up.",
        "",
        "**The asset detector was not scoring MZVAV with the mode rules** (found here): its warm-up counted "
        f"{ASSET_WARMUP_ROWS} learned ticks, but the `off` mode pauses it at night, so a warm-up day gave about "
        "700 and the model went on learning through the scored day (MZVAV's never froze inside it; SZVAV's froze "
        "part-way, after learning the start of the scored day). `detect.asset_warmup_ends_with_history` now "
        "freezes the model when the history replay ends. Scoring for real, the asset detector (learned on one "
        "day) flags fault-free days too: on the tuning half 15/16 with tail calibration (25 asset openings, led "
        "by the outdoor-air temperature — weather, not the unit's state — and temperatures and dampers whose "
        "day differs from the warm-up day). Tried on the tuning half, not adopted: warming up on the 2 nearest "
        "fault-free days (13/16 fault-free, 19/19 faulted; twice the replay time), `asset_learn_rate` 0.01 "
        "(16/16), no severe-at-once opening (8/16 fault-free but 15/19 faulted).",
    ]


def _counts(days: Sequence[DayResult]) -> str:
    sc = day_scores(days)
    return f"{sc.tp}/{sc.tp + sc.fn}, {sc.fp}/{sc.fp + sc.tn}"


def summary(results: Sequence[LbnlResult], forecaster: str) -> list[str]:
    """The report's top section: what the APAR rules changed, on which days it was chosen, the issues' targets."""
    by = {r.label: r for r in results}
    f = forecaster
    rules, apar = by.get(f"{f}: {HEADLINE}") or by.get(f"{f}: {RULES}"), by.get(f"{f}: {WITH_APAR}")
    rest = by.get(f"{f}: {STATISTICAL}")
    if rules is None:
        return []
    lines = [
        "## What changed in this run (issues 13 and 14)",
        "",
        "NIST's AHU performance assessment rules that Guideline 36 lacks (`detect/apar.py`, opt-in "
        "`apar_rules`): the outdoor-air fraction Q = (MAT − RAT)/(OAT − RAT) against the minimum (APAR 2/16) and "
        "against 0 with the outdoor-air damper commanded closed (APAR2C), the supply air against the mixed air "
        "plus fan heat with no coil active within APAR's εt (APAR 7) and against the return air while cooling "
        "(APAR 6/12/17), at the published thresholds (εt 2 °C, εf 0.3, ΔTmin 5.6 °C). Whether they join the "
        "headline, and at which published εf (0.3 or 0.1), was decided on the tuning days only by a rule written "
        "before the runs (`bench/lbnl/tune_apar.py`, `docs/results/lbnl/tuning_apar.json`): at εf 0.3 they added "
        "no tuning day (15/19 faulted, 3/16 fault-free, as Guideline 36 alone); εf 0.1 took one more faulted day "
        "(16/19, the damper stuck open, seen with the damper commanded closed) but flagged 4/16 fault-free days, "
        "over the rule's 20 % bound. **APAR did not join the headline.** Why it misses the damper leaks: on the "
        "tuning leak day (20 % of flow) the fraction with the damper commanded closed is about 0.08 against 0.02 "
        "on healthy days (from the CSV, tuning days only), a fifth of εf.",
        "",
        "**The damper leak condition OAL joins the headline** (`detect/afdd.py`, `damper_leak_rule`, shipped on "
        "at the chosen 0.05): with "
        "the outdoor-air damper commanded closed, Q above `damper_leak_fraction`, one-sided — outdoor air leaking "
        "in moves Q up, while APAR2C's |Q| also trips on SZVAV's fault-free days, whose Q there is about −0.2 (a "
        "mixed-air sensor reading below the return air). The tolerance was chosen on the tuning days only by a "
        "rule written and committed before the runs (`bench/lbnl/tune_leak.py`, `docs/results/lbnl/tuning_leak"
        ".json`; candidates 0.1, the 10 % fraction threshold of APAR 2/16 implementations, and 0.05): 0.1 took "
        "16/19 faulted, 3/16 fault-free on the tuning days, 0.05 took 17/19, 3/16 (the stuck-open damper and "
        f"the 20 % leak) — **{LEAK_FRACTION:g}**. The held-out days were first replayed with it in the run below."
        " The leaking coil valves stay unseen: a supply-minus-mixed-air test with no coil active, centred on the "
        "warm-up day, was looked at on the tuning days from the CSVs before the rule and dropped — the largest "
        "excess held 30 minutes was 3.7-10 °F on the heating-leak days but 4.5 °F on SZVAV's fault-free "
        "2017-09-23, and the 5 % cooling leak's deficit (1.9 °F) is below that fault-free day's 7.6 °F; "
        "MZVAV-2-1's heating-leak days run with the cooling valve open all day (27 minutes without a coil on "
        "2007-08-28).",
        "",
        "| conditions (ahu_fault alerts) | all: faulted detected, fault-free flagged | held-out | tuning |",
        "|---|---|---|---|",
    ]
    for r in results:
        if r.label.startswith(f"{f}: Guideline 36"):
            split = {k: [d for d in r.days if d.split == k] for k in SPLITS}
            lines.append(
                f"| {r.label.split(': ', 1)[1]} | {_counts(r.days)} | {_counts(split['heldout'])} | "
                f"{_counts(split['tuning'])} |"
            )
    head = day_scores(rules.days)
    met = head.tp >= 30 and head.fp <= 6
    rejected = by.get(f"{f}: {REJECTED}")
    if rejected is not None:
        rj = day_scores(rejected.days)
        held = [d for d in rejected.days if d.split == "heldout"]
        lines += [
            "",
            f"The variant rejected on the tuning days (εf 0.1) flags {rj.tp}/{rj.tp + rj.fn} faulted and "
            f"{rj.fp}/{rj.fp + rj.tn} fault-free days over all days (held-out {_counts(held)}). It was rejected "
            "before any held-out day was replayed with it; adopting it now, on these numbers, would be choosing on "
            "the held-out days, so it stays a row, not the headline.",
        ]
    lines += [
        "",
        f"Issue 13 (all days: at least 30/36 faulted days flagged, at most 6/30 fault-free days): the headline "
        f"{head.tp}/{head.tp + head.fn} and {head.fp}/{head.fp + head.tn} — **{'met' if met else 'not met'}**"
        + ("" if met else f" ({max(0, 30 - head.tp)} faulted days short)")
        + ".",
    ]
    if apar is not None and rest is not None:
        both = with_the_rest(apar.days, rest.days)
        lines += [
            "",
            f"With the rest (a day flagged by the rules or by the per-tag + asset detectors, which run "
            f"independently): {both.tp}/{both.tp + both.fn} faulted, {both.fp}/{both.fp + both.tn} fault-free.",
        ]
    residual = [r for r in results if "residuals alone" in r.label and r.label.startswith(f)]
    for r in residual:
        a, sc = alerts_per_day(r.days), day_scores(r.days)
        lines += [
            "",
            f"Issue 14 (the residuals alone: AUC ≥ 0.85 with at most 6/30 fault-free days flagged), *{r.label}*: "
            f"AUC {a['auc']}, {sc.fp}/{sc.fp + sc.tn} fault-free days flagged — **not met**"
            if not (a["auc"] is not None and a["auc"] >= 0.85 and sc.fp <= 6)
            else f"Issue 14, *{r.label}*: AUC {a['auc']}, {sc.fp}/{sc.fp + sc.tn} fault-free — met",
        ]
    lines += [
        "",
        "The univariate model's and the asset model's rows are not in this report's replays (the model at every "
        "slot took 2153 s for one row on this 2-core VM, 2026-11-26): they were run by "
        "`bench/lbnl/model_residuals.py` at a documented cadence (`docs/results/lbnl/model_residuals*.json`). "
        "Alarm load (ISA-18.2) is now counted per row over that row's own alerts (before, the "
        "rules' headline counted every detector's alerts of its replay).",
        "",
    ]
    return lines
