"""The SKAB report: ``report.json`` and ``report.md`` from :func:`~.skab.evaluate_skab`'s results.

Split from :mod:`.skab` (the replay and the scores) to keep each module to one job: this one
holds the report's prose (how the settings were chosen, kept as the record of each choice),
the rows kept from earlier reports, and the tables, including the tuning and held-out splits
per configuration (the split of :func:`~.skab.in_tuning_split`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..settings import DetectSettings
from .skab import (
    ASSET_ON,
    EEMUA_ALERTS_PER_10_MIN,
    LEADERBOARD_CHANGEPOINT,
    LEADERBOARD_OUTLIER,
    PLOT_FILES,
    Scores,
    SkabResult,
    in_tuning_split,
    score_files,
)
from .skab_notes import HELD_OUT_NOTE, ISSUE_14, NAB_ANATOMY, issue14_verdict, summary

PREVIOUS_ROWS: tuple[tuple[str, float, float, float, float, float, float, str], ...] = (
    (
        "model: headline of 5bc13f7 (no charts, T²/Q ×1.5, likelihood z 3) (report of 8350150)",
        0.77,
        22.1,
        24.82,
        27.19,
        23.22,
        30.73,
        "1.58, 8",
    ),
    (
        "model: the same, flagged on the raw score (no likelihood) (report of 8350150)",
        0.77,
        16.38,
        27.92,
        31.45,
        27.85,
        34.88,
        "1.60, 7",
    ),
    ("model: the same, likelihood z 4 (report of 8350150)", 0.77, 16.36, 28.78, 29.06, 25.15, 33.02, "1.58, 9"),
    (
        "model: likelihood layer over the 10-tick mean, z 2 (report of 5bc13f7)",
        0.76,
        20.86,
        27.65,
        27.51,
        23.48,
        30.94,
        "1.60, 9",
    ),
    ("model: likelihood history 2000 ticks (report of 5bc13f7)", 0.77, 22.42, 24.67, 27.06, 23.03, 30.64, "1.60, 8"),
    (
        "model: likelihood of the EWMA (α 0.3) score (report of 5bc13f7)",
        0.78,
        29.87,
        19.37,
        33.13,
        27.01,
        37.83,
        "2.48, 9",
    ),
    ("model: raw score, EWMA α 0.3 (report of 5bc13f7)", 0.77, 22.64, 25.1, 30.0, 24.7, 33.91, "2.19, 10"),
    (
        "model: raw score, EWMA α 0.3, MEWMA α 0.1 instead, UCL ×2 (report of 5bc13f7)",
        0.77,
        26.76,
        23.49,
        29.14,
        24.66,
        33.34,
        "1.86, 7",
    ),
    (
        "model: raw score, EWMA α 0.3, slow learning after warm-up (rate 0.003) (report of 5bc13f7)",
        0.76,
        23.42,
        25.96,
        31.42,
        26.15,
        35.38,
        "2.10, 10",
    ),
    ("model: raw score, EWMA α 0.3, UCL ×1 (report of 5bc13f7)", 0.78, 37.44, 15.34, 31.66, 24.3, 37.12, "2.95, 7"),
    ("model: raw score, EWMA α 0.3, UCL ×3 (report of 5bc13f7)", 0.7, 9.52, 41.99, 31.27, 28.2, 34.23, "1.44, 5"),
    (
        "previous asset detector: online T², χ² UCL ×2 (report of 853fa54)",
        0.54,
        5.14,
        61.66,
        19.36,
        18.98,
        20.26,
        "0.50, 2",
    ),
)
"""Rows kept from earlier reports for comparison (their detectors are no longer in the code)."""


def full_row(scores: Scores) -> dict[str, Any]:
    """F1, FAR, MAR and the three NAB profiles of some files' :class:`~.skab.Scores`."""
    return {
        **scores.row(),
        "nab_low_fp": scores.nab["reward_low_fp"],
        "nab_low_fn": scores.nab["reward_low_fn"],
    }


def split_scores(result: SkabResult) -> dict[str, dict[str, Any]]:
    """One configuration's scores on the tuning split and on the held-out split (:func:`~.skab.in_tuning_split`)."""
    return {
        split: full_row(score_files([f for f in result.files if in_tuning_split(f.name) == keep]))
        for split, keep in (("tuning", True), ("held_out", False))
    }


def kept_runs(previous: Path, labels: Sequence[str]) -> list[dict[str, Any]]:
    """The runs named ``labels`` from an earlier ``report.json`` (rows not re-run: same code and settings),
    each marked with the run it comes from; labels it lacks are left out.

    >>> import json, tempfile
    >>> p = Path(tempfile.mkdtemp()) / "report.json"
    >>> _ = p.write_text(json.dumps({"generated": "T", "runs": [{"label": "a"}, {"label": "b"}]}))
    >>> kept_runs(p, ["b", "c"])
    [{'label': 'b', 'kept_from': 'T'}]
    """
    import json

    if not previous.is_file():
        return []
    doc = json.loads(previous.read_text(encoding="utf-8"))
    by_label = {r["label"]: r for r in doc.get("runs", [])}
    return [
        {**by_label[k], "kept_from": by_label[k].get("kept_from", doc.get("generated", ""))}
        for k in labels
        if k in by_label
    ]


def write_report(
    results: Sequence[SkabResult], out: Path, meta: dict[str, Any], kept: Sequence[dict[str, Any]] = ()
) -> None:
    """``report.json`` and ``report.md`` in ``out``; ``kept``: rows carried over (:func:`kept_runs`)."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    doc = {
        **meta,
        "protocol": PROTOCOL,
        "leaderboard_outlier": [
            {"algorithm": a, "f1": f, "far_percent": far, "mar_percent": mar} for a, f, far, mar in LEADERBOARD_OUTLIER
        ],
        "leaderboard_changepoint": [
            {"algorithm": a, "standard": s, "reward_low_fp": lf, "reward_low_fn": ln}
            for a, s, lf, ln in LEADERBOARD_CHANGEPOINT
        ],
        "runs": [{**r.summary(), "splits": split_scores(r)} for r in results] + list(kept),
    }
    (out / "report.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "report.md").write_text(_markdown(results, meta, kept))


PROTOCOL = {
    "files": "34 fault files (valve1 0-15, valve2 0-3, other 1-14); anomaly-free.csv unused",
    "split": "first 400 rows of each file = warm-up (SKAB: train_test_split(train_size=400, shuffle=False)); "
    "scored rows = the rest",
    "outlier": "prediction per row = an alert of the asset open after that row's slot; F1 = TP/(TP+(FN+FP)/2), "
    "FAR = FP/(FP+TN), MAR = FN/(FN+TP), counts summed over files",
    "changepoint": "prediction = |diff(outlier prediction)| on the scored rows (first row = its own value); "
    "NAB with 60 s windows right of each true changepoint, tsad 'improved' scale, cut right window",
    "sources": "waico/SKAB README (Proposed Leaderboard) and core/utils.py, core/metrics.py @ b2c0d46c; "
    "waico/tsad tsad/evaluating/evaluating.py; numenta/NAB nab/scorer.py",
}


TARGET_F1 = 0.78
TARGET_FAR_PERCENT = 13.55
TARGET_NAB = 32.42
"""Issue #6: beat Conv-AE's F1 at no more than its FAR, and MSCRED's NAB standard score."""

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


def _kept_label(run: dict[str, Any]) -> str:
    return f"{run['label']} (not re-run: row of {run['kept_from'][:16]})"


def _markdown(results: Sequence[SkabResult], meta: dict[str, Any], kept: Sequence[dict[str, Any]] = ()) -> str:
    head = results[0]
    d = DetectSettings(**ASSET_ON)
    asset_k = d.open_k if d.asset_open_k is None else d.asset_open_k
    asset_n = d.open_n if d.asset_open_n is None else d.asset_open_n
    asset_clear = d.clear_normal_steps if d.asset_clear_normal_steps is None else d.asset_clear_normal_steps
    o = head.outlier.rounded()
    outlier_reached = o["f1"] > TARGET_F1 and o["far_percent"] < TARGET_FAR_PERCENT
    nab_reached = head.nab["standard"] > TARGET_NAB
    lines = [
        "# SKAB v0.9 — sentinelle, streaming, under the protocol of SKAB's leaderboard (test rows scored)",
        "",
        f"Generated {meta.get('generated', '')} by `sentinelle evaluate --dataset skab` "
        f"({meta.get('machine', '')}); {meta.get('seconds', 0):.0f} s for all runs.",
        "",
        summary(split_scores(head)["held_out"], TARGET_F1, TARGET_FAR_PERCENT, TARGET_NAB),
        "",
        "Every file is replayed row by row through the daemon's own stages (Windows → ForecastBatcher → "
        "DetectStage, no look-ahead); the first 400 rows warm the detectors up as the daemon's start-up "
        "backfill does (they learn; alerts raised there are dropped) and are not scored. The per-tag "
        "residual detectors keep learning online from ticks that are neither flagged nor inside an open "
        "alert; the asset-level detector (`detect/asset.py`) learns the pump's normal state from its first "
        "400 ticks — SKAB's training rows — and is then frozen: PCA T² and Q (SPE) with control limits at "
        f"the warm-up's 99 % quantile × {d.asset_ucl_factor:g}, the temperatures (tags whose warm-up variance "
        "is mostly slow) scored against a moving baseline instead of a level, and an EWMA control chart "
        f"(weight {d.asset_chart_alpha:g}) on each steady tag with its limit at the warm-up's 99 % quantile of "
        f"|EWMA| × {d.asset_chart_factor:g}, for the small lasting "
        "shifts (a flow a few σ low for good) that T² of single ticks lets pass. A tick is anomalous when any of these "
        f"statistics is over its limit; the asset's alert opens on {asset_k} anomalous ticks of {asset_n} and "
        f"clears after {asset_clear} normal ones (the per-tag alerts: {d.open_k} of {d.open_n}, "
        f"{d.clear_normal_steps}).",
        "",
        "## Outlier detection (column `anomaly`)",
        "",
        "| Algorithm | F1 | FAR, % | MAR, % |",
        "|---|---|---|---|",
        f"| **sentinelle ({head.label})** | **{o['f1']}** | **{o['far_percent']}** | **{o['mar_percent']}** |",
    ]
    for a, f, far, mar in LEADERBOARD_OUTLIER:
        lines.append(f"| {a} | {f} | {far} | {mar} |")
    lines += [
        "",
        "## Changepoint detection (column `changepoint`, NAB, 60 s right-sided windows)",
        "",
        "| Algorithm | NAB (standard) | NAB (LowFP) | NAB (LowFN) |",
        "|---|---|---|---|",
        f"| **sentinelle ({head.label})** | **{head.nab['standard']}** | **{head.nab['reward_low_fp']}** | "
        f"**{head.nab['reward_low_fn']}** |",
    ]
    for a, s, lf, ln in LEADERBOARD_CHANGEPOINT:
        lines.append(f"| {a} | {s} | {lf} | {ln} |")
    c = head.nab_counts
    lines += [
        "",
        f"Changepoints: {c['windows']} windows, {c['detected']} detected (mean delay {c['mean_delay_s']} s), "
        f"{c['missed']} missed, {c['false_positives']} detections outside windows. Scoring only alert *openings* "
        f"as detections (not the clearings SKAB's diff also counts): NAB standard "
        f"{head.nab_opened_only['standard']}.",
        "",
        "## Per group (headline configuration)",
        "",
        "| Files | F1 | FAR, % | MAR, % | NAB std | NAB LowFP | NAB LowFN |",
        "|---|---|---|---|---|---|---|",
    ]
    roles = {"valve1": "tuning", "valve2": "held out", "other": "odd files tuning, even held out"}
    parts = [(f"{g} ({roles[g]})", full_row(sc)) for g, sc in head.by_group.items()]
    splits = split_scores(head)
    parts += [
        ("tuning split: valve1 + other odd", splits["tuning"]),
        ("**held-out split: valve2 + other even**", splits["held_out"]),
        ("all 34 files", full_row(score_files(head.files))),
    ]
    for label, part in parts:
        lines.append(
            f"| {label} | {part['f1']} | {part['far_percent']} | {part['mar_percent']} | {part['nab_standard']} | "
            f"{part['nab_low_fp']} | {part['nab_low_fn']} |"
        )
    held = splits["held_out"]
    held_outlier = held["f1"] > TARGET_F1 and held["far_percent"] < TARGET_FAR_PERCENT
    held_nab = held["nab_standard"] > TARGET_NAB
    lines += [
        "",
        f"Issue 13's target is on the held-out split: F1 above {TARGET_F1} at FAR under {TARGET_FAR_PERCENT} % "
        + ("(reached" if held_outlier else "(not reached")
        + f": {held['f1']}, {held['far_percent']} %) and NAB standard above {TARGET_NAB} "
        + ("(reached" if held_nab else "(not reached")
        + f": {held['nab_standard']}). {HELD_OUT_NOTE}",
        "",
        "## The two splits, per configuration",
        "",
        "Every row of the ablation below on the tuning split (what the settings were chosen on) and on the "
        'held-out split. "Per-tag only" rows are the forecast residuals alone (issue 14: the model\'s '
        "residuals alone should reach F1 0.78 at FAR under 13.55 % on the held-out split).",
        "",
        "| Configuration | tuning F1 | FAR, % | NAB std | held-out F1 | FAR, % | MAR, % | NAB std | NAB LowFP "
        "| NAB LowFN |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        sp = split_scores(r)
        t, h = sp["tuning"], sp["held_out"]
        lines.append(
            f"| {r.label} | {t['f1']} | {t['far_percent']} | {t['nab_standard']} | {h['f1']} | "
            f"{h['far_percent']} | {h['mar_percent']} | {h['nab_standard']} | {h['nab_low_fp']} | "
            f"{h['nab_low_fn']} |"
        )
    for k in kept:
        t, h = k["splits"]["tuning"], k["splits"]["held_out"]
        lines.append(
            f"| {_kept_label(k)} | {t['f1']} | {t['far_percent']} | {t['nab_standard']} | {h['f1']} | "
            f"{h['far_percent']} | {h['mar_percent']} | {h['nab_standard']} | {h['nab_low_fp']} | "
            f"{h['nab_low_fn']} |"
        )
    model_rows = [(r.label, split_scores(r)["held_out"]) for r in results if "model" in r.label.split(":")[0]]
    lines += [
        "",
        ISSUE_14,
        "",
        issue14_verdict(model_rows, TARGET_F1, TARGET_FAR_PERCENT),
        "",
        "## How the settings were chosen",
        "",
        NAB_ANATOMY,
        "",
        TUNING,
        "",
        "## Alert rate (scored rows)",
        "",
        f"Alerts opened per 10 minutes: mean {head.alerts_per_10_min_mean:.2f}, peak "
        f"{head.alerts_per_10_min_peak:.0f} (EEMUA 191 budget: about {EEMUA_ALERTS_PER_10_MIN:.0f} per 10 minutes "
        "in steady state; every SKAB file holds one fault, so this is an upper bound of steady-state rates).",
        "",
        *(head.kpis.markdown() if head.kpis is not None else []),
        "## Against the issue's targets",
        "",
        f"Outlier target, F1 above {TARGET_F1} with FAR under {TARGET_FAR_PERCENT} %: "
        + ("reached" if outlier_reached else "not reached")
        + f" (F1 {o['f1']}, FAR {o['far_percent']} %). Changepoint target, NAB standard above {TARGET_NAB}: "
        + ("reached" if nab_reached else "not reached")
        + f" ({head.nab['standard']}).",
        "",
        "Where the misses and false alarms come from (analysis of the previous headline; the EWMA charts "
        "since catch most small lasting shifts): per-tag forecast residuals flag only transitions (the "
        "forecaster follows a faulted level within seconds), so the asset state carries the result: the "
        "ablation's headline rows with the model, Holt and the naive last value score alike, and per-tag "
        "scoring alone flags under 1 % of the anomalous rows with each of them. In "
        "`valve1`/`valve2` the fault is mostly a drop of the flow rate while the temperatures wander by up to "
        "±12 warm-up σ in normal operation; a frozen level model alarms on the wandering (FAR 52–55 %, the "
        '"no moving baseline" rows), the moving baseline removes most of it. In several `other` files the '
        "labelled fault ends but the pump does not return to its warm-up state (vibration stays 10–15 σ "
        "up, or the flow stays low): a detector of *state* keeps its alert open there, which SKAB counts as "
        "false alarms; telling such a new state from a fault needs knowledge we do not give the detector "
        "(an operator acknowledging it, a new warm-up).",
        "",
        "## Ablation",
        "",
        "| Configuration | F1 | FAR, % | MAR, % | NAB std | NAB LowFP | NAB LowFN | alerts/10 min (mean, peak) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        o = r.outlier.rounded()
        lines.append(
            f"| {r.label} | {o['f1']} | {o['far_percent']} | {o['mar_percent']} | {r.nab['standard']} | "
            f"{r.nab['reward_low_fp']} | {r.nab['reward_low_fn']} | {r.alerts_per_10_min_mean:.2f}, "
            f"{r.alerts_per_10_min_peak:.0f} |"
        )
    for k in kept:
        o, nab, rate = k["outlier"], k["changepoint_nab"], k["alerts_per_10_min"]
        lines.append(
            f"| {_kept_label(k)} | {o['f1']} | {o['far_percent']} | {o['mar_percent']} | {nab['standard']} | "
            f"{nab['reward_low_fp']} | {nab['reward_low_fn']} | {rate['mean']:.2f}, {rate['peak']:.0f} |"
        )
    for label, f1, far, mar, std, low_fp, low_fn, rate in PREVIOUS_ROWS:
        lines.append(f"| {label} | {f1} | {far} | {mar} | {std} | {low_fp} | {low_fn} | {rate} |")
    lines += [
        "",
        "Rules (static limits, rate of change, stuck sensor) are not in the ablation: SKAB's testbed comes "
        "with no configured limits, and limits derived from the scored files would be tuning on the test set.",
        "",
        "## In the live daemon",
        "",
        "The asset detector is the same object in the daemon (`detect.asset_enabled`). It stays **off by "
        "default**: it assumes the warm-up shows the asset's whole normal range, which holds for SKAB's "
        "testbed but not for a plant that follows a load cycle. On the simulated chiller's report "
        "(`docs/results/chiller-detection/holt-2026-12-06/`, 900 s warm-up) the asset detector raises tens of "
        "false alarms per fault-free day (that report's asset rows give the count) — against the spine's budget "
        "of at most one per 600 fault-free seconds. Enable it per deployment for assets "
        "with one "
        "steady operating point, with a warm-up that covers it.",
        "",
        "## Plots",
        "",
        *[f"![{name}]({name.replace('/', '_')}.png)" for name in PLOT_FILES],
        "",
    ]
    return "\n".join(lines)
