"""The SKAB report's account of issue 13's fifth pass: sentinelle's own changepoint output and FAR per group.

Prose only, as :mod:`.skab_notes` (kept apart so that neither grows past a readable size).  The section's first
three paragraphs are the text committed (393e939) before the tuning grid ran; the rest was written after the
held-out split was scored once (``docs/results/skab/heldout_changepoints.json``).
"""

from __future__ import annotations

FIFTH_FROZEN_COMMIT = "4814891"
"""The commit that froze :data:`~.skab.ASSET_ON` (chart weight 0.3) before the held-out files were scored."""

FIFTH_ROWS: tuple[tuple[str, ...], ...] = (
    (
        "Configuration",
        "split",
        "F1",
        "FAR, %",
        "MAR, %",
        "NAB std, prediction's changes",
        "NAB std, alert events",
        "LowFP / LowFN, alert events",
        "windows hit / missed, outside: changes; events",
    ),
    ("---", "---", "---", "---", "---", "---", "---", "---", "---"),
    (
        "chosen (4814891: chart weight 0.3)",
        "held out",
        "**0.76**",
        "**12.74**",
        "31.96",
        "**26.58**",
        "**37.65**",
        "29.62 / 43.43",
        "18 / 22, 71; 22 / 18, 51",
    ),
    (
        "previous headline (39b1df6: chart weight 0.2), re-run",
        "held out",
        "0.80",
        "15.20",
        "24.46",
        "24.92",
        "33.03",
        "24.29 / 38.69",
        "18 / 22, 83; 20 / 20, 57",
    ),
    ("chosen", "tuning", "0.82", "6.59", "26.95", "43.51", "43.66", "39.96 / 47.12", "47 / 40, 54; 47 / 40, 47"),
    (
        "previous headline",
        "tuning",
        "0.82",
        "9.60",
        "24.58",
        "40.79",
        "42.43",
        "38.21 / 46.68",
        "47 / 40, 59; 48 / 39, 52",
    ),
    ("chosen", "all 34", "0.80", "8.51", "28.52", "38.18", "41.77", "36.70 / 45.96", "65 / 62, 125; 69 / 58, 98"),
    (
        "previous headline",
        "all 34",
        "0.81",
        "11.35",
        "24.54",
        "35.79",
        "39.47",
        "33.82 / 44.16",
        "65 / 62, 142; 68 / 59, 109",
    ),
)
"""The held-out scoring's table (``heldout_changepoints.json``): header, rule, then one row per configuration and
split."""


def _table(rows: tuple[tuple[str, ...], ...]) -> str:
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


FIFTH_PASS = (
    """\
## Issue 13, fifth pass: sentinelle's own changepoint output, FAR per group (pre-registered 2026-12-07)

**What SKAB's protocol scores as changepoints.** The changepoint leaderboard scores one changepoint series per
algorithm. For its outlier detectors the notebooks derive it from the outlier prediction
(`waico/SKAB` `notebooks/Conv_AE.ipynb`: `prediction_cp = abs(prediction.diff())`, first row its own value),
but the same table ranks changepoint detectors that give their own series — `ruptures` (BinSeg) and `CPDE`,
whose breakpoints are set to 1 (`YKatser/CPDE` `SKAB_experiment.ipynb`; the leaderboard's footnotes in
`waico/SKAB` `README.md`). So a detector's own changepoint output is admitted. Sentinelle's is what its alert
topic sends about the asset: every event of any of its alerts — `opened`, `updated` (escalated, grew 50 %,
spread to another tag, came back within its re-arm time), `cleared` (sent when its re-arm time ran out) —
each a message a consumer receives (`evaluation/skab.py`, `FileResult.alert_changes`). Both conventions are
reported from now on. Seen before the rule was written, at today's settings on the tuning files only: NAB
standard 40.79 for `|diff|`, 43.63 for the alert stream's events, 28.18 for openings and clearings alone,
19.03 for openings alone (the definition follows what the daemon sends; those numbers were seen).

**FAR.** Re-arm already exists (`detect/chatter.py`: a subject back within its re-arm time continues the
same alert), and the evaluation maps alerts to rows by their condition (`AlertBook.any_active`), so a
merged alert adds no false rows — and re-arm cannot remove any. What carries FAR on the tuning files is not
chatter: asset-state openings on Temperature/Thermocouple before a fault (valve1/2, /10, /11, /12, /15,
other/1) and on the flow or Thermocouple after a fault's end (other/5, /9, /11). The levers are the charts'
limit and weight and the clearing run.

**Pre-registered decision** (`bench/skab/tune_changepoints.py`, committed with this section before it
ran): the 23 tuning files only, Holt, over `ASSET_ON`; grid of 8 — `asset_chart_alpha` 0.2 (today's), 0.3
× `asset_chart_factor` 2.5 (today's), 3.0 × `asset_clear_normal_steps` 3 (today's), 5 (all eight were in
the fourth pass's grid; new are the rule and the convention). Eligible: pooled tuning F1 at two decimals at
least today's (0.82 — known beforehand: unrounded, every chart ×3 row misses today's by under 0.001), FAR
under 13.55 % pooled *and in each tuning group*, alert-stream NAB standard above today's pooled and not
below today's in either group. Chosen: the eligible row with the highest pooled alert-stream NAB (ties:
higher F1); none eligible: today's settings stay. Then the held-out split is scored once by
`bench/skab/score_heldout_changepoints.py`, today's headline in the same process, both conventions. The
held-out split was scored in four earlier passes: this is a fifth look. Results: to follow below, whatever
they say.

**Choice on the tuning files** (`tuning_changepoints.json`, 8 rows, ~55 s each; committed in 4814891 before the
held-out split was scored): one row is eligible — **EWMA chart weight 0.3** (`asset_chart_alpha`, was 0.2),
limits ×2.5 and clearing after 3 unchanged: tuning F1 0.8174 (0.8211; 0.82 both at two decimals), FAR 6.59 %
(9.60 %), `valve1` 4.35 % (4.88 %), odd `other` 12.34 % (21.70 %), alert-stream NAB 43.66 (42.43), `valve1`
38.64 (37.48), odd `other` 56.84 (55.43); `|diff|` NAB 43.51 (40.79). The other seven fail: chart weight 0.2
rows by the `other` FAR (21.70–22.74 % at limits ×2.5) or by NAB (limits ×3), weight 0.3 at limits ×3 by F1
(0.81), weight 0.3 clearing after 5 by the `other` FAR (14.03 %). Today's alert-stream NAB is 42.43, not the
43.63 quoted above: that probe put each event on its own second, the convention on the file's next row (a
second missing from the file); the rule used the grid's numbers for every row alike.

**Held-out split, scored once in this pass** (`bench/skab/score_heldout_changepoints.py` →
`heldout_changepoints.json`, 2026-12-07 03:05 UTC, after 4814891; both configurations on all 34 files in the
same process, Holt, 185 s; nothing chosen after it; the fifth look at these files over issue 13's passes):

"""
    + _table(FIFTH_ROWS)
    + """

Per group (chosen; previous): `valve2` F1 0.78, FAR 1.26 %, NAB `|diff|` 41.39, alert events 52.64 (0.84,
1.26 %, 42.95, 45.68); `other`, all 14 files, F1 0.81, FAR 15.67 %, 36.09, 42.25 (0.81, 22.15 %, 34.24, 40.01).
The re-run of the previous headline reproduces the fourth pass's held-out numbers exactly.

**Issue 13's SKAB target: not met.** The chosen configuration meets FAR (12.74 % < 13.55 %) and, with
sentinelle's own changepoint output, NAB (37.65 > 32.42; `|diff|` 26.58 does not), but F1 falls to 0.76
(bound 0.78): held-out MAR rose 24.46 → 31.96 % (`valve2` F1 0.84 → 0.78) — likely because a heavier chart
weight averages less, so the chart's limit (the warm-up's 99 % quantile of |EWMA| × 2.5) sits higher against a
small lasting shift. The previous headline keeps F1 0.80 but at FAR 15.20 %. No configuration of the eight met all three
on the held-out split in this look (two were scored), and none is chosen from it: by the protocol the frozen
choice is the evaluation's headline now (`evaluation/skab.py` `ASSET_ON`; the previous one is
`PREVIOUS_HEADLINE`). What the tuning files did not show: the chosen row's F1 margin was already the smallest of
the rule's tests (0.8174 against 0.8211, admitted only at two decimals), and on the held-out split that margin
became the failure. The alert-stream convention scored above `|diff|` for both configurations on the held-out
split (+8.1 and +11.1) but only +1.6 and +0.2 on the tuning files: it gains where `|diff|` pays for a
condition's dips (changes outside every window: 83 → 57 and 71 → 51) — a dip within the re-arm time is one
`updated` event, not a clearing and an opening. The alert stream's `cleared` is sent when the re-arm time
(60 s, set a priori from EEMUA 191's minute) runs out, the same 60 s that separates SKAB's `end-60` and `end`
labels: part of its `end` hits come from that coincidence, which an operator's alarm did not choose for SKAB.
The tables below come from `sentinelle evaluate --dataset skab --forecaster holt --no-ablation --keep-variants`
at this headline; the rows marked "not re-run" are carried over from earlier runs at the settings of the run
each row names.

What is left, for a next pass (tuning files only, at this headline, `bench/skab/why_openings_tuning.py` and a
count of false rows; no held-out scoring): on the odd `other` files 256 of the 262 false rows come after a
fault's end (other/11 107, other/9 54, other/5 40 — the asset state, on the flow or the Thermocouple at the
previous headline's events, as the pump settles), on `valve1` 188 of 237 before a fault (valve1/12 95, valve1/2
53 — Temperature and Thermocouple just after the 400 training rows). Neither is chatter, so re-arm and the
chattering latch (`detect/chatter.py`, present) do not reach them; a mechanism for them (a settling time after
an asset's fault clears, a warm-up that sees the temperatures' drift) was not built in this pass.
"""
)
"""Issue 13's fifth pass, at the top of the report: the protocol's reading, the rule registered before the grid
ran, the choice, and the held-out split scored once (measured numbers, as written then)."""
