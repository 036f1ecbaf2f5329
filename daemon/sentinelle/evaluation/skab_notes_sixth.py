"""The SKAB report's account of issue 13's sixth pass: settling after an asset episode, aimed at F1.

Prose only, as :mod:`.skab_notes_fifth`.  The rule and both grids were committed before they ran
(``docs/results/skab/settle/RULE.md``: 3c549e9, then 452da82 for the second grid); the choice was frozen into
:data:`~.skab.ASSET_ON` (c92efa9) before the held-out split was scored once (``settle/heldout_settle.json``); the
rest was written after it.
"""

from __future__ import annotations

SIXTH_FROZEN_COMMIT = "c92efa9"
"""The commit that froze :data:`~.skab.ASSET_ON` (settling on) before the held-out files were scored."""

_HEAD = (
    "Configuration",
    "split",
    "F1",
    "FAR, %",
    "MAR, %",
    "NAB std, prediction's changes",
    "NAB std, alert events",
    "LowFP / LowFN, alert events",
    "windows hit / missed, outside: changes; events",
)
_CHOSEN = "chosen (c92efa9: settling 240 after the alert is sent cleared)"
_PREVIOUS = "previous headline (4814891: no settling), re-run"
SIXTH_ROWS: tuple[tuple[str, ...], ...] = (
    _HEAD,
    ("---",) * len(_HEAD),
    (_CHOSEN, "held out", "**0.76**", "**11.40**", "32.96", "**27.39**", "**36.68**", "30.16 / 41.95",
     "17 / 23, 52; 21 / 19, 40"),
    (_PREVIOUS, "held out", "0.76", "12.74", "31.96", "26.58", "37.65", "29.62 / 43.43", "18 / 22, 71; 22 / 18, 51"),
    ("chosen", "tuning", "0.83", "4.54", "26.95", "42.99", "44.17", "40.97 / 47.45", "45 / 42, 40; 47 / 40, 39"),
    ("previous headline", "tuning", "0.82", "6.59", "26.95", "43.51", "43.66", "39.96 / 47.12",
     "47 / 40, 54; 47 / 40, 47"),
    ("chosen", "all 34", "0.80", "6.69", "28.83", "38.08", "41.81", "37.56 / 45.72", "62 / 65, 92; 68 / 59, 79"),
    ("previous headline", "all 34", "0.80", "8.51", "28.52", "38.18", "41.77", "36.70 / 45.96",
     "65 / 62, 125; 69 / 58, 98"),
)  # fmt: skip
"""The held-out scoring's table (``settle/heldout_settle.json``): header, rule, one row per configuration and
split."""


def _table(rows: tuple[tuple[str, ...], ...]) -> str:
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


SIXTH_PASS = (
    """\
## Issue 13, sixth pass: settling after an asset episode, aimed at F1 (pre-registered 2026-12-07)

**Where the tuning files lose F1** (the 23 tuning files only, at the fifth pass's headline; seen before the
rule was written): 6,406 true, 499 false and 2,363 missed rows (F1 0.8174). Of the false rows 256 lie on the odd
`other` files after a fault's end — mostly the asset-state condition coming back 10–170 s after it had cleared,
as the pump drifts back through the warm-up's limits (other/11 107, /9 54, /5 40, /7 26) — and 188 on `valve1`
before a fault. Of the missed rows, `valve1` holds 1,176 before the alert opens (two files never detected, the
others opened ~55 s into the ramp) and 721 after it clears (about 40 s before the labelled end). The fourth pass
showed the trade: a chart of weight 0.2 finds more of each fault (held-out F1 0.80) but its post-fault rows on
`other` pushed FAR over the bound.

**Mechanism** (`detect/detectors/asset_t2q.py`; `detect.asset_settle_steps`, `asset_settle_after_steps`,
`asset_settle_after_rearm`, all off in the daemon; tests in `tests/unit/test_asset_settle.py` on hand-made
sequences): once an asset alert's *episode* — a condition open at least `asset_settle_after_steps` ticks — is
over, the asset-state condition does not flag for `asset_settle_steps` ticks. A process returning from an upset
crosses the limits learned on its normal state on its way back; ISA-18.2's state-based (designed) suppression
is for such transitions. Only the asset-state detector is held: per-tag residuals (a new step) and limits still
alert, and a short condition (a false opening just before a fault) earns no settling time. With
`asset_settle_after_rearm` the episode is the alert as the stream sends it: a dip shorter than the re-arm time
(60 s) continues it, and the settling time starts when `cleared` is sent.

**Pre-registered decision** (`docs/results/skab/settle/RULE.md`, committed in 3c549e9 before any grid ran):
tuning files only, Holt, over `ASSET_ON`. Eligible: pooled tuning F1 (unrounded) ≥ today's + 0.005; FAR no higher
than today's pooled and in each tuning group (`valve1`, odd `other`); alert-stream NAB standard no lower than
today's pooled and in each group. Chosen: the eligible row with the highest pooled F1; none eligible: today's
settings stay. First grid (`bench/skab/tune_settle.py`, 14 rows): chart weight 0.3 (today's), 0.2 × settling
0, 60, 120, 240 ticks from the condition's first clearing × episodes of ≥ 60, 180 ticks.

**First grid** (`settle/tuning_settle.json`): none eligible — every settling row lowered the alert-stream NAB
(43.66 → 39.18–41.62). At chart weight 0.3 settling also *lost* fault rows (MAR 26.95 → 27.55–29.75 %, F1
0.8101–0.8242): the condition dips for a few ticks inside a fault (the clearing run is
3 ticks; valve1/6 clears at +486 s and returns at +491 s) and the dip ended the episode, so its settling time
held the rest of the fault (the second grid, which merges such dips, lost none). At weight 0.2 F1 rose to 0.8398
(settling 240 after episodes of ≥ 180 ticks, FAR 4.55 %), but its alert-stream NAB fell to 39.75 (odd `other`
56.84 → 49.82: in the first grid that group's windows hit fell 17 → 13–14; the re-activations after a fault's
end had been hitting the `end` windows).

**Second grid** (registered in 452da82 after the first grid's first five rows had been seen, before it ran;
`bench/skab/tune_settle_rearm.py`, 7 rows; the same rule over the rows of both grids): settling that starts
when the alert is sent cleared (`asset_settle_after_rearm`), episodes of ≥ 60 ticks, chart weight 0.3, 0.2 ×
settling 60, 120, 240. It keeps every fault row (MAR 26.95 % at weight 0.3 for all three) and removes post-fault
openings. **Chosen: settling 240 ticks after the alert is sent cleared, chart weight 0.3** — tuning F1 0.8256
(0.8174), FAR 4.54 % (6.59), `valve1` 3.94 % (4.35), odd `other` 6.07 % (12.34), alert-stream NAB 44.17 (43.66),
`valve1` 38.99 (38.64), odd `other` 57.76 (56.84); `|diff|` NAB 42.99 (43.51, recorded, not used). Settling 120
at weight 0.3 was eligible too (F1 0.8239), settling 60 missed the F1 margin (0.8188), the weight-0.2 rows failed
FAR (6.98–9.02 %).
Frozen into `ASSET_ON` at """
    + SIXTH_FROZEN_COMMIT
    + """ before the held-out split was scored.

**Held-out split, scored once in this pass** (`bench/skab/score_heldout_settle.py` → `settle/heldout_settle.json`,
2026-12-07 06:01 UTC, after c92efa9; both configurations on all 34 files in the same process, Holt, ~150 s;
nothing chosen after it; the sixth look at these files over issue 13's passes):

"""
    + _table(SIXTH_ROWS)
    + """

Per group (chosen; previous): `valve2` F1 0.78, FAR 1.09 %, MAR 35.73 %, NAB `|diff|` 35.17, alert events 46.77
(0.78, 1.26 %, 35.73 %, 41.39, 52.64); `other`, all 14 files, F1 0.82, FAR 11.63 %, MAR 22.87 %, 38.35, 43.86
(0.81, 15.67 %, 22.06 %, 36.09, 42.25).

**Issue 13's SKAB target: not met.** Settling did what it was built for — held-out FAR 12.74 → 11.40 %, false
changes outside every window 71 → 52 (events 51 → 40) — but held-out F1 stayed at 0.76 (0.7601 → 0.7580): the
F1 gap is the missed rows (MAR 31.96 %), which removing false rows cannot close, and on the held-out `other`
files settling held some true rows (that group's MAR 22.06 → 22.87 %, where the tuning files lost none; which
files was not looked at, to keep the held-out split from informing a next design). The alert-stream NAB fell
37.65 → 36.68 (still over 32.42), `|diff|` rose 26.58 → 27.39. By the protocol the frozen choice is the SKAB
evaluation's headline now (`ASSET_ON`; the previous one is `PREVIOUS_HEADLINE`); the daemon's defaults keep
settling off (the asset detector is off by default, and the chiller and LBNL reports that turn it on were not
re-run with it). What the tuning files say is left: F1 needs found rows — `valve1`'s late openings on the
ramp (~55 s a file) and its clearing ~40 s before the labelled end, which sits ~60 s after the valve reopens;
chart weight 0.2 with settling reached tuning F1 0.84 but not the NAB and FAR rules.
"""
)
"""Issue 13's sixth pass, at the top of the report: the mechanism, the rule registered before the grids ran, the
choice, and the held-out split scored once (measured numbers, as written then)."""
