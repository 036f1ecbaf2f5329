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
from .skab_notes import (
    HELD_OUT_NOTE,
    ISSUE_14,
    NAB_ANATOMY,
    ONSET_PASS,
    TUNING,
    adaptation_note,
    issue14_verdict,
    summary,
)
from .skab_notes_fifth import FIFTH_PASS
from .skab_notes_seventh import SEVENTH_PASS
from .skab_notes_sixth import SIXTH_PASS

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


def _settling(d: DetectSettings) -> str:
    """The report's sentence on the asset alert's settling time (empty when it is off)."""
    if d.asset_settle_steps == 0:
        return ""
    end = "is sent cleared (its re-arm time over)" if d.asset_settle_after_rearm else "clears"
    return (
        f" Once an asset alert whose condition lasted at least {d.asset_settle_after_steps} ticks {end}, the asset "
        f"state does not flag for {d.asset_settle_steps} ticks, a settling time (per-tag residuals still alert)."
    )


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


def kept_adapter(previous: Path, kept: Sequence[dict[str, Any]], adapted: Sequence[str]) -> dict[str, Any] | None:
    """The earlier report's ``asset_adapter`` record when rows of the adapted asset model (labels ``adapted``)
    are carried over from it: their account in the report needs the adapter's training record.

    >>> import json, tempfile
    >>> p = Path(tempfile.mkdtemp()) / "report.json"
    >>> _ = p.write_text(json.dumps({"asset_adapter": {"path": "a"}, "runs": []}))
    >>> kept_adapter(p, [{"label": "x"}], ["x"]), kept_adapter(p, [{"label": "y"}], ["x"])
    ({'path': 'a'}, None)
    """
    import json

    if not previous.is_file() or not any(r["label"] in adapted for r in kept):
        return None
    record = json.loads(previous.read_text(encoding="utf-8")).get("asset_adapter")
    return record if isinstance(record, dict) else None


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
        SEVENTH_PASS,
        "",
        SIXTH_PASS,
        "",
        FIFTH_PASS,
        "",
        ONSET_PASS,
        "",
        "## How every configuration is run",
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
        f"{d.clear_normal_steps})." + _settling(d),
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
    ev = head.nab_alert_events
    if ev:
        lines.append(
            f"| sentinelle's own changepoint output: the alert stream's events | {ev['standard']} | "
            f"{ev['reward_low_fp']} | {ev['reward_low_fn']} |"
        )
    for a, s, lf, ln in LEADERBOARD_CHANGEPOINT:
        lines.append(f"| {a} | {s} | {lf} | {ln} |")
    c = head.nab_counts
    lines += [
        "",
        f"Changepoints: {c['windows']} windows, {c['detected']} detected (mean delay {c['mean_delay_s']} s), "
        f"{c['missed']} missed, {c['false_positives']} detections outside windows. Scoring only alert *openings* "
        f"as detections (not the clearings SKAB's diff also counts): NAB standard "
        f"{head.nab_opened_only['standard']}.",
    ]
    if ev:
        e = head.nab_alert_events_counts
        lines.append(
            "The first row scores `|diff|` of the outlier prediction, as SKAB's notebooks do for outlier detectors; "
            "the second, the series the daemon sends itself — every `opened`, `updated` and `cleared` event of the "
            "asset's alerts (SKAB's changepoint table also ranks detectors with their own series, `ruptures` and "
            f"`CPDE`): {e['detected']} windows detected, {e['missed']} missed, {e['false_positives']} events outside "
            "windows."
        )
    lines += [
        "",
        "## Per group (headline configuration)",
        "",
        "| Files | F1 | FAR, % | MAR, % | NAB std | NAB LowFP | NAB LowFN | NAB std, alert events |",
        "|---|---|---|---|---|---|---|---|",
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
            f"{part['nab_low_fp']} | {part['nab_low_fn']} | {part['nab_alert_events_standard']} |"
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
        + f": {held['nab_standard']}; the alert stream's events: {held['nab_alert_events_standard']}). "
        + HELD_OUT_NOTE,
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
    model_rows += [(_kept_label(k), k["splits"]["held_out"]) for k in kept if "model" in k["label"].split(":")[0]]
    lines += [
        "",
        ISSUE_14,
        "",
        *([adaptation_note(meta["asset_adapter"]), ""] if "asset_adapter" in meta else []),
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
        "On all 34 files (issue 13's target is on the held-out split: the per-group section above), "
        f"outlier target, F1 above {TARGET_F1} with FAR under {TARGET_FAR_PERCENT} %: "
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
